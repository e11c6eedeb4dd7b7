package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/engines/sqlite"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is an entrance.Output that keeps everything a job produces. It
// is safe for concurrent use.
type recorder struct {
	mu       sync.Mutex
	logs     []logLine
	progress []progressReport
	results  []*result
}

type logLine struct {
	level entrance.Level
	text  string
}

type progressReport struct {
	fraction float64
	info     []entrance.ProgressInfo
}

func (r *recorder) Log(level entrance.Level, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, logLine{level, line})
}

func (r *recorder) Progress(fraction float64, info []entrance.ProgressInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, progressReport{fraction, info})
}

func (r *recorder) ResultSet(_ context.Context, meta entrance.ResultMeta) (entrance.ResultWriter, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &result{meta: meta}
	r.results = append(r.results, res)
	return res, nil
}

func (r *recorder) Process(int) {}

// logText returns the log lines joined by newlines.
func (r *recorder) logText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, l := range r.logs {
		fmt.Fprintf(&b, "%s %s\n", l.level, l.text)
	}
	return b.String()
}

// resultLog matches the lines logged after a statement ran.
var resultLog = regexp.MustCompile(`^statement \d+: \d+ rows?( affected)? in `)

// statementLogs returns the lines that announce a statement.
func (r *recorder) statementLogs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var lines []string
	for _, l := range r.logs {
		if strings.HasPrefix(l.text, "statement ") && l.level == entrance.LevelInfo &&
			!resultLog.MatchString(l.text) {
			lines = append(lines, l.text)
		}
	}
	return lines
}

func (r *recorder) resultSets() []*result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*result(nil), r.results...)
}

// result is a result set held in memory.
type result struct {
	meta entrance.ResultMeta

	mu     sync.Mutex
	rows   [][]*string
	closed bool
}

func (res *result) WriteRow(_ context.Context, row []*string) error {
	res.mu.Lock()
	defer res.mu.Unlock()
	if res.closed {
		return errors.New("write to a closed result set")
	}
	res.rows = append(res.rows, row)
	return nil
}

func (res *result) Close(context.Context) error {
	res.mu.Lock()
	defer res.mu.Unlock()
	res.closed = true
	return nil
}

// texts returns the rows with NULL written as "<nil>".
func (res *result) texts() [][]string {
	res.mu.Lock()
	defer res.mu.Unlock()
	out := make([][]string, len(res.rows))
	for i, row := range res.rows {
		for _, v := range row {
			if v == nil {
				out[i] = append(out[i], "<nil>")
			} else {
				out[i] = append(out[i], *v)
			}
		}
	}
	return out
}

// newEngine opens an engine on a new database file in a temporary
// directory.
func newEngine(t testing.TB, opts sqlite.Options) *sqlite.Engine {
	t.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(t.TempDir(), "test.db")
	}
	e, err := sqlite.New(&opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// runScript runs code as a job and returns what it produced.
func runScript(ctx context.Context, e *sqlite.Engine, code string) (*recorder, error) {
	rec := &recorder{}
	job := &entrance.Job{ExecID: "exec-1", TaskID: 1, User: "alice", Engine: "sqlite", Code: code}
	return rec, e.Run(ctx, job, rec)
}

// mustRun runs code and fails the test when the job fails.
func mustRun(t *testing.T, e *sqlite.Engine, code string) *recorder {
	t.Helper()
	rec, err := runScript(t.Context(), e, code)
	if err != nil {
		t.Fatalf("Run(%q): %v\nlog:\n%s", code, err, rec.logText())
	}
	return rec
}

// jobError runs code, which must fail with a *entrance.JobError.
func jobError(t *testing.T, e *sqlite.Engine, code string) *entrance.JobError {
	t.Helper()
	rec, err := runScript(t.Context(), e, code)
	var je *entrance.JobError
	if !errors.As(err, &je) {
		t.Fatalf("Run(%q) = %v, want a *entrance.JobError\nlog:\n%s", code, err, rec.logText())
	}
	if je.Code != entrance.ErrCodeEngineFailed {
		t.Errorf("Run(%q) error code = %d, want %d", code, je.Code, entrance.ErrCodeEngineFailed)
	}
	return je
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		opts *sqlite.Options
	}{
		{"nil", nil},
		{"no path", &sqlite.Options{}},
		{"negative timeout", &sqlite.Options{Path: filepath.Join(dir, "a.db"), QueryTimeout: -1}},
		{"negative max rows", &sqlite.Options{Path: filepath.Join(dir, "b.db"), MaxRows: -1}},
		{"read-only missing file", &sqlite.Options{Path: filepath.Join(dir, "missing.db"), ReadOnly: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := sqlite.New(c.opts)
			if err == nil {
				e.Close()
				t.Fatal("New succeeded, want an error")
			}
		})
	}
}

func TestNewOpensPathWithSpecialCharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a b?c#d%20.db")
	e := newEngine(t, sqlite.Options{Path: path})
	mustRun(t, e, `CREATE TABLE t(a)`)

	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file not at the configured path: %v", err)
	}
}

func TestNewSetsWALMode(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	rec := mustRun(t, e, `PRAGMA journal_mode`)

	got := rec.resultSets()[0].texts()
	if len(got) != 1 || got[0][0] != "wal" {
		t.Errorf("journal_mode = %v, want [[wal]]", got)
	}
}

func TestDefaultRunType(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	if got := e.DefaultRunType(); got != "sql" {
		t.Errorf("DefaultRunType() = %q, want sql", got)
	}
}

func TestRunColumnsTypesAndValues(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	mustRun(t, e, `
CREATE TABLE v(i INTEGER, r REAL, s VARCHAR(10), b BLOB, f BOOLEAN, d DATE, ts DATETIME, n);
INSERT INTO v VALUES (42, 1.5, 'text', x'00ff', 1, '2024-02-29', '2024-02-29 13:14:15.5', NULL);
INSERT INTO v VALUES (-7, 1e6, '', x'', 0, NULL, '2024-02-29 13:14:15+02:00', 3)`)

	rec := mustRun(t, e, `SELECT i, r, s, b, f, d, ts, n, i + 1 AS expr FROM v ORDER BY rowid`)
	sets := rec.resultSets()
	if len(sets) != 1 {
		t.Fatalf("got %d result sets, want 1", len(sets))
	}
	res := sets[0]

	if res.meta.Kind != entrance.ResultTable {
		t.Errorf("kind = %v, want table", res.meta.Kind)
	}
	wantCols := []entrance.Column{
		{Name: "i", Type: "INTEGER"}, {Name: "r", Type: "REAL"}, {Name: "s", Type: "VARCHAR(10)"},
		{Name: "b", Type: "BLOB"}, {Name: "f", Type: "BOOLEAN"}, {Name: "d", Type: "DATE"},
		{Name: "ts", Type: "DATETIME"}, {Name: "n", Type: ""}, {Name: "expr", Type: ""},
	}
	if fmt.Sprint(res.meta.Columns) != fmt.Sprint(wantCols) {
		t.Errorf("columns = %v, want %v", res.meta.Columns, wantCols)
	}

	want := [][]string{
		{"42", "1.5", "text", "00FF", "true", "2024-02-29", "2024-02-29 13:14:15.5", "<nil>", "43"},
		{"-7", "1e+06", "", "", "false", "<nil>", "2024-02-29 13:14:15+02:00", "3", "-6"},
	}
	if got := res.texts(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows = %q, want %q", got, want)
	}
	if res.rows[0][7] != nil {
		t.Errorf("NULL arrived as %q, want nil", *res.rows[0][7])
	}
	if res.rows[1][2] == nil {
		t.Error("empty text arrived as nil, want a pointer to an empty string")
	}
}

