package entrance_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/goentrance/entrance"
)

// dialSmallBuffer connects as user with a socket receive buffer of 64
// KiB, so that a client that stops reading fills the server's buffers
// quickly. The buffer is set before connecting, because a buffer shrunk
// later can stall the connection on a zero window. It returns the
// connection and its local address.
func (e *env) dialSmallBuffer(user string) (*websocket.Conn, string) {
	e.t.Helper()
	dialer := &net.Dialer{Control: func(_, _ string, raw syscall.RawConn) error {
		var err error
		raw.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
		})
		return err
	}}

	var local string
	transport := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		local = conn.LocalAddr().String()
		return conn, nil
	}}
	e.t.Cleanup(transport.CloseIdleConnections)

	h := http.Header{}
	h.Set("Token-Code", testTokens[user])
	h.Set("Token-User", user)
	url := "ws" + strings.TrimPrefix(e.http.URL, "http") + connectPath
	conn, _, err := websocket.Dial(e.t.Context(), url, &websocket.DialOptions{
		HTTPHeader: h, HTTPClient: &http.Client{Transport: transport}})
	if err != nil {
		e.t.Fatalf("dial as %s: %v", user, err)
	}
	conn.SetReadLimit(64 << 20)
	e.t.Cleanup(func() { conn.CloseNow() })
	return conn, local
}

// lastFromLine returns the fromLine of a raw log push, or 0.
func lastFromLine(b []byte) int64 {
	i := bytes.LastIndex(b, []byte(`"fromLine":`))
	if i < 0 {
		return 0
	}
	rest := b[i+len(`"fromLine":`):]
	end := bytes.IndexAny(rest, ",}")
	n, _ := strconv.ParseInt(string(rest[:end]), 10, 64)
	return n
}

// readAll reads log pushes of a job until its terminal status and returns
// the last fromLine and the status frame. It checks that each push goes on
// where the previous one ended.
func readAll(ctx context.Context, conn *websocket.Conn) (int64, []byte, error) {
	var from int64
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return from, nil, err
		}
		switch {
		case bytes.Contains(b, []byte(`"message":"log"`)):
			next := lastFromLine(b)
			if next <= from {
				return from, nil, errors.New("log push does not go forward: fromLine " +
					strconv.FormatInt(next, 10) + " after " + strconv.FormatInt(from, 10))
			}
			from = next
		case bytes.Contains(b, []byte(`"message":"status"`)) &&
			(bytes.Contains(b, []byte(`"Succeed"`)) || bytes.Contains(b, []byte(`"Failed"`))):
			return from, b, nil
		}
	}
}

func TestSlowClientClosed(t *testing.T) {
	logs := newLogRecorder()
	// About 3 MiB of text a second, in 50 pushes: a reader keeps up
	// easily, and 32 pushes are 0.6 s of slack.
	flood := &floodEngine{lineBytes: 1024, burst: 64, pause: 20 * time.Millisecond,
		maxLines: 200_000, stop: make(chan struct{}), logged: make(chan int, 1)}
	e := newEnv(t, func(o *entrance.Options) {
		o.Engines["flood"] = flood
		o.Limits.SendQueue = 32
		o.Logger = slog.New(logs)
	})
	stalled, stalledAddr := e.dialSmallBuffer("alice")
	reader := e.dial("alice")
	execID, _ := reader.execute("flood", "go")
	err := wsSend(t.Context(), stalled, "entrance/"+execID+"/status", nil)
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		from  int64
		final []byte
		err   error
		at    time.Time
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		from, final, err := readAll(ctx, reader.conn)
		done <- result{from, final, err, time.Now()}
	}()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	overflowed := logs.wait(ctx, "closing slow connection", stalledAddr)
	close(flood.stop)
	stoppedAt := time.Now()
	if !overflowed {
		t.Fatal("the stalled connection was not closed before the engine logged its lines")
	}

	// Read what the stalled client was sent, then its close frame.
	var readErr error
	for readErr == nil {
		_, _, readErr = stalled.Read(ctx)
	}
	var ce websocket.CloseError
	if !errors.As(readErr, &ce) {
		t.Fatalf("stalled client: got %v, want a close frame", readErr)
	}
	if ce.Code != websocket.StatusTryAgainLater {
		t.Errorf("stalled client: close code %d, want 1013", ce.Code)
	}
	if !strings.Contains(ce.Reason, "fromLine") {
		t.Errorf("stalled client: close reason %q does not tell how to resume", ce.Reason)
	}

	logged := <-flood.logged
	r := <-done
	if r.err != nil {
		t.Fatalf("reader: %v", r.err)
	}
	if want := int64(logged) + 1; r.from != want {
		t.Errorf("reader: last fromLine %d, want %d", r.from, want)
	}
	if !bytes.Contains(r.final, []byte(`"Succeed"`)) {
		t.Errorf("reader: final status %s", r.final)
	}
	if lag := r.at.Sub(stoppedAt); lag > 10*time.Second {
		t.Errorf("reader got the end %v after the engine stopped", lag)
	}
	t.Logf("engine logged %d lines of 1 KiB", logged)
}

