package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/sqlitestore"
)

// Credentials of the load tool's clients.
const (
	token = "loadtest-token"
	user  = "loadtest"
)

const connectPath = "/api/rest_j/v1/entrance/connect"

// entranceServer is an entrance on a loopback listener with a SQLite store
// in a temporary directory.
type entranceServer struct {
	srv    *entrance.Server
	http   *http.Server
	store  *sqlitestore.Store
	dir    string
	base   string // http://127.0.0.1:port
	fanout *gatedFanout
	served chan error
}

// gatedFanout is the entrance's hub. When the flood engine has a gate, it
// counts each log push in the gate before publishing it.
type gatedFanout struct {
	*entrance.Hub
	gate atomic.Pointer[gate]
	err  atomic.Pointer[error] // the first error of the gate
}

func (h *gatedFanout) Publish(f *entrance.Frame) {
	if g := h.gate.Load(); g != nil && f.EndLine > 0 {
		if err := g.publish(); err != nil {
			h.err.CompareAndSwap(nil, &err)
		}
	}
	h.Hub.Publish(f)
}

// startEntrance starts an entrance with the given engines. Its limits on
// running and queued jobs and on connections per user are lifted, because
// every client of the tool is the same user and the scenarios measure the
// server, not its limits.
func startEntrance(ctx context.Context, cfg *config, engines map[string]entrance.Engine) (*entranceServer, error) {
	dir, err := os.MkdirTemp("", "loadtest-")
	if err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	s := &entranceServer{dir: dir, fanout: &gatedFanout{Hub: entrance.NewHub()}}
	if err := s.start(ctx, cfg, engines); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *entranceServer) start(ctx context.Context, cfg *config, engines map[string]entrance.Engine) error {
	var err error
	s.store, err = sqlitestore.Open(ctx, filepath.Join(s.dir, "entrance.db"), nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on loopback: %w", err)
	}

	s.srv, err = entrance.New(&entrance.Options{
		Store:         s.store,
		Engines:       engines,
		Authenticator: entrance.NewTokenAuthenticator(map[string][]string{token: {user}}),
		Instance:      ln.Addr().String(),
		Hub:           s.fanout,
		Logger:        serverLogger(cfg),
		Limits: entrance.Limits{
			MaxRunning:        -1,
			MaxRunningPerUser: -1,
			MaxQueuedPerUser:  -1,
			MaxConnsPerUser:   -1,
		},
	})
	if err != nil {
		ln.Close()
		return err
	}

	s.base = "http://" + ln.Addr().String()
	s.http = &http.Server{Handler: s.srv, ReadHeaderTimeout: 10 * time.Second}
	s.served = make(chan error, 1)
	go func() { s.served <- s.http.Serve(ln) }()
	return nil
}

func serverLogger(cfg *config) *slog.Logger {
	if !cfg.verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// wsURL returns the WebSocket address of the connect path.
func (s *entranceServer) wsURL() string {
	return "ws" + strings.TrimPrefix(s.base, "http") + connectPath
}

// close shuts the entrance down, cancelling what still runs, and removes
// its store.
func (s *entranceServer) close() {
	if s.srv != nil {
		s.srv.Close()
	}
	if s.http != nil {
		s.http.Close()
		<-s.served
	}
	if s.store != nil {
		s.store.Close()
	}
	os.RemoveAll(s.dir)
}

// submit executes code over REST and returns the job's execID.
func (s *entranceServer) submit(ctx context.Context, engine, code string) (string, error) {
	body, _ := json.Marshal(map[string]string{"executeApplicationName": engine, "executionCode": code})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		s.base+"/api/rest_j/v1/entrance/execute", strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Token-Code", token)
	req.Header.Set("Token-User", user)
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("execute: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read execute reply: %w", err)
	}
	var reply struct {
		Status int `json:"status"`
		Data   struct {
			ExecID string `json:"execID"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil || reply.Status != 0 || reply.Data.ExecID == "" {
		return "", fmt.Errorf("execute failed: HTTP %d: %s", resp.StatusCode, raw)
	}
	return reply.Data.ExecID, nil
}

// httpClient talks to loopback servers only, so it uses no proxy.
var httpClient = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}}

// baselineServer is the plain coder/websocket fan-out the entrance is
// compared with. Each connection has a queue of the same size as the
// entrance's default send queue, a writer goroutine that writes each
// frame with Conn.Write, and a reader started by CloseRead.
type baselineServer struct {
	http   *http.Server
	base   string
	served chan error
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []*baselineConn
}

type baselineConn struct {
	queue chan []byte
	done  chan struct{} // closed when the writer returns
}

// baselineQueue matches entrance.DefaultLimits.SendQueue.
var baselineQueue = entrance.DefaultLimits.SendQueue

func startBaseline() (*baselineServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	b := &baselineServer{base: "http://" + ln.Addr().String(), served: make(chan error, 1)}
	b.http = &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { b.served <- b.http.Serve(ln) }()
	return b, nil
}

func (b *baselineServer) wsURL() string {
	return "ws" + strings.TrimPrefix(b.base, "http") + connectPath
}

func (b *baselineServer) serve(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	c := &baselineConn{queue: make(chan []byte, baselineQueue), done: make(chan struct{})}
	b.wg.Add(1)
	defer b.wg.Done()
	b.mu.Lock()
	b.conns = append(b.conns, c)
	b.mu.Unlock()

	defer close(c.done)
	ctx := ws.CloseRead(context.Background())
	for {
		select {
		case frame, ok := <-c.queue:
			if !ok {
				ws.CloseNow()
				return
			}
			if err := ws.Write(context.Background(), websocket.MessageText, frame); err != nil {
				ws.CloseNow()
				return
			}
		case <-ctx.Done():
			ws.CloseNow()
			return
		}
	}
}

// waitConns waits until n connections are registered.
func (b *baselineServer) waitConns(ctx context.Context, n int) ([]*baselineConn, error) {
	for {
		b.mu.Lock()
		conns := b.conns
		b.mu.Unlock()
		if len(conns) >= n {
			return conns, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %d baseline connections, have %d: %w", n, len(conns), ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// publish queues frame on every connection. A full queue is an error: the
// publisher's window must keep it from filling.
func (b *baselineServer) publish(conns []*baselineConn, frame []byte) error {
	for _, c := range conns {
		select {
		case c.queue <- frame:
		default:
			return errors.New("baseline send queue full: lower -window")
		}
	}
	return nil
}

// close ends every connection and the listener. Close the clients first:
// a connection whose client is gone ends at once.
func (b *baselineServer) close() {
	b.mu.Lock()
	for _, c := range b.conns {
		close(c.queue)
	}
	b.conns = nil
	b.mu.Unlock()
	b.http.Close()
	b.wg.Wait()
	<-b.served
}
