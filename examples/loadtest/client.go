package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"
)

// dialParallel bounds the dials in flight, to stay well under the
// listener's accept backlog.
const dialParallel = 64

// dial opens one client connection with the load tool's credentials.
func dial(ctx context.Context, url string) (*websocket.Conn, error) {
	h := http.Header{}
	h.Set("Token-Code", token)
	h.Set("Token-User", user)
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: httpClient,
		HTTPHeader: h,
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	ws.SetReadLimit(-1)
	return ws, nil
}

// dialAll opens n connections. On error it closes those it opened.
func dialAll(ctx context.Context, url string, n int) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(dialParallel)
	for i := range conns {
		g.Go(func() error {
			ws, err := dial(gctx, url)
			conns[i] = ws
			return err
		})
	}
	if err := g.Wait(); err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, nil
}

func closeAll(conns []*websocket.Conn) {
	for _, ws := range conns {
		if ws != nil {
			ws.CloseNow()
		}
	}
}

// frameReader reads whole messages into one reused buffer, so that a
// client allocates nothing per frame. Reads take no context, because a
// cancellable one costs a callback registration per read; a client is
// stopped by closing its connection.
type frameReader struct {
	ws  *websocket.Conn
	buf bytes.Buffer
}

// next returns the next message; it is valid until the next call.
func (r *frameReader) next() ([]byte, error) {
	_, rd, err := r.ws.Reader(context.Background())
	if err != nil {
		return nil, err
	}
	r.buf.Reset()
	if _, err := r.buf.ReadFrom(rd); err != nil {
		return nil, err
	}
	return r.buf.Bytes(), nil
}

// request sends one request frame.
func request(ctx context.Context, ws *websocket.Conn, frame string) error {
	return ws.Write(ctx, websocket.MessageText, []byte(frame))
}

// subscribe subscribes a connection to a job's pushes with a status
// request. The server subscribes the connection right after queuing the
// reply, so the tool sends a second status request and waits for its
// reply too. The server handles the frames of a connection in order, so
// the subscription is in place once the second reply arrives.
func subscribe(ctx context.Context, r *frameReader, execID string) error {
	frame := `{"method":"/api/rest_j/v1/entrance/` + execID + `/status","data":{}}`
	for range 2 {
		if err := request(ctx, r.ws, frame); err != nil {
			return fmt.Errorf("send status request: %w", err)
		}
	}
	for replies := 0; replies < 2; {
		data, err := r.next()
		if err != nil {
			return fmt.Errorf("read status reply: %w", err)
		}
		if bytes.Contains(data, []byte(`"message":"OK"`)) {
			replies++
		}
	}
	return nil
}

// pushPrefix returns how every push of one kind of a job starts, as the
// entrance encodes it.
func pushPrefix(execID, action string) []byte {
	return []byte(`{"method":"/api/rest_j/v1/entrance/` + execID + `/` + action +
		`","status":0,"message":"` + action + `"`)
}

var terminalStatuses = [][]byte{
	[]byte(`"status":"Succeed"`), []byte(`"status":"Failed"`),
	[]byte(`"status":"Cancelled"`), []byte(`"status":"Timeout"`),
}

// isTerminal reports whether a status push carries a terminal status.
func isTerminal(frame []byte) bool {
	for _, s := range terminalStatuses {
		if bytes.Contains(frame, s) {
			return true
		}
	}
	return false
}

var fromLineKey = []byte(`"fromLine":`)

// fromLine returns the fromLine field of a log push, or -1.
func fromLine(frame []byte) int64 {
	i := bytes.LastIndex(frame, fromLineKey)
	if i < 0 {
		return -1
	}
	digits := frame[i+len(fromLineKey):]
	end := 0
	for end < len(digits) && digits[end] >= '0' && digits[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(string(digits[:end]), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

var logKey = []byte(`"log":[`)

// allLines returns the JSON string content of the fourth element of a log
// push's log array: every line of the push, joined by the escape \n.
func allLines(frame []byte) []byte {
	i := bytes.Index(frame, logKey)
	if i < 0 {
		return nil
	}
	rest := frame[i+len(logKey):]
	for range 3 {
		end := stringEnd(rest)
		if end < 0 || end+1 >= len(rest) {
			return nil
		}
		rest = rest[end+2:] // past the closing quote and the comma
	}
	end := stringEnd(rest)
	if end < 0 {
		return nil
	}
	return rest[1:end]
}

// stringEnd returns the index of the closing quote of the JSON string that
// b starts with, or -1.
func stringEnd(b []byte) int {
	if len(b) == 0 || b[0] != '"' {
		return -1
	}
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}
