package entrance

import (
	"context"
	"encoding/json"
	"time"
)

// Store issues taskIDs and keeps the record of every job: its request,
// status history, numbered log lines, progress and result sets. The
// sqlitestore package implements it on an SQLite file.
//
// All methods are safe for concurrent use and take a context that bounds
// the I/O. Methods that read one job return ErrNotFound when no job has the
// taskID.
type Store interface {
	// CreateJob stores a new job and returns its taskID. TaskIDs start at 1,
	// grow, and are never reused, not even after a restart. rec.TaskID is
	// ignored.
	CreateJob(ctx context.Context, rec *JobRecord) (int64, error)

	// UpdateStatus records a status change of a job and appends it to the
	// job's status history. The entrance calls it only with statuses that
	// move forward.
	UpdateStatus(ctx context.Context, taskID int64, u StatusUpdate) error

	// SetProgress records the latest progress of a job.
	SetProgress(ctx context.Context, taskID int64, p ProgressUpdate) error

	// SetProcess records the process group an engine started for a job,
	// so that a restarted server can end what its predecessor left
	// running. Zero clears it.
	SetProcess(ctx context.Context, taskID int64, pgid int) error

	// AppendLog stores log lines of a job. Lines arrive numbered, in order,
	// with no gap after the lines already stored.
	AppendLog(ctx context.Context, taskID int64, lines []LogLine) error

	// ReadLog returns up to limit stored lines of a job, starting at line
	// number from (counted from 1). A negative limit means all lines.
	ReadLog(ctx context.Context, taskID int64, from int64, limit int) ([]LogLine, error)

	// Job returns the record of one job.
	Job(ctx context.Context, taskID int64) (*JobRecord, error)

	// ListJobs returns the jobs that match f, newest first, and the
	// number of all matching jobs.
	ListJobs(ctx context.Context, f JobFilter) ([]*JobRecord, int64, error)

	// UnfinishedJobs returns the jobs whose status is not terminal, oldest
	// first. A server calls it at start-up to recover jobs.
	UnfinishedJobs(ctx context.Context) ([]*JobRecord, error)

	// CreateResultSet starts a result set of a job and returns its index,
	// counted from 0 in the order of creation.
	CreateResultSet(ctx context.Context, taskID int64, meta ResultMeta) (int, error)

	// AppendRows stores rows of a result set.
	AppendRows(ctx context.Context, taskID int64, index int, rows [][]*string) error

	// ResultSets describes the result sets of a job, in order.
	ResultSets(ctx context.Context, taskID int64) ([]ResultSetInfo, error)

	// ReadRows returns up to limit rows of a result set, skipping offset.
	ReadRows(ctx context.Context, taskID int64, index int, offset, limit int64) ([][]*string, error)

	// Close flushes pending writes and releases the store.
	Close() error
}

// JobRecord is a job as the store keeps it.
type JobRecord struct {
	TaskID   int64
	Instance string // host:port of the entrance that accepted the job
	User     string
	Creator  string
	Engine   string
	RunType  string
	Code     string // the code as submitted, before substitution
	Params   Params
	Source   json.RawMessage // the request's source object, or nil
	Tag      string          // the websocketTag of the submitting request

	Status       Status
	ErrCode      int
	ErrDesc      string
	Progress     float64
	ProgressInfo []ProgressInfo

	Created time.Time
	Updated time.Time
	Started time.Time // zero until Running
	Ended   time.Time // zero until terminal

	LogLines int64 // number of stored log lines
	Process  int   // process group recorded by SetProcess, 0 for none
}

// StatusUpdate is one status change.
type StatusUpdate struct {
	Status  Status
	ErrCode int    // terminal failures only
	ErrDesc string // terminal failures only
	At      time.Time
}

// ProgressUpdate is the progress of a job at one moment.
type ProgressUpdate struct {
	Progress float64
	Info     []ProgressInfo
}

// LogLine is one stored log line.
type LogLine struct {
	Number int64 // from 1, per job
	Level  Level
	Text   string
}

// JobFilter selects jobs for ListJobs. Zero fields match everything.
type JobFilter struct {
	User     string // exact; empty for all users
	Status   Status
	Engine   string
	From, To time.Time // creation time range, inclusive
	Offset   int64
	Limit    int64 // 0 means no limit
}

// ResultSetInfo describes a stored result set.
type ResultSetInfo struct {
	Index int
	Meta  ResultMeta
	Rows  int64
}
