package shell_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/engines/shell"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRunOutput(t *testing.T) {
	longLine := strings.Repeat("x", 50000)
	cases := []struct {
		name     string
		opts     shell.Options
		code     string
		wantInfo []string
		wantErr  []string
	}{
		{
			name:     "stdout and stderr",
			code:     "echo one; echo two >&2; echo three; echo four >&2",
			wantInfo: []string{"one", "three"},
			wantErr:  []string{"two", "four"},
		},
		{
			name:     "no trailing newline",
			code:     `printf 'a\nb'`,
			wantInfo: []string{"a", "b"},
		},
		{
			name:     "carriage returns",
			code:     `printf 'a\r\nb\r\n'; printf 'c\r' >&2`,
			wantInfo: []string{"a", "b"},
			wantErr:  []string{"c"},
		},
		{
			name:     "empty lines",
			code:     `printf '\n\nx\n'`,
			wantInfo: []string{"", "", "x"},
		},
		{
			name:     "long line truncated",
			opts:     shell.Options{MaxLineBytes: 10},
			code:     "echo 0123456789abcdef; echo 0123456789; echo short",
			wantInfo: []string{"0123456789 [truncated from 16 bytes]", "0123456789", "short"},
		},
		{
			name:     "truncation keeps whole characters",
			opts:     shell.Options{MaxLineBytes: 10},
			code:     `printf 'aaaaaaaaa\342\202\254\r\n'`,
			wantInfo: []string{"aaaaaaaaa [truncated from 12 bytes]"},
		},
		{
			name:     "stderr line truncated",
			opts:     shell.Options{MaxLineBytes: 4},
			code:     "echo abcdefgh >&2",
			wantErr:  []string{"abcd [truncated from 8 bytes]"},
			wantInfo: nil,
		},
		{
			name:     "line longer than read buffer kept",
			code:     "head -c 50000 /dev/zero | tr '\\0' x; echo; echo next",
			wantInfo: []string{longLine, "next"},
		},
		{
			name: "default limit truncates",
			code: "head -c 100000 /dev/zero | tr '\\0' x",
			wantInfo: []string{
				strings.Repeat("x", shell.DefaultMaxLineBytes) + " [truncated from 100000 bytes]",
			},
		},
		{
			name:     "home expands to job directory",
			code:     `test "${HOME}" = "$(pwd)" && echo same`,
			wantInfo: []string{"same"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.WorkDir = t.TempDir()
			rec := mustRun(t, shell.New(&tc.opts), tc.code)

			if got := rec.lines(entrance.LevelInfo); !slices.Equal(got, tc.wantInfo) {
				t.Errorf("info lines = %q; want %q", got, tc.wantInfo)
			}
			if got := rec.lines(entrance.LevelError); !slices.Equal(got, tc.wantErr) {
				t.Errorf("error lines = %q; want %q", got, tc.wantErr)
			}
			if got := rec.lines(entrance.LevelWarn); len(got) != 0 {
				t.Errorf("warn lines = %q; want none", got)
			}
		})
	}
}

func TestRunResultSet(t *testing.T) {
	e := shell.New(&shell.Options{WorkDir: t.TempDir()})
	rec := mustRun(t, e, "echo first; echo oops >&2; echo second")

	sets := rec.resultSets()
	if len(sets) != 1 {
		t.Fatalf("got %d result sets; want 1", len(sets))
	}
	if sets[0].meta.Kind != entrance.ResultText {
		t.Errorf("result kind = %v; want ResultText", sets[0].meta.Kind)
	}
	if !sets[0].closed {
		t.Error("result set not closed")
	}
	if got, want := sets[0].texts(t), []string{"first", "second"}; !slices.Equal(got, want) {
		t.Errorf("rows = %q; want %q", got, want)
	}
}

func TestRunNoStdoutNoResultSet(t *testing.T) {
	e := shell.New(&shell.Options{WorkDir: t.TempDir()})
	rec := mustRun(t, e, "echo only-stderr >&2")

	if n := len(rec.resultSets()); n != 0 {
		t.Errorf("got %d result sets; want 0", n)
	}
}

func TestRunProcessCalls(t *testing.T) {
	e := shell.New(&shell.Options{WorkDir: t.TempDir()})
	rec := mustRun(t, e, "true")

	calls := rec.processCalls()
	if len(calls) != 2 {
		t.Fatalf("Process calls = %v; want a group id, then 0", calls)
	}
	if calls[0] <= 1 {
		t.Errorf("first Process call = %d; want a group id above 1", calls[0])
	}
	if calls[1] != 0 {
		t.Errorf("last Process call = %d; want 0", calls[1])
	}
}

