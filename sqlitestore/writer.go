package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/goentrance/entrance"
)

// Limits of the write queue. A caller blocks while queueSize requests are
// waiting, and one transaction takes at most maxBatch requests, so a burst
// of writes cannot grow one transaction without bound.
const (
	queueSize = 512
	maxBatch  = 512
)

// A request is one write waiting for the writer goroutine. apply runs on
// the writer goroutine inside the batch transaction, and its error goes
// back to the caller through done.
type request struct {
	apply func(w *writer) error
	err   error
	done  chan error
}

// writer owns the single write connection. Its goroutine takes every
// request waiting in queue, applies each one inside its own savepoint of
// one transaction, commits, and returns each caller its result.
type writer struct {
	db     *sql.DB
	conn   *sql.Conn
	stmts  writeStatements
	logger *slog.Logger
	logBuf []byte // payload of the log batch being stored, reused

	queue   chan *request
	stopped chan struct{} // closed when the goroutine has returned

	started      bool // set by start, before any submit
	writes       atomic.Int64
	transactions atomic.Int64

	// mu guards closed. submit holds it for reading while it sends on
	// queue, so close can close queue once it holds mu for writing.
	mu     sync.RWMutex
	closed bool
}

// start starts the writer goroutine.
func (w *writer) start() {
	w.queue = make(chan *request, queueSize)
	w.stopped = make(chan struct{})
	w.started = true
	go w.run()
}

// submit queues apply and waits for its result. When ctx is done before
// the request is queued, submit returns ctx.Err(). Once queued, the
// request is applied and submit waits for it whatever ctx does, so the
// caller learns the outcome of every write it started.
func (w *writer) submit(ctx context.Context, apply func(w *writer) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{apply: apply, done: make(chan error, 1)}

	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return entrance.ErrClosed
	}
	select {
	case w.queue <- r:
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	w.mu.RUnlock()

	return <-r.done
}

// run is the writer goroutine. It returns when close has closed queue and
// every queued request has been completed.
func (w *writer) run() {
	defer close(w.stopped)

	batch := make([]*request, 0, maxBatch)
	for r := range w.queue {
		batch = append(batch[:0], r)
		batch = w.drain(batch)
		w.commit(batch)
		clear(batch)
	}
}

