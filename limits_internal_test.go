package entrance

import (
	"strconv"
	"testing"
	"time"
)

// fakeClock returns a submitRate with a clock the test moves.
func fakeClock(rate float64, burst int) (*submitRate, *time.Time) {
	now := time.Unix(1_000_000, 0)
	l := newSubmitRate(Limits{SubmitsPerSecond: rate, SubmitBurst: burst}.withDefaults())
	l.now = func() time.Time { return now }
	return l, &now
}

func TestSubmitRateTokenBucket(t *testing.T) {
	l, now := fakeClock(2, 2)
	steps := []struct {
		name    string
		advance time.Duration
		allowed bool
	}{
		{"first of burst", 0, true},
		{"second of burst", 0, true},
		{"bucket empty", 0, false},
		{"half a token later", 250 * time.Millisecond, false},
		{"one token later", 250 * time.Millisecond, true},
		{"empty again", 0, false},
		{"long pause", time.Hour, true},
		{"pause refills only the burst", 0, true},
		{"burst used", 0, false},
	}
	for _, step := range steps {
		*now = now.Add(step.advance)
		aerr := l.allow("alice")
		if got := aerr == nil; got != step.allowed {
			t.Fatalf("%s: allowed %v, want %v (%v)", step.name, got, step.allowed, aerr)
		}
	}
	if aerr := l.allow("bob"); aerr != nil {
		t.Errorf("bob shares alice's bucket: %v", aerr)
	}
}

func TestSubmitRateNoLimit(t *testing.T) {
	l, _ := fakeClock(0, 0)
	for i := range 1000 {
		if aerr := l.allow("alice"); aerr != nil {
			t.Fatalf("submission %d rejected without a limit: %v", i, aerr)
		}
	}
}

func TestSubmitRateSweepsFullBuckets(t *testing.T) {
	l, now := fakeClock(1, 1)
	for i := range minSweep - 1 {
		l.allow("user" + strconv.Itoa(i))
	}
	l.allow("busy")
	if got := len(l.buckets); got != minSweep {
		t.Fatalf("%d buckets before the sweep, want %d", got, minSweep)
	}
	*now = now.Add(time.Second)
	l.allow("busy") // refilled one token and took it: not full
	l.allow("newcomer")
	if got := len(l.buckets); got != 2 {
		t.Errorf("%d buckets after the sweep, want 2 (busy, newcomer)", got)
	}
	if l.sweepAt != minSweep {
		t.Errorf("next sweep at %d buckets, want %d", l.sweepAt, minSweep)
	}
}

func TestLimitsDefaultsForNewLimits(t *testing.T) {
	cases := []struct {
		name  string
		in    Limits
		conns int
		rate  float64
		burst int
	}{
		{"zero", Limits{}, 256, 0, 1},
		{"no connection limit", Limits{MaxConnsPerUser: -1}, 0, 0, 1},
		{"burst from rate", Limits{SubmitsPerSecond: 2.5}, 256, 2.5, 3},
		{"explicit burst", Limits{SubmitsPerSecond: 2.5, SubmitBurst: 10}, 256, 2.5, 10},
		{"negative rate", Limits{SubmitsPerSecond: -1}, 256, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.withDefaults()
			if got.MaxConnsPerUser != tc.conns {
				t.Errorf("MaxConnsPerUser %d, want %d", got.MaxConnsPerUser, tc.conns)
			}
			if got.SubmitsPerSecond != tc.rate {
				t.Errorf("SubmitsPerSecond %g, want %g", got.SubmitsPerSecond, tc.rate)
			}
			if got.SubmitBurst != tc.burst {
				t.Errorf("SubmitBurst %d, want %d", got.SubmitBurst, tc.burst)
			}
		})
	}
}

func TestConnCounter(t *testing.T) {
	c := connCounter{max: 2, counts: map[string]int{}}
	for i := range 2 {
		if aerr := c.acquire("alice"); aerr != nil {
			t.Fatalf("connection %d rejected: %v", i+1, aerr)
		}
	}
	if aerr := c.acquire("alice"); aerr == nil {
		t.Fatal("third connection accepted")
	}
	c.release("alice")
	if aerr := c.acquire("alice"); aerr != nil {
		t.Errorf("connection after a release rejected: %v", aerr)
	}
	c.release("alice")
	c.release("alice")
	if len(c.counts) != 0 {
		t.Errorf("counts not emptied: %v", c.counts)
	}
}

func TestNegativeSendQueueTakesDefault(t *testing.T) {
	got := Limits{SendQueue: -1}.withDefaults().SendQueue
	if got != DefaultLimits.SendQueue {
		t.Errorf("SendQueue %d, want the default %d", got, DefaultLimits.SendQueue)
	}
}