func TestRunManyLines(t *testing.T) {
	const n = 100000
	e := shell.New(&shell.Options{WorkDir: t.TempDir()})
	rec := mustRun(t, e, "seq 1 "+strconv.Itoa(n))

	lines := rec.lines(entrance.LevelInfo)
	if len(lines) != n {
		t.Fatalf("got %d info lines; want %d", len(lines), n)
	}
	for i, line := range lines {
		if line != strconv.Itoa(i+1) {
			t.Fatalf("info line %d = %q; want %q", i, line, strconv.Itoa(i+1))
		}
	}

	sets := rec.resultSets()
	if len(sets) != 1 {
		t.Fatalf("got %d result sets; want 1", len(sets))
	}
	if rows := sets[0].texts(t); !slices.Equal(rows, lines) {
		t.Errorf("result rows (%d) differ from the info lines (%d)", len(rows), len(lines))
	}
}

func TestRunExitStatus(t *testing.T) {
	cases := []struct {
		name       string
		shell      string
		mode       shell.PIDNamespaceMode
		code       string
		wantCode   int
		wantDesc   string
		wantSignal syscall.Signal
	}{
		{name: "exit 3", code: "exit 3", wantCode: 3, wantDesc: "shell exited with code 3"},
		{name: "failing last command", code: "false", wantCode: 1, wantDesc: "shell exited with code 1"},
		{
			name:     "shell not found",
			shell:    "no-such-shell-for-test",
			code:     "true",
			wantCode: 127,
			wantDesc: "shell exited with code 127",
		},
		{
			name:       "killed by signal",
			mode:       shell.PIDNamespaceOff,
			code:       "kill -KILL $$",
			wantCode:   -1,
			wantDesc:   "shell killed by signal 9 (killed)",
			wantSignal: syscall.SIGKILL,
		},
		{
			// The wrapper at PID 1 reports the signal as 128+9.
			name:     "killed by signal in namespace",
			mode:     shell.PIDNamespaceOn,
			code:     "kill -KILL $$",
			wantCode: 137,
			wantDesc: "shell exited with code 137",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mode == shell.PIDNamespaceOn {
				requirePIDNamespace(t)
			}
			e := shell.New(&shell.Options{WorkDir: t.TempDir(), Shell: tc.shell, PIDNamespace: tc.mode})
			_, err := runJob(t, t.Context(), e, tc.code)

			var je *entrance.JobError
			if !errors.As(err, &je) {
				t.Fatalf("Run = %v; want an *entrance.JobError", err)
			}
			if je.Code != entrance.ErrCodeEngineFailed {
				t.Errorf("JobError.Code = %d; want %d", je.Code, entrance.ErrCodeEngineFailed)
			}
			if je.Desc != tc.wantDesc {
				t.Errorf("JobError.Desc = %q; want %q", je.Desc, tc.wantDesc)
			}
			var ee *shell.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("Run = %v; want it to wrap a *shell.ExitError", err)
			}
			if ee.Code != tc.wantCode {
				t.Errorf("ExitError.Code = %d; want %d", ee.Code, tc.wantCode)
			}
			if ee.Signal != tc.wantSignal {
				t.Errorf("ExitError.Signal = %v; want %v", ee.Signal, tc.wantSignal)
			}
		})
	}
}

func TestRunEnvironment(t *testing.T) {
	t.Setenv("ENTRANCE_SECRET_TEST", "secret")
	t.Setenv("ENTRANCE_ALLOWED_TEST", "allowed")
	workDir := t.TempDir()
	e := shell.New(&shell.Options{
		WorkDir: workDir,
		Env:     []string{"ENTRANCE_ALLOWED_TEST", "ENTRANCE_UNSET_TEST"},
		SetEnv:  []string{"ENTRANCE_FIXED_TEST=a=b", "LANG=C", "HOME=/nowhere"},
	})
	rec := mustRun(t, e, "env")

	env := map[string]string{}
	for _, line := range rec.lines(entrance.LevelInfo) {
		name, value, _ := strings.Cut(line, "=")
		env[name] = value
	}
	home := env["HOME"]
	want := map[string]string{
		"PATH":                  shell.DefaultPath,
		"HOME":                  home,
		"PWD":                   home,
		"TMPDIR":                filepath.Join(home, "tmp"),
		"LANG":                  "C",
		"ENTRANCE_ALLOWED_TEST": "allowed",
		"ENTRANCE_FIXED_TEST":   "a=b",
	}
	if filepath.Dir(home) != workDir {
		t.Errorf("HOME = %q; want a directory directly under %q", home, workDir)
	}
	for name, value := range want {
		if got, ok := env[name]; !ok || got != value {
			t.Errorf("%s = %q (set %v); want %q", name, got, ok, value)
		}
	}
	for name := range env {
		if _, ok := want[name]; !ok {
			t.Errorf("job environment has %s=%q; want only %v", name, env[name], slices.Sorted(maps.Keys(want)))
		}
	}
}

