package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/goentrance/entrance"
	"golang.org/x/sync/errgroup"
)

// floodLine is the line the flood engine logs: 64 bytes with a
// Linkis-style prefix, so that the server classifies it as a real line.
const floodLine = "2024-01-01 00:00:00.000 INFO flood engine output, 64 bytes long."

// floodEngine waits until the tool closes start, then logs lines for
// duration: as fast as its gate lets it, or with interval set, one line
// per interval holding the time of the Log call.
type floodEngine struct {
	start    chan struct{}
	duration time.Duration
	interval time.Duration
	gate     *gate
	emitted  atomic.Int64
}

var _ entrance.Engine = (*floodEngine)(nil)

func (e *floodEngine) Run(ctx context.Context, _ *entrance.Job, out entrance.Output) error {
	select {
	case <-e.start:
	case <-ctx.Done():
		return ctx.Err()
	}
	if e.interval > 0 {
		return e.pace(ctx, out)
	}
	return e.flood(ctx, out)
}

func (e *floodEngine) flood(ctx context.Context, out entrance.Output) error {
	deadline := time.Now().Add(e.duration)
	for n := 0; ; n++ {
		if n%64 == 0 && !time.Now().Before(deadline) {
			return nil
		}
		if err := e.gate.wait(ctx); err != nil {
			return err
		}
		out.Log(entrance.LevelInfo, floodLine)
		e.emitted.Add(1)
	}
}

func (e *floodEngine) pace(ctx context.Context, out entrance.Output) error {
	ticker := time.NewTicker(e.interval)
	defer ticker.Stop()
	deadline := time.Now().Add(e.duration)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
		now := time.Now()
		if !now.Before(deadline) {
			return nil
		}
		out.Log(entrance.LevelInfo, emitPrefix+strconv.FormatInt(now.UnixNano(), 10))
		e.emitted.Add(1)
	}
}

// emitPrefix starts each line of the latency scenario; the emit time in
// Unix nanoseconds follows.
const emitPrefix = "emit "

// watcher is one client that reads the pushes of a job.
type watcher struct {
	r       frameReader
	ordered bool  // check that fromLine grows, as it must from the entrance
	gate    *gate // counts each log push received, or nil

	frames int64 // log pushes received
	bytes  int64
	lines  int64     // the last fromLine minus 1: lines received
	last   time.Time // receipt of the last log push

	capture   *capture // nil except for the watcher whose frames are kept
	latencies []int64  // emit-to-receipt times in ns, when recording
	recording bool
}

// capture keeps copies of log pushes, up to limit bytes, and the terminal
// status push, for the baseline to send.
type capture struct {
	execID     string // of the job whose pushes these are
	limit      int
	size       int
	frames     [][]byte
	final      []byte
	overflowed bool // a push did not fit in limit
}

func newWatchers(conns []*websocket.Conn, ordered bool, g *gate) []*watcher {
	ws := make([]*watcher, len(conns))
	for i, c := range conns {
		ws[i] = &watcher{r: frameReader{ws: c}, ordered: ordered, gate: g}
	}
	return ws
}

// watch reads frames until the job's terminal status push.
func (w *watcher) watch(logPrefix, statusPrefix []byte) error {
	for {
		data, err := w.r.next()
		if err != nil {
			return err
		}
		now := time.Now()
		switch {
		case bytes.HasPrefix(data, logPrefix):
			if err := w.onLog(data, now); err != nil {
				return err
			}
		case bytes.HasPrefix(data, statusPrefix) && isTerminal(data):
			if w.capture != nil {
				w.capture.final = bytes.Clone(data)
			}
			return nil
		}
	}
}

func (w *watcher) onLog(data []byte, now time.Time) error {
	next := fromLine(data)
	if w.ordered && next <= w.lines+1 {
		return fmt.Errorf("log push with fromLine %d after fromLine %d", next, w.lines+1)
	}
	w.lines = next - 1
	w.bytes += int64(len(data))
	w.last = now
	if w.recording {
		w.record(data, now)
	}
	if c := w.capture; c != nil {
		c.keep(data)
	}
	if w.gate != nil {
		w.gate.received(w.frames)
	}
	w.frames++
	return nil
}

// check reports an error unless the capture holds every log push of the
// job and its terminal status push.
func (c *capture) check() error {
	switch {
	case c.overflowed:
		return fmt.Errorf("the job's pushes exceed the %d MiB kept for the baseline: lower -duration",
			c.limit>>20)
	case len(c.frames) == 0 || c.final == nil:
		return errors.New("no frames captured for the baseline")
	}
	return nil
}

func (c *capture) keep(data []byte) {
	if c.overflowed || c.size+len(data) > c.limit {
		c.overflowed = true
		return
	}
	c.frames = append(c.frames, bytes.Clone(data))
	c.size += len(data)
}

var escapedNewline = []byte(`\n`)

