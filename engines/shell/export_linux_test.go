//go:build linux

package shell

import "syscall"

// NamespaceSysProcAttr returns the attributes that start a process in a
// new PID namespace the way jobs start, but without a new process group.
func NamespaceSysProcAttr() (*syscall.SysProcAttr, error) {
	setup, err := probePIDNamespace()
	if err != nil {
		return nil, err
	}
	attr := sysProcAttr(setup)
	attr.Setpgid = false
	return attr, nil
}
