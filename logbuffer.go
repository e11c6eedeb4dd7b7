package entrance

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Batching of log pushes: a lone line is stored and pushed at once, and
// lines that arrive while a batch is being stored wait for the next batch,
// so batches grow with the load and never wait for a timer.
const (
	maxBatchLines    = 1000      // lines per push frame
	maxBatchBytes    = 256 << 10 // text bytes per push frame
	maxPendingLines  = 8192      // Log blocks beyond this many unstored lines
	progressInterval = 100 * time.Millisecond
)

// logBuffer numbers a job's log lines, applies the caps, and hands them in
// batches to the pump goroutine, which stores them and then pushes them.
type logBuffer struct {
	j *job

	maxLineBytes int
	maxLogBytes  int64

	mu      sync.Mutex
	cond    sync.Cond // signalled when pending shrinks
	pending []LogLine
	next    int64 // number of the next line
	bytes   int64 // bytes of text accepted so far
	dropped int64 // lines dropped by the byte cap
	closed  bool
	pumping bool

	wake     chan struct{} // capacity 1: work for the pump
	pumpDone chan struct{}
}

func (b *logBuffer) init(j *job, storedLines int64, limits Limits) {
	b.j = j
	b.cond.L = &b.mu
	b.next = storedLines + 1
	b.maxLineBytes = limits.MaxLogLineBytes
	b.maxLogBytes = limits.MaxLogBytes
	b.wake = make(chan struct{}, 1)
	b.pumpDone = make(chan struct{})
}

// Log appends a line to the job's log. It implements Output.
func (j *job) Log(level Level, text string) {
	if level == LevelInfo {
		level = classifyLine(text)
	}
	j.log.append(level, text)
}

// Progress records the job's progress. It implements Output.
func (j *job) Progress(fraction float64, info []ProgressInfo) {
	if j.progress.update(fraction, info) {
		j.log.signal()
	}
}

// Process records the job's process group. It implements Output.
func (j *job) Process(pgid int) {
	ctx, cancel := j.srv.storeContext()
	defer cancel()
	if err := j.srv.store.SetProcess(ctx, j.id.taskID, pgid); err != nil {
		j.srv.logger.Error("store process group failed", "execID", j.id.execID,
			"taskID", j.id.taskID, "pgid", pgid, "error", err)
	}
}

func (b *logBuffer) append(level Level, text string) {
	if b.maxLineBytes > 0 && len(text) > b.maxLineBytes {
		cut := len(text) - b.maxLineBytes
		text = fmt.Sprintf("%s... [line cut: %d more bytes]", text[:b.maxLineBytes], cut)
	}
	b.mu.Lock()
	for b.pumping && !b.closed && len(b.pending) >= maxPendingLines {
		b.cond.Wait()
	}
	if b.closed {
		b.mu.Unlock()
		return
	}
	if b.maxLogBytes > 0 && b.bytes+int64(len(text)) > b.maxLogBytes {
		b.dropped++
		b.mu.Unlock()
		return
	}
	b.bytes += int64(len(text))
	b.pending = append(b.pending, LogLine{Number: b.next, Level: level, Text: text})
	b.next++
	b.mu.Unlock()
	b.signal()
}

func (b *logBuffer) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// startPump starts the goroutine that stores and pushes the job's lines.
// The job's run goroutine owns it and stops it with close.
func (b *logBuffer) startPump() {
	b.mu.Lock()
	b.pumping = true
	b.mu.Unlock()
	go b.pump()
	b.signal()
}

func (b *logBuffer) pump() {
	defer close(b.pumpDone)
	var lastProgress time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-b.wake:
		case <-timer.C:
		}
		more := b.flush()
		if !more {
			b.j.pushProgress()
			return
		}
		if wait := progressInterval - time.Since(lastProgress); wait > 0 {
			timer.Reset(wait)
		} else {
			b.j.pushProgress()
			lastProgress = time.Now()
		}
	}
}

// flush stores and pushes every pending line. It returns false once the
// buffer is closed and empty.
func (b *logBuffer) flush() bool {
	for {
		b.mu.Lock()
		batch := b.takeBatch()
		closed := b.closed
		b.cond.Broadcast()
		b.mu.Unlock()
		if len(batch) == 0 {
			return !closed
		}
		b.storeAndPush(batch)
	}
}

// takeBatch removes up to one frame's worth of lines from pending.
func (b *logBuffer) takeBatch() []LogLine {
	n, size := 0, 0
	for n < len(b.pending) && n < maxBatchLines && (n == 0 || size < maxBatchBytes) {
		size += len(b.pending[n].Text)
		n++
	}
	if n == 0 {
		return nil
	}
	batch := make([]LogLine, n)
	copy(batch, b.pending)
	rest := copy(b.pending, b.pending[n:])
	clear(b.pending[rest:])
	b.pending = b.pending[:rest]
	return batch
}

func (b *logBuffer) storeAndPush(batch []LogLine) {
	j := b.j
	ctx, cancel := j.srv.storeContext()
	err := j.srv.store.AppendLog(ctx, j.id.taskID, batch)
	cancel()
	if err != nil {
		// NOTE: lines that cannot be stored are still pushed, so that
		// watchers see them, but a later log request will not return them.
		j.srv.logger.Error("store log lines failed", "execID", j.id.execID,
			"taskID", j.id.taskID, "lines", len(batch), "error", err)
	}
	f := encodeLogPush(j.id, batch)
	j.pubMu.Lock()
	j.stored.Store(f.EndLine - 1)
	if !j.ended {
		j.srv.hub.Publish(f)
	}
	j.pubMu.Unlock()
}

// close stops accepting lines, adds the marker line for dropped lines,
// and returns once everything is stored and pushed.
func (b *logBuffer) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	if b.dropped > 0 {
		marker := fmt.Sprintf("%d log lines dropped: the job's log reached its cap of %d bytes",
			b.dropped, b.maxLogBytes)
		b.pending = append(b.pending, LogLine{Number: b.next, Level: LevelWarn, Text: marker})
		b.next++
	}
	b.closed = true
	pumping := b.pumping
	b.cond.Broadcast()
	b.mu.Unlock()

	if pumping {
		b.signal()
		<-b.pumpDone
		return
	}
	b.flush()
}

// classifyLine returns the level of a line that starts with a Linkis-style
// prefix "yyyy-MM-dd HH:mm:ss.SSS LEVEL ", and LevelInfo otherwise.
func classifyLine(text string) Level {
	const stamp = len("2006-01-02 15:04:05.000 ")
	if len(text) < stamp+4 || text[4] != '-' || text[10] != ' ' || text[13] != ':' ||
		text[19] != '.' || text[stamp-1] != ' ' {
		return LevelInfo
	}
	rest := text[stamp:]
	switch {
	case len(rest) > 5 && rest[:6] == "ERROR ":
		return LevelError
	case len(rest) > 4 && rest[:5] == "WARN ":
		return LevelWarn
	}
	return LevelInfo
}

// storeContext bounds a store write that must happen even when the job's
// own context is cancelled.
func (s *Server) storeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.limits.StoreTimeout)
}