// record stores the emit-to-receipt time of each line of a log push.
func (w *watcher) record(data []byte, now time.Time) {
	received := now.UnixNano()
	for line := range bytes.SplitSeq(allLines(data), escapedNewline) {
		stamp, found := bytes.CutPrefix(line, []byte(emitPrefix))
		if !found {
			continue
		}
		if emitted, err := strconv.ParseInt(string(stamp), 10, 64); err == nil {
			w.latencies = append(w.latencies, received-emitted)
		}
	}
}

// watchAll runs every watcher until each has seen the terminal status,
// calling start once they all read. After limit, or when ctx is done, it
// closes the connections and fails. It returns the time start was called.
func watchAll(ctx context.Context, watchers []*watcher, execID string,
	limit time.Duration, start func()) (time.Time, error) {
	logPrefix, statusPrefix := pushPrefix(execID, "log"), pushPrefix(execID, "status")
	var timedOut atomic.Bool
	closeConns := func() {
		for _, w := range watchers {
			w.r.ws.CloseNow()
		}
	}
	timer := time.AfterFunc(limit, func() {
		timedOut.Store(true)
		closeConns()
	})
	defer timer.Stop()
	stop := context.AfterFunc(ctx, closeConns)
	defer stop()

	var g errgroup.Group
	for _, w := range watchers {
		g.Go(func() error { return w.watch(logPrefix, statusPrefix) })
	}
	t0 := time.Now()
	start()
	err := g.Wait()
	switch {
	case timedOut.Load():
		return t0, fmt.Errorf("watchers did not see the job end within %v", limit)
	case ctx.Err() != nil:
		return t0, ctx.Err()
	case err != nil:
		return t0, fmt.Errorf("watch: %w", err)
	}
	return t0, nil
}

// subscribeAll subscribes every watcher to a job.
func subscribeAll(ctx context.Context, watchers []*watcher, execID string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(dialParallel)
	for _, w := range watchers {
		g.Go(func() error { return subscribe(gctx, &w.r, execID) })
	}
	return g.Wait()
}

// totals sums what the watchers received; elapsed runs from t0 to the
// last log push any watcher received.
type totals struct {
	frames, lines, bytes int64
	elapsed              time.Duration
}

func sum(watchers []*watcher, t0 time.Time) totals {
	var t totals
	for _, w := range watchers {
		t.frames += w.frames
		t.lines += w.lines
		t.bytes += w.bytes
		t.elapsed = max(t.elapsed, w.last.Sub(t0))
	}
	return t
}

func (t totals) String() string {
	return fmt.Sprintf("%d frames, %d lines, %d bytes in %v", t.frames, t.lines, t.bytes,
		t.elapsed.Round(time.Millisecond))
}

func (t totals) perSecond(n int64) float64 {
	if t.elapsed <= 0 {
		return 0
	}
	return float64(n) / t.elapsed.Seconds()
}

// checkLines reports an error unless every watcher received want lines.
func checkLines(watchers []*watcher, want int64) error {
	for i, w := range watchers {
		if w.lines != want {
			return fmt.Errorf("watcher %d received %d lines; the engine logged %d", i, w.lines, want)
		}
	}
	if want == 0 {
		return errors.New("the engine logged no lines")
	}
	return nil
}

// gate keeps a publisher at most window log pushes ahead of the slowest
// watcher. Without it a flood would fill the send queue of the slowest
// watcher, and the entrance disconnects a watcher whose queue is full. It
// also keeps the pushes in flight few, as a server with clients that keep
// up has them.
//
// Each push in flight has a slot that counts the watchers yet to receive
// it. The watcher that brings a slot to zero advances delivered and wakes
// the publisher, so waiting costs neither polling nor a scan of every
// watcher.
type gate struct {
	window    int64
	watchers  int32
	slots     []atomic.Int32
	published atomic.Int64 // pushes published
	delivered atomic.Int64 // pushes every watcher has received
	wake      chan struct{}
}

func newGate(window, watchers int) *gate {
	return &gate{
		window:   int64(window),
		watchers: int32(watchers),
		// A publisher may run past the window by the pushes it has
		// underway. The entrance's pump publishes at most nine of them,
		// from the lines pending when the engine stops.
		slots: make([]atomic.Int32, 2*window+64),
		wake:  make(chan struct{}, 1),
	}
}

// publish counts a push before it is published.
func (g *gate) publish() error {
	n := g.published.Load()
	slot := &g.slots[n%int64(len(g.slots))]
	if slot.Load() != 0 {
		return fmt.Errorf("push %d published while push %d is in flight: too many pushes in flight",
			n, n-int64(len(g.slots)))
	}
	slot.Store(g.watchers)
	g.published.Add(1)
	return nil
}

// received records that a watcher has received push i, counted from 0.
func (g *gate) received(i int64) {
	if g.slots[i%int64(len(g.slots))].Add(-1) != 0 {
		return
	}
	for {
		d := g.delivered.Load()
		if d >= i+1 || g.delivered.CompareAndSwap(d, i+1) {
			break
		}
	}
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// wait blocks while window pushes are in flight. Only the publishing
// goroutine calls it.
func (g *gate) wait(ctx context.Context) error {
	for g.published.Load()-g.delivered.Load() >= g.window {
		select {
		case <-g.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
