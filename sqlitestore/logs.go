package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/goentrance/entrance"
)

const selectLogLinesSQL = `SELECT log_lines FROM jobs WHERE task_id = ?`

const insertLogSQL = `INSERT INTO logs (task_id, line, level, text) VALUES (?, ?, ?, ?)`

const updateLogLinesSQL = `UPDATE jobs SET log_lines = ? WHERE task_id = ?`

// selectLogSQL reads a range of lines through the primary key, so its cost
// does not grow with the lines before from.
const selectLogSQL = `
SELECT line, level, text FROM logs WHERE task_id = ? AND line >= ? ORDER BY line LIMIT ?`

// AppendLog stores log lines of a job and adds them to its LogLines count
// in the same transaction. The lines must be numbered one after another,
// and the first must follow the last stored line. Otherwise AppendLog
// stores none of them and returns an error. An empty lines only checks that
// the job exists.
func (s *Store) AppendLog(ctx context.Context, taskID int64, lines []entrance.LogLine) error {
	err := s.appendLog(ctx, taskID, lines)
	if err != nil {
		return fmt.Errorf("append log of job %d: %w", taskID, err)
	}
	return nil
}

func (s *Store) appendLog(ctx context.Context, taskID int64, lines []entrance.LogLine) error {
	if len(lines) == 0 {
		if err := s.checkOpen(); err != nil {
			return err
		}
		return s.checkJob(ctx, taskID)
	}
	for i := 1; i < len(lines); i++ {
		if lines[i].Number != lines[i-1].Number+1 {
			return fmt.Errorf("line %d follows line %d: want consecutive numbers",
				lines[i].Number, lines[i-1].Number)
		}
	}

	return s.w.submit(ctx, func(w *writer) error {
		return w.appendLog(taskID, lines)
	})
}

// appendLog runs on the writer goroutine.
func (w *writer) appendLog(taskID int64, lines []entrance.LogLine) error {
	var stored int64
	err := w.stmts.selectLogLines.QueryRow(taskID).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(taskID)
	}
	if err != nil {
		return err
	}
	if first := lines[0].Number; first != stored+1 {
		return fmt.Errorf("first line is %d, but %d lines are stored: want line %d",
			first, stored, stored+1)
	}

	for _, l := range lines {
		if _, err := w.stmts.insertLog.Exec(taskID, l.Number, int(l.Level), l.Text); err != nil {
			return err
		}
	}
	_, err = w.stmts.updateLogLines.Exec(lines[len(lines)-1].Number, taskID)
	return err
}

// ReadLog returns up to limit stored lines of a job, starting at line
// number from. A from below 1 reads from line 1, and a negative limit
// means all lines. A from past the last line returns no lines and no
// error.
func (s *Store) ReadLog(ctx context.Context, taskID int64, from int64,
	limit int) ([]entrance.LogLine, error) {
	lines, err := s.readLog(ctx, taskID, from, limit)
	if err != nil {
		return nil, fmt.Errorf("read log of job %d: %w", taskID, err)
	}
	return lines, nil
}

func (s *Store) readLog(ctx context.Context, taskID int64, from int64,
	limit int) ([]entrance.LogLine, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	from = max(from, 1)
	limit = max(limit, -1) // SQLite reads a negative LIMIT as no limit

	rows, err := s.readDB.QueryContext(ctx, selectLogSQL, taskID, from, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var lines []entrance.LogLine
	if limit > 0 {
		lines = make([]entrance.LogLine, 0, min(limit, 1024))
	}
	for rows.Next() {
		var l entrance.LogLine
		if err := rows.Scan(&l.Number, &l.Level, &l.Text); err != nil {
			return nil, err
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}

	if len(lines) == 0 {
		// No lines: tell an unknown job from a range past the end.
		return nil, s.checkJob(ctx, taskID)
	}
	return lines, nil
}
