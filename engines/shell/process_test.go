//go:build linux

package shell_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/engines/shell"
)

// groupMembers returns the pids of the processes of group pgid that are
// not zombies, read from /proc.
func groupMembers(t *testing.T, pgid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	var pids []int
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + entry.Name() + "/stat")
		if err != nil {
			continue // the process has just ended
		}
		// The command name in parentheses may contain spaces, so the
		// fields are counted from the last ')': state, ppid, pgrp.
		stat := string(data)
		fields := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
		if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// assertGroupGone fails the test if a process of group pgid is still
// alive. Killed children of the shell become zombies until the init process
// reaps them, which may take seconds, so the checks poll for up to 5s. A
// child that was not killed would live 30s.
func assertGroupGone(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(groupMembers(t, pgid)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if pids := groupMembers(t, pgid); len(pids) != 0 {
		t.Errorf("processes %v of group %d are still alive", pids, pgid)
	}

	err := syscall.Kill(-pgid, 0)
	for !errors.Is(err, syscall.ESRCH) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		err = syscall.Kill(-pgid, 0)
	}
	if !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(-%d, 0) = %v; want ESRCH", pgid, err)
	}
}

// waitMembers waits until group pgid has at least n live processes.
func waitMembers(t *testing.T, pgid, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(groupMembers(t, pgid)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("group %d has %v; want at least %d processes", pgid, groupMembers(t, pgid), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startJob runs code on a goroutine and waits until it logs "ready". It
// returns the recorder, the job's process group and Run's result channel.
func startJob(t *testing.T, ctx context.Context, e *shell.Engine, code string) (
	*recorder, int, <-chan error,
) {
	t.Helper()
	rec := newRecorder()
	done := make(chan error, 1)
	go func() {
		done <- e.Run(ctx, &entrance.Job{ExecID: "exec-test", Code: code}, rec)
	}()

	select {
	case <-rec.ready:
	case err := <-done:
		t.Fatalf("Run returned %v before the job logged ready", err)
	case <-time.After(10 * time.Second):
		t.Fatal("job did not log ready within 10s")
	}
	return rec, rec.processCalls()[0], done
}

// receiveResult waits for Run's result and returns it with the time taken.
func receiveResult(t *testing.T, done <-chan error, start time.Time) (error, time.Duration) {
	t.Helper()
	select {
	case err := <-done:
		return err, time.Since(start)
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15s")
		return nil, 0
	}
}

func TestRunCancelKillsGroup(t *testing.T) {
	const grace = 300 * time.Millisecond
	cases := []struct {
		name    string
		code    string
		minTime time.Duration // SIGKILL waits for the grace period
	}{
		{name: "sleeping children", code: "echo ready; sleep 30 & sleep 30"},
		{name: "SIGTERM ignored", code: "trap '' TERM; echo ready; sleep 30 & sleep 30", minTime: grace},
	}
	for _, mode := range namespaceModes(t) {
		for _, tc := range cases {
			t.Run(string(mode)+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				testCancelKillsGroup(t, mode, grace, tc.code, tc.minTime)
			})
		}
	}
}

// testCancelKillsGroup runs code, which starts two sleeps, cancels it and
// checks that Run returned after at least minTime and ended the group.
func testCancelKillsGroup(t *testing.T, mode shell.PIDNamespaceMode, grace time.Duration,
	code string, minTime time.Duration,
) {
	t.Helper()
	workDir := t.TempDir()
	e := shell.New(&shell.Options{WorkDir: workDir, KillGrace: grace, PIDNamespace: mode})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rec, pgid, done := startJob(t, ctx, e, code)
	members := 3 // the shell and both sleeps
	if mode == shell.PIDNamespaceOn {
		members++ // the wrapper sh, PID 1 of the namespace
	}
	waitMembers(t, pgid, members)

	start := time.Now()
	cancel()
	err, elapsed := receiveResult(t, done, start)

	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v; want it to wrap context.Canceled", err)
	}
	if elapsed > grace+3*time.Second {
		t.Errorf("Run returned %v after cancel; want at most %v", elapsed, grace+3*time.Second)
	}
	if elapsed < minTime {
		t.Errorf("Run returned %v after cancel; want SIGKILL only after %v", elapsed, minTime)
	}
	assertGroupGone(t, pgid)
	assertEmptyDir(t, workDir)
	if calls := rec.processCalls(); calls[len(calls)-1] != 0 {
		t.Errorf("Process calls = %v; want 0 last", calls)
	}
}

func TestRunKillsBackgroundChildren(t *testing.T) {
	cases := []struct {
		name string
		code string
	}{
		{name: "child off the pipes", code: "sleep 30 >/dev/null 2>&1 & echo ready"},
		{name: "child holds stdout", code: "(sleep 30; echo late) & echo ready"},
		{name: "child holds stderr", code: "(sleep 30; echo late >&2) >/dev/null & echo ready"},
	}
	for _, mode := range namespaceModes(t) {
		for _, tc := range cases {
			t.Run(string(mode)+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				testKillsBackgroundChildren(t, mode, tc.code)
			})
		}
	}
}