func TestRunWorkingDirectory(t *testing.T) {
	workDir := t.TempDir()
	e := shell.New(&shell.Options{WorkDir: workDir})
	code := `pwd; echo "$HOME"; stat -c %a . "$TMPDIR"`

	var dirs []string
	for i := range 2 {
		lines := mustRun(t, e, code).lines(entrance.LevelInfo)
		if len(lines) != 4 {
			t.Fatalf("job %d printed %q; want 4 lines", i, lines)
		}
		dir := lines[0]
		if lines[1] != dir {
			t.Errorf("job %d: HOME = %q; want the working directory %q", i, lines[1], dir)
		}
		if filepath.Dir(dir) != workDir {
			t.Errorf("job %d: working directory %q; want one directly under %q", i, dir, workDir)
		}
		if lines[2] != "700" || lines[3] != "700" {
			t.Errorf("job %d: modes of the directory and TMPDIR = %s, %s; want 700", i, lines[2], lines[3])
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("job %d: working directory still exists after Run (stat: %v)", i, err)
		}
		dirs = append(dirs, dir)
	}
	if dirs[0] == dirs[1] {
		t.Errorf("both jobs ran in %q; want a fresh directory per job", dirs[0])
	}
}

func TestRunCancelledBeforeStart(t *testing.T) {
	workDir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rec, err := runJob(t, ctx, shell.New(&shell.Options{WorkDir: workDir}), "echo never")

	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v; want it to wrap context.Canceled", err)
	}
	if calls := rec.processCalls(); len(calls) != 0 {
		t.Errorf("Process calls = %v; want none", calls)
	}
	assertEmptyDir(t, workDir)
}

func TestRunConcurrentJobs(t *testing.T) {
	e := shell.New(&shell.Options{WorkDir: t.TempDir()})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	recs := make([]*recorder, 8)
	for i := range 8 {
		wg.Go(func() {
			recs[i], errs[i] = runJob(t, t.Context(), e, fmt.Sprintf("echo job %d; echo err %d >&2", i, i))
		})
	}
	wg.Wait()

	for i := range 8 {
		if errs[i] != nil {
			t.Errorf("job %d: Run = %v; want nil", i, errs[i])
			continue
		}
		if got, want := recs[i].lines(entrance.LevelInfo), []string{fmt.Sprintf("job %d", i)}; !slices.Equal(got, want) {
			t.Errorf("job %d: info lines = %q; want %q", i, got, want)
		}
		if got, want := recs[i].lines(entrance.LevelError), []string{fmt.Sprintf("err %d", i)}; !slices.Equal(got, want) {
			t.Errorf("job %d: error lines = %q; want %q", i, got, want)
		}
	}
}

func TestRunOtherShell(t *testing.T) {
	e := shell.New(&shell.Options{WorkDir: t.TempDir(), Shell: "bash"})
	rec, err := runJob(t, t.Context(), e, `echo "${BASH_VERSION:+bash}"`)
	if err != nil {
		var ee *shell.ExitError
		if errors.As(err, &ee) && ee.Code == 127 {
			t.Skip("bash is not installed")
		}
		t.Fatalf("Run = %v; want nil", err)
	}
	if got := rec.lines(entrance.LevelInfo); !slices.Equal(got, []string{"bash"}) {
		t.Errorf("info lines = %q; want [bash]", got)
	}
}

func TestDefaultRunType(t *testing.T) {
	if got := shell.New(nil).DefaultRunType(); got != "sh" {
		t.Errorf("DefaultRunType() = %q; want sh", got)
	}
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	cases := []struct {
		name string
		opts shell.Options
	}{
		{name: "SetEnv without equals sign", opts: shell.Options{SetEnv: []string{"NOVALUE"}}},
		{name: "SetEnv with empty name", opts: shell.Options{SetEnv: []string{"=x"}}},
		{name: "Env name with equals sign", opts: shell.Options{Env: []string{"A=B"}}},
		{name: "empty Env name", opts: shell.Options{Env: []string{""}}},
		{name: "unknown PIDNamespace", opts: shell.Options{PIDNamespace: "yes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("New did not panic")
				}
			}()
			shell.New(&tc.opts)
		})
	}
}

// assertEmptyDir fails the test unless dir has no entries.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	for _, entry := range entries {
		t.Errorf("%s left behind in the work directory", entry.Name())
	}
}

// discard is an entrance.Output that counts lines and drops them.
type discard struct {
	mu    sync.Mutex
	lines int
}

func (d *discard) Log(entrance.Level, string) {
	d.mu.Lock()
	d.lines++
	d.mu.Unlock()
}

func (d *discard) Progress(float64, []entrance.ProgressInfo) {}

func (d *discard) ResultSet(context.Context, entrance.ResultMeta) (entrance.ResultWriter, error) {
	return discardRows{}, nil
}

func (d *discard) Process(int) {}

type discardRows struct{}

func (discardRows) WriteRow(context.Context, []*string) error { return nil }

func (discardRows) Close(context.Context) error { return nil }

func BenchmarkRunEcho(b *testing.B) {
	e := shell.New(&shell.Options{WorkDir: b.TempDir()})
	job := &entrance.Job{ExecID: "exec-bench", Code: "seq 1 10000"}
	b.ReportAllocs()
	for b.Loop() {
		out := &discard{}
		if err := e.Run(b.Context(), job, out); err != nil {
			b.Fatal(err)
		}
		if out.lines != 10000 {
			b.Fatalf("got %d lines; want 10000", out.lines)
		}
	}
}
