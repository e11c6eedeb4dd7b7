//go:build !linux

package shell

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
)

// errUnsupported is returned on systems where the engine does not manage
// process groups.
var errUnsupported = errors.New("shell engine is supported on Linux only")

func setProcessGroup(*exec.Cmd, *namespaceSetup) error { return errUnsupported }

func signalGroup(int, syscall.Signal) error { return errUnsupported }

func awaitExit(int) error { return errUnsupported }

func probePIDNamespace() (*namespaceSetup, error) { return nil, errUnsupported }

// KillProcessGroup sends SIGKILL to every process of the group pgid on
// Linux. On this system it returns an error.
func KillProcessGroup(pgid int) error {
	return fmt.Errorf("kill process group %d: %w", pgid, errUnsupported)
}
