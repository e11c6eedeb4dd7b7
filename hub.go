package entrance

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Frame is one encoded push. It is encoded once and the same bytes are
// delivered to every subscribed connection, so no one may modify Data.
type Frame struct {
	Data   []byte
	TaskID int64

	// FirstLine and EndLine bound the log lines of a log push:
	// [FirstLine, EndLine). Both are zero for other pushes.
	FirstLine, EndLine int64

	// Last marks the final push of a job: its terminal status.
	Last bool
}

// Subscriber receives the pushes of the jobs it is subscribed to.
type Subscriber interface {
	// Deliver queues f for sending. It is called by publishing
	// goroutines and must never block: a subscriber that cannot keep up
	// drops itself, not the frame of anyone else.
	Deliver(f *Frame)
}

// Fanout routes the pushes of each job to the subscribers of that job.
// Publish calls for one job come in the order the job produced them, and
// each subscriber receives them in that order. Hub is the in-process
// implementation; a Fanout that spans several instances can replace it.
type Fanout interface {
	Subscribe(taskID int64, s Subscriber)
	Unsubscribe(taskID int64, s Subscriber)
	Publish(f *Frame)
	// Forget drops every subscription of a job that has ended.
	Forget(taskID int64)
}

const hubShards = 64

// Hub is the in-process Fanout. Publishing holds a shard's read lock only
// to find the job's topic and then reads its subscriber list without a
// lock. So publishers share the lock, and a subscribe delays a publish to
// the same shard only while it adds the topic to the map.
type Hub struct {
	shards [hubShards]hubShard
}

type hubShard struct {
	mu     sync.RWMutex
	topics map[int64]*topic
}

// topic is the subscriber list of one job, replaced as a whole on every
// change so that Publish can read it without a lock.
type topic struct {
	mu   sync.Mutex // serializes writers of subs
	subs atomic.Pointer[[]Subscriber]
}

var _ Fanout = (*Hub)(nil)

// NewHub returns an empty Hub.
func NewHub() *Hub {
	h := &Hub{}
	for i := range h.shards {
		h.shards[i].topics = make(map[int64]*topic)
	}
	return h
}

func (h *Hub) shard(taskID int64) *hubShard {
	return &h.shards[uint64(taskID)%hubShards]
}

// Subscribe adds s to the subscribers of a job. Subscribing twice has no
// effect.
func (h *Hub) Subscribe(taskID int64, s Subscriber) {
	sh := h.shard(taskID)
	sh.mu.Lock()
	t := sh.topics[taskID]
	if t == nil {
		t = &topic{}
		t.subs.Store(&[]Subscriber{})
		sh.topics[taskID] = t
	}
	t.mu.Lock()
	sh.mu.Unlock()
	defer t.mu.Unlock()

	old := *t.subs.Load()
	if slices.Contains(old, s) {
		return
	}
	next := make([]Subscriber, len(old), len(old)+1)
	copy(next, old)
	next = append(next, s)
	t.subs.Store(&next)
}

// Unsubscribe removes s from the subscribers of a job.
func (h *Hub) Unsubscribe(taskID int64, s Subscriber) {
	sh := h.shard(taskID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.topics[taskID]
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.subs.Load()
	i := slices.Index(old, s)
	if i < 0 {
		return
	}
	if len(old) == 1 {
		delete(sh.topics, taskID)
		return
	}
	next := slices.Delete(slices.Clone(old), i, i+1)
	t.subs.Store(&next)
}

// Publish delivers f to every subscriber of f.TaskID.
func (h *Hub) Publish(f *Frame) {
	sh := h.shard(f.TaskID)
	sh.mu.RLock()
	t := sh.topics[f.TaskID]
	sh.mu.RUnlock()
	if t == nil {
		return
	}
	for _, s := range *t.subs.Load() {
		s.Deliver(f)
	}
}

// Forget drops the subscriber list of a job.
func (h *Hub) Forget(taskID int64) {
	sh := h.shard(taskID)
	sh.mu.Lock()
	delete(sh.topics, taskID)
	sh.mu.Unlock()
}

// subscribers returns the number of subscribers of a job, for tests.
func (h *Hub) subscribers(taskID int64) int {
	sh := h.shard(taskID)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if t := sh.topics[taskID]; t != nil {
		return len(*t.subs.Load())
	}
	return 0
}