func TestRunCastKeepsUnparsableDate(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	mustRun(t, e, `CREATE TABLE d(day DATE); INSERT INTO d VALUES ('next monday')`)

	rec := mustRun(t, e, `SELECT CAST(day AS TEXT) FROM d`)
	got := rec.resultSets()[0].texts()
	if len(got) != 1 || got[0][0] != "next monday" {
		t.Errorf("rows = %q, want [[next monday]]", got)
	}
}

func TestRunLogsRowsAffected(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	rec := mustRun(t, e, `CREATE TABLE t(a); INSERT INTO t VALUES (1), (2), (3);
CREATE TABLE u(b); UPDATE t SET a = a + 1 WHERE a > 1`)

	log := rec.logText()
	for _, want := range []string{
		"statement 1: 0 rows affected", "statement 2: 3 rows affected",
		"statement 3: 0 rows affected", "statement 4: 2 rows affected",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log has no line with %q:\n%s", want, log)
		}
	}
}

func TestRunLogsShortenedStatement(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	long := "SELECT '" + strings.Repeat("x", 500) + "'"
	rec := mustRun(t, e, "-- leading comment\n"+long)

	lines := rec.statementLogs()
	if len(lines) != 1 {
		t.Fatalf("statement lines = %q, want 1", lines)
	}
	if !strings.HasPrefix(lines[0], "statement 1: SELECT 'xxx") {
		t.Errorf("line = %q, want the statement without its comment", lines[0])
	}
	if !strings.HasSuffix(lines[0], " ...") || len(lines[0]) > 300 {
		t.Errorf("line of %d bytes = %q, want it cut and ending in ...", len(lines[0]), lines[0])
	}
}

func TestRunProgress(t *testing.T) {
	cases := []struct {
		name   string
		script string
		total  int
	}{
		{"estimate exact", "CREATE TABLE t(a); INSERT INTO t VALUES (1); SELECT * FROM t;", 3},
		{"trailing comment", "SELECT 1; SELECT 2; -- done", 2},
		{"only comments", "-- nothing; to do\n/* at all; */", 0},
		{"show tables", "show tables\nSELECT 1", 2},
		{"case end in trigger", `CREATE TABLE t(a);
CREATE TRIGGER tr AFTER INSERT ON t BEGIN
  SELECT CASE WHEN new.a > 0 THEN 1 END;
END;
INSERT INTO t VALUES (1);`, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, sqlite.Options{})
			rec := mustRun(t, e, c.script)

			if len(rec.progress) < 2 {
				t.Fatalf("got %d progress reports, want at least 2", len(rec.progress))
			}
			for i := 1; i < len(rec.progress); i++ {
				if rec.progress[i].fraction < rec.progress[i-1].fraction {
					t.Errorf("progress went down: %v then %v", rec.progress[i-1].fraction, rec.progress[i].fraction)
				}
			}
			for i, p := range rec.progress[:len(rec.progress)-1] {
				if p.fraction >= 1 {
					t.Errorf("report %d of %d has fraction %v, want below 1 until the end",
						i, len(rec.progress), p.fraction)
				}
			}

			last := rec.progress[len(rec.progress)-1]
			if last.fraction != 1 {
				t.Errorf("last fraction = %v, want 1", last.fraction)
			}
			want := entrance.ProgressInfo{ID: "statements", SucceedTasks: c.total, TotalTasks: c.total}
			if len(last.info) != 1 || last.info[0] != want {
				t.Errorf("last info = %+v, want [%+v]", last.info, want)
			}
		})
	}
}

func TestRunSyntaxError(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	je := jobError(t, e, "SELECT 1;\nSELEC 2;\nSELECT 3")

	if !strings.Contains(je.Desc, `near "SELEC": syntax error`) {
		t.Errorf("Desc = %q, want SQLite's message", je.Desc)
	}
	if !strings.HasPrefix(je.Desc, "statement 2:") {
		t.Errorf("Desc = %q, want it to name statement 2", je.Desc)
	}
}

