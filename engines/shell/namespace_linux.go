//go:build linux

package shell

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// probe holds the result of probePIDNamespace for the whole process,
// because it depends only on the server's credentials and the kernel.
var probe struct {
	once  sync.Once
	setup *namespaceSetup
	err   error
}

// probePIDNamespace reports how this process can start a job in a new PID
// namespace, or why it cannot. It runs the probe on the first call only.
func probePIDNamespace() (*namespaceSetup, error) {
	probe.once.Do(func() { probe.setup, probe.err = runProbe() })
	return probe.setup, probe.err
}

// runProbe starts a shell that does nothing, first in a new PID namespace,
// which needs CAP_SYS_ADMIN, and then in new user and PID namespaces,
// which an unprivileged user may create unless the system forbids it, for
// example with the sysctl user.max_user_namespaces=0 or a seccomp filter.
func runProbe() (*namespaceSetup, error) {
	pidOnly := namespaceSetup{userNS: false}
	errPID := runInNamespace(&pidOnly)
	if errPID == nil {
		return &pidOnly, nil
	}

	withUser := namespaceSetup{userNS: true}
	errUser := runInNamespace(&withUser)
	if errUser == nil {
		return &withUser, nil
	}
	return nil, fmt.Errorf("start %s in a new PID namespace: %w; "+
		"start it in new user and PID namespaces: %w", wrapperShell, errPID, errUser)
}

// runInNamespace runs "sh -c :" in the namespaces that setup describes.
func runInNamespace(setup *namespaceSetup) error {
	cmd := exec.Command(wrapperShell, "-c", ":")
	cmd.Dir = "/"
	cmd.Env = []string{}
	cmd.SysProcAttr = sysProcAttr(setup)
	return cmd.Run()
}

// sysProcAttr makes the started process the leader of a new process group
// and, unless setup is nil, the first process (PID 1) of a new PID
// namespace. The kernel sends SIGKILL to every other process of that
// namespace when its first process exits.
func sysProcAttr(setup *namespaceSetup) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if setup == nil {
		return attr
	}

	attr.Cloneflags = syscall.CLONE_NEWPID
	if setup.userNS {
		// An unprivileged process may map only its own effective ids,
		// and os/exec denies setgroups(2) in the new namespace, which
		// the kernel requires before it accepts the gid map.
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Geteuid(), HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getegid(), HostID: os.Getegid(), Size: 1}}
	}
	return attr
}

// isNamespaceInit reports whether process pid is the first process of a
// PID namespace below the one that /proc shows. The NSpid line of
// /proc/PID/status (Linux 4.1 and later) lists its pid in each namespace
// from the outermost down, so such a process has more than one entry and
// the last is 1.
func isNamespaceInit(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			ids := strings.Fields(rest)
			return len(ids) > 1 && ids[len(ids)-1] == "1"
		}
	}
	return false
}
