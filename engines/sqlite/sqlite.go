// Package sqlite is an engine that runs SQL scripts against one SQLite
// database file.
//
// The application chooses the file in Options.Path, and a job cannot name
// another one. An authorizer on every connection rejects ATTACH, DETACH,
// VACUUM (which attaches a database), functions that load code or touch
// files, and every PRAGMA except read-only informational ones. As a second
// guard, the limit on attached databases is zero.
//
// SQLite itself splits a script into statements: the engine prepares the
// script and continues with the text SQLite did not consume. Besides SQL, a
// script may contain `show tables` statements, which list the tables and
// views of the database. Each statement that returns columns becomes a
// table result set; the others log how many rows they changed.
//
// Jobs run concurrently, each on a connection of its own. A writable
// database is switched to WAL mode so that readers do not wait for writers.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goentrance/entrance"
	sqlite3 "github.com/mattn/go-sqlite3"
)

// DefaultBusyTimeout is how long a statement waits for a lock held by
// another connection when Options.BusyTimeout is zero.
const DefaultBusyTimeout = 5 * time.Second

// Options configure an Engine. New requires a non-nil Options with Path set.
type Options struct {
	// Path is the database file, and it is required. Relative paths are
	// resolved against the working directory when New runs. Unless
	// ReadOnly is set, the file is created when it does not exist and
	// switched to WAL mode.
	Path string

	// ReadOnly opens the file read-only (URI parameter mode=ro) and sets
	// PRAGMA query_only, so jobs can read but not change the database.
	// The file must exist. Defaults to false.
	ReadOnly bool

	// QueryTimeout limits how long one statement of a job may run,
	// including the reading of its rows. Zero, the default, sets no limit
	// beyond the time limit of the job itself.
	QueryTimeout time.Duration

	// MaxRows is the maximum number of rows of one result set. The engine
	// stops reading a statement's rows at the limit and logs a warning.
	// Zero, the default, means no limit. Either way rows are streamed to
	// the result set as they are read, so a large result does not need
	// memory.
	MaxRows int

	// BusyTimeout is how long a statement waits for a lock held by another
	// connection before it fails with "database is locked". Zero means
	// DefaultBusyTimeout.
	BusyTimeout time.Duration
}

// Engine runs SQL scripts against the database file of its Options. It is
// safe for concurrent use; each job gets a connection of its own.
type Engine struct {
	db   *sql.DB
	opts Options
}

var (
	_ entrance.Engine   = (*Engine)(nil)
	_ entrance.RunTyper = (*Engine)(nil)
)

// New opens the database file of opts and checks that the driver behaves
// as the engine expects. Close releases the file.
func New(opts *Options) (*Engine, error) {
	if err := stmtLayoutErr; err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	resolved, err := resolveOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}

	e := &Engine{opts: resolved}
	drv := &sqlite3.SQLiteDriver{ConnectHook: secureConn}
	e.db = sql.OpenDB(&connector{driver: drv, dsn: dataSourceName(resolved)})
	if err := e.check(context.Background()); err != nil {
		e.db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", resolved.Path, err)
	}
	return e, nil
}

// resolveOptions validates opts and returns a copy with defaults applied
// and an absolute Path.
func resolveOptions(opts *Options) (Options, error) {
	if opts == nil {
		return Options{}, errors.New("options are required")
	}
	o := *opts
	if o.Path == "" {
		return Options{}, errors.New("options: Path is required")
	}
	if o.QueryTimeout < 0 || o.MaxRows < 0 || o.BusyTimeout < 0 {
		return Options{}, errors.New("options: QueryTimeout, MaxRows and BusyTimeout must not be negative")
	}
	if o.BusyTimeout == 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}

	abs, err := filepath.Abs(o.Path)
	if err != nil {
		return Options{}, fmt.Errorf("resolve path %q: %w", o.Path, err)
	}
	o.Path = abs
	return o, nil
}

