package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/sqlitestore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// dbPath returns the path of a new database file in a fresh directory.
func dbPath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "entrance.db")
}

// openStore opens a store at path and closes it when the test ends.
func openStore(tb testing.TB, path string) *sqlitestore.Store {
	tb.Helper()
	s, err := sqlitestore.Open(tb.Context(), path, nil)
	if err != nil {
		tb.Fatalf("Open(%q): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// openRaw opens the file with database/sql alone, the way an operator's
// tool would, and closes it when the test ends.
func openRaw(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	db.SetMaxOpenConns(1)
	tb.Cleanup(func() { db.Close() })
	return db
}

// newJob returns a job record of user with its fields filled in.
func newJob(user string) *entrance.JobRecord {
	return &entrance.JobRecord{
		Instance: "127.0.0.1:9001",
		User:     user,
		Creator:  "IDE",
		Engine:   "shell",
		RunType:  "sh",
		Code:     "echo hello",
		Created:  time.UnixMilli(1_700_000_000_000).UTC(),
	}
}

// createJob stores rec and returns its taskID.
func createJob(tb testing.TB, s *sqlitestore.Store, rec *entrance.JobRecord) int64 {
	tb.Helper()
	id, err := s.CreateJob(tb.Context(), rec)
	if err != nil {
		tb.Fatalf("CreateJob: %v", err)
	}
	return id
}

func TestOpenCreatesSchemaInWAL(t *testing.T) {
	path := dbPath(t)
	openStore(t, path)
	raw := openRaw(t, path)

	var mode string
	if err := raw.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q; want wal", mode)
	}

	var version int
	if err := raw.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != 2 {
		t.Errorf("user_version = %d; want 2", version)
	}

	tables := []string{"jobs", "status_history", "log_batches", "result_sets", "result_rows"}
	for _, table := range tables {
		var name string
		err := raw.QueryRow(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?`,
			table).Scan(&name)
		if err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
}

// fileAtVersion returns the path of a new database file whose
// user_version is version.
func fileAtVersion(t *testing.T, version int) string {
	t.Helper()
	path := dbPath(t)
	raw := openRaw(t, path)
	if _, err := raw.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, version)); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenRejects(t *testing.T) {
	cases := []struct {
		name string
		path string
		opts *sqlitestore.Options
	}{
		{"in-memory database", ":memory:", nil},
		{"invalid synchronous", dbPath(t), &sqlitestore.Options{Synchronous: "SOMETIMES"}},
		{"newer schema version", fileAtVersion(t, 99), nil},
		{"older schema version with one row per line", fileAtVersion(t, 1), nil},
		{"missing directory", filepath.Join(t.TempDir(), "missing", "x.db"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlitestore.Open(t.Context(), tc.path, tc.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded; want an error")
			}
		})
	}
}

func TestOpenOptions(t *testing.T) {
	cases := []struct {
		name string
		opts *sqlitestore.Options
	}{
		{"nil", nil},
		{"full lower case", &sqlitestore.Options{Synchronous: "full"}},
		{"off with one reader", &sqlitestore.Options{Synchronous: "OFF", Readers: 1}},
		{"extra with timeout", &sqlitestore.Options{Synchronous: "EXTRA", BusyTimeout: time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlitestore.Open(t.Context(), dbPath(t), tc.opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			id := createJob(t, s, newJob("alice"))
			if _, err := s.Job(t.Context(), id); err != nil {
				t.Errorf("Job(%d): %v", id, err)
			}
		})
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := dbPath(t)
	s, err := sqlitestore.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := createJob(t, s, newJob("alice"))
	lines := []entrance.LogLine{{Number: 1, Text: "one"}, {Number: 2, Text: "two"}}
	if err := s.AppendLog(t.Context(), id, lines); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, path)
	rec, err := s.Job(t.Context(), id)
	if err != nil {
		t.Fatalf("Job(%d) after reopen: %v", id, err)
	}
	if rec.User != "alice" || rec.LogLines != 2 {
		t.Errorf("job after reopen: user %q, %d log lines; want alice, 2", rec.User, rec.LogLines)
	}
	got, err := s.ReadLog(t.Context(), id, 1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, lines) {
		t.Errorf("log after reopen = %v; want %v", got, lines)
	}
}

func TestTaskIDsNotReused(t *testing.T) {
	path := dbPath(t)
	s, err := sqlitestore.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for want := int64(1); want <= 3; want++ {
		if got := createJob(t, s, newJob("alice")); got != want {
			t.Fatalf("taskID = %d; want %d", got, want)
		}
	}

	raw := openRaw(t, path)
	if _, err := raw.Exec(`DELETE FROM jobs WHERE task_id = 3`); err != nil {
		t.Fatal(err)
	}
	if got := createJob(t, s, newJob("alice")); got != 4 {
		t.Errorf("taskID after deleting job 3 = %d; want 4", got)
	}

	if _, err := raw.Exec(`DELETE FROM jobs WHERE task_id = 4`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path)
	if got := createJob(t, s, newJob("alice")); got != 5 {
		t.Errorf("taskID after deleting job 4 and reopening = %d; want 5", got)
	}
}

func TestCreateJobConcurrent(t *testing.T) {
	s := openStore(t, dbPath(t))
	const goroutines, perGoroutine = 10, 100

	ids := make([][]int64, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range perGoroutine {
				id, err := s.CreateJob(t.Context(), newJob(fmt.Sprint("user", g)))
				if err != nil {
					t.Errorf("CreateJob: %v", err)
					return
				}
				ids[g] = append(ids[g], id)
			}
		})
	}
	wg.Wait()

	all := slices.Concat(ids...)
	slices.Sort(all)
	if len(all) != goroutines*perGoroutine {
		t.Fatalf("got %d taskIDs; want %d", len(all), goroutines*perGoroutine)
	}
	for i, id := range all {
		if id != int64(i+1) {
			t.Fatalf("sorted taskIDs[%d] = %d; want %d (ids distinct, from 1, no gap)", i, id, i+1)
		}
	}
}

// holdWriteLock takes the write lock of the file from another connection,
// so that the writer of a store blocks at its next BEGIN and requests pile
// up in its queue. The returned function releases the lock.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	tx, err := openRaw(t, path).BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Rollback(); err != nil {
			t.Error(err)
		}
	}
}

// failTimeoutHistory adds a trigger that makes every insert of a Timeout
// status into the history fail. UpdateStatus to Timeout then fails after
// it has already updated the job row, which its savepoint must undo.
func failTimeoutHistory(t *testing.T, path string) {
	t.Helper()
	_, err := openRaw(t, path).Exec(`CREATE TRIGGER fail_timeout BEFORE INSERT ON status_history
		WHEN NEW.status = 'Timeout' BEGIN SELECT RAISE(ABORT, 'timeout rejected'); END`)
	if err != nil {
		t.Fatal(err)
	}
}

func TestBatchFailureIsolated(t *testing.T) {
	path := dbPath(t)
	s := openStore(t, path)
	failTimeoutHistory(t, path)
	const each = 10
	existing := make([]int64, each)
	for i := range existing {
		existing[i] = createJob(t, s, newJob("bob"))
	}
	before := s.Stats()

	release := holdWriteLock(t, path)
	good := make([]int64, each)
	goodErr := make([]error, each)
	nanErr := make([]error, each)
	unknownErr := make([]error, each)
	timeoutErr := make([]error, each)
	var wg sync.WaitGroup
	for i := range each {
		wg.Go(func() { good[i], goodErr[i] = s.CreateJob(t.Context(), newJob("alice")) })
		wg.Go(func() {
			rec := newJob("mallory")
			rec.Progress = math.NaN() // SQLite stores NaN as NULL, which the schema rejects
			_, nanErr[i] = s.CreateJob(t.Context(), rec)
		})
		wg.Go(func() {
			unknownErr[i] = s.AppendLog(t.Context(), 999, []entrance.LogLine{{Number: 1}})
		})
		wg.Go(func() {
			u := entrance.StatusUpdate{Status: entrance.StatusTimeout}
			timeoutErr[i] = s.UpdateStatus(t.Context(), existing[i], u)
		})
	}
	time.Sleep(200 * time.Millisecond) // let every request reach the queue
	release()
	wg.Wait()

	for i, err := range goodErr {
		if err != nil {
			t.Errorf("good CreateJob %d: %v", i, err)
			continue
		}
		if _, err := s.Job(t.Context(), good[i]); err != nil {
			t.Errorf("Job(%d) of a good request: %v", good[i], err)
		}
	}
	for i := range each {
		if nanErr[i] == nil {
			t.Errorf("CreateJob %d with NaN progress succeeded; want a constraint error", i)
		}
		if !errors.Is(unknownErr[i], entrance.ErrNotFound) {
			t.Errorf("AppendLog %d to an unknown job: %v; want ErrNotFound", i, unknownErr[i])
		}
		if timeoutErr[i] == nil {
			t.Errorf("UpdateStatus %d to Timeout succeeded; want the trigger's error", i)
		}
		checkStatus(t, s, existing[i], entrance.StatusInited)
	}

	_, total, err := s.ListJobs(t.Context(), entrance.JobFilter{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if total != each {
		t.Errorf("stored %d jobs of alice; want the %d good ones", total, each)
	}
	after := s.Stats()
	writes := after.Writes - before.Writes
	transactions := after.Transactions - before.Transactions
	if writes != 4*each || transactions >= writes {
		t.Errorf("%d writes in %d transactions; want %d writes in fewer transactions",
			writes, transactions, 4*each)
	}
}

// checkStatus fails the test unless the job has the status want and a
// history of that status alone.
func checkStatus(t *testing.T, s *sqlitestore.Store, taskID int64, want entrance.Status) {
	t.Helper()
	rec, err := s.Job(t.Context(), taskID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != want || !rec.Ended.IsZero() {
		t.Errorf("job %d: status %s, ended %v; want %s, not ended", taskID, rec.Status, rec.Ended, want)
	}
	history, err := s.StatusHistory(t.Context(), taskID)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 1 || history[0].Status != want {
		t.Errorf("job %d: history %v; want [%s]", taskID, history, want)
	}
}

func TestQueuedWriteOutlivesContext(t *testing.T) {
	path := dbPath(t)
	s := openStore(t, path)
	release := holdWriteLock(t, path)

	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		id  int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		id, err := s.CreateJob(ctx, newJob("alice"))
		done <- result{id, err}
	}()
	time.Sleep(100 * time.Millisecond) // let the request reach the queue
	cancel()
	time.Sleep(50 * time.Millisecond)
	release()

	r := <-done
	if r.err != nil {
		t.Fatalf("CreateJob cancelled after it was queued: %v; want it to complete", r.err)
	}
	if _, err := s.Job(t.Context(), r.id); err != nil {
		t.Errorf("Job(%d): %v", r.id, err)
	}
}

func TestCloseFlushesQueuedWrites(t *testing.T) {
	path := dbPath(t)
	s, err := sqlitestore.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}

	release := holdWriteLock(t, path)
	const n = 20
	ids := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ids[i], errs[i] = s.CreateJob(t.Context(), newJob("alice")) })
	}
	time.Sleep(200 * time.Millisecond) // let every request reach the queue

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	time.Sleep(50 * time.Millisecond)
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("CreateJob %d queued before Close: %v", i, err)
		}
	}

	s = openStore(t, path)
	for _, id := range ids {
		if _, err := s.Job(t.Context(), id); err != nil {
			t.Errorf("Job(%d) after reopen: %v", id, err)
		}
	}
}

func TestClosedStoreFails(t *testing.T) {
	s, err := sqlitestore.Open(t.Context(), dbPath(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := createJob(t, s, newJob("alice"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	ctx := t.Context()
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateJob", func() error { _, err := s.CreateJob(ctx, newJob("alice")); return err }},
		{"UpdateStatus", func() error {
			return s.UpdateStatus(ctx, id, entrance.StatusUpdate{Status: entrance.StatusRunning})
		}},
		{"SetProgress", func() error { return s.SetProgress(ctx, id, entrance.ProgressUpdate{}) }},
		{"SetProcess", func() error { return s.SetProcess(ctx, id, 1) }},
		{"AppendLog", func() error { return s.AppendLog(ctx, id, []entrance.LogLine{{Number: 1}}) }},
		{"ReadLog", func() error { _, err := s.ReadLog(ctx, id, 1, -1); return err }},
		{"Job", func() error { _, err := s.Job(ctx, id); return err }},
		{"ListJobs", func() error { _, _, err := s.ListJobs(ctx, entrance.JobFilter{}); return err }},
		{"UnfinishedJobs", func() error { _, err := s.UnfinishedJobs(ctx); return err }},
		{"CreateResultSet", func() error {
			_, err := s.CreateResultSet(ctx, id, entrance.ResultMeta{Kind: entrance.ResultText})
			return err
		}},
		{"AppendRows", func() error { return s.AppendRows(ctx, id, 0, [][]*string{{nil}}) }},
		{"ResultSets", func() error { _, err := s.ResultSets(ctx, id); return err }},
		{"ReadRows", func() error { _, err := s.ReadRows(ctx, id, 0, 0, 10); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, entrance.ErrClosed) {
			t.Errorf("%s after Close: %v; want ErrClosed", c.name, err)
		}
	}
}

func TestCancelledContextQueuesNothing(t *testing.T) {
	s := openStore(t, dbPath(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	if _, err := s.CreateJob(ctx, newJob("alice")); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateJob with a cancelled context: %v; want context.Canceled", err)
	}
	_, total, err := s.ListJobs(t.Context(), entrance.JobFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if total != 0 {
		t.Errorf("stored %d jobs; want 0", total)
	}
}
