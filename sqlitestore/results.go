package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/goentrance/entrance"
)

const nextResultIndexSQL = `SELECT COALESCE(MAX(idx) + 1, 0) FROM result_sets WHERE task_id = ?`

const insertResultSetSQL = `
INSERT INTO result_sets (task_id, idx, kind, columns, width) VALUES (?, ?, ?, ?, ?)`

const selectResultSetSQL = `SELECT row_count, width FROM result_sets WHERE task_id = ? AND idx = ?`

const insertRowSQL = `
INSERT INTO result_rows (task_id, idx, row_no, row_values) VALUES (?, ?, ?, ?)`

const updateRowCountSQL = `UPDATE result_sets SET row_count = ? WHERE task_id = ? AND idx = ?`

const selectResultSetsSQL = `
SELECT idx, kind, columns, row_count FROM result_sets WHERE task_id = ? ORDER BY idx`

const resultSetExistsSQL = `SELECT 1 FROM result_sets WHERE task_id = ? AND idx = ?`

// selectRowsSQL reads a page through the primary key: row numbers start at
// 0, so the page at offset starts at row_no = offset, and a late page costs
// what the first one costs.
const selectRowsSQL = `
SELECT row_values FROM result_rows WHERE task_id = ? AND idx = ? AND row_no >= ?
ORDER BY row_no LIMIT ?`

// CreateResultSet starts a result set of a job and returns its index,
// counted from 0 in the order of creation. meta.Kind must be ResultText or
// ResultTable. A table result takes rows of one value per column, or of
// any width when meta.Columns is empty.
func (s *Store) CreateResultSet(ctx context.Context, taskID int64,
	meta entrance.ResultMeta) (int, error) {
	index, err := s.createResultSet(ctx, taskID, meta)
	if err != nil {
		return 0, fmt.Errorf("create result set of job %d: %w", taskID, err)
	}
	return index, nil
}

func (s *Store) createResultSet(ctx context.Context, taskID int64,
	meta entrance.ResultMeta) (int, error) {
	width := len(meta.Columns)
	switch meta.Kind {
	case entrance.ResultText:
		width = 1
	case entrance.ResultTable:
	default:
		return 0, fmt.Errorf("invalid result kind %d", meta.Kind)
	}
	columns, err := json.Marshal(meta.Columns)
	if err != nil {
		return 0, fmt.Errorf("encode columns: %w", err)
	}

	var index int
	err = s.w.submit(ctx, func(w *writer) error {
		if err := w.checkJob(taskID); err != nil {
			return err
		}
		if err := w.stmts.nextResultIndex.QueryRow(taskID).Scan(&index); err != nil {
			return err
		}
		_, err := w.stmts.insertResultSet.Exec(taskID, index, int(meta.Kind), string(columns),
			width)
		return err
	})
	return index, err
}

// AppendRows stores rows at the end of a result set. A table row holds one
// value per column and a text row one value; nil stands for SQL NULL. A
// row of another width fails the whole call, and no row is stored. An
// empty rows only checks that the result set exists. Bytes that are not
// valid UTF-8 come back as U+FFFD, as in encoding/json.
func (s *Store) AppendRows(ctx context.Context, taskID int64, index int, rows [][]*string) error {
	if err := s.appendRows(ctx, taskID, index, rows); err != nil {
		return fmt.Errorf("append rows to result set %d of job %d: %w", index, taskID, err)
	}
	return nil
}

func (s *Store) appendRows(ctx context.Context, taskID int64, index int, rows [][]*string) error {
	if len(rows) == 0 {
		if err := s.checkOpen(); err != nil {
			return err
		}
		return s.checkResultSet(ctx, taskID, index)
	}

	// Encode on the caller's goroutine, so that the writer only inserts.
	// The rows share one buffer and one string.
	var buf []byte
	ends := make([]int, len(rows))
	for i, row := range rows {
		var err error
		if buf, err = appendRow(buf, row); err != nil {
			return fmt.Errorf("encode row: %w", err)
		}
		ends[i] = len(buf)
	}
	all := string(buf)
	encoded := make([]string, len(rows))
	start := 0
	for i, end := range ends {
		encoded[i], start = all[start:end], end
	}

	return s.w.submit(ctx, func(w *writer) error {
		return w.appendRows(taskID, index, rows, encoded)
	})
}

