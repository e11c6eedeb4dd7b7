package entrance_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/engines/shell"
)

// withShell replaces the shell engine of a test server.
func withShell(opts *shell.Options) func(*entrance.Options) {
	return func(o *entrance.Options) {
		if opts.KillGrace == 0 {
			opts.KillGrace = 200 * time.Millisecond
		}
		o.Engines["shell"] = shell.New(opts)
	}
}

// shellVariables are the variables a job's environment may hold: those
// the engine sets and those sh sets itself.
var shellVariables = []string{"PATH", "LANG", "HOME", "PWD", "TMPDIR", "OLDPWD", "SHLVL", "_"}

func TestShellJobEnvironmentScrubbed(t *testing.T) {
	const secret = "server-secret-5b1e7c"
	t.Setenv("ENTRANCE_TEST_SECRET", secret)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	e := newEnv(t, nil)
	_, _, ev := e.dial("alice").runToEnd("shell", "env")
	if got := ev.final.field(t, "status"); got != "Succeed" {
		t.Fatalf("env ended %v: %s", got, ev.final.raw)
	}
	if len(ev.lines) == 0 {
		t.Fatal("env printed nothing")
	}

	jobEnv := map[string]string{}
	for _, line := range ev.lines {
		if strings.Contains(line, secret) {
			t.Errorf("job sees a secret of the server: %q", line)
		}
		name, value, _ := strings.Cut(line, "=")
		jobEnv[name] = value
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, found := jobEnv[name]; found && !slices.Contains(shellVariables, name) {
			t.Errorf("job sees the server's variable %s", name)
		}
	}
	if got := jobEnv["PATH"]; got != shell.DefaultPath {
		t.Errorf("job PATH %q, want %q", got, shell.DefaultPath)
	}
}

func TestShellJobDirectoryFreshAndRemoved(t *testing.T) {
	workDir := t.TempDir()
	e := newEnv(t, withShell(&shell.Options{WorkDir: workDir}))
	c := e.dial("alice")

	_, _, first := c.runToEnd("shell", "pwd; echo left > leftover; mkdir -p a/b; chmod 0 a")
	_, _, second := c.runToEnd("shell", "pwd; ls -A")
	for name, ev := range map[string]*jobEvents{"first": first, "second": second} {
		if got := ev.final.field(t, "status"); got != "Succeed" {
			t.Fatalf("%s job ended %v: %s", name, got, ev.final.raw)
		}
	}

	firstDir, secondDir := first.lines[0], second.lines[0]
	if firstDir == secondDir {
		t.Errorf("both jobs ran in %s", firstDir)
	}
	for _, dir := range []string{firstDir, secondDir} {
		if filepath.Dir(dir) != workDir {
			t.Errorf("job directory %s is not in %s", dir, workDir)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("job directory %s not removed: %v", dir, err)
		}
	}
	if got := second.lines[1:]; !slices.Equal(got, []string{"script.sh", "tmp"}) {
		t.Errorf("second job's directory contains %q, want only its script and tmp", got)
	}
	if left, _ := os.ReadDir(workDir); len(left) != 0 {
		t.Errorf("work directory not empty after the jobs: %v", left)
	}
}

// treeScript starts a tree of processes, some ignoring SIGTERM, and waits.
const treeScript = `trap '' TERM
sh -c 'trap "" TERM; sleep 60 & sleep 60' &
(trap '' TERM; sleep 60 & wait) &
nohup sleep 60 >/dev/null 2>&1 &
echo started
wait`

func TestShellKillEndsProcessTree(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	execID, taskID := c.execute("shell", treeScript)
	pgid := e.processGroupOf(taskID)

	if kill, _ := c.call("entrance/"+execID+"/kill", nil); kill.Status != 0 {
		t.Fatalf("kill: %s", kill.raw)
	}
	ev := c.follow(execID, nil)
	if got := ev.final.field(t, "status"); got != "Cancelled" {
		t.Fatalf("killed job ended %v", got)
	}
	checkGroupGone(t, pgid)
}

func TestShellShutdownEndsProcessTree(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	_, taskID := c.execute("shell", treeScript)
	pgid := e.processGroupOf(taskID)

	e.stop()
	checkGroupGone(t, pgid)
}

func TestShellJobLimits(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) {
		withShell(&shell.Options{FileSizeBytes: 4096, MaxLineBytes: 100})(o)
		o.Limits.MaxLogBytes = 20_000
	})
	c := e.dial("alice")

	t.Run("file size", func(t *testing.T) {
		c.t = t
		_, _, ev := c.runToEnd("shell", "head -c 100000 /dev/zero > big")
		if got := ev.final.field(t, "status"); got != "Failed" {
			t.Fatalf("job writing past the file size limit ended %v", got)
		}
	})
	t.Run("line length", func(t *testing.T) {
		c.t = t
		_, _, ev := c.runToEnd("shell", "head -c 5000 /dev/zero | tr '\\0' x; echo")
		if len(ev.lines) != 1 {
			t.Fatalf("got %d lines, want 1", len(ev.lines))
		}
		if line := ev.lines[0]; len(line) > 200 || !strings.Contains(line, "truncated from 5000 bytes") {
			t.Errorf("long line kept as %d bytes: %.200q", len(line), line)
		}
	})
	t.Run("log size", func(t *testing.T) {
		c.t = t
		const script = "i=0; while [ $i -lt 2000 ]; do echo line-$i-padding; i=$((i+1)); done"
		_, _, ev := c.runToEnd("shell", script)
		total := 0
		for _, line := range ev.lines {
			total += len(line)
		}
		if total > 21_000 {
			t.Errorf("log contains %d bytes, want about 20000", total)
		}
		if last := ev.lines[len(ev.lines)-1]; !strings.Contains(last, "dropped") {
			t.Errorf("last line %q does not count the dropped lines", last)
		}
	})
}

func TestSqliteFileAccessDenied(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	cases := []struct {
		name    string
		code    string
		mention []string
	}{
		{"attach", "ATTACH '/etc/passwd' AS x", []string{"ATTACH", "not allowed"}},
		{"attach in script", "SELECT 1;\nATTACH DATABASE 'file:/etc/passwd?mode=ro' AS x;",
			[]string{"ATTACH", "not allowed"}},
		{"vacuum into", "VACUUM INTO '" + copyPath + "'", []string{"VACUUM INTO", "not allowed"}},
		{"load_extension", "SELECT load_extension('x')", []string{"load_extension", "not allowed"}},
		{"database path", "PRAGMA database_list", []string{"database_list", "pragmas are allowed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			_, _, ev := c.runToEnd("sqlite", tc.code)
			if got := ev.final.field(t, "status"); got != "Failed" {
				t.Fatalf("%s ended %v", tc.code, got)
			}
			desc, _ := ev.final.field(t, "errDesc").(string)
			for _, want := range tc.mention {
				if !strings.Contains(desc, want) {
					t.Errorf("errDesc %q does not mention %q", desc, want)
				}
			}
		})
	}
	if _, err := os.Stat(copyPath); !os.IsNotExist(err) {
		t.Errorf("VACUUM INTO wrote %s: %v", copyPath, err)
	}
}
