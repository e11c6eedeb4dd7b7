package entrance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/goentrance/entrance"
)

// resumer follows one job over a series of short connections: each one
// requests the log from the next line it lacks, reads for a random time
// and is then dropped, with or without a close handshake.
type resumer struct {
	baseURL string
	execID  string
	rng     *rand.Rand
	lines   *lineTracker

	cycles    int // connections opened
	jobCycles int // connections opened before the job was seen to end
	done      bool
}

func (r *resumer) run(ctx context.Context) error {
	for !r.done {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("after %d connections, at line %d: %w", r.cycles, r.lines.next, err)
		}
		if err := r.cycle(ctx); err != nil {
			return fmt.Errorf("connection %d: %w", r.cycles, err)
		}
	}
	return nil
}

// cycle runs one connection.
func (r *resumer) cycle(ctx context.Context) error {
	conn, err := wsDial(ctx, r.baseURL, "alice")
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	r.cycles++
	if r.lines.final == "" {
		r.jobCycles++
	}

	sizes := []int{1, 7, 100, -1, 0}
	err = wsSend(ctx, conn, "entrance/"+r.execID+"/log", map[string]any{
		"fromLine": r.lines.next, "size": sizes[r.rng.IntN(len(sizes))]})
	if err != nil {
		return err
	}
	if err := wsSend(ctx, conn, "entrance/"+r.execID+"/status", nil); err != nil {
		return err
	}
	graceful := r.rng.IntN(2) == 0
	stop := time.AfterFunc(time.Duration(r.rng.IntN(80))*time.Millisecond, func() {
		if graceful {
			conn.Close(websocket.StatusNormalClosure, "")
		} else {
			conn.CloseNow()
		}
	})
	defer stop.Stop()
	for {
		f, err := wsRead(ctx, conn)
		if err != nil {
			return nil // dropped by the timer; resume on the next connection
		}
		ended, err := r.lines.handle(f)
		if err != nil {
			return err
		}
		if ended {
			r.done = true
			return nil
		}
	}
}

func TestResumeRandomDisconnects(t *testing.T) {
	const total = 5000
	e := newEnv(t, func(o *entrance.Options) {
		// 250 bursts with 15 ms pauses: the job runs for about 4 s.
		o.Engines["counter"] = &counterEngine{burst: 20, pause: 15 * time.Millisecond}
	})
	owner := e.dial("alice")
	execID, _ := owner.execute("counter", strconv.Itoa(total))
	owner.conn.CloseNow()

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for tab := range 2 {
		wg.Go(func() {
			r := &resumer{baseURL: e.http.URL, execID: execID,
				rng: rand.New(rand.NewPCG(uint64(tab), 42)), lines: newLineTracker(total)}
			if err := r.run(ctx); err != nil {
				t.Errorf("tab %d: %v", tab, err)
				return
			}
			if r.jobCycles < 30 {
				t.Errorf("tab %d: only %d connections while the job ran, want 30 or more",
					tab, r.jobCycles)
			}
			if n := r.lines.missingOrRepeated(); n != 0 {
				t.Errorf("tab %d: line %d received %d times", tab, n, r.lines.count[n])
			}
			if r.lines.final != "Succeed" {
				t.Errorf("tab %d: job ended %s", tab, r.lines.final)
			}
			t.Logf("tab %d: %d connections, %d of them while the job ran", tab, r.cycles, r.jobCycles)
		})
	}
	wg.Wait()
}

// TestResumeSameConnection requests the log again on a connection that
// already receives the job's pushes: after each reply, the lines must go
// on from the reply's fromLine with no gap and no repeat.
func TestResumeSameConnection(t *testing.T) {
	const total = 4000
	e := newEnv(t, func(o *entrance.Options) {
		o.Engines["counter"] = &counterEngine{burst: 20, pause: 10 * time.Millisecond}
	})
	c := e.dial("alice")
	execID, _ := c.execute("counter", strconv.Itoa(total))

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	rng := rand.New(rand.NewPCG(7, 7))
	lines := newLineTracker(total)
	requests, pending, from := 0, false, int64(0)
	ask := time.NewTicker(30 * time.Millisecond)
	defer ask.Stop()
	for ended := false; !ended; {
		select {
		case <-ask.C:
			if !pending {
				from = max(1, lines.next-int64(rng.IntN(300)))
				err := wsSend(ctx, c.conn, "entrance/"+execID+"/log",
					map[string]any{"fromLine": from, "size": rng.IntN(50)})
				if err != nil {
					t.Fatal(err)
				}
				requests++
				pending = true
			}
		default:
		}
		f, err := wsRead(ctx, c.conn)
		if err != nil {
			t.Fatalf("read after %d log requests: %v", requests, err)
		}
		if strings.HasSuffix(f.Method, "/log") && f.Message != "log" {
			pending = false
			lines.restartAt(from)
		}
		if ended, err = lines.handle(f); err != nil {
			t.Fatalf("after %d log requests: %v", requests, err)
		}
	}
	if n := lines.missingOrRepeated(); n != 0 {
		t.Errorf("line %d received %d times", n, lines.count[n])
	}
	if lines.final != "Succeed" {
		t.Errorf("job ended %s", lines.final)
	}
	if requests < 20 {
		t.Errorf("only %d log requests while the job ran, want 20 or more", requests)
	}
}