func TestRunStopsAtFailingStatement(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	je := jobError(t, e, `CREATE TABLE t(a UNIQUE); INSERT INTO t VALUES (1); INSERT INTO t VALUES (1);
INSERT INTO t VALUES (2)`)
	if !strings.HasPrefix(je.Desc, "statement 3: UNIQUE constraint failed") {
		t.Errorf("Desc = %q, want statement 3 and the constraint", je.Desc)
	}

	rec := mustRun(t, e, `SELECT count(*) FROM t`)
	if got := rec.resultSets()[0].texts(); got[0][0] != "1" {
		t.Errorf("rows after the failure = %v, want 1: statement 4 must not run", got)
	}
}

func TestRunRejectsParameters(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	je := jobError(t, e, `SELECT ?, :name`)
	if !strings.Contains(je.Desc, "statement 1 has 2 parameters") {
		t.Errorf("Desc = %q, want the parameter count", je.Desc)
	}
}

func TestRunRejectsNULByte(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	je := jobError(t, e, "SELECT 1;\x00 DROP TABLE t")
	if !strings.Contains(je.Desc, "NUL byte at offset 9") {
		t.Errorf("Desc = %q, want the offset of the NUL byte", je.Desc)
	}
}

func TestRunKillInterruptsQuery(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)

	start := time.Now()
	_, err := runScript(ctx, e, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
SELECT count(*) FROM c`)
	elapsed := time.Since(start)

	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if elapsed > 1200*time.Millisecond {
		t.Errorf("Run returned %v after the start, %v after the kill; want within 1s",
			elapsed, elapsed-200*time.Millisecond)
	}
}

func TestRunKillBetweenRows(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)

	start := time.Now()
	_, err := runScript(ctx, e, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
SELECT x FROM c`)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 1200*time.Millisecond {
		t.Errorf("Run returned after %v, want within 1s of the kill", elapsed)
	}
}

func TestRunQueryTimeout(t *testing.T) {
	e := newEngine(t, sqlite.Options{QueryTimeout: 200 * time.Millisecond})

	start := time.Now()
	je := jobError(t, e, `SELECT 1; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
SELECT count(*) FROM c`)
	if !strings.Contains(je.Desc, "statement 2 ran past the query timeout of 200ms") {
		t.Errorf("Desc = %q, want the timeout", je.Desc)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Run returned after %v, want soon after the 200ms timeout", elapsed)
	}
}

func TestRunReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.db")
	writer := newEngine(t, sqlite.Options{Path: path})
	mustRun(t, writer, `CREATE TABLE t(a); INSERT INTO t VALUES (1)`)
	reader := newEngine(t, sqlite.Options{Path: path, ReadOnly: true})

	rec := mustRun(t, reader, `SELECT a FROM t`)
	if got := rec.resultSets()[0].texts(); fmt.Sprint(got) != "[[1]]" {
		t.Errorf("rows = %v, want [[1]]", got)
	}

	cases := []struct {
		name, script, want string
	}{
		{"insert", `INSERT INTO t VALUES (2)`, "readonly database"},
		{"create", `CREATE TABLE u(b)`, "readonly database"},
		{"query_only off", `PRAGMA query_only = 0`, "not authorized"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			je := jobError(t, reader, c.script)
			if !strings.Contains(je.Desc, c.want) {
				t.Errorf("Desc = %q, want %q", je.Desc, c.want)
			}
		})
	}
}

func TestRunLargeResult(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	rec := mustRun(t, e, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
SELECT x, 'row ' || x FROM c`)

	sets := rec.resultSets()
	if len(sets) != 1 {
		t.Fatalf("got %d result sets, want 1", len(sets))
	}
	rows := sets[0].texts()
	if len(rows) != 100000 {
		t.Fatalf("got %d rows, want 100000", len(rows))
	}
	for i, row := range rows {
		if want := fmt.Sprint(i + 1); row[0] != want || row[1] != "row "+want {
			t.Fatalf("row %d = %q, want [%s row %s]", i, row, want, want)
		}
	}
	if !sets[0].closed {
		t.Error("result set not closed")
	}
}

func TestRunMaxRows(t *testing.T) {
	e := newEngine(t, sqlite.Options{MaxRows: 10})
	rec := mustRun(t, e, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50)
SELECT x FROM c; SELECT 1`)

	sets := rec.resultSets()
	if len(sets) != 2 {
		t.Fatalf("got %d result sets, want 2", len(sets))
	}
	if n := len(sets[0].texts()); n != 10 {
		t.Errorf("first result set has %d rows, want 10", n)
	}
	if !strings.Contains(rec.logText(), "WARN statement 1: result set cut at the limit of 10 rows") {
		t.Errorf("log has no warning about the limit:\n%s", rec.logText())
	}
}

