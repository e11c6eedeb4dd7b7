package entrance

import (
	"context"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"
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

// append numbers a line and queues it for the pump. Once a line would
// take the job's text past maxLogBytes, that line and every later one are
// only counted, so the log keeps its first lines without holes. Dropped
// lines never wait for the store.
func (b *logBuffer) append(level Level, text string) {
	text = cutLine(text, b.maxLineBytes)
	b.mu.Lock()
	for b.pumping && !b.closed && !b.overCap(len(text)) && len(b.pending) >= maxPendingLines {
		b.cond.Wait()
	}
	switch {
	case b.closed:
		b.mu.Unlock()
		return
	case b.overCap(len(text)):
		b.dropped++
		b.mu.Unlock()
		return
	}
	b.bytes += int64(len(text))
	b.add(level, text)
	b.mu.Unlock()
	b.signal()
}

// overCap reports whether a line of n bytes is to be dropped. The caller
// holds mu.
func (b *logBuffer) overCap(n int) bool {
	return b.dropped > 0 || (b.maxLogBytes > 0 && b.bytes+int64(n) > b.maxLogBytes)
}

// add appends a numbered line to pending. The caller holds mu.
func (b *logBuffer) add(level Level, text string) {
	b.pending = append(b.pending, LogLine{Number: b.next, Level: level, Text: text})
	b.next++
}

// cutLine keeps the first max bytes of a longer line, cut back to a
// whole UTF-8 character, and appends the number of bytes cut. A max of 0
// keeps every line whole.
func cutLine(text string, max int) string {
	if max <= 0 || len(text) <= max {
		return text
	}
	keep := max
	for keep > 0 && !utf8.RuneStart(text[keep]) {
		keep--
	}
	return fmt.Sprintf("%s... [line cut: %d more bytes]", text[:keep], len(text)-keep)
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

// close stops accepting lines and returns once every line is stored and
// pushed. When lines were dropped, it adds one warn line that counts
// them. A non-empty final becomes the last line, at the error level. These
// two lines are kept past the cap, so that the log always ends with the
// reason.
func (b *logBuffer) close(final string) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	if b.dropped > 0 {
		b.add(LevelWarn, fmt.Sprintf("%d log lines dropped: the job's log reached its cap "+
			"of %d bytes (MaxLogBytes)", b.dropped, b.maxLogBytes))
	}
	if final != "" {
		b.add(LevelError, cutLine(final, b.maxLineBytes))
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
