package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/goentrance/entrance"
	sqlite3 "github.com/mattn/go-sqlite3"
)

// showTablesQuery is the query that `show tables` runs. It lists the
// tables and views of the main database, as MySQL's SHOW TABLES does, but
// not SQLite's own tables.
const showTablesQuery = `SELECT name FROM sqlite_schema
WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
ORDER BY name`

// progressID is the id of the one ProgressInfo entry the engine reports.
const progressID = "statements"

// script runs the code of one job on one connection, which it holds alone.
type script struct {
	opts  Options
	conn  *sqlite3.SQLiteConn
	out   entrance.Output
	guard *guard

	changes     driver.Stmt // SELECT total_changes()
	lastChanges int64       // its value after the last statement

	number   int // statements started, the number of the current one
	estimate int // statement count of the whole script, from countStatements
}

// newScript installs an authorizer that records denials for the job.
func newScript(e *Engine, conn *sqlite3.SQLiteConn, out entrance.Output) *script {
	s := &script{opts: e.opts, conn: conn, out: out, guard: &guard{}}
	conn.RegisterAuthorizer(s.guard.authorize)
	return s
}

// run runs the statements of code in order.
//
// Progress is reported after each statement as done/total, where total is
// the estimate of countStatements, raised to done+1 while statements may
// remain, so the fraction stays below 1 and never goes down. After the
// last statement run reports 1, with the number of statements run as
// both succeedTasks and totalTasks.
func (s *script) run(ctx context.Context, code string) error {
	s.estimate = countStatements(code)
	s.reportProgress(0, max(s.estimate, 1))

	total, err := s.totalChanges()
	if err != nil {
		return err
	}
	s.lastChanges = total

	rest := code
	for rest != "" {
		if err := ctx.Err(); err != nil {
			return err
		}
		if rest, err = s.step(ctx, rest); err != nil {
			return err
		}
	}
	s.reportProgress(s.number, s.number)
	return nil
}

// step runs the first statement of rest and returns the script after it.
func (s *script) step(ctx context.Context, rest string) (string, error) {
	p, next, err := s.nextStatement(rest)
	if err != nil {
		s.number++
		s.reportFailure()
		return "", s.statementError(ctx, ctx, err)
	}
	if p.stmt == nil {
		return next, nil // only whitespace and comments
	}

	s.number++
	s.logStatement(p.text)
	err = s.execute(ctx, p.stmt)
	p.stmt.Close()
	if err != nil {
		s.reportFailure()
		return "", err
	}
	s.reportProgress(s.number, max(s.estimate, s.number+1))
	return next, nil
}

// nextStatement prepares the first statement of rest, which is either
// `show tables` or a statement that SQLite compiles, and returns the
// script after it.
func (s *script) nextStatement(rest string) (prepared, string, error) {
	length, ok := matchShowTables(rest)
	if !ok {
		return prepareNext(s.conn, s.guard, rest)
	}
	st, err := s.conn.Prepare(showTablesQuery)
	if err != nil {
		return prepared{}, "", err
	}
	return prepared{stmt: st, text: rest[:length]}, rest[length:], nil
}

func (s *script) logStatement(text string) {
	s.out.Log(entrance.LevelInfo, fmt.Sprintf("statement %d: %s", s.number, shortenStatement(text)))
}

// reportProgress reports done of total statements, and 1 when total is 0.
func (s *script) reportProgress(done, total int) {
	fraction := 1.0
	if total > 0 {
		fraction = float64(done) / float64(total)
	}
	s.out.Progress(fraction, []entrance.ProgressInfo{{
		ID:           progressID,
		SucceedTasks: done,
		TotalTasks:   total,
	}})
}

// reportFailure counts the statement that just failed, so that the
// progress of a failed job shows it.
func (s *script) reportFailure() {
	done := s.number - 1
	s.out.Progress(0, []entrance.ProgressInfo{{
		ID:           progressID,
		SucceedTasks: done,
		FailedTasks:  1,
		TotalTasks:   max(s.estimate, s.number),
	}})
}

// execute runs the prepared statement st. A statement that returns
// columns becomes a table result set; for the others the job log gets the
// number of rows changed.
func (s *script) execute(ctx context.Context, st driver.Stmt) error {
	if n := st.NumInput(); n > 0 {
		return &entrance.JobError{
			Code: entrance.ErrCodeEngineFailed,
			Desc: fmt.Sprintf("statement %d has %d parameters (?, :name, @name or $name), "+
				"but a script has no values to bind; write the values into the statement",
				s.number, n),
		}
	}

	qctx, cancel := s.statementContext(ctx)
	defer cancel()
	start := time.Now()

	// The driver takes the statement's first step in QueryContext, so a
	// statement without rows has run when it returns.
	rows, err := st.(driver.StmtQueryContext).QueryContext(qctx, nil)
	if err != nil {
		return s.statementError(ctx, qctx, err)
	}
	defer rows.Close()

	if len(rows.Columns()) == 0 {
		return s.logChanges(start)
	}
	return s.writeTable(ctx, qctx, rows, start)
}

// statementContext applies Options.QueryTimeout to one statement.
func (s *script) statementContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.opts.QueryTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.opts.QueryTimeout)
}

