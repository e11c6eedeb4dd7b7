package entrance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/goentrance/entrance"
)

// counterEngine logs "line 1" to "line N", N being the job's code, in
// bursts of burst lines with pause between bursts.
type counterEngine struct {
	burst int
	pause time.Duration
}

func (e *counterEngine) Run(ctx context.Context, job *entrance.Job, out entrance.Output) error {
	n, err := strconv.Atoi(strings.TrimSpace(job.Code))
	if err != nil {
		return fmt.Errorf("read line count: %w", err)
	}
	for i := 1; i <= n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		out.Log(entrance.LevelInfo, "line "+strconv.Itoa(i))
		if e.burst > 0 && i%e.burst == 0 {
			sleepCtx(ctx, e.pause)
		}
	}
	return nil
}

// floodEngine logs lines of lineBytes bytes, burst lines at a time with
// pause between bursts, until stop is closed or maxLines lines are logged.
type floodEngine struct {
	lineBytes int
	burst     int
	pause     time.Duration
	maxLines  int
	stop      chan struct{}
	logged    chan int // receives the number of lines logged, once
}

func (e *floodEngine) Run(ctx context.Context, job *entrance.Job, out entrance.Output) error {
	pad := strings.Repeat("x", e.lineBytes-11)
	n := 0
	defer func() { e.logged <- n }()
	for n < e.maxLines {
		select {
		case <-e.stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		n++
		out.Log(entrance.LevelInfo, fmt.Sprintf("%010d %s", n, pad))
		if n%e.burst == 0 {
			sleepCtx(ctx, e.pause)
		}
	}
	return nil
}

// echoEngine logs each line of the job's code.
type echoEngine struct{}

func (echoEngine) Run(ctx context.Context, job *entrance.Job, out entrance.Output) error {
	for line := range strings.SplitSeq(job.Code, "\n") {
		out.Log(entrance.LevelInfo, line)
	}
	return nil
}

// blockEngine runs until its job is cancelled.
type blockEngine struct{}

func (blockEngine) Run(ctx context.Context, job *entrance.Job, out entrance.Output) error {
	out.Log(entrance.LevelInfo, "blocking")
	<-ctx.Done()
	return ctx.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// wireFrame is a reply or push as a resuming client decodes it.
type wireFrame struct {
	Method  string `json:"method"`
	Status  int    `json:"status"`
	Message string `json:"message"`
	Data    struct {
		Log      []string `json:"log"`
		FromLine int64    `json:"fromLine"`
		Status   string   `json:"status"`
		ErrDesc  string   `json:"errDesc"`
	} `json:"data"`
}

// lineTracker checks that a client receives "line 1" to "line total"
// exactly once and in order, and then the terminal status.
type lineTracker struct {
	total int64
	next  int64 // number of the next line expected
	final string
	count []int // receipts per line number
}

func newLineTracker(total int64) *lineTracker {
	return &lineTracker{total: total, next: 1, count: make([]int, total+1)}
}

// take checks the lines of a log reply or push, which must start at the
// line expected next, and then its fromLine.
func (lt *lineTracker) take(f *wireFrame) error {
	if len(f.Data.Log) != 4 {
		return fmt.Errorf("log frame has %d parts, want 4", len(f.Data.Log))
	}
	if all := f.Data.Log[3]; all != "" {
		for _, line := range strings.Split(all, "\n") {
			if want := "line " + strconv.FormatInt(lt.next, 10); line != want {
				return fmt.Errorf("got %q, want %q", line, want)
			}
			lt.count[lt.next]++
			lt.next++
		}
	}
	if f.Data.FromLine != lt.next {
		return fmt.Errorf("fromLine %d after line %d, want %d", f.Data.FromLine, lt.next-1, lt.next)
	}
	return nil
}

// end checks a terminal status: every line must have come before it.
func (lt *lineTracker) end(f *wireFrame) error {
	lt.final = f.Data.Status
	if lt.next != lt.total+1 {
		return fmt.Errorf("status %s after line %d of %d", f.Data.Status, lt.next-1, lt.total)
	}
	return nil
}

// missingOrRepeated returns the first line not received exactly once, or
// 0.
func (lt *lineTracker) missingOrRepeated() int64 {
	for n := int64(1); n <= lt.total; n++ {
		if lt.count[n] != 1 {
			return n
		}
	}
	return 0
}

// handle routes a frame about the tracked job: log replies and pushes,
// status replies and pushes. It reports whether the client is done: it
// has every line and has seen that the job ended.
func (lt *lineTracker) handle(f *wireFrame) (bool, error) {
	switch {
	case f.Status != 0:
		return false, fmt.Errorf("error frame: %s: %s", f.Method, f.Message)
	case strings.HasSuffix(f.Method, "/log"):
		return false, lt.take(f)
	case !strings.HasSuffix(f.Method, "/status") || !entrance.Status(f.Data.Status).Terminal():
		return false, nil
	case f.Message == "status":
		return true, lt.end(f)
	}
	// A terminal status reply means the job has ended. A job that is no
	// longer live sends no more pushes, so the client pages through the
	// rest.
	lt.final = f.Data.Status
	return lt.next == lt.total+1, nil
}

// wsDial opens a connection as user without a *testing.T, so that it can
// run on goroutines.
func wsDial(ctx context.Context, baseURL, user string) (*websocket.Conn, error) {
	h := http.Header{}
	h.Set("Token-Code", testTokens[user])
	h.Set("Token-User", user)
	url := "ws" + strings.TrimPrefix(baseURL, "http") + connectPath
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(64 << 20)
	return conn, nil
}

// wsSend writes one request frame.
func wsSend(ctx context.Context, conn *websocket.Conn, method string, data any) error {
	b, err := json.Marshal(map[string]any{"method": "/api/rest_j/v1/" + method, "data": data})
	if err != nil {
		return err
	}
	return conn.Write(ctx, websocket.MessageText, b)
}

// wsRead reads and decodes one frame.
func wsRead(ctx context.Context, conn *websocket.Conn) (*wireFrame, error) {
	_, b, err := conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	f := &wireFrame{}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("decode frame %.200s: %w", b, err)
	}
	return f, nil
}

// logRecorder is a slog.Handler that keeps the records it receives, as
// their message followed by their attributes, and signals each new one.
type logRecorder struct {
	mu       sync.Mutex
	messages []string
	added    chan struct{}
}

func newLogRecorder() *logRecorder {
	return &logRecorder{added: make(chan struct{}, 1)}
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	text := rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		text += " " + a.String()
		return true
	})
	r.mu.Lock()
	r.messages = append(r.messages, text)
	r.mu.Unlock()
	select {
	case r.added <- struct{}{}:
	default:
	}
	return nil
}

// wait blocks until a record that contains every one of parts arrives
// or ctx is done.
func (r *logRecorder) wait(ctx context.Context, parts ...string) bool {
	for {
		r.mu.Lock()
		for _, m := range r.messages {
			if containsAll(m, parts) {
				r.mu.Unlock()
				return true
			}
		}
		r.mu.Unlock()
		select {
		case <-r.added:
		case <-ctx.Done():
			return false
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
