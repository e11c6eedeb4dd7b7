package entrance_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/engines/shell"
	"github.com/goentrance/entrance/engines/sqlite"
	"github.com/goentrance/entrance/sqlitestore"
)

// Tokens of the test users.
var testTokens = map[string]string{"alice": "tok-alice", "bob": "tok-bob", "root": "tok-root"}

const connectPath = "/api/rest_j/v1/entrance/connect"

// env is a running entrance on a real listener with real engines and a
// real SQLite store.
type env struct {
	t      *testing.T
	srv    *entrance.Server
	http   *httptest.Server
	store  *sqlitestore.Store
	dir    string
	closed bool
}

// newEnv starts an entrance; edit changes its options before it starts.
func newEnv(t *testing.T, edit func(*entrance.Options)) *env {
	t.Helper()
	dir := t.TempDir()
	return startEnv(t, dir, edit)
}

func startEnv(t *testing.T, dir string, edit func(*entrance.Options)) *env {
	t.Helper()
	store, err := sqlitestore.Open(t.Context(), filepath.Join(dir, "entrance.db"), nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	sqlEngine, err := sqlite.New(&sqlite.Options{Path: filepath.Join(dir, "data.db")})
	if err != nil {
		t.Fatalf("open sqlite engine: %v", err)
	}
	tokens := map[string][]string{}
	for user, token := range testTokens {
		tokens[token] = []string{user}
	}
	opts := &entrance.Options{
		Store: store,
		Engines: map[string]entrance.Engine{
			"shell":  shell.New(&shell.Options{WorkDir: t.TempDir(), KillGrace: 200 * time.Millisecond}),
			"sqlite": sqlEngine,
		},
		Authenticator: entrance.NewTokenAuthenticator(tokens),
		Admins:        []string{"root"},
		Instance:      "127.0.0.1:9001",
		Logger:        slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(opts)
	}
	srv, err := entrance.New(opts)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	e := &env{t: t, srv: srv, http: httptest.NewServer(srv), store: store, dir: dir}
	t.Cleanup(func() {
		e.stop()
		sqlEngine.Close()
	})
	return e
}

// stop shuts the entrance down and closes its store.
func (e *env) stop() {
	if e.closed {
		return
	}
	e.closed = true
	e.http.CloseClientConnections()
	e.srv.Close()
	e.http.Close()
	e.store.Close()
}

// client is a WebSocket client of the entrance.
type client struct {
	t    *testing.T
	conn *websocket.Conn
}

// frame is a reply or push as a client reads it.
type frame struct {
	Method  string          `json:"method"`
	Status  int             `json:"status"`
	Message string          `json:"message"`
	Tag     string          `json:"websocketTag"`
	Data    json.RawMessage `json:"data"`
	raw     []byte
}

func (f *frame) field(t *testing.T, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(f.Data, &m); err != nil {
		t.Fatalf("decode data of %s: %v", f.raw, err)
	}
	return m[name]
}

func (f *frame) errCode(t *testing.T) int {
	t.Helper()
	var d struct {
		ErrorMsg struct {
			ErrCode int `json:"errCode"`
		} `json:"errorMsg"`
	}
	json.Unmarshal(f.Data, &d)
	return d.ErrorMsg.ErrCode
}

func (e *env) dial(user string) *client {
	e.t.Helper()
	c, err := e.tryDial(user, http.Header{})
	if err != nil {
		e.t.Fatalf("dial as %s: %v", user, err)
	}
	return c
}

func (e *env) tryDial(user string, h http.Header) (*client, error) {
	if token, ok := testTokens[user]; ok {
		h.Set("Token-Code", token)
		h.Set("Token-User", user)
	}
	url := "ws" + strings.TrimPrefix(e.http.URL, "http") + connectPath
	conn, _, err := websocket.Dial(e.t.Context(), url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(64 << 20)
	c := &client{t: e.t, conn: conn}
	e.t.Cleanup(func() { conn.CloseNow() })
	return c, nil
}

// send writes a request frame.
func (c *client) send(method string, data any) {
	c.t.Helper()
	b, err := json.Marshal(map[string]any{"method": "/api/rest_j/v1/" + method, "data": data})
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

func (c *client) sendRaw(text string) {
	c.t.Helper()
	if err := c.conn.Write(c.t.Context(), websocket.MessageText, []byte(text)); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

// read returns the next frame, failing the test after 20 s.
func (c *client) read() *frame {
	c.t.Helper()
	f, err := c.tryRead(20 * time.Second)
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

func (c *client) tryRead(timeout time.Duration) (*frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := c.conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	f := &frame{raw: b}
	if err := json.Unmarshal(b, f); err != nil {
		c.t.Fatalf("frame is not an envelope: %s: %v", b, err)
	}
	return f, nil
}

// call sends a request and returns the first frame whose method is the
// request's; pushes before it are returned too.
func (c *client) call(method string, data any) (*frame, []*frame) {
	c.t.Helper()
	c.send(method, data)
	var pushes []*frame
	for {
		f := c.read()
		if f.Method == "/api/rest_j/v1/"+method && !isPush(f) {
			return f, pushes
		}
		pushes = append(pushes, f)
	}
}

// isPush distinguishes pushes from replies: a push's message names its kind,
// while replies say "OK" or describe an error.
func isPush(f *frame) bool {
	switch f.Message {
	case "status", "log", "progress", "waitingSize":
		return f.Status == 0
	}
	return false
}

// execute submits code and returns the execID and taskID.
func (c *client) execute(engine, code string) (string, int64) {
	c.t.Helper()
	reply, _ := c.call("entrance/execute", map[string]any{
		"executeApplicationName": engine, "executionCode": code})
	if reply.Status != 0 {
		c.t.Fatalf("execute %s: status %d: %s", engine, reply.Status, reply.raw)
	}
	return reply.field(c.t, "execID").(string), int64(reply.field(c.t, "taskID").(float64))
}

// jobEvents collects the pushes of one job until its terminal status.
type jobEvents struct {
	statuses []string
	lines    []string // all lines, in order
	levels   [3][]string
	progress []float64
	fromLine []int64
	final    *frame
	tags     []string
}

// follow reads frames until the job with execID ends; frames of other
// jobs are passed to other.
func (c *client) follow(execID string, other func(*frame)) *jobEvents {
	c.t.Helper()
	ev := &jobEvents{}
	prefix := "/api/rest_j/v1/entrance/" + execID + "/"
	for {
		f := c.read()
		if !strings.HasPrefix(f.Method, prefix) {
			if other != nil {
				other(f)
			}
			continue
		}
		ev.tags = append(ev.tags, f.Tag)
		switch strings.TrimPrefix(f.Method, prefix) {
		case "status":
			st := f.field(c.t, "status").(string)
			ev.statuses = append(ev.statuses, st)
			if entrance.Status(st).Terminal() {
				ev.final = f
				return ev
			}
		case "log":
			ev.addLog(c.t, f)
		case "progress":
			ev.progress = append(ev.progress, f.field(c.t, "progress").(float64))
		}
	}
}

func (ev *jobEvents) addLog(t *testing.T, f *frame) {
	t.Helper()
	parts := f.field(t, "log").([]any)
	if len(parts) != 4 {
		t.Fatalf("log has %d parts, want 4: %s", len(parts), f.raw)
	}
	for i, level := range []int{2, 1, 0} {
		if s := parts[i].(string); s != "" {
			ev.levels[level] = append(ev.levels[level], strings.Split(s, "\n")...)
		}
	}
	if s := parts[3].(string); s != "" {
		ev.lines = append(ev.lines, strings.Split(s, "\n")...)
	}
	ev.fromLine = append(ev.fromLine, int64(f.field(t, "fromLine").(float64)))
}
