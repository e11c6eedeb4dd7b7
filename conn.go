package entrance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Close reasons sent to clients. Each stays under the 123 bytes a close
// frame allows.
const (
	reasonOverflow    = "send queue full: reconnect and request the log with the last fromLine to resume"
	reasonShutdown    = "server shutting down"
	reasonTooLarge    = "frame too large"
	reasonPingTimeout = "ping timed out"
	reasonLogRead     = "reading the log failed: reconnect and request the log with the last fromLine"
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
	srv    *Server
	ws     *websocket.Conn
	user   string
	remote string // the peer's address, for the log

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

	// reply is the encoded reply of the request being served. It belongs
	// to the serving goroutine. A subscription that the request's
	// afterReply makes takes it, so that the reply and the start of the
	// subscription are one queue entry.
	reply *Frame

	subsMu sync.Mutex
	subs   map[int64]struct{} // jobs this connection is subscribed to

	// cursors is owned by the writer goroutine: per job, the number of
	// the next log line the client should receive.
	cursors map[int64]*cursor
}

// outgoing is one entry of a connection's queue: a frame to send, or a
// subscription to apply.
type outgoing struct {
	frame *Frame
	sub   *subscription
}

// subscription is the start of a connection's subscription to a job: the
// reply of the request that made it, the stored log lines from next on,
// and a status push the client would otherwise miss. The job's pubMu is
// held while it is queued, so no push of the job comes between these
// frames and the pushes that follow them.
type subscription struct {
	job    *job
	next   int64  // log line to resume at; 0 keeps the connection's cursor
	stored int64  // lines the job had stored and pushed at that moment
	reply  *Frame // nil when the request's reply was sent already
	status *Frame // sent after the stored lines, or nil
	ended  bool   // the job had ended: no push of it follows
}

// cursor is the log position of one job on one connection.
type cursor struct {
	job  *job
	next int64 // 0: take the next push as it comes
}

func (s *Server) newConn(ws *websocket.Conn, user, remote string) *wsConn {
	c := &wsConn{
		srv:     s,
		ws:      ws,
		user:    user,
		remote:  remote,
		kick:    make(chan struct{}),
		subs:    map[int64]struct{}{},
		cursors: map[int64]*cursor{},
	}
	c.queue.init(s.limits.SendQueue)
	return c
}

// Deliver queues a push. It implements Subscriber and never blocks: when
// the queue is full, the connection is closed with a reason that explains
// how to resume.
func (c *wsConn) Deliver(f *Frame) {
	if !c.enqueue(outgoing{frame: f}) {
		c.overflow()
	}
}

func (c *wsConn) overflow() {
	if c.overflowed.CompareAndSwap(false, true) {
		c.srv.logger.Warn("closing slow connection", "user", c.user,
			"remote", c.remote, "queue", c.queue.limit)
		c.close(websocket.StatusTryAgainLater, reasonOverflow)
	}
}

// close has the writer goroutine, which it starts if none runs, close the
// connection with code and reason. Only the first call counts.
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

// follow queues a subscription. The caller holds the job's pubMu, so the
// subscription takes effect before any later push of the job. It runs on
// the serving goroutine, inside a request's afterReply, and takes the
// request's reply with it.
func (c *wsConn) follow(sub *subscription) {
	sub.reply, c.reply = c.reply, nil
	if !sub.ended {
		c.subsMu.Lock()
		c.subs[sub.job.id.taskID] = struct{}{}
		c.subsMu.Unlock()
	}
	if !c.enqueue(outgoing{sub: sub}) {
		c.overflow()
	}
}

// serve runs the connection until the client leaves, the connection
// fails or ctx, the server's connsCtx, is cancelled, which closes the
// connection without a handshake. Requests are handled with ctx.
func (c *wsConn) serve(ctx context.Context) {
	defer c.closeOnCancel(ctx)()
	c.startPings()

	c.readLoop(ctx)

	c.close(websocket.StatusNormalClosure, "")
	c.stopWriting()
	c.closeTimer.Stop()
	c.unsubscribeAll()
}

// closeOnCancel closes the connection without a handshake once ctx is
// cancelled. readLoop reads with a context that cannot be cancelled,
// because coder/websocket registers a cancellation callback on ctx for
// each read. The returned function removes the one callback of the
// connection and waits for it if it has started.
func (c *wsConn) closeOnCancel(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	unregister := context.AfterFunc(ctx, func() {
		defer close(done)
		c.ws.CloseNow()
	})
	return func() {
		if !unregister() {
			<-done
		}
	}
}

