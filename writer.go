package entrance

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// writerLinger is how long a writer goroutine waits for more entries once
// its connection's queue is empty before it exits. A connection that
// receives pushes keeps its writer, and an idle connection has neither a
// writer goroutine nor a queue buffer.
const writerLinger = time.Second

// sendQueue is a connection's bounded FIFO of outgoing entries and the
// state of its writer goroutine. Its ring buffer grows as entries arrive,
// up to limit entries, and is released when the writer exits.
type sendQueue struct {
	limit int
	ready chan struct{} // capacity 1: wakes a lingering writer

	mu      sync.Mutex
	buf     []outgoing // ring buffer
	head    int        // index of the oldest entry
	count   int
	running bool // a writer goroutine owns the queue
	stopped bool // the connection is closing: no writer or ping starts
}

func (q *sendQueue) init(limit int) {
	q.limit = limit
	q.ready = make(chan struct{}, 1)
}

// push appends out unless the queue holds limit entries. The caller holds
// mu.
func (q *sendQueue) push(out outgoing) bool {
	if q.count >= q.limit {
		return false
	}
	if q.count == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.count)%len(q.buf)] = out
	q.count++
	return true
}

// grow doubles the buffer, from 8 entries up to limit.
func (q *sendQueue) grow() {
	buf := make([]outgoing, min(max(2*len(q.buf), 8), q.limit))
	n := copy(buf, q.buf[q.head:])
	copy(buf[n:], q.buf[:q.head])
	q.buf, q.head = buf, 0
}

// pop removes the oldest entry.
func (q *sendQueue) pop() (outgoing, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.count == 0 {
		return outgoing{}, false
	}
	out := q.buf[q.head]
	q.buf[q.head] = outgoing{}
	q.head = (q.head + 1) % len(q.buf)
	q.count--
	return out, true
}

// retire ends the writer goroutine's ownership unless entries arrived
// meanwhile, and then releases the buffer. It reports whether the writer
// must exit.
func (q *sendQueue) retire(stop bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.count > 0 && !stop {
		return false
	}
	q.running = false
	q.stopped = q.stopped || stop
	q.buf, q.head, q.count = nil, 0, 0
	return true
}

// enqueue adds an entry to the queue and makes sure that a writer
// goroutine sends it. It reports false when the queue is full. Entries for
// a connection that is closing are dropped.
func (c *wsConn) enqueue(out outgoing) bool {
	q := &c.queue
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		return true
	}
	if !q.push(out) {
		q.mu.Unlock()
		return false
	}
	start := c.wakeWriter()
	q.mu.Unlock()
	if start {
		go c.writeLoop()
	}
	return true
}

// wakeWriter wakes the writer goroutine, or counts a new one in c.writers
// and reports that the caller must start it. The caller holds queue.mu.
func (c *wsConn) wakeWriter() bool {
	q := &c.queue
	if q.stopped {
		return false
	}
	if q.running {
		select {
		case q.ready <- struct{}{}:
		default:
		}
		return false
	}
	q.running = true
	c.writers.Add(1)
	return true
}

// writeLoop sends queued entries until the queue has stayed empty for
// writerLinger, the connection is closed or a write fails. A close request
// wins over queued entries: each turn checks it first. Writes take no
// deadline of their own, because a context with one costs a timer per
// frame. A write stuck on a peer that stopped reading is ended by close,
// which hard-closes the connection after closeGrace.
func (c *wsConn) writeLoop() {
	defer c.writers.Done()
	linger := time.NewTimer(writerLinger)
	defer linger.Stop()
	for {
		if c.closing() {
			c.closeWebSocket()
			c.queue.retire(true)
			return
		}
		if out, ok := c.queue.pop(); ok {
			// sendStored requested a close with reasonLogRead before
			// returning errLogUnavailable, and the next turn carries it out.
			if err := c.write(out); err != nil && !errors.Is(err, errLogUnavailable) {
				c.close(websocket.StatusInternalError, "write failed")
				c.ws.CloseNow()
				c.queue.retire(true)
				return
			}
			continue
		}
		linger.Reset(writerLinger)
		select {
		case <-c.queue.ready:
		case <-c.kick:
		case <-linger.C:
			if c.queue.retire(false) {
				return
			}
		}
	}
}

func (c *wsConn) closing() bool {
	select {
	case <-c.kick:
		return true
	default:
		return false
	}
}

// closeWebSocket ends the connection as close requested. A peer that
// missed a ping is dropped without a close handshake. At a shutdown and
// after an oversized frame, the peer first gets the entries already
// queued: the final status of jobs cancelled by the shutdown, or the
// reply to the frame. Other peers get the close frame at once, because
// they are slow, gone, or would see a gap in the log.
func (c *wsConn) closeWebSocket() {
	switch {
	case c.closeReason == reasonPingTimeout:
		c.ws.CloseNow()
		return
	case c.closeReason == reasonShutdown || c.closeCode == websocket.StatusMessageTooBig:
		c.drain()
	}
	c.ws.Close(c.closeCode, c.closeReason)
}

// drain writes the entries queued at this moment, without waiting for
// more.
func (c *wsConn) drain() {
	c.queue.mu.Lock()
	n := c.queue.count
	c.queue.mu.Unlock()
	for range n {
		out, ok := c.queue.pop()
		if !ok || c.write(out) != nil {
			return
		}
	}
}

// startPings arms the timer that pings the peer every PingInterval.
func (c *wsConn) startPings() {
	c.queue.mu.Lock()
	defer c.queue.mu.Unlock()
	c.pingTimer = time.AfterFunc(c.srv.limits.PingInterval, c.pingTick)
}

// pingTick starts a ping unless one is in flight or the connection is
// closing, and arms the next tick.
func (c *wsConn) pingTick() {
	q := &c.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return
	}
	if c.pinging.CompareAndSwap(false, true) {
		c.pings.Go(c.ping)
	}
	c.pingTimer.Reset(c.srv.limits.PingInterval)
}

// ping checks that the peer is alive. A peer that does not respond with a
// pong within PingTimeout is disconnected. The ping ends early when the
// server cancels its connections.
func (c *wsConn) ping() {
	defer c.pinging.Store(false)
	ctx, cancel := context.WithTimeout(c.srv.connsCtx, c.srv.limits.PingTimeout)
	defer cancel()
	if err := c.ws.Ping(ctx); err != nil && ctx.Err() == context.DeadlineExceeded {
		c.srv.logger.Info("closing connection: ping timed out", "user", c.user,
			"remote", c.remote)
		c.close(websocket.StatusGoingAway, reasonPingTimeout)
	}
}

// stopWriting lets no writer or ping start any more, and waits for those
// that run. Call it after close.
func (c *wsConn) stopWriting() {
	q := &c.queue
	q.mu.Lock()
	q.stopped = true
	q.mu.Unlock()
	c.pingTimer.Stop()
	c.writers.Wait()
	c.pings.Wait()
}
