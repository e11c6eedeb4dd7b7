package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/goentrance/entrance"
)

// counter is an engine that logs "line 1" to "line N" with a pause of P
// microseconds after every 10 lines; the job's code is "N P".
type counter struct{}

func (counter) Run(ctx context.Context, job *entrance.Job, out entrance.Output) error {
	var n, pause int
	if _, err := fmt.Sscan(job.Code, &n, &pause); err != nil {
		return fmt.Errorf("read count and pause: %w", err)
	}
	for i := 1; i <= n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		out.Log(entrance.LevelInfo, "line "+strconv.Itoa(i))
		if i%10 == 0 && pause > 0 {
			t := time.NewTimer(time.Duration(pause) * time.Microsecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		out.Progress(float64(i)/float64(n), nil)
	}
	return nil
}

// client submits jobs one after another and follows each over short
// connections.
type client struct {
	cfg     *config
	baseURL string
	user    string
	rng     *rand.Rand
	conns   int
}

func newClient(cfg *config, baseURL, user string, seed uint64) *client {
	return &client{cfg: cfg, baseURL: baseURL, user: user, rng: rand.New(rand.NewPCG(seed, 1))}
}

// jobResult is a client's record of one job: the lines it received and
// the final status.
type jobResult struct {
	taskID   int64
	final    string
	received map[int64]int    // receipts per line number
	texts    map[int64]string // the text of each line received
	seams    int              // pushes that did not start at the line due
	err      error            // error that ended following the job early, or nil
}

// loop submits jobs until submitCtx is done and follows each to its end,
// until hardCtx is done.
func (c *client) loop(submitCtx, hardCtx context.Context) []*jobResult {
	var jobs []*jobResult
	for submitCtx.Err() == nil {
		execID, taskID, err := c.submit(submitCtx)
		if err != nil {
			sleep(submitCtx, 50*time.Millisecond)
			continue
		}
		res := &jobResult{taskID: taskID, received: map[int64]int{}, texts: map[int64]string{}}
		kill := c.rng.Float64() < c.cfg.killRate
		res.err = c.follow(hardCtx, execID, res, kill)
		jobs = append(jobs, res)
	}
	return jobs
}

// submit starts a counter or shell job over a connection of its own.
func (c *client) submit(ctx context.Context) (string, int64, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return "", 0, err
	}
	defer conn.CloseNow()
	n := 1 + c.rng.IntN(c.cfg.maxLines)
	data := map[string]any{"executeApplicationName": "counter",
		"executionCode": fmt.Sprintf("%d %d", n, c.rng.IntN(3000))}
	if c.rng.IntN(5) == 0 {
		data = map[string]any{"executeApplicationName": "shell", "executionCode": fmt.Sprintf(
			"i=1; while [ $i -le %d ]; do echo line $i; i=$((i+1)); "+
				"[ $((i %% 200)) -eq 0 ] && sleep 0.01; done; true", n)}
	}
	if err := send(ctx, conn, "entrance/execute", data); err != nil {
		return "", 0, err
	}
	f, err := read(ctx, conn)
	if err != nil {
		return "", 0, err
	}
	if f.Status != 0 || f.Data.ExecID == "" {
		return "", 0, fmt.Errorf("execute: %s", f.Message)
	}
	return f.Data.ExecID, f.Data.TaskID, nil
}

// follow resumes the job's log on connection after connection until it
// has seen the job end. Then it requests every line after the last one
// it has, once more.
func (c *client) follow(ctx context.Context, execID string, res *jobResult, kill bool) error {
	next := int64(1)
	for ended := false; !ended; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("job %d not followed to its end: %w", res.taskID, err)
		}
		var err error
		ended, err = c.cycle(ctx, execID, res, &next, kill && c.rng.IntN(4) == 0)
		if err != nil {
			return err
		}
	}
	for ctx.Err() == nil {
		last, err := c.readRest(ctx, execID, res, &next)
		if err == nil && last {
			return nil
		}
		if err != nil && !errors.Is(err, errDropped) {
			return err
		}
	}
	return fmt.Errorf("job %d: rest of the log not read: %w", res.taskID, ctx.Err())
}

// errDropped means the connection ended before the reply came.
var errDropped = errors.New("connection dropped")