// appendRows runs on the writer goroutine.
func (w *writer) appendRows(taskID int64, index int, rows [][]*string, encoded []string) error {
	var count int64
	var width int
	err := w.stmts.selectResultSet.QueryRow(taskID, index).Scan(&count, &width)
	if errors.Is(err, sql.ErrNoRows) {
		return resultSetNotFound(taskID, index)
	}
	if err != nil {
		return err
	}
	for i, row := range rows {
		if width > 0 && len(row) != width {
			return fmt.Errorf("row %d has %d values, want %d", count+int64(i), len(row), width)
		}
	}

	for i, values := range encoded {
		if _, err := w.stmts.insertRow.Exec(taskID, index, count+int64(i), values); err != nil {
			return err
		}
	}
	_, err = w.stmts.updateRowCount.Exec(count+int64(len(rows)), taskID, index)
	return err
}

// ResultSets describes the result sets of a job, in order. A job without
// result sets has none and no error.
func (s *Store) ResultSets(ctx context.Context, taskID int64) ([]entrance.ResultSetInfo, error) {
	sets, err := s.resultSets(ctx, taskID)
	if err != nil {
		return nil, fmt.Errorf("read result sets of job %d: %w", taskID, err)
	}
	return sets, nil
}

func (s *Store) resultSets(ctx context.Context, taskID int64) ([]entrance.ResultSetInfo, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.readDB.QueryContext(ctx, selectResultSetsSQL, taskID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var sets []entrance.ResultSetInfo
	for rows.Next() {
		var info entrance.ResultSetInfo
		var columns []byte
		if err := rows.Scan(&info.Index, &info.Meta.Kind, &columns, &info.Rows); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(columns, &info.Meta.Columns); err != nil {
			return nil, fmt.Errorf("decode columns of result set %d: %w", info.Index, err)
		}
		sets = append(sets, info)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}

	if len(sets) == 0 {
		return nil, s.checkJob(ctx, taskID)
	}
	return sets, nil
}

// ReadRows returns up to limit rows of a result set, skipping offset rows.
// A negative limit means all rows after offset, and an offset past the
// last row returns no rows and no error. A page reads only its own rows,
// whatever the offset.
func (s *Store) ReadRows(ctx context.Context, taskID int64, index int,
	offset, limit int64) ([][]*string, error) {
	rows, err := s.readRows(ctx, taskID, index, offset, limit)
	if err != nil {
		return nil, fmt.Errorf("read rows of result set %d of job %d: %w", index, taskID, err)
	}
	return rows, nil
}

func (s *Store) readRows(ctx context.Context, taskID int64, index int,
	offset, limit int64) ([][]*string, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("invalid offset %d: want 0 or more", offset)
	}
	limit = max(limit, -1) // SQLite reads a negative LIMIT as no limit

	rows, err := s.readDB.QueryContext(ctx, selectRowsSQL, taskID, index, offset, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var page [][]*string
	if limit > 0 {
		page = make([][]*string, 0, min(limit, 8192))
	}
	var scratch []string
	for rows.Next() {
		var values string
		if err := rows.Scan(&values); err != nil {
			return nil, err
		}
		var row []*string
		row, scratch, err = decodeRow(values, scratch)
		if err != nil {
			return nil, fmt.Errorf("decode row %d: %w", offset+int64(len(page)), err)
		}
		page = append(page, row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}

	if len(page) == 0 {
		return nil, s.checkResultSet(ctx, taskID, index)
	}
	return page, nil
}

// checkResultSet returns an error wrapping entrance.ErrNotFound unless the
// result set exists. It runs on the reader pool.
func (s *Store) checkResultSet(ctx context.Context, taskID int64, index int) error {
	var one int
	err := s.readDB.QueryRowContext(ctx, resultSetExistsSQL, taskID, index).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return resultSetNotFound(taskID, index)
	}
	return err
}

// resultSetNotFound returns the error for an unknown result set.
func resultSetNotFound(taskID int64, index int) error {
	return fmt.Errorf("result set %d of job %d: %w", index, taskID, entrance.ErrNotFound)
}
