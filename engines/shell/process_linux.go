//go:build linux

package shell

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"unsafe"
)

// idTypePID is P_PID of waitid(2), which selects the child by its pid.
const idTypePID = 1

// setProcessGroup makes the started process the leader of a new group
// and, unless setup is nil, the first process of a new PID namespace.
func setProcessGroup(cmd *exec.Cmd, setup *namespaceSetup) error {
	cmd.SysProcAttr = sysProcAttr(setup)
	return nil
}

// signalGroup sends sig to every process of the group. A group that no
// longer exists is not an error. It rejects ids below 2, because kill(2)
// reads -1 as every process and 0 as the caller's own group.
func signalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return fmt.Errorf("invalid process group id %d", pgid)
	}
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// signalProcess sends sig to process pid. A process that no longer exists
// is not an error.
func signalProcess(pid int, sig syscall.Signal) error {
	if pid <= 1 {
		return fmt.Errorf("invalid process id %d", pid)
	}
	err := syscall.Kill(pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// awaitExit blocks until the child pid has exited, without reaping it, so
// its pid stays taken until exec.Cmd.Wait is called.
func awaitExit(pid int) error {
	var info [16]uint64 // siginfo_t, 128 bytes, not read
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, idTypePID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return os.NewSyscallError("waitid", errno)
		}
	}
}

// KillProcessGroup sends SIGKILL to every process of the group pgid. A
// group that no longer exists is not an error. A server restarted after a
// crash calls it for the groups that entrance.Output.Process recorded.
//
// When process pgid is the first process of a PID namespace, as the shell
// wrapper of a job that runs in a namespace is, it also sends SIGKILL to
// that process, even if it has left the group. The kernel then kills every
// process of the job's namespace, including those that left the group
// with setsid.
//
// NOTE: once all processes of a recorded group have ended, the kernel may
// reuse its id for an unrelated group or namespace, which this call would
// then kill. Call it early after the restart to keep that window short.
func KillProcessGroup(pgid int) error {
	if err := signalGroup(pgid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill process group %d: %w", pgid, err)
	}
	if !isNamespaceInit(pgid) {
		return nil
	}
	if err := signalProcess(pgid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill PID namespace of process %d: %w", pgid, err)
	}
	return nil
}
