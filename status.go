package entrance

// Status is the state of a job, with the names Linkis uses on the wire.
type Status string

// Job statuses. A job moves forward only: Inited, Scheduled, Running, then
// one terminal status.
const (
	StatusInited       Status = "Inited"
	StatusWaitForRetry Status = "WaitForRetry"
	StatusScheduled    Status = "Scheduled"
	StatusRunning      Status = "Running"
	StatusSucceed      Status = "Succeed"
	StatusFailed       Status = "Failed"
	StatusCancelled    Status = "Cancelled"
	StatusTimeout      Status = "Timeout"
)

// Terminal reports whether s ends a job.
func (s Status) Terminal() bool {
	switch s {
	case StatusSucceed, StatusFailed, StatusCancelled, StatusTimeout:
		return true
	}
	return false
}

// rank orders statuses so that a transition can be checked to move forward.
func (s Status) rank() int {
	switch s {
	case StatusInited:
		return 0
	case StatusWaitForRetry:
		return 1
	case StatusScheduled:
		return 2
	case StatusRunning:
		return 3
	case StatusSucceed, StatusFailed, StatusCancelled, StatusTimeout:
		return 4
	}
	return -1
}

// Valid reports whether s is one of the statuses above.
func (s Status) Valid() bool { return s.rank() >= 0 }
