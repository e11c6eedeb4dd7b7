package entrance

import (
	"math"
	"slices"
	"sync"
)

// ProgressInfo is the progress of one sub-job (a stage of a query, a step
// of a script), with Linkis's field names.
type ProgressInfo struct {
	ID           string `json:"id"`
	SucceedTasks int    `json:"succeedTasks"`
	FailedTasks  int    `json:"failedTasks"`
	RunningTasks int    `json:"runningTasks"`
	TotalTasks   int    `json:"totalTasks"`
}

// maxRunningProgress caps the progress of a job that has not succeeded, so
// that 1 always means Succeed.
const maxRunningProgress = 0.99

// progressTracker keeps the progress of one job: a fraction that never goes
// down and the latest counts of each sub-job. It is safe for concurrent
// use.
type progressTracker struct {
	mu       sync.Mutex
	fraction float64
	info     []ProgressInfo // one entry per sub-job ID, in order of appearance
	changed  bool           // not yet pushed
}

// update merges a report from an engine. A report with a fraction of 0 or
// less (or NaN) and sub-job counts gets its fraction from the counts:
// succeeded tasks over total tasks, summed over every sub-job seen so far.
// It reports whether anything changed.
func (t *progressTracker) update(fraction float64, info []ProgressInfo) bool {
	t.mu.Lock()
	defer t.mu.Unlock()

	changed := false
	for _, in := range info {
		i := slices.IndexFunc(t.info, func(p ProgressInfo) bool { return p.ID == in.ID })
		switch {
		case i < 0:
			t.info = append(t.info, in)
			changed = true
		case t.info[i] != in:
			t.info[i] = in
			changed = true
		}
	}
	if math.IsNaN(fraction) || fraction <= 0 {
		fraction = t.fromCounts()
	}
	fraction = min(fraction, maxRunningProgress)
	if fraction > t.fraction {
		t.fraction = fraction
		changed = true
	}
	t.changed = t.changed || changed
	return changed
}

func (t *progressTracker) fromCounts() float64 {
	var done, total int
	for _, p := range t.info {
		done += p.SucceedTasks
		total += p.TotalTasks
	}
	if total <= 0 {
		return 0
	}
	return float64(done) / float64(total)
}

// succeed sets the progress to 1 and marks every sub-job done.
func (t *progressTracker) succeed() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fraction = 1
	for i := range t.info {
		p := &t.info[i]
		p.SucceedTasks = p.TotalTasks - p.FailedTasks
		p.RunningTasks = 0
	}
	t.changed = true
}

// take returns the current progress and whether it changed since the last
// take.
func (t *progressTracker) take() (float64, []ProgressInfo, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	changed := t.changed
	t.changed = false
	return t.fraction, slices.Clone(t.info), changed
}

// snapshot returns the current progress.
func (t *progressTracker) snapshot() (float64, []ProgressInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fraction, slices.Clone(t.info)
}
