package shell

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is a started shell, which leads its own process group, may be
// the first process of its own PID namespace, and writes its stdout and
// stderr to pipes.
type process struct {
	cmd    *exec.Cmd
	pgid   int
	stdout *os.File // read end of the stdout pipe
	stderr *os.File // read end of the stderr pipe
}

// startProcess starts cmd in a new process group whose id is the pid of
// the shell and, unless setup is nil, in a new PID namespace. The parent
// closes its copies of the write ends, so a read end reaches EOF once
// every process that inherited the pipe has closed it.
func startProcess(cmd *exec.Cmd, setup *namespaceSetup) (*process, error) {
	if err := setProcessGroup(cmd, setup); err != nil {
		return nil, err
	}

	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create stdout pipe: %w", err)
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutR.Close()
		stdoutW.Close()
		return nil, fmt.Errorf("create stderr pipe: %w", err)
	}

	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	err = cmd.Start()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		return nil, err
	}
	return &process{cmd: cmd, pgid: cmd.Process.Pid, stdout: stdoutR, stderr: stderrR}, nil
}

// wait waits until the shell exits or ctx is cancelled. On cancellation it
// sends SIGTERM to the group and gives the shell up to grace to exit. In
// both cases it then sends SIGKILL to the group, so background children do
// not outlive the job, and reaps the shell. The shell is still an unreaped
// zombie when the group is killed, so no other process can have taken its
// pid, which is the group id, in between.
//
// When the shell is PID 1 of its own namespace, the kernel kills every
// other process of the namespace as the shell exits, and the shell becomes
// a zombie only after they have all ended and been reaped.
//
// NOTE: a process of the namespace in uninterruptible sleep (state D)
// keeps the shell from ending, and so keeps wait waiting, until it wakes.
func (p *process) wait(ctx context.Context, grace time.Duration) (
	state *os.ProcessState, cancelled bool, err error,
) {
	exited := make(chan error, 1)
	go func() { exited <- awaitExit(p.pgid) }()

	var awaitErr error
	received := false
	select {
	case awaitErr = <-exited:
		received = true
	case <-ctx.Done():
		cancelled = true
		signalGroup(p.pgid, syscall.SIGTERM)
		received, awaitErr = receiveWithin(exited, grace)
	}

	// Signal errors are ignored, because the group is then either gone or
	// ends with the shell, and Wait below reports how the shell ended.
	signalGroup(p.pgid, syscall.SIGKILL)
	if !received {
		awaitErr = <-exited
	}

	// Wait returns an *exec.ExitError for a non-zero exit, which
	// exitStatus reads from ProcessState instead.
	waitErr := p.cmd.Wait()
	if p.cmd.ProcessState == nil {
		return nil, cancelled, waitErr
	}
	if awaitErr != nil {
		return nil, cancelled, awaitErr
	}
	return p.cmd.ProcessState, cancelled, nil
}

// receiveWithin receives from ch unless timeout passes first.
func receiveWithin(ch <-chan error, timeout time.Duration) (bool, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-ch:
		return true, err
	case <-timer.C:
		return false, nil
	}
}

// exitStatus returns nil for a successful exit, else the exit code or the
// signal that ended the shell.
func exitStatus(state *os.ProcessState) *ExitError {
	if state.Success() {
		return nil
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &ExitError{Code: -1, Signal: ws.Signal()}
	}
	return &ExitError{Code: state.ExitCode()}
}
