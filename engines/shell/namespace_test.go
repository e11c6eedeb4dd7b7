//go:build linux

package shell_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/engines/shell"
)

// reapTimeout bounds the wait for killed processes to leave the process
// table, which takes until the init process reaps them.
const reapTimeout = 10 * time.Second

// processesWithArgs returns the pids of the live processes whose command
// line is exactly args, read from /proc. Zombies have an empty command line.
func processesWithArgs(t *testing.T, args ...string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	want := []byte(strings.Join(args, "\x00") + "\x00")
	var pids []int
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + entry.Name() + "/cmdline")
		if err == nil && bytes.Equal(cmdline, want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitForProcess waits until one live process runs args and returns its
// pid. It registers a cleanup that kills the process, so that a test that
// fails leaves nothing behind.
func waitForProcess(t *testing.T, args ...string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := processesWithArgs(t, args...)
		if len(pids) == 1 {
			t.Cleanup(func() { killIfRunning(t, pids[0], args) })
			return pids[0]
		}
		if len(pids) > 1 {
			t.Fatalf("processes %v run %q; want one", pids, args)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no process runs %q after 10s", args)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killIfRunning sends SIGKILL to pid if it still runs args.
func killIfRunning(t *testing.T, pid int, args []string) {
	t.Helper()
	for _, p := range processesWithArgs(t, args...) {
		if p == pid {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// assertNoProcess fails the test unless, within reapTimeout, no live
// process runs args.
func assertNoProcess(t *testing.T, args ...string) {
	t.Helper()
	deadline := time.Now().Add(reapTimeout)
	for len(processesWithArgs(t, args...)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if pids := processesWithArgs(t, args...); len(pids) > 0 {
		t.Errorf("processes %v still run %q; want them killed with the job", pids, args)
	}
}

// releaseScript returns a shell loop that waits until the file path
// exists, which the test creates to let the script exit.
func releaseScript(path string) string {
	return fmt.Sprintf("until [ -e %q ]; do sleep 0.02; done", path)
}

func TestRunNamespaceEndsEscapedProcesses(t *testing.T) {
	cases := []struct {
		name   string
		escape string // starts a process that leaves the job's process group
		cancel bool   // cancel the job instead of letting the script exit
	}{
		{name: "setsid child cancelled", escape: "setsid sleep %s >/dev/null 2>&1 &", cancel: true},
		{name: "setsid child after exit", escape: "setsid sleep %s >/dev/null 2>&1 &"},
		{name: "setsid child holds stdout", escape: "setsid sleep %s &"},
		{name: "double fork cancelled", escape: "(setsid sh -c 'sleep %s &' >/dev/null 2>&1 &)", cancel: true},
		{name: "double fork after exit", escape: "(setsid sh -c 'sleep %s &' >/dev/null 2>&1 &)"},
	}
	for i, tc := range cases {
		for j, mode := range namespaceModes(t) {
			// The fraction makes the command line of each case unique.
			marker := fmt.Sprintf("300.%d%d", i+1, j+1)
			t.Run(string(mode)+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				testEscapedProcess(t, mode, fmt.Sprintf(tc.escape, marker), tc.cancel, marker)
			})
		}
	}
}

// testEscapedProcess runs escape in a job, ends the job and checks that
// the process "sleep marker" ended with it only in a PID namespace.
func testEscapedProcess(t *testing.T, mode shell.PIDNamespaceMode, escape string, cancelJob bool, marker string) {
	t.Helper()
	release := filepath.Join(t.TempDir(), "release")
	e := shell.New(&shell.Options{WorkDir: t.TempDir(), KillGrace: 200 * time.Millisecond, PIDNamespace: mode})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	code := escape + "\necho ready\n" + releaseScript(release)
	_, _, done := startJob(t, ctx, e, code)
	pid := waitForProcess(t, "sleep", marker)

	start := time.Now()
	if cancelJob {
		cancel()
	} else if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatalf("create release file: %v", err)
	}
	err, elapsed := receiveResult(t, done, start)

	if cancelJob && !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v; want it to wrap context.Canceled", err)
	}
	if !cancelJob && err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	if mode == shell.PIDNamespaceOff {
		if got := processesWithArgs(t, "sleep", marker); len(got) != 1 || got[0] != pid {
			t.Errorf("processes running sleep %s = %v; want %d to survive without a namespace", marker, got, pid)
		}
		return
	}
	// The pipes close as the namespace ends, so reading needs no timeout.
	if elapsed > time.Second {
		t.Errorf("Run took %v after the end of the job; want under 1s", elapsed)
	}
	assertNoProcess(t, "sleep", marker)
}

func TestRunNamespaceReapsBeforeReturn(t *testing.T) {
	requirePIDNamespace(t)
	release := filepath.Join(t.TempDir(), "release")
	e := shell.New(&shell.Options{WorkDir: t.TempDir(), PIDNamespace: shell.PIDNamespaceOn})
	code := "setsid sleep 300.91 >/dev/null 2>&1 & sleep 30 >/dev/null 2>&1 & echo ready\n" +
		releaseScript(release)
	_, pgid, done := startJob(t, t.Context(), e, code)
	waitForProcess(t, "sleep", "300.91")

	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatalf("create release file: %v", err)
	}
	err, _ := receiveResult(t, done, time.Now())

	if err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	// The kernel reaps the namespace before its first process exits, so
	// not even zombies are left when Run returns.
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(-%d, 0) right after Run = %v; want ESRCH", pgid, err)
	}
	if pids := processesWithArgs(t, "sleep", "300.91"); len(pids) > 0 {
		t.Errorf("processes %v run sleep 300.91 right after Run; want none", pids)
	}
}

func TestRunNamespaceProcessIDs(t *testing.T) {
	requirePIDNamespace(t)
	e := shell.New(&shell.Options{WorkDir: t.TempDir(), PIDNamespace: shell.PIDNamespaceOn})
	rec := mustRun(t, e, `echo "$$ $PPID"`)

	// The wrapper sh is PID 1 and starts the script's shell first.
	if got := rec.lines(entrance.LevelInfo); len(got) != 1 || got[0] != "2 1" {
		t.Errorf("$$ $PPID = %q; want [2 1]", got)
	}
}

func TestKillProcessGroupEndsNamespace(t *testing.T) {
	requirePIDNamespace(t)
	e := shell.New(&shell.Options{WorkDir: t.TempDir(), PIDNamespace: shell.PIDNamespaceOn})
	code := "setsid sleep 300.92 >/dev/null 2>&1 & echo ready; sleep 30"
	_, pgid, done := startJob(t, t.Context(), e, code)
	waitForProcess(t, "sleep", "300.92")

	// A restarted server has only the recorded group id.
	if err := shell.KillProcessGroup(pgid); err != nil {
		t.Errorf("KillProcessGroup(%d) = %v; want nil", pgid, err)
	}
	err, _ := receiveResult(t, done, time.Now())

	var ee *shell.ExitError
	if !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		t.Errorf("Run = %v; want the wrapper killed by SIGKILL", err)
	}
	assertNoProcess(t, "sleep", "300.92")
}

func TestKillProcessGroupKillsNamespaceInit(t *testing.T) {
	requirePIDNamespace(t)
	attr, err := shell.NamespaceSysProcAttr()
	if err != nil {
		t.Fatalf("NamespaceSysProcAttr: %v", err)
	}
	// Without Setpgid the namespace's first process stays in the test's
	// process group, so only a kill of its pid can end it.
	cmd := exec.Command("/bin/sh", "-c", "setsid sleep 300.93 & wait")
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sh in a PID namespace: %v", err)
	}
	waitForProcess(t, "sleep", "300.93")

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	if err := shell.KillProcessGroup(cmd.Process.Pid); err != nil {
		t.Errorf("KillProcessGroup(%d) = %v; want nil", cmd.Process.Pid, err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Error("sh still runs 5s after KillProcessGroup; want it killed")
		cmd.Process.Kill()
		<-exited
	}

	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("sh ended with %v; want SIGKILL", cmd.ProcessState)
	}
	assertNoProcess(t, "sleep", "300.93")
}