// dataSourceName builds the file: URI that go-sqlite3 opens. Escaping the
// path keeps a '?' or '#' in a file name from starting the parameters.
func dataSourceName(o Options) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10))
	if o.ReadOnly {
		q.Set("mode", "ro")
		q.Set("_query_only", "1")
	} else {
		// go-sqlite3 runs PRAGMA journal_mode before the connect hook
		// installs the authorizer, which rejects that pragma.
		q.Set("_journal_mode", "WAL")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(o.Path), RawQuery: q.Encode()}
	return u.String()
}

// connector opens connections with a driver of the engine's own, so the
// engine needs no name registered with database/sql.
type connector struct {
	driver *sqlite3.SQLiteDriver
	dsn    string
}

func (c *connector) Connect(context.Context) (driver.Conn, error) {
	return c.driver.Open(c.dsn)
}

func (c *connector) Driver() driver.Driver { return c.driver }

// secureConn runs once for every new connection, before database/sql uses
// it.
func secureConn(conn *sqlite3.SQLiteConn) error {
	conn.SetLimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
	if n := conn.GetLimit(sqlite3.SQLITE_LIMIT_ATTACHED); n != 0 {
		return fmt.Errorf("set limit of attached databases: still %d", n)
	}
	conn.RegisterAuthorizer((*guard)(nil).authorize)
	return nil
}

// check verifies, on one connection, that the statement fields the engine
// reads behave as expected and that the journal mode is WAL.
func (e *Engine) check(ctx context.Context) error {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()

	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		if err := checkStmtLayout(sc); err != nil {
			return err
		}
		if e.opts.ReadOnly {
			_, err := queryString(ctx, sc, `SELECT count(*) FROM sqlite_schema`)
			return err
		}
		mode, err := queryString(ctx, sc, `PRAGMA journal_mode`)
		if err != nil {
			return err
		}
		if !strings.EqualFold(mode, "wal") {
			return fmt.Errorf("journal mode is %q, not wal", mode)
		}
		return nil
	})
}

// queryString returns the first column of the first row of query as text.
func queryString(ctx context.Context, conn *sqlite3.SQLiteConn, query string) (string, error) {
	rows, err := conn.QueryContext(ctx, query, nil)
	if err != nil {
		return "", err
	}
	defer rows.Close()

	dest := make([]driver.Value, len(rows.Columns()))
	if len(dest) == 0 {
		return "", fmt.Errorf("%s returned no columns", query)
	}
	if err := rows.Next(dest); err != nil {
		return "", fmt.Errorf("%s: %w", query, err)
	}
	s := formatValue(dest[0])
	if s == nil {
		return "", nil
	}
	return *s, nil
}

// Close closes the database. Call it after every Run has returned.
func (e *Engine) Close() error {
	return e.db.Close()
}

// DefaultRunType returns "sql".
func (e *Engine) DefaultRunType() string { return "sql" }

// Run runs job.Code as a script of SQL statements, in order, on one
// connection, and stops at the first statement that fails. A failed
// statement ends the job with a *entrance.JobError (code
// entrance.ErrCodeEngineFailed) whose Desc names the statement by its
// number, from 1, and holds SQLite's message.
//
// A transaction that the script leaves open is rolled back when Run
// returns. A connection on which the script created temporary tables,
// views or triggers is closed, so that no later job can read them.
func (e *Engine) Run(ctx context.Context, job *entrance.Job, out entrance.Output) error {
	if i := strings.IndexByte(job.Code, 0); i >= 0 {
		return &entrance.JobError{
			Code: entrance.ErrCodeEngineFailed,
			Desc: fmt.Sprintf("the script contains a NUL byte at offset %d; remove it", i),
		}
	}

	conn, err := e.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("get connection: %w", err)
	}
	defer conn.Close()

	ran := false
	var runErr error
	rawErr := conn.Raw(func(dc any) error {
		sc, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		ran = true
		s := newScript(e, sc, out)
		runErr = s.run(ctx, job.Code)
		if !s.cleanUp() {
			// database/sql closes a connection whose Raw function
			// returns driver.ErrBadConn.
			return driver.ErrBadConn
		}
		return nil
	})
	if !ran {
		return fmt.Errorf("use connection: %w", rawErr)
	}
	return runErr
}