// TestResumeAfterRestart reads the rest of a finished job's log from a
// new server on the same store.
func TestResumeAfterRestart(t *testing.T) {
	const total = 3000
	edit := func(o *entrance.Options) { o.Engines["counter"] = &counterEngine{} }
	e := newEnv(t, edit)
	c := e.dial("alice")
	execID, _ := c.execute("counter", strconv.Itoa(total))
	if ev := c.follow(execID, nil); ev.final.field(t, "status") != "Succeed" {
		t.Fatalf("job ended %s", ev.final.raw)
	}
	e.stop()

	e2 := startEnv(t, e.dir, edit)
	c2 := e2.dial("alice")
	for _, from := range []int64{1, 1234, total, total + 1} {
		t.Run(fmt.Sprintf("from %d", from), func(t *testing.T) {
			reply, _ := c2.call("entrance/"+execID+"/log", map[string]any{"fromLine": from, "size": -1})
			lines := newLineTracker(total)
			lines.next = from
			f := &wireFrame{}
			f.Method, f.Message = reply.Method, reply.Message
			if err := decodeInto(reply, f); err != nil {
				t.Fatal(err)
			}
			if err := lines.take(f); err != nil {
				t.Fatal(err)
			}
			if lines.next != total+1 {
				t.Errorf("reply ends before line %d, want %d", lines.next, total+1)
			}
		})
	}
	status, _ := c2.call("entrance/"+execID+"/status", nil)
	if got := status.field(t, "status"); got != "Succeed" {
		t.Errorf("status after restart %v, want Succeed", got)
	}
}

// TestResumeEndedJob requests the log of a job that has ended but is
// still live: the client must get the rest of the log and the final
// status, as it would from a subscription made a moment earlier.
func TestResumeEndedJob(t *testing.T) {
	const total = 300
	e := newEnv(t, func(o *entrance.Options) { o.Engines["counter"] = &counterEngine{} })
	ended := make(chan int64)
	release := make(chan struct{})
	restore := entrance.SetJobEndHook(func(taskID int64) {
		ended <- taskID
		<-release
	})
	defer restore()

	owner := e.dial("alice")
	execID, taskID := owner.execute("counter", strconv.Itoa(total))
	if got := <-ended; got != taskID {
		t.Fatalf("job %d ended, want %d", got, taskID)
	}
	defer close(release)

	c := e.dial("alice")
	c.send("entrance/"+execID+"/log", map[string]any{"fromLine": 3, "size": 5})
	c.send("entrance/"+execID+"/status", nil)
	lines := newLineTracker(total)
	lines.next = 3
	var statuses []string
	for len(statuses) < 2 {
		f := c.read()
		w := &wireFrame{}
		if err := decodeInto(f, w); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(w.Method, "/status") {
			statuses = append(statuses, w.Message+" "+w.Data.Status)
		}
		if _, err := lines.handle(w); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"status Succeed", "OK Succeed"}
	if !slices.Equal(statuses, want) {
		t.Errorf("status frames %q, want %q", statuses, want)
	}
	if f, err := c.tryRead(300 * time.Millisecond); err == nil {
		t.Errorf("unexpected frame after the status reply: %s", f.raw)
	}
}

// restartAt makes the tracker expect lines from line from on again, for
// a log reply to a request that asked for lines the client has.
func (lt *lineTracker) restartAt(from int64) {
	for n := from; n < lt.next; n++ {
		lt.count[n]--
	}
	lt.next = from
}

// decodeInto decodes a frame read by a client into a wireFrame.
func decodeInto(f *frame, w *wireFrame) error {
	if err := json.Unmarshal(f.raw, w); err != nil {
		return fmt.Errorf("decode reply %.200s: %w", f.raw, err)
	}
	return nil
}