// cycle runs one connection that reads for a random time. It reports
// whether the job was seen to end.
func (c *client) cycle(ctx context.Context, execID string, res *jobResult, next *int64,
	kill bool) (bool, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		sleep(ctx, 20*time.Millisecond)
		return false, nil
	}
	defer conn.CloseNow()
	sizes := []int{-1, 1, 10, 100}
	send(ctx, conn, "entrance/"+execID+"/log",
		map[string]any{"fromLine": *next, "size": sizes[c.rng.IntN(len(sizes))]})
	send(ctx, conn, "entrance/"+execID+"/status", nil)
	if kill {
		send(ctx, conn, "entrance/"+execID+"/kill", nil)
	}
	graceful := c.rng.IntN(2) == 0
	timer := time.AfterFunc(time.Duration(c.rng.IntN(300))*time.Millisecond, func() {
		if graceful {
			conn.Close(websocket.StatusNormalClosure, "")
		} else {
			conn.CloseNow()
		}
	})
	defer timer.Stop()
	for {
		f, err := read(ctx, conn)
		if err != nil {
			return false, nil // dropped: resume on the next connection
		}
		if strings.HasSuffix(f.Method, "/log") {
			if err := res.take(f, next); err != nil {
				return false, err
			}
			continue
		}
		if strings.HasSuffix(f.Method, "/status") && entrance.Status(f.Data.Status).Terminal() {
			res.final = f.Data.Status
			return true, nil
		}
	}
}

// readRest requests every line from next on and reports whether the
// reply came.
func (c *client) readRest(ctx context.Context, execID string, res *jobResult, next *int64) (bool, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		sleep(ctx, 20*time.Millisecond)
		return false, errDropped
	}
	defer conn.CloseNow()
	send(ctx, conn, "entrance/"+execID+"/log", map[string]any{"fromLine": *next, "size": -1})
	for {
		f, err := read(ctx, conn)
		if err != nil {
			return false, errDropped
		}
		if strings.HasSuffix(f.Method, "/log") {
			if err := res.take(f, next); err != nil {
				return false, err
			}
			if f.Message != "log" {
				return true, nil
			}
		}
	}
}

// take records the lines of a log reply or push, whose fromLine gives the
// number after its last line. Lines should start at next; the report
// counts those that do not.
func (res *jobResult) take(f *frame, next *int64) error {
	if f.Status != 0 {
		return fmt.Errorf("job %d: log request failed: %s", res.taskID, f.Message)
	}
	if len(f.Data.Log) != 4 {
		return fmt.Errorf("job %d: log has %d parts, want 4", res.taskID, len(f.Data.Log))
	}
	var lines []string
	if f.Data.Log[3] != "" {
		lines = strings.Split(f.Data.Log[3], "\n")
	}
	first := f.Data.FromLine - int64(len(lines))
	for i, text := range lines {
		n := first + int64(i)
		res.received[n]++
		res.texts[n] = text
	}
	if first != *next {
		res.seams++
	}
	*next = f.Data.FromLine
	return nil
}

func (c *client) dial(ctx context.Context) (*websocket.Conn, error) {
	h := http.Header{}
	h.Set("Token-Code", soakToken)
	h.Set("Token-User", c.user)
	url := "ws" + strings.TrimPrefix(c.baseURL, "http") + "/api/rest_j/v1/entrance/connect"
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(dialCtx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(64 << 20)
	c.conns++
	return conn, nil
}

// frame is a reply or push as the client decodes it.
type frame struct {
	Method  string `json:"method"`
	Status  int    `json:"status"`
	Message string `json:"message"`
	Data    struct {
		ExecID   string   `json:"execID"`
		TaskID   int64    `json:"taskID"`
		Log      []string `json:"log"`
		FromLine int64    `json:"fromLine"`
		Status   string   `json:"status"`
	} `json:"data"`
}

func send(ctx context.Context, conn *websocket.Conn, method string, data any) error {
	b, err := json.Marshal(map[string]any{"method": "/api/rest_j/v1/" + method, "data": data})
	if err != nil {
		return err
	}
	return conn.Write(ctx, websocket.MessageText, b)
}

func read(ctx context.Context, conn *websocket.Conn) (*frame, error) {
	_, b, err := conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	f := &frame{}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("decode frame: %w", err)
	}
	return f, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
