package shell_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/engines/shell"
)

// logLine is one call of Output.Log.
type logLine struct {
	level entrance.Level
	text  string
}

// recorder is an entrance.Output that keeps everything a job sends. It is
// safe for concurrent use. The channel ready is closed at the first log
// line "ready".
type recorder struct {
	ready     chan struct{}
	readyOnce sync.Once

	mu       sync.Mutex
	logs     []logLine
	progress []float64
	sets     []*resultSet
	pgids    []int
}

func newRecorder() *recorder {
	return &recorder{ready: make(chan struct{})}
}

func (r *recorder) Log(level entrance.Level, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, logLine{level, line})
	if line == "ready" {
		r.readyOnce.Do(func() { close(r.ready) })
	}
}

func (r *recorder) Progress(fraction float64, _ []entrance.ProgressInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, fraction)
}

func (r *recorder) ResultSet(_ context.Context, meta entrance.ResultMeta) (entrance.ResultWriter, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := &resultSet{rec: r, meta: meta}
	r.sets = append(r.sets, set)
	return set, nil
}

func (r *recorder) Process(pgid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pgids = append(r.pgids, pgid)
}

// lines returns the text of the log lines at level, in order.
func (r *recorder) lines(level entrance.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.logs {
		if l.level == level {
			out = append(out, l.text)
		}
	}
	return out
}

func (r *recorder) processCalls() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pgids)
}

// resultSets returns a copy of the result sets with their rows.
func (r *recorder) resultSets() []resultSet {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []resultSet
	for _, s := range r.sets {
		out = append(out, resultSet{meta: s.meta, rows: slices.Clone(s.rows), closed: s.closed})
	}
	return out
}

// resultSet records the rows written to one result set.
type resultSet struct {
	rec    *recorder
	meta   entrance.ResultMeta
	rows   [][]*string
	closed bool
}

func (s *resultSet) WriteRow(_ context.Context, row []*string) error {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if s.closed {
		return errors.New("write to closed result set")
	}
	s.rows = append(s.rows, slices.Clone(row))
	return nil
}

func (s *resultSet) Close(context.Context) error {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	s.closed = true
	return nil
}

// texts returns the single value of each row.
func (s resultSet) texts(t *testing.T) []string {
	t.Helper()
	var out []string
	for i, row := range s.rows {
		if len(row) != 1 || row[0] == nil {
			t.Fatalf("row %d has %d values; want one non-nil value", i, len(row))
		}
		out = append(out, *row[0])
	}
	return out
}

// runJob runs code on e and returns what the job sent and Run's error.
func runJob(t *testing.T, ctx context.Context, e *shell.Engine, code string) (*recorder, error) {
	t.Helper()
	rec := newRecorder()
	job := &entrance.Job{ExecID: "exec-test", TaskID: 7, User: "tester", Engine: "shell", Code: code}
	return rec, e.Run(ctx, job, rec)
}

// mustRun runs code and fails the test when Run returns an error.
func mustRun(t *testing.T, e *shell.Engine, code string) *recorder {
	t.Helper()
	rec, err := runJob(t, t.Context(), e, code)
	if err != nil {
		t.Fatalf("Run(%q) = %v; want nil", code, err)
	}
	return rec
}

// requirePIDNamespace skips the test, with the reason, when this process
// cannot start jobs in PID namespaces.
func requirePIDNamespace(t *testing.T) {
	t.Helper()
	if err := shell.ProbePIDNamespace(); err != nil {
		t.Skipf("PID namespaces are unavailable to this process: %v", err)
	}
}

// namespaceModes returns the modes that a test can run jobs in here: off,
// and on when the kernel lets this process create PID namespaces.
func namespaceModes(t *testing.T) []shell.PIDNamespaceMode {
	t.Helper()
	if err := shell.ProbePIDNamespace(); err != nil {
		t.Logf("testing without PID namespaces, which are unavailable: %v", err)
		return []shell.PIDNamespaceMode{shell.PIDNamespaceOff}
	}
	return []shell.PIDNamespaceMode{shell.PIDNamespaceOff, shell.PIDNamespaceOn}
}
