package sqlitestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/goentrance/entrance"
)

const insertJobSQL = `
INSERT INTO jobs (instance, user_name, creator, engine, run_type, code, params, source, tag,
	status, err_code, err_desc, progress, progress_info, created, updated, started, ended,
	process)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const insertStatusSQL = `
INSERT INTO status_history (task_id, status, err_code, err_desc, at) VALUES (?, ?, ?, ?, ?)`

// updateStatusSQL keeps the first start time and sets the end time only
// when the fifth argument is not NULL.
const updateStatusSQL = `
UPDATE jobs SET status = ?, err_code = ?, err_desc = ?, updated = ?,
	started = COALESCE(started, ?), ended = COALESCE(?, ended)
WHERE task_id = ?`

const updateProgressSQL = `UPDATE jobs SET progress = ?, progress_info = ? WHERE task_id = ?`

const updateProcessSQL = `UPDATE jobs SET process = ? WHERE task_id = ?`

const selectStatusHistorySQL = `
SELECT status, err_code, err_desc, at FROM status_history WHERE task_id = ? ORDER BY rowid`

// CreateJob stores a new job and returns its taskID. It stores every field
// of rec except TaskID, which the store issues, and LogLines, which counts
// the lines that AppendLog stores. An empty Status stores StatusInited, and
// a zero Created or Updated stores the current time. The first status goes
// into the status history at the time Created.
func (s *Store) CreateJob(ctx context.Context, rec *entrance.JobRecord) (int64, error) {
	job, err := encodeJob(rec, time.Now())
	if err != nil {
		return 0, fmt.Errorf("create job: %w", err)
	}

	var taskID int64
	err = s.w.submit(ctx, func(w *writer) error {
		res, err := w.stmts.insertJob.Exec(job.args...)
		if err != nil {
			return err
		}
		if taskID, err = res.LastInsertId(); err != nil {
			return err
		}
		_, err = w.stmts.insertStatus.Exec(taskID, job.status, rec.ErrCode, rec.ErrDesc,
			job.created)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("create job: %w", err)
	}
	return taskID, nil
}

// encodedJob is a JobRecord ready for insertJobSQL.
type encodedJob struct {
	args    []any // the arguments of insertJobSQL
	status  string
	created int64 // ms since the epoch
}

// encodeJob encodes rec for insertJobSQL. It runs on the caller's
// goroutine, so JSON encoding stays off the writer goroutine.
func encodeJob(rec *entrance.JobRecord, now time.Time) (encodedJob, error) {
	params, err := json.Marshal(rec.Params)
	if err != nil {
		return encodedJob{}, fmt.Errorf("encode params: %w", err)
	}
	var source any
	if rec.Source != nil {
		if !json.Valid(rec.Source) {
			return encodedJob{}, errors.New("source is not valid JSON")
		}
		source = string(rec.Source)
	}
	progressInfo, err := encodeProgressInfo(rec.ProgressInfo)
	if err != nil {
		return encodedJob{}, err
	}

	status := rec.Status
	if status == "" {
		status = entrance.StatusInited
	}
	if !status.Valid() {
		return encodedJob{}, fmt.Errorf("invalid status %q", status)
	}
	created, updated := rec.Created, rec.Updated
	if created.IsZero() {
		created = now
	}
	if updated.IsZero() {
		updated = created
	}

	args := []any{rec.Instance, rec.User, rec.Creator, rec.Engine, rec.RunType, rec.Code,
		string(params), source, rec.Tag, string(status), rec.ErrCode, rec.ErrDesc,
		rec.Progress, progressInfo, created.UnixMilli(), updated.UnixMilli(),
		nullMS(rec.Started), nullMS(rec.Ended), rec.Process}
	return encodedJob{args: args, status: string(status), created: created.UnixMilli()}, nil
}

// encodeProgressInfo encodes info as JSON, or nil for a nil slice so that
// SQLite stores NULL.
func encodeProgressInfo(info []entrance.ProgressInfo) (any, error) {
	if info == nil {
		return nil, nil
	}
	b, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encode progress info: %w", err)
	}
	return string(b), nil
}

// UpdateStatus records a status change. It sets the status, errCode,
// errDesc and update time of the job, the start time when the status is
// Running and no start time is stored, and the end time when the status is
// terminal. It appends the change to the status history. A zero u.At means
// the current time.
//
// NOTE: the store does not check that the status moves forward; the
// entrance is responsible for the order of changes.
func (s *Store) UpdateStatus(ctx context.Context, taskID int64, u entrance.StatusUpdate) error {
	if !u.Status.Valid() {
		return fmt.Errorf("update status of job %d: invalid status %q", taskID, u.Status)
	}
	at := u.At
	if at.IsZero() {
		at = time.Now()
	}

	var started, ended any
	if u.Status == entrance.StatusRunning {
		started = at.UnixMilli()
	}
	if u.Status.Terminal() {
		ended = at.UnixMilli()
	}

	err := s.w.submit(ctx, func(w *writer) error {
		err := execOne(w.stmts.updateStatus, taskID, string(u.Status), u.ErrCode, u.ErrDesc,
			at.UnixMilli(), started, ended, taskID)
		if err != nil {
			return err
		}
		_, err = w.stmts.insertStatus.Exec(taskID, string(u.Status), u.ErrCode, u.ErrDesc,
			at.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("update status of job %d: %w", taskID, err)
	}
	return nil
}

// SetProgress records the latest progress of a job, replacing the one
// before. It does not change the update time of the job.
func (s *Store) SetProgress(ctx context.Context, taskID int64, p entrance.ProgressUpdate) error {
	if math.IsNaN(p.Progress) {
		return fmt.Errorf("set progress of job %d: progress is NaN", taskID)
	}
	info, err := encodeProgressInfo(p.Info)
	if err != nil {
		return fmt.Errorf("set progress of job %d: %w", taskID, err)
	}

	err = s.w.submit(ctx, func(w *writer) error {
		return execOne(w.stmts.updateProgress, taskID, p.Progress, info, taskID)
	})
	if err != nil {
		return fmt.Errorf("set progress of job %d: %w", taskID, err)
	}
	return nil
}

// SetProcess records the process group an engine started for a job. Zero
// clears it.
func (s *Store) SetProcess(ctx context.Context, taskID int64, pgid int) error {
	err := s.w.submit(ctx, func(w *writer) error {
		return execOne(w.stmts.updateProcess, taskID, pgid, taskID)
	})
	if err != nil {
		return fmt.Errorf("set process of job %d: %w", taskID, err)
	}
	return nil
}

// StatusHistory returns the status changes of a job, oldest first: the
// status it was created with, then one entry per UpdateStatus call.
func (s *Store) StatusHistory(ctx context.Context, taskID int64) ([]entrance.StatusUpdate, error) {
	history, err := s.statusHistory(ctx, taskID)
	if err != nil {
		return nil, fmt.Errorf("read status history of job %d: %w", taskID, err)
	}
	return history, nil
}

func (s *Store) statusHistory(ctx context.Context, taskID int64) ([]entrance.StatusUpdate, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.readDB.QueryContext(ctx, selectStatusHistorySQL, taskID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var history []entrance.StatusUpdate
	for rows.Next() {
		var u entrance.StatusUpdate
		var status string
		var at int64
		if err := rows.Scan(&status, &u.ErrCode, &u.ErrDesc, &at); err != nil {
			return nil, err
		}
		u.Status, u.At = entrance.Status(status), msTime(at)
		history = append(history, u)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}

	if len(history) == 0 {
		return nil, s.checkJob(ctx, taskID)
	}
	return history, nil
}
