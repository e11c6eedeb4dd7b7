package entrance

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sync/semaphore"
)

// scheduler holds jobs in Scheduled while the concurrency limits are
// reached. Jobs enter its queue in the order they were submitted, and the
// first queued job whose user is under the limits runs next. So a user's
// jobs start in the order they were sent, and a user at the per-user
// limit does not hold back other users.
type scheduler struct {
	total      *semaphore.Weighted // running jobs; nil: no limit
	maxPerUser int                 // 0: no limit

	mu      sync.Mutex
	perUser map[string]int // running jobs per user
	queue   []*ticket      // waiting jobs, oldest first
	closed  bool           // set by shutdown: no job starts any more
}

// ticket is a job's place in the scheduler.
type ticket struct {
	j        *job
	admitted chan struct{} // closed when the job may run
	position int           // last waitingSize pushed, -1 for none
}

func newScheduler(limits Limits) *scheduler {
	sc := &scheduler{maxPerUser: limits.MaxRunningPerUser, perUser: map[string]int{}}
	if limits.MaxRunning > 0 {
		sc.total = semaphore.NewWeighted(int64(limits.MaxRunning))
	}
	return sc
}

// enqueue gives a job its place in the queue. The server calls it in
// submission order, before the job's goroutine starts.
func (sc *scheduler) enqueue(j *job) *ticket {
	t := &ticket{j: j, admitted: make(chan struct{}), position: -1}
	sc.mu.Lock()
	sc.queue = append(sc.queue, t)
	sc.dispatchLocked()
	sc.mu.Unlock()
	return t
}

// wait blocks until the job may run and returns the function that gives
// its slot back, or the error that ended the wait: the job's context
// cause, or errRequeue once the scheduler is closed.
func (sc *scheduler) wait(t *ticket) (func(), error) {
	select {
	case <-t.admitted:
		return func() { sc.release(t.j.rec.User) }, nil
	case <-t.j.ctx.Done():
	}
	sc.abandon(t)
	return nil, context.Cause(t.j.ctx)
}

// abandon takes a job that will not run out of the scheduler: out of the
// queue, or, if it was admitted meanwhile, it gives its slot back.
func (sc *scheduler) abandon(t *ticket) {
	sc.mu.Lock()
	select {
	case <-t.admitted:
		sc.mu.Unlock()
		sc.release(t.j.rec.User)
		return
	default:
	}
	if i := slices.Index(sc.queue, t); i >= 0 {
		sc.queue = slices.Delete(sc.queue, i, i+1)
	}
	sc.positionsLocked()
	sc.mu.Unlock()
}

func (sc *scheduler) release(user string) {
	sc.mu.Lock()
	if sc.total != nil {
		sc.total.Release(1)
	}
	if sc.perUser[user]--; sc.perUser[user] <= 0 {
		delete(sc.perUser, user)
	}
	sc.dispatchLocked()
	sc.mu.Unlock()
}

// dispatchLocked admits every queued job that the limits allow, oldest
// first, and pushes the new place of the jobs that still wait.
func (sc *scheduler) dispatchLocked() {
	if sc.closed {
		return
	}
	kept := sc.queue[:0]
	for _, t := range sc.queue {
		user := t.j.rec.User
		userFull := sc.maxPerUser > 0 && sc.perUser[user] >= sc.maxPerUser
		if userFull || (sc.total != nil && !sc.total.TryAcquire(1)) {
			kept = append(kept, t)
			continue
		}
		sc.perUser[user]++
		close(t.admitted)
	}
	clear(sc.queue[len(kept):])
	sc.queue = kept
	sc.positionsLocked()
}

// positionsLocked pushes its waitingSize, the number of jobs queued ahead
// of it, to each waiting job whose place changed. Pushing under sc.mu
// keeps a job's waitingSize pushes in order; publishing never blocks.
func (sc *scheduler) positionsLocked() {
	for i, t := range sc.queue {
		if t.position == i {
			continue
		}
		t.position = i
		size := i
		t.j.publish(encodeJobPush(t.j.id, "waitingSize", &jobPush{WaitingSize: &size}))
	}
}

// cancelWaiting closes the scheduler and takes every waiting job out of
// the queue. They stay Scheduled in the store, so that the next server
// start runs them.
func (sc *scheduler) cancelWaiting() {
	sc.mu.Lock()
	sc.closed = true
	waiting := slices.Clone(sc.queue)
	sc.mu.Unlock()
	for _, t := range waiting {
		t.j.cancel(errRequeue)
	}
}

// queued returns the number of waiting jobs.
func (sc *scheduler) queued() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.queue)
}

// admission counts the unfinished jobs of each user against
// Limits.MaxQueuedPerUser.
type admission struct {
	max int

	mu     sync.Mutex
	counts map[string]int
}

func (s *Server) admit(user string) *apiError {
	a := &s.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.max > 0 && a.counts[user] >= a.max {
		return errorf(ReplyError, ErrCodeLimit,
			"%s", fmt.Sprintf("user %q already has %d unfinished jobs, the limit "+
				"(MaxQueuedPerUser) is %d: wait for a job to end", user, a.counts[user], a.max))
	}
	a.counts[user]++
	return nil
}

func (s *Server) release(user string) {
	a := &s.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.counts[user] <= 1 {
		delete(a.counts, user)
		return
	}
	a.counts[user]--
}
