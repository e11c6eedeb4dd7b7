package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/goentrance/entrance"
)

const selectLogLinesSQL = `SELECT log_lines FROM jobs WHERE task_id = ?`

// advanceLogLinesSQL moves the line count of a job from the count its
// caller expects (the third argument) to the new count. It changes no row
// when the job is missing or contains another count.
const advanceLogLinesSQL = `UPDATE jobs SET log_lines = ? WHERE task_id = ? AND log_lines = ?`

const insertLogBatchSQL = `
INSERT INTO log_batches (task_id, first_line, end_line, payload) VALUES (?, ?, ?, ?)`

// selectLogBatchesSQL reads the batches that contain line from or a later one,
// in line order, through the primary key, so its cost does not grow with
// the batches before from.
const selectLogBatchesSQL = `
SELECT first_line, end_line, payload FROM log_batches
WHERE task_id = ? AND end_line > ? ORDER BY end_line`

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

// appendLog runs on the writer goroutine. It stores lines as one row of
// log_batches, so the cost of a call barely grows with its lines.
func (w *writer) appendLog(taskID int64, lines []entrance.LogLine) error {
	first := lines[0].Number
	last := lines[len(lines)-1].Number
	err := execOne(w.stmts.advanceLogLines, taskID, last, taskID, first-1)
	if errors.Is(err, entrance.ErrNotFound) {
		return w.explainLogGap(taskID, first)
	}
	if err != nil {
		return err
	}

	w.logBuf = encodeLogBatch(w.logBuf[:0], lines)
	_, err = w.stmts.insertLogBatch.Exec(taskID, first, last+1, w.logBuf)
	return err
}

// explainLogGap returns the error of an append whose first line does not
// follow the stored lines, or notFound when the job is missing.
func (w *writer) explainLogGap(taskID, first int64) error {
	var stored int64
	err := w.stmts.selectLogLines.QueryRow(taskID).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(taskID)
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("first line is %d, but %d lines are stored: want line %d",
		first, stored, stored+1)
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

	var lines []entrance.LogLine
	if limit != 0 {
		var err error
		lines, err = s.readBatches(ctx, taskID, from, limit)
		if err != nil {
			return nil, err
		}
	}

	if len(lines) == 0 {
		// No lines: tell an unknown job from a range past the end.
		return nil, s.checkJob(ctx, taskID)
	}
	return lines, nil
}

// readBatches collects up to limit lines from line from on (all of them
// when limit is negative) from the batches that contain them, and stops
// reading batches once it has enough.
func (s *Store) readBatches(ctx context.Context, taskID int64, from int64,
	limit int) ([]entrance.LogLine, error) {
	rows, err := s.readDB.QueryContext(ctx, selectLogBatchesSQL, taskID, from)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var lines []entrance.LogLine
	if limit > 0 {
		lines = make([]entrance.LogLine, 0, min(limit, 1024))
	}
	for (limit < 0 || len(lines) < limit) && rows.Next() {
		var first, end int64
		var payload sql.RawBytes // valid until the next call of rows.Next
		if err := rows.Scan(&first, &end, &payload); err != nil {
			return nil, err
		}

		want := -1
		if limit > 0 {
			want = limit - len(lines)
		}
		lines, err = decodeLogBatch(lines, payload, first, end, from, want)
		if err != nil {
			return nil, fmt.Errorf("decode log batch at line %d: %w", first, err)
		}
	}
	return lines, rows.Err()
}

// encodeLogBatch appends the payload of lines to buf: for each line one
// byte of level, the length of its text as a uvarint, and the text.
func encodeLogBatch(buf []byte, lines []entrance.LogLine) []byte {
	for _, l := range lines {
		buf = append(buf, byte(l.Level))
		buf = binary.AppendUvarint(buf, uint64(len(l.Text)))
		buf = append(buf, l.Text...)
	}
	return buf
}

// decodeLogBatch appends to lines the lines of a payload that contains the
// lines [first, end), skipping those before from and stopping after want
// lines (a negative want: all). It copies payload once into a string, and
// the texts are substrings of it.
func decodeLogBatch(lines []entrance.LogLine, payload []byte, first, end, from int64,
	want int) ([]entrance.LogLine, error) {
	text := string(payload)
	pos := 0
	for n := first; n < end && want != 0; n++ {
		if pos >= len(payload) {
			return nil, fmt.Errorf("payload ends before line %d of %d", n, end-1)
		}
		level := entrance.Level(payload[pos])
		size, k := binary.Uvarint(payload[pos+1:])
		if k <= 0 || size > uint64(len(payload)-pos-1-k) {
			return nil, fmt.Errorf("invalid text length of line %d", n)
		}
		start := pos + 1 + k
		pos = start + int(size)

		if n >= from {
			lines = append(lines, entrance.LogLine{Number: n, Level: level,
				Text: text[start:pos]})
			want--
		}
	}
	return lines, nil
}
