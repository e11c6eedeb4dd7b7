package entrance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Close reasons sent to clients. Each stays under the 123 bytes a close
// frame allows.
const (
	reasonOverflow = "send queue full: reconnect and request the log with the last fromLine to resume"
	reasonShutdown = "server shutting down"
	reasonTooLarge = "frame too large"
)

// closeGrace is how long a closing connection may take to send its close
// frame before it is closed without one.
const closeGrace = 5 * time.Second

// wsConn is one WebSocket connection. The serving goroutine reads and
// dispatches requests; a writer goroutine, running while there is
// something to send, owns every write. Replies and pushes go through one
// bounded queue, so a connection that does not read fills only its own
// queue and is then closed.
type wsConn struct {
	srv  *Server
	ws   *websocket.Conn
	user string

	queue   sendQueue
	writers sync.WaitGroup // the writer goroutine, while it runs
	kick    chan struct{}  // closed to make the writer close the connection

	closeOnce   sync.Once
	closeCode   websocket.StatusCode
	closeReason string
	closeTimer  *time.Timer // hard-closes a connection whose writer is stuck
	overflowed  atomic.Bool

	pings     sync.WaitGroup
	pinging   atomic.Bool
	pingTimer *time.Timer // guarded by queue.mu

	subsMu sync.Mutex
	subs   map[int64]struct{} // jobs this connection is subscribed to

	// cursors is owned by the writer goroutine: per job, the number of
	// the next log line the client should receive.
	cursors map[int64]*cursor
}

// outgoing is one entry of a connection's queue: a frame to send, or an
// instruction to set a job's log cursor.
type outgoing struct {
	frame  *Frame
	follow *cursor
}

// cursor is the log position of one job on one connection.
type cursor struct {
	job  *job
	next int64 // 0: take the next push as it comes
}

func (s *Server) newConn(ws *websocket.Conn, user string) *wsConn {
	c := &wsConn{
		srv:     s,
		ws:      ws,
		user:    user,
		kick:    make(chan struct{}),
		subs:    map[int64]struct{}{},
		cursors: map[int64]*cursor{},
	}
	c.queue.init(s.limits.SendQueue)
	return c
}

// Deliver queues a push. It implements Subscriber and never blocks: when
// the queue is full the connection is closed and told to resume.
func (c *wsConn) Deliver(f *Frame) {
	if !c.enqueue(outgoing{frame: f}) {
		c.overflow()
	}
}

func (c *wsConn) overflow() {
	if c.overflowed.CompareAndSwap(false, true) {
		c.srv.logger.Warn("closing slow connection", "user", c.user,
			"queue", c.queue.limit)
		c.close(websocket.StatusTryAgainLater, reasonOverflow)
	}
}

// close asks the writer goroutine to close the connection with code and
// reason. Only the first call counts.
func (c *wsConn) close(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeReason = code, reason
		close(c.kick)
		c.closeTimer = time.AfterFunc(closeGrace, func() { c.ws.CloseNow() })
		c.queue.mu.Lock()
		start := c.wakeWriter()
		c.queue.mu.Unlock()
		if start {
			go c.writeLoop()
		}
	})
}

// send queues a reply. Over a full queue the connection is closed, like
// for a push.
func (c *wsConn) send(f *Frame) {
	c.Deliver(f)
}

// follow sets the log cursor of a job; the caller holds the job's pubMu,
// so the cursor takes effect before any later push of the job.
func (c *wsConn) follow(j *job, next int64) {
	c.subsMu.Lock()
	c.subs[j.id.taskID] = struct{}{}
	c.subsMu.Unlock()
	if !c.enqueue(outgoing{follow: &cursor{job: j, next: next}}) {
		c.overflow()
	}
}

// serve runs the connection until the client leaves, the connection
// fails or the server shuts down. Requests are read and handled with ctx,
// which should not be cancellable: coder/websocket registers a
// cancellation callback for each read with a cancellable context.
func (c *wsConn) serve(ctx context.Context) {
	c.startPings()

	c.readLoop(ctx)

	c.close(websocket.StatusNormalClosure, "")
	c.stopWriting()
	c.closeTimer.Stop()
	c.unsubscribeAll()
}

// readLoop reads frames and dispatches them in order until reading fails.
func (c *wsConn) readLoop(ctx context.Context) {
	limit := c.srv.limits.MaxFrameBytes
	buf := new(bytes.Buffer)
	for {
		_, r, err := c.ws.Reader(ctx)
		if err != nil {
			return
		}
		buf.Reset()
		n, err := io.Copy(buf, io.LimitReader(r, limit+1))
		if err != nil {
			return
		}
		if n > limit {
			if !c.skipOversized(r, n) {
				return
			}
			continue
		}
		c.handleFrame(ctx, buf.Bytes())
	}
}

// skipOversized replies to a frame over the size limit and discards the
// rest of it. A frame more than 16 times over the limit closes the
// connection with code 1009 instead of being read to its end.
func (c *wsConn) skipOversized(r io.Reader, read int64) bool {
	limit := c.srv.limits.MaxFrameBytes
	rest, err := io.Copy(io.Discard, io.LimitReader(r, 15*limit))
	aerr := errorf(ReplyError, ErrCodeFrameTooLarge,
		"frame of more than %d bytes is over the limit of %d bytes: split the request", read+rest, limit)
	c.send(&Frame{Data: encodeEnvelope(errorEnvelope("", "", aerr))})
	if err != nil {
		return false
	}
	if extra, _ := io.Copy(io.Discard, io.LimitReader(r, 1)); extra > 0 {
		c.close(websocket.StatusMessageTooBig, reasonTooLarge)
		return false
	}
	return true
}