// logChanges logs the rows changed by the last statement: the growth of
// total_changes(), which counts the rows that INSERT, UPDATE and DELETE
// change, including those of triggers and foreign key actions. Unlike
// changes(), it does not repeat the count of an earlier statement after
// CREATE TABLE or BEGIN.
func (s *script) logChanges(start time.Time) error {
	total, err := s.totalChanges()
	if err != nil {
		return err
	}
	changed := total - s.lastChanges
	s.lastChanges = total
	s.out.Log(entrance.LevelInfo, fmt.Sprintf("statement %d: %d %s affected in %s",
		s.number, changed, plural(changed, "row", "rows"), time.Since(start).Round(time.Millisecond)))
	return nil
}

func (s *script) totalChanges() (int64, error) {
	if s.changes == nil {
		st, err := s.conn.Prepare(`SELECT total_changes()`)
		if err != nil {
			return 0, fmt.Errorf("prepare total_changes: %w", err)
		}
		s.changes = st
	}

	rows, err := s.changes.(driver.StmtQueryContext).QueryContext(context.Background(), nil)
	if err != nil {
		return 0, fmt.Errorf("query total_changes: %w", err)
	}
	defer rows.Close()

	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return 0, fmt.Errorf("read total_changes: %w", err)
	}
	n, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("read total_changes: got %T", dest[0])
	}
	return n, nil
}

// writeTable streams rows into a new table result set.
func (s *script) writeTable(ctx, qctx context.Context, rows driver.Rows, start time.Time) error {
	meta := entrance.ResultMeta{Kind: entrance.ResultTable, Columns: columnsOf(rows)}
	w, err := s.out.ResultSet(ctx, meta)
	if err != nil {
		return fmt.Errorf("statement %d: create result set: %w", s.number, err)
	}

	count, truncated, err := s.copyRows(ctx, qctx, rows, w)
	if closeErr := w.Close(ctx); err == nil && closeErr != nil {
		err = fmt.Errorf("statement %d: close result set: %w", s.number, closeErr)
	}
	if err != nil {
		return err
	}

	s.out.Log(entrance.LevelInfo, fmt.Sprintf("statement %d: %d %s in %s",
		s.number, count, plural(int64(count), "row", "rows"), time.Since(start).Round(time.Millisecond)))
	if truncated {
		s.out.Log(entrance.LevelWarn, fmt.Sprintf(
			"statement %d: result set cut at the limit of %d rows; more rows were not read",
			s.number, s.opts.MaxRows))
	}
	return nil
}

// copyRows writes the rows one at a time, so that none but the current
// one is held in memory, up to Options.MaxRows. It reports whether rows
// were left unread at the limit.
func (s *script) copyRows(ctx, qctx context.Context, rows driver.Rows, w entrance.ResultWriter) (int, bool, error) {
	dest := make([]driver.Value, len(rows.Columns()))
	count := 0
	for {
		err := rows.Next(dest)
		if errors.Is(err, io.EOF) {
			return count, false, nil
		}
		if err != nil {
			return count, false, s.statementError(ctx, qctx, err)
		}
		if s.opts.MaxRows > 0 && count == s.opts.MaxRows {
			return count, true, nil
		}
		if err := w.WriteRow(ctx, formatRow(dest)); err != nil {
			return count, false, fmt.Errorf("statement %d: write row: %w", s.number, err)
		}
		count++
	}
}

// columnsOf returns the names and declared types of the columns of rows.
// SQLite gives an expression no declared type, so its Type is empty.
func columnsOf(rows driver.Rows) []entrance.Column {
	names := rows.Columns()
	typer, _ := rows.(driver.RowsColumnTypeDatabaseTypeName)
	cols := make([]entrance.Column, len(names))
	for i, name := range names {
		cols[i].Name = name
		if typer != nil {
			cols[i].Type = typer.ColumnTypeDatabaseTypeName(i)
		}
	}
	return cols
}

// statementError turns an error of the current statement into the error
// Run returns. ctx is the job's context and qctx the statement's.
func (s *script) statementError(ctx, qctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The job was killed or timed out; the entrance decides how it
		// ends.
		return fmt.Errorf("statement %d: %w", s.number, ctxErr)
	}
	if qctx != ctx && errors.Is(qctx.Err(), context.DeadlineExceeded) {
		return &entrance.JobError{
			Code: entrance.ErrCodeEngineFailed,
			Desc: fmt.Sprintf("statement %d ran past the query timeout of %s and was interrupted",
				s.number, s.opts.QueryTimeout),
			Err: err,
		}
	}

	desc := fmt.Sprintf("statement %d: %v", s.number, err)
	if denied := s.guard.take(); denied != "" {
		desc += " (denied " + denied + ")"
	}
	return &entrance.JobError{Code: entrance.ErrCodeEngineFailed, Desc: desc, Err: err}
}

// cleanUp rolls back a transaction the script left open and restores the
// authorizer of idle connections. It reports whether the connection can
// serve another job: not when the rollback failed, or when the script
// created temporary tables, views or triggers, which live as long as the
// connection.
func (s *script) cleanUp() bool {
	if s.changes != nil {
		s.changes.Close()
	}
	defer s.conn.RegisterAuthorizer((*guard)(nil).authorize)

	if !s.conn.AutoCommit() {
		if _, err := s.conn.Exec(`ROLLBACK`, nil); err != nil {
			s.out.Log(entrance.LevelWarn, fmt.Sprintf(
				"the script left a transaction open, and rolling it back failed: %v", err))
			return false
		}
		s.out.Log(entrance.LevelWarn, "rolled back the transaction that the script left open")
	}

	n, err := queryString(context.Background(), s.conn, `SELECT count(*) FROM temp.sqlite_schema`)
	return err == nil && n == "0"
}

// plural returns one when n is 1 and many otherwise.
func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
