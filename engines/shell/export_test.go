package shell

// ProbePIDNamespace returns nil when this process can start jobs in PID
// namespaces, or the reason why it cannot.
func ProbePIDNamespace() error {
	_, err := probePIDNamespace()
	return err
}
