package entrance

// ProgressInfo is the progress of one sub-job (a stage of a query, a step
// of a script), with Linkis's field names.
type ProgressInfo struct {
	ID           string `json:"id"`
	SucceedTasks int    `json:"succeedTasks"`
	FailedTasks  int    `json:"failedTasks"`
	RunningTasks int    `json:"runningTasks"`
	TotalTasks   int    `json:"totalTasks"`
}
