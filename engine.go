package entrance

import (
	"context"
	"errors"
	"fmt"
)

// Engine runs the code of one job. Adapter authors implement it and register
// it under a name in Options.Engines; the name is what clients send as
// executeApplicationName.
//
// The entrance calls Run on a goroutine of its own, once per job, after the
// job has left the Scheduled state. Run returns when the code has finished.
// A nil error ends the job Succeed; an error ends it Failed, with the
// errCode and errDesc of a *JobError when the error wraps one.
//
// ctx is cancelled when the job is killed, runs past its time limit or the
// server shuts down; Run must then stop the work and return promptly. The
// entrance decides the final status in that case, so Run may return any
// error.
//
// Many jobs run at once, so Run must be safe for concurrent use.
type Engine interface {
	Run(ctx context.Context, job *Job, out Output) error
}

// RunTyper is implemented by engines that have a default runType. The
// entrance uses it when a request leaves runType empty.
type RunTyper interface {
	DefaultRunType() string
}

// Job is the work an engine runs: the identity of the job and its code
// after variable substitution. An engine must not modify it.
type Job struct {
	ExecID  string
	TaskID  int64
	User    string // the user who submitted the job
	Creator string // requestApplicationName, "IDE" when the client sent none
	Engine  string // executeApplicationName
	RunType string
	Code    string // the code after ${name} substitution
	Params  Params
}

// Params are the job parameters a client sent with the code.
type Params struct {
	// Variable holds the params.variable map after the built-in
	// variables were added.
	Variable map[string]string `json:"variable,omitempty"`

	// Configuration holds params.configuration.
	Configuration Configuration `json:"configuration,omitzero"`
}

// Configuration holds the three configuration maps of a Linkis request.
// Values keep their JSON types.
type Configuration struct {
	Startup map[string]any `json:"startup,omitempty"`
	Runtime map[string]any `json:"runtime,omitempty"`
	Special map[string]any `json:"special,omitempty"`
}

// Level is the level of a log line.
type Level uint8

// Log levels, in the order of the elements of a log push.
const (
	LevelInfo Level = iota
	LevelWarn
	LevelError
)

// String returns the Linkis name of the level.
func (l Level) String() string {
	switch l {
	case LevelWarn:
		return "WARN"
	case LevelError:
		return "ERROR"
	default:
		return "INFO"
	}
}

// Output is the sink for what a job produces. All methods are safe
// for concurrent use, so an engine may write stdout and stderr from two
// goroutines.
type Output interface {
	// Log appends one line (without its newline) at the given level.
	// Lines are stored and pushed to clients in batches. Log blocks only
	// while the store catches up with a burst of output.
	Log(level Level, line string)

	// Progress reports the fraction done, in [0, 1], and optional
	// sub-job counts. Values below the last reported one are ignored, and
	// 1 is held back until the job succeeds.
	Progress(fraction float64, info []ProgressInfo)

	// ResultSet starts a new result set of the job. The engine writes its
	// rows (or text) and then closes it.
	ResultSet(ctx context.Context, meta ResultMeta) (ResultWriter, error)

	// Process records the process group that runs the job, so that a
	// server restarted after a crash can end what its predecessor left
	// running. Engines that start no process never call it; zero clears it.
	Process(pgid int)
}

// ResultKind is the kind of a result set: table or text.
type ResultKind int

// Result set kinds, with the values Linkis sends as "type".
const (
	ResultText  ResultKind = 1
	ResultTable ResultKind = 2
)

// Column describes one column of a table result set.
type Column struct {
	Name    string `json:"columnName"`
	Type    string `json:"dataType"`
	Comment string `json:"comment"`
}

// ResultMeta describes a result set before its rows are written.
type ResultMeta struct {
	Kind    ResultKind
	Columns []Column // table results only
}

// ResultWriter receives the rows of one result set. A table row holds one
// value per column, nil for SQL NULL. A text result takes each line as a
// row of one value. Rows are stored in batches as they come, so a large
// result never has to fit in memory. The writer keeps a row until its
// batch is stored, so the engine must not modify it after WriteRow.
type ResultWriter interface {
	WriteRow(ctx context.Context, row []*string) error
	Close(ctx context.Context) error
}

// JobError is an error with the errCode and errDesc that a failed job
// reports to clients.
type JobError struct {
	Code int
	Desc string
	Err  error // the cause, if any
}

func (e *JobError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Desc, e.Err)
	}
	return e.Desc
}

func (e *JobError) Unwrap() error { return e.Err }

// asJobError returns the errCode and errDesc for an engine error.
func asJobError(err error) (int, string) {
	var je *JobError
	if errors.As(err, &je) {
		return je.Code, je.Desc
	}
	return ErrCodeEngineFailed, err.Error()
}
