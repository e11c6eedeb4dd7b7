package entrance

import (
	"context"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// reasonConnLimit is the close reason of a connection over
// Limits.MaxConnsPerUser. The status-1 frame sent before it names the
// limit and its value.
const reasonConnLimit = "connection limit reached"

// connCounter counts the open WebSocket connections of each user against
// Limits.MaxConnsPerUser.
type connCounter struct {
	max int // 0: no limit

	mu     sync.Mutex
	counts map[string]int
}

// acquire counts a new connection of user, or returns a status-1 error
// naming the limit when the user already has max connections open.
func (c *connCounter) acquire(user string) *apiError {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.counts[user]
	if c.max > 0 && n >= c.max {
		return errorf(ReplyError, ErrCodeLimit,
			"user %q already has %d open connections, the limit (MaxConnsPerUser) is %d: "+
				"close a connection first", shorten(user, 100), n, c.max)
	}
	c.counts[user] = n + 1
	return nil
}

// release gives back a connection counted by acquire.
func (c *connCounter) release(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts[user] <= 1 {
		delete(c.counts, user)
		return
	}
	c.counts[user]--
}

// rejectConn sends a connection that is over a limit one status-1 frame
// that names the limit, then closes it with code 1008 (policy violation).
// A browser cannot read the body of a rejected upgrade, so the connection
// is accepted first to let the client see why it is closed.
func (s *Server) rejectConn(ws *websocket.Conn, r *http.Request, aerr *apiError) {
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	env := errorEnvelope(r.URL.Path, "", aerr)
	if err := ws.Write(ctx, websocket.MessageText, encodeEnvelope(env)); err != nil {
		ws.CloseNow()
		return
	}
	ws.Close(websocket.StatusPolicyViolation, reasonConnLimit)
}

// submitRate limits how often each user may submit jobs: a token bucket
// per user that contains up to burst tokens and gains rate tokens per
// second. Each submission takes one token.
type submitRate struct {
	rate  float64 // 0: no limit
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	// sweepAt is the number of buckets at which full buckets are dropped,
	// so that the map does not grow with every user name ever seen.
	sweepAt int
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// minSweep is the smallest number of buckets that triggers a sweep.
const minSweep = 1024

func newSubmitRate(limits Limits) *submitRate {
	return &submitRate{
		rate:    limits.SubmitsPerSecond,
		burst:   float64(limits.SubmitBurst),
		now:     time.Now,
		buckets: map[string]*bucket{},
		sweepAt: minSweep,
	}
}

// allow takes a token from the user's bucket, or returns a status-1
// error naming the limit and when to retry.
func (l *submitRate) allow(user string) *apiError {
	if l.rate <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[user]
	if b == nil {
		if len(l.buckets) >= l.sweepAt {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[user] = b
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return nil
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return errorf(ReplyError, ErrCodeLimit,
		"user %q submits jobs too fast, the limit (SubmitsPerSecond) is %g per second "+
			"with bursts of %d (SubmitBurst): retry in %v",
		shorten(user, 100), l.rate, int(l.burst), wait.Round(time.Millisecond))
}

func (l *submitRate) refill(b *bucket, now time.Time) {
	if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
		b.tokens = math.Min(l.burst, b.tokens+elapsed*l.rate)
	}
	b.at = now
}

// sweep drops the buckets that have filled up again: a new bucket starts
// full, so dropping one changes nothing for its user.
func (l *submitRate) sweep(now time.Time) {
	for user, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, user)
		}
	}
	l.sweepAt = max(minSweep, 2*len(l.buckets))
}