// drain adds the requests already waiting in queue to batch, without
// blocking.
func (w *writer) drain(batch []*request) []*request {
	for len(batch) < maxBatch {
		select {
		case r, ok := <-w.queue:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit applies batch in one transaction and completes every request. Each
// request runs inside a savepoint, so a request that fails is undone alone
// and only its caller gets the error. An error that breaks the
// transaction itself fails every request of the batch.
func (w *writer) commit(batch []*request) {
	w.transactions.Add(1)
	if err := w.control(w.stmts.begin); err != nil {
		w.completeAll(batch, fmt.Errorf("begin transaction: %w", err))
		return
	}

	for _, r := range batch {
		if err := w.applySavepoint(r); err != nil {
			w.rollback()
			w.completeAll(batch, err)
			return
		}
	}

	if err := w.control(w.stmts.commit); err != nil {
		w.rollback()
		w.completeAll(batch, fmt.Errorf("commit transaction: %w", err))
		return
	}
	for _, r := range batch {
		w.complete(r, r.err)
	}
}

// applySavepoint runs one request inside a savepoint and keeps its error
// in r.err. It returns an error only when the savepoint itself fails,
// which means SQLite has rolled back the whole transaction, as it does
// after an I/O error or a full disk.
func (w *writer) applySavepoint(r *request) error {
	if err := w.control(w.stmts.savepoint); err != nil {
		return fmt.Errorf("open savepoint: %w", err)
	}

	r.err = r.apply(w)
	if r.err != nil {
		if err := w.control(w.stmts.rollbackTo); err != nil {
			return fmt.Errorf("roll back to savepoint after %w: %w", r.err, err)
		}
	}

	if err := w.control(w.stmts.release); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// rollback ends a failed transaction. Its own error is logged, because
// the callers get the error that caused the rollback.
func (w *writer) rollback() {
	if err := w.control(w.stmts.rollback); err != nil {
		w.logger.Error("sqlitestore: rollback failed", "err", err)
	}
}

// completeAll sends err to the caller of every request of batch.
func (w *writer) completeAll(batch []*request, err error) {
	for _, r := range batch {
		w.complete(r, err)
	}
}

// complete counts r as written and sends err to its caller.
func (w *writer) complete(r *request, err error) {
	w.writes.Add(1)
	r.done <- err
}

// control runs a transaction control statement such as COMMIT.
func (w *writer) control(stmt *sql.Stmt) error {
	_, err := stmt.Exec()
	return err
}

// execOne runs a statement that must change one row, and returns notFound
// for taskID when it changes none. Like every statement of the writer, it
// runs without the caller's context: a queued write completes whatever
// the caller's context does.
func execOne(stmt *sql.Stmt, taskID int64, args ...any) error {
	res, err := stmt.Exec(args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound(taskID)
	}
	return nil
}

// close stops accepting requests, waits until the queued ones are
// committed and closes the write connection. It is called once.
func (w *writer) close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()

	if w.started {
		close(w.queue)
		<-w.stopped
	}

	err := w.stmts.close()
	if w.conn != nil {
		err = errors.Join(err, w.conn.Close())
	}
	return errors.Join(err, w.db.Close())
}

// writeStatements are the statements of the writer goroutine, prepared
// once on the write connection and reused by every request.
type writeStatements struct {
	begin      *sql.Stmt
	savepoint  *sql.Stmt
	rollbackTo *sql.Stmt
	release    *sql.Stmt
	commit     *sql.Stmt
	rollback   *sql.Stmt

	insertJob      *sql.Stmt
	insertStatus   *sql.Stmt
	updateStatus   *sql.Stmt
	updateProgress *sql.Stmt
	updateProcess  *sql.Stmt

	selectLogLines  *sql.Stmt
	advanceLogLines *sql.Stmt
	insertLogBatch  *sql.Stmt

	jobExists       *sql.Stmt
	nextResultIndex *sql.Stmt
	insertResultSet *sql.Stmt
	selectResultSet *sql.Stmt
	insertRow       *sql.Stmt
	updateRowCount  *sql.Stmt
}

// preparedQuery pairs a statement field with its SQL.
type preparedQuery struct {
	stmt  **sql.Stmt
	query string
}

// queries lists every statement with its SQL. The savepoint has one fixed
// name because savepoints of a batch never nest: each is released before
// the next request starts.
func (s *writeStatements) queries() []preparedQuery {
	return []preparedQuery{
		{&s.begin, `BEGIN IMMEDIATE`},
		{&s.savepoint, `SAVEPOINT request`},
		{&s.rollbackTo, `ROLLBACK TO request`},
		{&s.release, `RELEASE request`},
		{&s.commit, `COMMIT`},
		{&s.rollback, `ROLLBACK`},

		{&s.insertJob, insertJobSQL},
		{&s.insertStatus, insertStatusSQL},
		{&s.updateStatus, updateStatusSQL},
		{&s.updateProgress, updateProgressSQL},
		{&s.updateProcess, updateProcessSQL},

		{&s.selectLogLines, selectLogLinesSQL},
		{&s.advanceLogLines, advanceLogLinesSQL},
		{&s.insertLogBatch, insertLogBatchSQL},

		{&s.jobExists, jobExistsSQL},
		{&s.nextResultIndex, nextResultIndexSQL},
		{&s.insertResultSet, insertResultSetSQL},
		{&s.selectResultSet, selectResultSetSQL},
		{&s.insertRow, insertRowSQL},
		{&s.updateRowCount, updateRowCountSQL},
	}
}

// prepare prepares every write statement on the write connection.
func (w *writer) prepare(ctx context.Context) error {
	for _, q := range w.stmts.queries() {
		stmt, err := w.conn.PrepareContext(ctx, q.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q.query, err)
		}
		*q.stmt = stmt
	}
	return nil
}

// close closes the statements that were prepared.
func (s *writeStatements) close() error {
	var err error
	for _, q := range s.queries() {
		if *q.stmt != nil {
			err = errors.Join(err, (*q.stmt).Close())
		}
	}
	return err
}