func TestKillProcessGroupSparesOtherProcess(t *testing.T) {
	// The process is neither a group leader nor the first process of a
	// PID namespace, so its pid names nothing that the call may kill.
	cmd := exec.Command("sleep", "300.94")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sleep: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})

	if err := shell.KillProcessGroup(cmd.Process.Pid); err != nil {
		t.Errorf("KillProcessGroup(%d) = %v; want nil", cmd.Process.Pid, err)
	}
	time.Sleep(100 * time.Millisecond)

	// A killed sleep would be an unreaped zombie, which has no command line.
	if pids := processesWithArgs(t, "sleep", "300.94"); len(pids) != 1 || pids[0] != cmd.Process.Pid {
		t.Errorf("processes running sleep 300.94 = %v; want %d alive", pids, cmd.Process.Pid)
	}
}

func TestRunNamespaceUnavailable(t *testing.T) {
	if shell.ProbePIDNamespace() == nil {
		t.Skip("PID namespaces are available here, so jobs cannot fall back")
	}

	t.Run("on", func(t *testing.T) {
		workDir := t.TempDir()
		e := shell.New(&shell.Options{WorkDir: workDir, PIDNamespace: shell.PIDNamespaceOn})
		_, err := runJob(t, t.Context(), e, "echo never")

		if err == nil || !strings.Contains(err.Error(), "create PID namespace") {
			t.Errorf("Run = %v; want an error about the PID namespace", err)
		}
		assertEmptyDir(t, workDir)
	})

	t.Run("auto", func(t *testing.T) {
		var logs bytes.Buffer
		e := shell.New(&shell.Options{
			WorkDir: t.TempDir(),
			Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
		})
		mustRun(t, e, "true")
		mustRun(t, e, "true")

		if n := strings.Count(logs.String(), "without a PID namespace"); n != 1 {
			t.Errorf("logger output %q has %d warnings; want one", logs.String(), n)
		}
	})
}