func TestRunRollsBackOpenTransaction(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	mustRun(t, e, `CREATE TABLE t(a)`)

	rec := mustRun(t, e, `BEGIN; INSERT INTO t VALUES (1)`)
	if !strings.Contains(rec.logText(), "rolled back the transaction") {
		t.Errorf("log has no rollback warning:\n%s", rec.logText())
	}

	rec = mustRun(t, e, `SELECT count(*) FROM t; BEGIN; COMMIT`)
	if got := rec.resultSets()[0].texts(); got[0][0] != "0" {
		t.Errorf("count = %v, want 0 after the rollback", got)
	}
}

func TestRunDoesNotShareTempTables(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	mustRun(t, e, `CREATE TEMP TABLE secret(a); INSERT INTO secret VALUES ('alice')`)

	je := jobError(t, e, `SELECT * FROM secret`)
	if !strings.Contains(je.Desc, "no such table: secret") {
		t.Errorf("Desc = %q, want no such table", je.Desc)
	}
}

func TestRunConcurrentJobs(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	mustRun(t, e, `CREATE TABLE t(worker, n)`)

	const workers, inserts = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for n := range inserts {
				code := fmt.Sprintf(`INSERT INTO t VALUES (%d, %d); SELECT count(*) FROM t`, w, n)
				if _, err := runScript(t.Context(), e, code); err != nil {
					errs <- fmt.Errorf("worker %d insert %d: %w", w, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	rec := mustRun(t, e, `SELECT count(*) FROM t`)
	if got := rec.resultSets()[0].texts(); got[0][0] != fmt.Sprint(workers*inserts) {
		t.Errorf("count = %v, want %d", got, workers*inserts)
	}
}

// discard is an entrance.Output that drops everything, for benchmarks.
type discard struct{}

func (discard) Log(entrance.Level, string)                {}
func (discard) Progress(float64, []entrance.ProgressInfo) {}
func (discard) Process(int)                               {}
func (discard) WriteRow(context.Context, []*string) error { return nil }
func (discard) Close(context.Context) error               { return nil }
func (d discard) ResultSet(context.Context, entrance.ResultMeta) (entrance.ResultWriter, error) {
	return d, nil
}

func BenchmarkQuery10kRows(b *testing.B) {
	e := newEngine(b, sqlite.Options{})
	job := &entrance.Job{Code: `CREATE TABLE t(i INTEGER, r REAL, s TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000)
INSERT INTO t SELECT x, x / 3.0, 'row ' || x FROM c`}
	if err := e.Run(b.Context(), job, discard{}); err != nil {
		b.Fatal(err)
	}

	job.Code = `SELECT i, r, s FROM t`
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Run(b.Context(), job, discard{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRunCountsFailedStatement(t *testing.T) {
	e := newEngine(t, sqlite.Options{Path: filepath.Join(t.TempDir(), "db.sqlite")})
	rec, err := runScript(t.Context(), e, "select 1; select * from nosuch; select 3")
	if err == nil {
		t.Fatal("script with a missing table succeeded")
	}
	last := rec.progress[len(rec.progress)-1].info[0]
	if last.FailedTasks != 1 {
		t.Errorf("failedTasks %d, want 1", last.FailedTasks)
	}
	if last.SucceedTasks != 1 {
		t.Errorf("succeedTasks %d, want 1", last.SucceedTasks)
	}
}
