// Package sqlitestore implements entrance.Store on an SQLite file, through
// github.com/mattn/go-sqlite3 (cgo).
//
// The file runs in WAL mode, so reads go to a pool of connections and run
// beside the writer instead of waiting for it. All writes go through one
// connection owned by a writer goroutine. It commits every request waiting
// at that moment in one transaction (group commit) and then returns each
// caller its result. A request that fails inside such a batch is rolled
// back to its own savepoint, so only its caller gets the error.
//
// Times are stored as integer milliseconds since the Unix epoch and come
// back in UTC, truncated to the millisecond. Params, ProgressInfo, Source,
// result columns and result rows are stored as JSON text.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goentrance/entrance"
	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

var _ entrance.Store = (*Store)(nil)

// Defaults of Options.
const (
	// DefaultSynchronous is the default of Options.Synchronous.
	DefaultSynchronous = "NORMAL"

	// DefaultBusyTimeout is the default of Options.BusyTimeout.
	DefaultBusyTimeout = 5 * time.Second
)

// Options configures a Store. A nil *Options or a zero field means the
// default that the field documents.
type Options struct {
	// Synchronous is the SQLite synchronous setting: "OFF", "NORMAL",
	// "FULL" or "EXTRA". Defaults to "NORMAL".
	//
	// With NORMAL in WAL mode, SQLite syncs the WAL file only at
	// checkpoints, not at each commit. A crash of the process loses
	// nothing that was committed, but a power loss or an operating-system
	// crash can roll back the transactions committed since the last
	// checkpoint. The file stays consistent either way. FULL syncs the WAL
	// at every commit, which makes commits survive a power loss and makes
	// each group commit wait for the disk. (SQLite documentation of PRAGMA
	// synchronous.)
	Synchronous string

	// BusyTimeout is how long a statement waits for a lock that another
	// connection holds, for example a backup tool or the sqlite3 shell.
	// Defaults to 5 seconds. The Store has a single write connection, and
	// in WAL mode its readers do not block it, so the wait mostly concerns
	// other processes.
	BusyTimeout time.Duration

	// Readers is the maximum number of reader connections. Defaults to
	// runtime.GOMAXPROCS(0) or 4, whichever is larger.
	Readers int

	// Logger receives errors that the Store catches and cannot return,
	// such as a failed rollback. Defaults to slog.Default().
	Logger *slog.Logger
}

// synchronousLevels maps the names of Options.Synchronous to the numbers
// that PRAGMA synchronous reads back.
var synchronousLevels = map[string]int{"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}

// resolved returns a copy of o with every default filled in.
func (o *Options) resolved() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}

	r.Synchronous = strings.ToUpper(r.Synchronous)
	if r.Synchronous == "" {
		r.Synchronous = DefaultSynchronous
	}
	if _, ok := synchronousLevels[r.Synchronous]; !ok {
		return r, fmt.Errorf("invalid synchronous setting %q: want OFF, NORMAL, FULL or EXTRA",
			r.Synchronous)
	}

	if r.BusyTimeout <= 0 {
		r.BusyTimeout = DefaultBusyTimeout
	}
	if r.Readers <= 0 {
		r.Readers = max(runtime.GOMAXPROCS(0), 4)
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return r, nil
}

// Store is an entrance.Store on an SQLite file. Open returns it, and
// Close releases it. All methods are safe for concurrent use.
type Store struct {
	readDB *sql.DB
	w      *writer

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Stats counts the work of the writer goroutine since Open.
type Stats struct {
	Writes       int64 // write requests completed, failed ones included
	Transactions int64 // transactions the writer ran for them
}

// Open opens or creates the SQLite file at path, creates or checks the
// schema, and starts the writer goroutine. path must name a file: an
// in-memory database cannot run in WAL mode, so Open rejects it.
//
// ctx bounds opening and the schema setup only. The Store must be closed
// with Close.
func Open(ctx context.Context, path string, opts *Options) (*Store, error) {
	o, err := opts.resolved()
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}

	w, err := openWriter(ctx, path, o)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}

	readDB, err := openReaders(ctx, path, o)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open store %s: %w", path, err), w.close())
	}

	s := &Store{readDB: readDB, w: w}
	w.start()
	return s, nil
}