// testKillsBackgroundChildren runs code, which leaves a child running when
// the script ends, and checks that the child was killed.
func testKillsBackgroundChildren(t *testing.T, mode shell.PIDNamespaceMode, code string) {
	t.Helper()
	workDir := t.TempDir()
	e := shell.New(&shell.Options{WorkDir: workDir, PIDNamespace: mode})
	rec, pgid, done := startJob(t, t.Context(), e, code)

	err, elapsed := receiveResult(t, done, time.Now())

	if err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	if elapsed > 4*time.Second {
		t.Errorf("Run took %v after the shell exited; want under 4s", elapsed)
	}
	assertGroupGone(t, pgid)
	assertEmptyDir(t, workDir)
	for _, line := range append(rec.lines(entrance.LevelInfo), rec.lines(entrance.LevelError)...) {
		if line == "late" {
			t.Error("background child ran to the end; want it killed")
		}
	}
}

func TestRunResourceLimits(t *testing.T) {
	e := shell.New(&shell.Options{
		WorkDir:       t.TempDir(),
		CPUSeconds:    7,
		FileSizeBytes: 1000,
		MaxProcesses:  500,
	})
	rec := mustRun(t, e, `grep -E '^Max (cpu time|file size|processes) ' /proc/self/limits`)

	want := map[string]bool{
		"Max cpu time 7 7 seconds":        true,
		"Max file size 1024 1024 bytes":   true,
		"Max processes 500 500 processes": true,
	}
	lines := rec.lines(entrance.LevelInfo)
	for _, line := range lines {
		delete(want, strings.Join(strings.Fields(line), " "))
	}
	for line := range want {
		t.Errorf("limits %q lack %q", lines, line)
	}
}

func TestRunFileSizeLimit(t *testing.T) {
	e := shell.New(&shell.Options{WorkDir: t.TempDir(), FileSizeBytes: 1024})
	rec := mustRun(t, e, "head -c 5000 /dev/zero > f; wc -c < f")

	if got := rec.lines(entrance.LevelInfo); len(got) != 1 || got[0] != "1024" {
		t.Errorf("size of the written file = %q; want [1024]", got)
	}
}

func TestRunCPULimit(t *testing.T) {
	for _, mode := range namespaceModes(t) {
		t.Run(string(mode), func(t *testing.T) {
			e := shell.New(&shell.Options{WorkDir: t.TempDir(), CPUSeconds: 1, PIDNamespace: mode})
			// The limit counts CPU time, which a busy machine hands out
			// slowly, so the wall-clock bound is generous.
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			_, err := runJob(t, ctx, e, "while :; do :; done")

			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("busy loop still ran after 60s; want it stopped after 1s of CPU time")
			}
			var ee *shell.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("Run = %v; want a *shell.ExitError", err)
			}
			assertKilledBy(t, mode, ee, syscall.SIGXCPU, syscall.SIGKILL)
		})
	}
}

// assertKilledBy checks that ee reports one of sigs: as Signal outside a
// namespace, and as exit code 128+sig from the wrapper in one.
func assertKilledBy(t *testing.T, mode shell.PIDNamespaceMode, ee *shell.ExitError, sigs ...syscall.Signal) {
	t.Helper()
	for _, sig := range sigs {
		if mode == shell.PIDNamespaceOff && ee.Signal == sig {
			return
		}
		if mode != shell.PIDNamespaceOff && ee.Signal == 0 && ee.Code == 128+int(sig) {
			return
		}
	}
	t.Errorf("ExitError = %+v in PID namespace mode %s; want one of the signals %v", ee, mode, sigs)
}

func TestKillProcessGroup(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sleep: %v", err)
	}
	pgid := cmd.Process.Pid

	if err := shell.KillProcessGroup(pgid); err != nil {
		t.Errorf("KillProcessGroup(%d) = %v; want nil", pgid, err)
	}
	cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("sleep ended with %v; want SIGKILL", cmd.ProcessState)
	}
	if err := shell.KillProcessGroup(pgid); err != nil {
		t.Errorf("KillProcessGroup of an ended group = %v; want nil", err)
	}
}

func TestKillProcessGroupRejectsInvalidIDs(t *testing.T) {
	for _, pgid := range []int{-5, 0, 1} {
		t.Run(strconv.Itoa(pgid), func(t *testing.T) {
			if err := shell.KillProcessGroup(pgid); err == nil {
				t.Errorf("KillProcessGroup(%d) = nil; want an error", pgid)
			}
		})
	}
}

func TestRunEscapedProcessDoesNotHang(t *testing.T) {
	var logs bytes.Buffer
	e := shell.New(&shell.Options{
		WorkDir:      t.TempDir(),
		PIDNamespace: shell.PIDNamespaceOff,
		Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
	})
	// setsid moves the child into a session and process group of its
	// own, so the group kill misses it and it keeps stdout open.
	code := `setsid sh -c 'echo "escaped $$"; exec sleep 30' & sleep 0.2`
	start := time.Now()
	rec, err := runJob(t, t.Context(), e, code)
	elapsed := time.Since(start)

	for _, line := range rec.lines(entrance.LevelInfo) {
		if pid, ok := strings.CutPrefix(line, "escaped "); ok {
			n, _ := strconv.Atoi(pid)
			t.Cleanup(func() { syscall.Kill(n, syscall.SIGKILL) })
		}
	}
	if err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("Run took %v; want it to stop reading about 2s after the kill", elapsed)
	}
	if !strings.Contains(logs.String(), "shell output not read to the end") {
		t.Errorf("logger output %q; want a warning about the unread output", logs.String())
	}
}
