package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/goentrance/entrance"
)

// jobColumns are the columns that scanJob reads, in its order.
const jobColumns = `task_id, instance, user_name, creator, engine, run_type, code, params,
	source, tag, status, err_code, err_desc, progress, progress_info, created, updated,
	started, ended, log_lines, process`

const selectJobSQL = `SELECT ` + jobColumns + ` FROM jobs WHERE task_id = ?`

// selectUnfinishedSQL takes the four terminal statuses as arguments.
const selectUnfinishedSQL = `SELECT ` + jobColumns + ` FROM jobs
WHERE status NOT IN (?, ?, ?, ?) ORDER BY task_id`

// Job returns the record of one job.
func (s *Store) Job(ctx context.Context, taskID int64) (*entrance.JobRecord, error) {
	if err := s.checkOpen(); err != nil {
		return nil, fmt.Errorf("read job %d: %w", taskID, err)
	}
	rec, err := scanJob(s.readDB.QueryRowContext(ctx, selectJobSQL, taskID))
	if errors.Is(err, sql.ErrNoRows) {
		err = notFound(taskID)
	}
	if err != nil {
		return nil, fmt.Errorf("read job %d: %w", taskID, err)
	}
	return rec, nil
}

// ListJobs returns the jobs that match f, newest first (by taskID), and
// the number of all matching jobs. It reads both from one snapshot, so the
// count agrees with the page. A negative Offset or Limit is an error.
func (s *Store) ListJobs(ctx context.Context,
	f entrance.JobFilter) ([]*entrance.JobRecord, int64, error) {
	jobs, total, err := s.listJobs(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, total, nil
}

func (s *Store) listJobs(ctx context.Context,
	f entrance.JobFilter) ([]*entrance.JobRecord, int64, error) {
	if err := s.checkOpen(); err != nil {
		return nil, 0, err
	}
	if f.Offset < 0 || f.Limit < 0 {
		return nil, 0, fmt.Errorf("invalid offset %d or limit %d: want 0 or more",
			f.Offset, f.Limit)
	}
	where, args := filterWhere(f)

	tx, err := s.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, err
	}
	// A read transaction has nothing to undo: Rollback only ends it.
	defer tx.Rollback()

	var total int64
	err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs`+where, args...).Scan(&total)
	if err != nil {
		return nil, 0, err
	}

	limit := f.Limit
	if limit == 0 {
		limit = -1 // SQLite reads a negative LIMIT as no limit
	}
	query := `SELECT ` + jobColumns + ` FROM jobs` + where +
		` ORDER BY task_id DESC LIMIT ? OFFSET ?`
	rows, err := tx.QueryContext(ctx, query, append(args, limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	jobs, err := scanJobs(rows)
	return jobs, total, err
}

// filterWhere builds the WHERE clause of f and its arguments, or an empty
// clause when f matches every job. The user filter uses the index
// jobs_user and the time range the index jobs_created.
func filterWhere(f entrance.JobFilter) (string, []any) {
	var conds []string
	var args []any
	if f.User != "" {
		conds = append(conds, `user_name = ?`)
		args = append(args, f.User)
	}
	if f.Status != "" {
		conds = append(conds, `status = ?`)
		args = append(args, string(f.Status))
	}
	if f.Engine != "" {
		conds = append(conds, `engine = ?`)
		args = append(args, f.Engine)
	}
	if !f.From.IsZero() {
		conds = append(conds, `created >= ?`)
		args = append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		conds = append(conds, `created <= ?`)
		args = append(args, f.To.UnixMilli())
	}

	if len(conds) == 0 {
		return "", nil
	}
	return ` WHERE ` + strings.Join(conds, ` AND `), args
}

// UnfinishedJobs returns the jobs whose status is not terminal, oldest
// first.
func (s *Store) UnfinishedJobs(ctx context.Context) ([]*entrance.JobRecord, error) {
	if err := s.checkOpen(); err != nil {
		return nil, fmt.Errorf("list unfinished jobs: %w", err)
	}
	rows, err := s.readDB.QueryContext(ctx, selectUnfinishedSQL,
		string(entrance.StatusSucceed), string(entrance.StatusFailed),
		string(entrance.StatusCancelled), string(entrance.StatusTimeout))
	if err != nil {
		return nil, fmt.Errorf("list unfinished jobs: %w", err)
	}
	jobs, err := scanJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("list unfinished jobs: %w", err)
	}
	return jobs, nil
}

// scanJobs reads every row of rows as a job and closes rows.
func scanJobs(rows *sql.Rows) ([]*entrance.JobRecord, error) {
	defer rows.Close()

	var jobs []*entrance.JobRecord
	for rows.Next() {
		rec, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, rec)
	}
	return jobs, rows.Err()
}

// scanJob reads one row of jobColumns from a *sql.Row or *sql.Rows.
func scanJob(row interface{ Scan(...any) error }) (*entrance.JobRecord, error) {
	var (
		rec                          entrance.JobRecord
		params, source, progressInfo []byte
		status                       string
		created, updated             int64
		started, ended               sql.NullInt64
	)
	err := row.Scan(&rec.TaskID, &rec.Instance, &rec.User, &rec.Creator, &rec.Engine,
		&rec.RunType, &rec.Code, &params, &source, &rec.Tag, &status, &rec.ErrCode,
		&rec.ErrDesc, &rec.Progress, &progressInfo, &created, &updated, &started, &ended,
		&rec.LogLines, &rec.Process)
	if err != nil {
		return nil, err
	}

	if err := json.Unmarshal(params, &rec.Params); err != nil {
		return nil, fmt.Errorf("decode params of job %d: %w", rec.TaskID, err)
	}
	if progressInfo != nil {
		if err := json.Unmarshal(progressInfo, &rec.ProgressInfo); err != nil {
			return nil, fmt.Errorf("decode progress info of job %d: %w", rec.TaskID, err)
		}
	}
	if source != nil {
		rec.Source = json.RawMessage(source)
	}

	rec.Status = entrance.Status(status)
	rec.Created, rec.Updated = msTime(created), msTime(updated)
	rec.Started, rec.Ended = nullMSTime(started), nullMSTime(ended)
	return &rec, nil
}

// jobExistsSQL selects a row when the job exists.
const jobExistsSQL = `SELECT 1 FROM jobs WHERE task_id = ?`

// checkJob returns notFound unless the job exists. It runs on the writer
// goroutine.
func (w *writer) checkJob(taskID int64) error {
	return scanExists(w.stmts.jobExists.QueryRow(taskID), taskID)
}

// checkJob returns notFound unless the job exists. It runs on the reader
// pool.
func (s *Store) checkJob(ctx context.Context, taskID int64) error {
	return scanExists(s.readDB.QueryRowContext(ctx, jobExistsSQL, taskID), taskID)
}

// scanExists turns the row of an existence query into nil or notFound.
func scanExists(row *sql.Row, taskID int64) error {
	var one int
	err := row.Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(taskID)
	}
	return err
}