// Close stops accepting writes, commits the writes already queued, stops
// the writer goroutine and closes the file. Later calls of the other
// methods, Stats aside, return an error wrapping entrance.ErrClosed. Close
// is idempotent and returns the same result each time.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = errors.Join(s.w.close(), s.readDB.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("close store: %w", s.closeErr)
		}
	})
	return s.closeErr
}

// Stats returns counters of the writer goroutine. Writes divided by
// Transactions is the mean batch size of the group commit.
func (s *Store) Stats() Stats {
	return Stats{Writes: s.w.writes.Load(), Transactions: s.w.transactions.Load()}
}

// checkOpen returns an error wrapping entrance.ErrClosed after Close.
func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return entrance.ErrClosed
	}
	return nil
}

// dataSourceName builds the go-sqlite3 DSN for path. The driver runs the
// pragmas in the query on every connection it opens. The path is escaped
// so that a '?' or '#' in a file name does not start the query.
func dataSourceName(path string, o Options, params ...string) string {
	u := url.URL{Path: path}
	q := []string{
		"_busy_timeout=" + fmt.Sprint(o.BusyTimeout.Milliseconds()),
		"_foreign_keys=on",
	}
	q = append(q, params...)
	return "file:" + u.EscapedPath() + "?" + strings.Join(q, "&")
}

// openWriter opens the single write connection, verifies its pragmas and
// brings the schema up to date.
func openWriter(ctx context.Context, path string, o Options) (*writer, error) {
	db, err := sql.Open("sqlite3", dataSourceName(path, o,
		"_journal_mode=WAL", "_synchronous="+o.Synchronous, "_txlock=immediate"))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	w := &writer{db: db, conn: conn, logger: o.Logger}

	if err := w.setUp(ctx, o); err != nil {
		return nil, errors.Join(err, w.close())
	}
	return w, nil
}

// setUp verifies the pragmas of the write connection, migrates the schema
// and prepares the write statements.
func (w *writer) setUp(ctx context.Context, o Options) error {
	if err := verifyPragma(ctx, w.conn, "journal_mode", "wal"); err != nil {
		return err
	}
	level := fmt.Sprint(synchronousLevels[o.Synchronous])
	if err := verifyPragma(ctx, w.conn, "synchronous", level); err != nil {
		return err
	}
	if err := verifyPragma(ctx, w.conn, "foreign_keys", "1"); err != nil {
		return err
	}
	if err := migrate(ctx, w.conn); err != nil {
		return err
	}
	return w.prepare(ctx)
}

// openReaders opens the pool of read connections. They are query-only, so
// a bug cannot make them write beside the writer.
func openReaders(ctx context.Context, path string, o Options) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", dataSourceName(path, o, "_query_only=on"))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(o.Readers)
	db.SetMaxIdleConns(o.Readers)

	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	err = verifyPragma(ctx, conn, "journal_mode", "wal")
	if err = errors.Join(err, conn.Close()); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return db, nil
}

// verifyPragma reads a pragma back and fails unless it has the value want.
// SQLite ignores a pragma it cannot apply, for example WAL on a file system
// without shared memory, so setting one is not enough.
func verifyPragma(ctx context.Context, conn *sql.Conn, name, want string) error {
	var got string
	if err := conn.QueryRowContext(ctx, "PRAGMA "+name).Scan(&got); err != nil {
		return fmt.Errorf("read pragma %s: %w", name, err)
	}
	if !strings.EqualFold(got, want) {
		return fmt.Errorf("pragma %s is %q, want %q", name, got, want)
	}
	return nil
}

// notFound returns the error for an unknown taskID.
func notFound(taskID int64) error {
	return fmt.Errorf("job %d: %w", taskID, entrance.ErrNotFound)
}

// msTime converts milliseconds since the epoch to a UTC time.
func msTime(ms int64) time.Time {
	return time.UnixMilli(ms).UTC()
}

// nullMS converts an optional time to milliseconds, or nil for the zero
// time so that SQLite stores NULL.
func nullMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// nullMSTime converts a nullable millisecond column back to a time.
func nullMSTime(ms sql.NullInt64) time.Time {
	if !ms.Valid {
		return time.Time{}
	}
	return msTime(ms.Int64)
}
