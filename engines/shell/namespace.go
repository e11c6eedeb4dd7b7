package shell

import "fmt"

// PIDNamespaceMode selects whether each job runs in a PID namespace of its
// own. See Options.PIDNamespace.
type PIDNamespaceMode string

// Values of Options.PIDNamespace.
const (
	// PIDNamespaceAuto uses a PID namespace when the first job finds that
	// the kernel lets the server create one, and process groups alone
	// otherwise. It is the default.
	PIDNamespaceAuto PIDNamespaceMode = "auto"

	// PIDNamespaceOn requires a PID namespace. Run fails without starting
	// the job when none can be created.
	PIDNamespaceOn PIDNamespaceMode = "on"

	// PIDNamespaceOff runs each job in a process group only, so a process
	// that leaves the group (setsid, or a daemon that forks twice) can
	// outlive the job.
	PIDNamespaceOff PIDNamespaceMode = "off"
)

// namespaceSetup says how a job's PID namespace is created.
type namespaceSetup struct {
	// userNS is true when the PID namespace needs a user namespace of its
	// own, because the server lacks CAP_SYS_ADMIN. The user namespace maps
	// only the server's uid and gid.
	userNS bool
}

// validMode reports whether m is one of the PIDNamespace constants.
func validMode(m PIDNamespaceMode) bool {
	switch m {
	case PIDNamespaceAuto, PIDNamespaceOn, PIDNamespaceOff:
		return true
	}
	return false
}

// namespace returns how to create the next job's PID namespace, or nil to
// run the job in a process group only. The kernel is probed once per
// server process, on the first call. In auto mode a failed probe is logged
// once per Engine.
func (e *Engine) namespace() (*namespaceSetup, error) {
	if e.pidNamespace == PIDNamespaceOff {
		return nil, nil
	}

	setup, err := probePIDNamespace()
	if err == nil {
		return setup, nil
	}
	if e.pidNamespace == PIDNamespaceOn {
		return nil, fmt.Errorf("create PID namespace, which Options.PIDNamespace %q requires: %w",
			e.pidNamespace, err)
	}
	e.namespaceWarning.Do(func() {
		e.logger.Warn("shell jobs run without a PID namespace, so processes that leave "+
			"a job's process group can outlive the job", "err", err)
	})
	return nil, nil
}
