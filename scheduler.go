package entrance

import (
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sync/semaphore"
)

// scheduler holds jobs in Scheduled while the concurrency limits are
// reached, and tells each waiting job its place in the queue. Jobs are
// admitted in the order they started waiting.
type scheduler struct {
	total   *semaphore.Weighted // nil: no total limit
	perUser int64               // 0: no per-user limit

	mu      sync.Mutex
	users   map[string]*semaphore.Weighted
	waiting []*job // in arrival order
	closed  bool   // set by shutdown: no job starts any more
}

func newScheduler(limits Limits) *scheduler {
	sc := &scheduler{perUser: int64(limits.MaxRunningPerUser), users: map[string]*semaphore.Weighted{}}
	if limits.MaxRunning > 0 {
		sc.total = semaphore.NewWeighted(int64(limits.MaxRunning))
	}
	return sc
}

// acquire blocks until the job may run or its context is cancelled, and
// returns the function that gives its slot back.
func (sc *scheduler) acquire(j *job) (func(), error) {
	userSem := sc.userSemaphore(j.rec.User)
	if !sc.enqueue(j) {
		return nil, errRequeue
	}
	defer sc.dequeue(j)
	if userSem != nil {
		if err := userSem.Acquire(j.ctx, 1); err != nil {
			return nil, err
		}
	}
	if sc.total != nil {
		if err := sc.total.Acquire(j.ctx, 1); err != nil {
			if userSem != nil {
				userSem.Release(1)
			}
			return nil, err
		}
	}
	return func() { sc.releaseSlot(userSem) }, nil
}

func (sc *scheduler) releaseSlot(userSem *semaphore.Weighted) {
	if sc.total != nil {
		sc.total.Release(1)
	}
	if userSem != nil {
		userSem.Release(1)
	}
}

func (sc *scheduler) userSemaphore(user string) *semaphore.Weighted {
	if sc.perUser <= 0 {
		return nil
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sem := sc.users[user]
	if sem == nil {
		sem = semaphore.NewWeighted(sc.perUser)
		sc.users[user] = sem
	}
	return sem
}

// enqueue adds a job to the waiting queue and pushes its position. It
// reports false once the scheduler is closed.
func (sc *scheduler) enqueue(j *job) bool {
	sc.mu.Lock()
	if sc.closed {
		sc.mu.Unlock()
		return false
	}
	sc.waiting = append(sc.waiting, j)
	size := len(sc.waiting) - 1
	sc.mu.Unlock()
	if size > 0 {
		pushWaitingSize(j, size)
	}
	return true
}

// cancelWaiting closes the scheduler and takes every waiting job out of
// the queue. They stay Scheduled in the store, so that the next server
// start runs them.
func (sc *scheduler) cancelWaiting() {
	sc.mu.Lock()
	sc.closed = true
	waiting := slices.Clone(sc.waiting)
	sc.mu.Unlock()
	for _, j := range waiting {
		j.cancel(errRequeue)
	}
}

// dequeue removes a job from the waiting queue and pushes the new
// position of every job that was behind it.
func (sc *scheduler) dequeue(j *job) {
	sc.mu.Lock()
	i := slices.Index(sc.waiting, j)
	if i < 0 {
		sc.mu.Unlock()
		return
	}
	sc.waiting = slices.Delete(sc.waiting, i, i+1)
	behind := slices.Clone(sc.waiting[i:])
	sc.mu.Unlock()
	for k, other := range behind {
		pushWaitingSize(other, i+k)
	}
}

// queued returns the number of waiting jobs.
func (sc *scheduler) queued() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.waiting)
}

func pushWaitingSize(j *job, size int) {
	j.publish(encodeJobPush(j.id, "waitingSize", &jobPush{WaitingSize: &size}))
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