// frameRequest is the JSON of one request frame.
type frameRequest struct {
	Method string          `json:"method"`
	Tag    string          `json:"websocketTag"`
	Data   json.RawMessage `json:"data"`
}

func (c *wsConn) handleFrame(ctx context.Context, data []byte) {
	req, aerr := parseFrame(data)
	if aerr != nil {
		c.send(&Frame{Data: encodeEnvelope(errorEnvelope(req.method, req.tag, aerr))})
		return
	}
	req.user, req.conn = c.user, c
	env := c.srv.dispatch(ctx, req)
	c.send(&Frame{Data: encodeEnvelope(env)})
	if req.afterReply != nil {
		req.afterReply()
	}
}

// parseFrame decodes a request frame. On error the returned request still
// holds whatever method and tag could be read, for the reply.
func parseFrame(data []byte) (*request, *apiError) {
	req := &request{}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return req, errorf(ReplyError, ErrCodeInvalidFrame,
			"blank frame: send one JSON object with method and data per frame")
	}
	var fr frameRequest
	if err := json.Unmarshal(trimmed, &fr); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field == "" {
			return req, errorf(ReplyError, ErrCodeInvalidFrame,
				"invalid frame: want a JSON object with method and data, got a JSON %s", typeErr.Value)
		}
		if errors.As(err, &typeErr) {
			return req, errorf(ReplyError, ErrCodeInvalidFrame,
				"invalid frame: field %s must be %s", typeErr.Field, jsonKind(typeErr.Field))
		}
		return req, errorf(ReplyError, ErrCodeInvalidFrame,
			"invalid frame: not a JSON object: %v", err)
	}
	req.method = fr.Method
	req.tag = fr.Tag
	p, aerr := objectParams(fr.Data)
	if aerr != nil {
		return req, aerr
	}
	req.params = p
	if req.tag == "" {
		req.tag, _ = p.str("websocketTag")
	}
	if fr.Method == "" {
		return req, errorf(ReplyError, ErrCodeUnknownMethod,
			"frame has no method: set method to a path such as /api/rest_j/v1/entrance/execute")
	}
	return req, nil
}

func jsonKind(field string) string {
	if field == "data" {
		return "an object"
	}
	return "a string"
}

// write sends one queued entry. Log pushes pass through the job's cursor:
// lines the client already has are skipped, and lines it has not seen yet
// are read from the store first, so that the client receives every line
// once and in order, whenever it subscribed.
func (c *wsConn) write(out outgoing) error {
	if out.follow != nil {
		return c.setCursor(out.follow)
	}
	f := out.frame
	if f.EndLine == 0 {
		if f.Last {
			delete(c.cursors, f.TaskID)
		}
		return c.writeBytes(f.Data)
	}
	cur := c.cursors[f.TaskID]
	switch {
	case cur == nil:
		return c.writeBytes(f.Data)
	case cur.next == 0 || cur.next == f.FirstLine:
		cur.next = f.EndLine
		return c.writeBytes(f.Data)
	case f.EndLine <= cur.next:
		return nil
	}
	return c.sendStored(cur, f)
}

func (c *wsConn) writeBytes(b []byte) error {
	return c.ws.Write(context.Background(), websocket.MessageText, b)
}

// setCursor applies a follow entry and sends the stored lines between the
// cursor and the last line pushed so far.
func (c *wsConn) setCursor(follow *cursor) error {
	taskID := follow.job.id.taskID
	cur := c.cursors[taskID]
	if follow.next == 0 {
		if cur == nil {
			c.cursors[taskID] = follow
		}
		return nil
	}
	c.cursors[taskID] = follow
	if end := follow.job.stored.Load() + 1; follow.next < end {
		return c.sendStored(follow, &Frame{TaskID: taskID, FirstLine: end, EndLine: end})
	}
	return nil
}

// sendStored sends the lines from the cursor up to f.EndLine, reading
// those before f.FirstLine from the store. If the store cannot return
// them, f is sent as it is.
func (c *wsConn) sendStored(cur *cursor, f *Frame) error {
	for cur.next < f.EndLine {
		if cur.next >= f.FirstLine && f.Data != nil && cur.next == f.FirstLine {
			break
		}
		limit := int(min(f.EndLine-cur.next, maxBatchLines))
		ctx, cancel := c.srv.storeContext()
		lines, err := c.srv.store.ReadLog(ctx, cur.job.id.taskID, cur.next, limit)
		cancel()
		if err != nil || len(lines) == 0 {
			c.srv.logger.Error("read log lines for resume failed", "execID", cur.job.id.execID,
				"taskID", cur.job.id.taskID, "fromLine", cur.next, "error", err)
			break
		}
		stored := encodeLogPush(cur.job.id, lines)
		cur.next = stored.EndLine
		if err := c.writeBytes(stored.Data); err != nil {
			return err
		}
	}
	if f.Data != nil && cur.next <= f.FirstLine {
		cur.next = f.EndLine
		return c.writeBytes(f.Data)
	}
	return nil
}

func (c *wsConn) unsubscribeAll() {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	for taskID := range c.subs {
		c.srv.hub.Unsubscribe(taskID, c)
	}
	clear(c.subs)
}