// readLoop reads frames and dispatches them in order until reading fails.
func (c *wsConn) readLoop(ctx context.Context) {
	limit := c.srv.limits.MaxFrameBytes
	readCtx := context.WithoutCancel(ctx)
	buf := new(bytes.Buffer)
	for {
		_, r, err := c.ws.Reader(readCtx)
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
	reply := &Frame{Data: encodeEnvelope(env)}
	if req.afterReply == nil {
		c.send(reply)
		return
	}
	c.reply = reply
	req.afterReply()
	if c.reply != nil {
		// afterReply made no subscription.
		c.send(c.reply)
		c.reply = nil
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

// write sends one queued entry. Log pushes pass through the job's cursor.
// Lines the client already has are skipped, and lines it has not seen yet
// are read from the store first. So the client receives every line once
// and in order, whenever it subscribed.
func (c *wsConn) write(out outgoing) error {
	if out.sub != nil {
		return c.applySubscription(out.sub)
	}
	f := out.frame
	if f.EndLine == 0 {
		if f.Last {
			c.dropCursor(f.TaskID)
		}
		return c.writeBytes(f.Data)
	}
	return c.writeLog(f)
}

func (c *wsConn) writeBytes(b []byte) error {
	return c.ws.Write(context.Background(), websocket.MessageText, b)
}

// writeLog sends the lines of log push f that the client lacks.
func (c *wsConn) writeLog(f *Frame) error {
	cur := c.cursors[f.TaskID]
	switch {
	case cur == nil:
		return c.writeBytes(f.Data)
	case cur.next == 0 || cur.next == f.FirstLine:
		cur.next = f.EndLine
		return c.writeBytes(f.Data)
	case f.EndLine <= cur.next:
		return nil // the client has every line of f
	case cur.next > f.FirstLine:
		// The client has the first lines of f: send the rest from the
		// store, where they are, because f was published after storing.
		return c.sendStored(cur, f.EndLine)
	}
	// Lines before f never reached this connection, which does not
	// happen while every push of the job is queued; read them anyway.
	if err := c.sendStored(cur, f.FirstLine); err != nil {
		return err
	}
	cur.next = f.EndLine
	return c.writeBytes(f.Data)
}

// applySubscription sends the reply that made the subscription, sets the
// job's log cursor, sends the stored lines from the cursor up to what
// the job had pushed when the subscription was made, and then any status
// push the client missed. The pushes queued after the subscription carry
// on from there.
func (c *wsConn) applySubscription(sub *subscription) error {
	if sub.reply != nil {
		if err := c.writeBytes(sub.reply.Data); err != nil {
			return err
		}
	}
	taskID := sub.job.id.taskID
	cur := c.cursors[taskID]
	if cur == nil || sub.next > 0 {
		cur = &cursor{job: sub.job, next: sub.next}
		c.cursors[taskID] = cur
	}
	if cur.next > 0 && cur.next <= sub.stored {
		if err := c.sendStored(cur, sub.stored+1); err != nil {
			return err
		}
	}
	if sub.status != nil {
		if err := c.writeBytes(sub.status.Data); err != nil {
			return err
		}
	}
	if sub.ended {
		c.dropCursor(taskID)
	}
	return nil
}

// errLogUnavailable means stored log lines could not be read for a
// connection, which is then closed.
var errLogUnavailable = errors.New("log lines unavailable")

// sendStored sends the stored lines from the cursor up to line end
// (exclusive) in pushes of up to maxBatchLines lines. When the store
// cannot return them, sendStored closes the connection with
// reasonLogRead and returns errLogUnavailable, so that the client resumes
// instead of seeing a gap.
func (c *wsConn) sendStored(cur *cursor, end int64) error {
	id := cur.job.id
	for cur.next < end {
		limit := int(min(end-cur.next, maxBatchLines))
		ctx, cancel := c.srv.storeContext()
		lines, err := c.srv.store.ReadLog(ctx, id.taskID, cur.next, limit)
		cancel()
		if err == nil && (len(lines) == 0 || lines[0].Number != cur.next) {
			err = fmt.Errorf("line %d is not stored", cur.next)
		}
		if err != nil {
			c.srv.logger.Error("read log lines for resume failed", "execID", id.execID,
				"taskID", id.taskID, "fromLine", cur.next, "error", err)
			c.close(websocket.StatusInternalError, reasonLogRead)
			return errLogUnavailable
		}
		f := encodeLogPush(id, lines)
		cur.next = f.EndLine
		if err := c.writeBytes(f.Data); err != nil {
			return err
		}
	}
	return nil
}

// dropCursor removes the cursor and the subscription record of a job that
// has ended.
func (c *wsConn) dropCursor(taskID int64) {
	delete(c.cursors, taskID)
	c.subsMu.Lock()
	delete(c.subs, taskID)
	c.subsMu.Unlock()
}

func (c *wsConn) unsubscribeAll() {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	for taskID := range c.subs {
		c.srv.hub.Unsubscribe(taskID, c)
	}
	clear(c.subs)
}