func TestPingDropsDeadPeer(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) {
		o.Engines["block"] = blockEngine{}
		o.Limits.PingInterval = 50 * time.Millisecond
		o.Limits.PingTimeout = 100 * time.Millisecond
	})
	live := e.dial("alice")
	execID, taskID := live.execute("block", "x")
	frames := make(chan *wireFrame, 100)
	go func() {
		defer close(frames)
		for {
			f, err := wsRead(context.Background(), live.conn)
			if err != nil {
				return
			}
			frames <- f
		}
	}()

	dead := e.dial("alice")
	if reply, _ := dead.call("entrance/"+execID+"/status", nil); reply.Status != 0 {
		t.Fatalf("status: %s", reply.raw)
	}
	// dead stops reading, so it sends no pong.
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.ConnCount() > 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.srv.ConnCount(); n != 1 {
		t.Fatalf("%d connections 5 s after the peer stopped answering pings, want 1", n)
	}
	if n := e.srv.Subscribers(taskID); n != 1 {
		t.Errorf("job has %d subscribers, want 1", n)
	}

	if err := wsSend(t.Context(), live.conn, "entrance/"+execID+"/status", nil); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f, open := <-frames:
			if !open {
				t.Fatal("live connection closed")
			}
			if strings.HasSuffix(f.Method, "/status") && f.Message == "OK" {
				return
			}
		case <-timeout:
			t.Fatal("live connection got no status reply")
		}
	}
}

// TestConnectionCyclesFreeResources opens 10,000 connections that each
// subscribe to a running job and close: goroutines, heap, connections
// and subscriptions must return to where they were.
func TestConnectionCyclesFreeResources(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 connections take about half a minute")
	}
	e := newEnv(t, func(o *entrance.Options) { o.Engines["block"] = blockEngine{} })
	owner := e.dial("alice")
	execID, taskID := owner.execute("block", "x")

	cycle := func(i int) {
		conn, err := wsDial(t.Context(), e.http.URL, "alice")
		if err != nil {
			t.Fatalf("cycle %d: dial: %v", i, err)
		}
		defer conn.CloseNow()
		if err := wsSend(t.Context(), conn, "entrance/"+execID+"/status", nil); err != nil {
			t.Fatalf("cycle %d: send: %v", i, err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if f, err := wsRead(ctx, conn); err != nil || f.Status != 0 {
			t.Fatalf("cycle %d: status reply %+v: %v", i, f, err)
		}
		if i%2 == 0 {
			conn.Close(websocket.StatusNormalClosure, "")
		}
	}
	for i := range 200 {
		cycle(i)
	}
	goroutines, heap := settle(t, e, taskID, 0, 0)

	start := time.Now()
	for i := range 10_000 {
		cycle(i)
	}
	t.Logf("10,000 cycles in %v", time.Since(start).Round(time.Millisecond))
	gotGoroutines, gotHeap := settle(t, e, taskID, goroutines+5, heap+8<<20)
	if gotGoroutines > goroutines+5 {
		t.Errorf("%d goroutines after the cycles, %d before", gotGoroutines, goroutines)
	}
	if gotHeap > heap+8<<20 {
		t.Errorf("heap %d bytes after the cycles, %d before", gotHeap, heap)
	}
}

// settle waits until the server has one connection and the job one
// subscriber, and until the goroutines and the heap are at most the
// limits given (0: no limit), for up to 10 s. It returns the number of
// goroutines and the heap in use after a garbage collection.
func settle(t *testing.T, e *env, taskID int64, maxGoroutines int, maxHeap uint64) (int, uint64) {
	t.Helper()
	var goroutines int
	var mem runtime.MemStats
	for deadline := time.Now().Add(10 * time.Second); ; {
		runtime.GC()
		goroutines = runtime.NumGoroutine()
		runtime.ReadMemStats(&mem)
		settled := e.srv.ConnCount() == 1 && e.srv.Subscribers(taskID) == 1 &&
			(maxGoroutines == 0 || goroutines <= maxGoroutines) &&
			(maxHeap == 0 || mem.HeapAlloc <= maxHeap)
		if settled || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := e.srv.ConnCount(); n != 1 {
		t.Errorf("%d connections open, want 1", n)
	}
	if n := e.srv.Subscribers(taskID); n != 1 {
		t.Errorf("job has %d subscribers, want 1", n)
	}
	return goroutines, mem.HeapAlloc
}
