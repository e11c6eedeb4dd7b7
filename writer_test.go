package entrance_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/goentrance/entrance"
)

// TestIdleConnectionReleasesWriter checks that a connection that has
// nothing more to send keeps only its reading goroutine.
func TestIdleConnectionReleasesWriter(t *testing.T) {
	e := newEnv(t, nil)
	const conns = 20
	before := runtime.NumGoroutine()
	for range conns {
		c := e.dial("alice")
		if reply, _ := c.call("entrance/1/status", nil); reply.Status != 1 {
			t.Fatalf("status of a missing job: status %d, want 1: %s", reply.Status, reply.raw)
		}
	}

	// Writers linger for a second after their last frame.
	deadline := time.Now().Add(10 * time.Second)
	for {
		added := runtime.NumGoroutine() - before
		if added <= conns+conns/2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections added %d goroutines 10 s after their last reply; want about %d",
				conns, added, conns)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWriterRestartsAfterIdle checks that a connection whose writer has
// exited still replies to requests.
func TestWriterRestartsAfterIdle(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	for i := range 2 {
		if i > 0 {
			time.Sleep(1500 * time.Millisecond) // past the writer's linger
		}
		reply, _ := c.call("entrance/1/status", nil)
		if reply.Status != 1 {
			t.Fatalf("request %d: status %d, want 1: %s", i, reply.Status, reply.raw)
		}
	}
}

// TestSlowConnectionClosed checks that a connection that does not read
// while a job floods it is closed with 1013 and a reason that explains how
// to resume, and that the client still receives the frames queued before.
func TestSlowConnectionClosed(t *testing.T) {
	var logs logCapture
	e := newEnv(t, func(o *entrance.Options) {
		o.Limits.SendQueue = 4
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	slow := e.dial("alice")
	runner := e.dial("alice")
	// About 30 MB of log pushes, more than the socket buffers hold. The
	// pause lets the slow client subscribe before the output starts.
	execID, _ := runner.execute("shell", "sleep 1; yes 'a line of output that the slow client does not read' | head -n 300000")
	slow.send("entrance/"+execID+"/status", nil)

	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "closing slow connection") {
		if time.Now().After(deadline) {
			t.Fatalf("no slow connection closed within 20 s; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	frames := 0
	for {
		_, err := slow.tryRead(20 * time.Second)
		if err == nil {
			frames++
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("slow connection ended after %d frames with %v; want close code 1013", frames, err)
		}
		if ce.Code != websocket.StatusTryAgainLater {
			t.Errorf("close code %d; want 1013", ce.Code)
		}
		if !strings.Contains(ce.Reason, "fromLine") {
			t.Errorf("close reason %q does not say how to resume", ce.Reason)
		}
		break
	}
	if frames == 0 {
		t.Error("slow connection received no frame before its close")
	}
}

// TestPingTimeoutCloses checks that a peer that does not respond to pings
// is dropped without a close handshake, and that one that does stays
// connected past several pings.
func TestPingTimeoutCloses(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) {
		o.Limits.PingInterval = 50 * time.Millisecond
		o.Limits.PingTimeout = 100 * time.Millisecond
	})

	answering := e.dial("alice")
	for i := range 8 {
		time.Sleep(50 * time.Millisecond)
		if reply, _ := answering.call("entrance/1/status", nil); reply.Status != 1 {
			t.Fatalf("request %d of the answering client: status %d: %s", i, reply.Status, reply.raw)
		}
	}

	// A client responds to pings only while it reads.
	silent := e.dial("alice")
	time.Sleep(500 * time.Millisecond)
	_, err := silent.tryRead(10 * time.Second)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent client read %v; want the connection dropped", err)
	}
	if code := websocket.CloseStatus(err); code != -1 {
		t.Errorf("silent client got close code %d; want the connection dropped without a close frame", code)
	}
}

// TestFrameSentWithUpgrade checks that a request frame sent in the same
// packet as the upgrade request is read, although the server replaces
// net/http's read buffer with a smaller one.
func TestFrameSentWithUpgrade(t *testing.T) {
	e := newEnv(t, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))

	request := "GET " + connectPath + " HTTP/1.1\r\nHost: " + conn.RemoteAddr().String() +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nToken-Code: tok-alice\r\nToken-User: alice\r\n\r\n"
	frame := maskedTextFrame(`{"method":"/api/rest_j/v1/entrance/1/status","data":{}}`)
	if _, err := conn.Write(append([]byte(request), frame...)); err != nil {
		t.Fatal(err)
	}

	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	payload := readServerFrame(t, r)
	if !strings.Contains(payload, `"method":"/api/rest_j/v1/entrance/1/status"`) {
		t.Errorf("frame %s is not the reply to the status request", payload)
	}
}

// maskedTextFrame encodes a client text frame with a zero mask.
func maskedTextFrame(text string) []byte {
	b := []byte{0x81}
	switch n := len(text); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	default:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	}
	b = append(b, 0, 0, 0, 0) // a zero mask leaves the payload as it is
	return append(b, text...)
}

// readServerFrame reads one unmasked, unfragmented server frame.
func readServerFrame(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var head [2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		t.Fatalf("read frame header: %v", err)
	}
	n := uint64(head[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			t.Fatal(err)
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			t.Fatal(err)
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatalf("read frame payload: %v", err)
	}
	return string(payload)
}
