package entrance_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// credentials are what a caller sends as Token-User and Token-Code; an
// empty field is not sent.
type credentials struct {
	user, token string
}

// credentialsOf returns the valid credentials of a test user.
func credentialsOf(user string) credentials {
	return credentials{user: user, token: testTokens[user]}
}

func (c credentials) setHeaders(h http.Header) {
	if c.user != "" {
		h.Set("Token-User", c.user)
	}
	if c.token != "" {
		h.Set("Token-Code", c.token)
	}
}

// dialAs opens a WebSocket connection with the credentials and extra
// headers. It returns the HTTP response of a rejected upgrade.
func (e *env) dialAs(creds credentials, h http.Header) (*client, *http.Response, error) {
	e.t.Helper()
	if h == nil {
		h = http.Header{}
	}
	creds.setHeaders(h)
	url := "ws" + strings.TrimPrefix(e.http.URL, "http") + connectPath
	conn, resp, err := websocket.Dial(e.t.Context(), url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, resp, err
	}
	conn.SetReadLimit(64 << 20)
	e.t.Cleanup(func() { conn.CloseNow() })
	return &client{t: e.t, conn: conn}, resp, nil
}

// restCall is one REST request of a test.
type restCall struct {
	creds  credentials
	post   bool           // POST data as a JSON body; else GET with data as the query
	method string         // the path after /api/rest_j/v1/
	data   map[string]any // body or query parameters
	header http.Header    // extra headers
}

// restAs sends a REST request and returns the HTTP status and the
// envelope of the reply.
func (e *env) restAs(call restCall) (int, *frame) {
	e.t.Helper()
	target := e.http.URL + "/api/rest_j/v1/" + call.method
	var body io.Reader
	httpMethod := http.MethodGet
	if call.post {
		b, err := json.Marshal(call.data)
		if err != nil {
			e.t.Fatal(err)
		}
		body, httpMethod = bytes.NewReader(b), http.MethodPost
	} else if len(call.data) > 0 {
		q := url.Values{}
		for name, value := range call.data {
			q.Set(name, toQueryValue(e.t, value))
		}
		target += "?" + q.Encode()
	}

	req, err := http.NewRequestWithContext(e.t.Context(), httpMethod, target, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for name, values := range call.header {
		req.Header[name] = values
	}
	call.creds.setHeaders(req.Header)

	resp, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", httpMethod, call.method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read reply of %s: %v", call.method, err)
	}
	f := &frame{raw: raw}
	if err := json.Unmarshal(raw, f); err != nil {
		e.t.Fatalf("%s %s: HTTP %d, body is not an envelope: %q", httpMethod, call.method,
			resp.StatusCode, raw)
	}
	return resp.StatusCode, f
}

func toQueryValue(t *testing.T, v any) string {
	t.Helper()
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runToEnd submits code as the client's user and follows the job to its
// terminal status.
func (c *client) runToEnd(engine, code string) (string, int64, *jobEvents) {
	c.t.Helper()
	execID, taskID := c.execute(engine, code)
	return execID, taskID, c.follow(execID, nil)
}

// awaitStatus polls the status of a job over REST until it is want,
// failing the test after 10 s.
func (e *env) awaitStatus(user string, taskID int64, want string) {
	e.t.Helper()
	var got any
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		_, f := e.restAs(restCall{creds: credentialsOf(user), method: jobPath(taskID, "status")})
		if got = f.field(e.t, "status"); got == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("job %d has status %v after 10 s, want %s", taskID, got, want)
}

func jobPath(taskID int64, action string) string {
	return "entrance/" + strconv.FormatInt(taskID, 10) + "/" + action
}

// processGroupOf waits until the store records the process group of a
// running job and checks that the group is alive.
func (e *env) processGroupOf(taskID int64) int {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		rec, err := e.store.Job(e.t.Context(), taskID)
		if err != nil {
			e.t.Fatal(err)
		}
		if rec.Process != 0 {
			if err := syscall.Kill(-rec.Process, 0); err != nil {
				e.t.Fatalf("process group %d not alive: %v", rec.Process, err)
			}
			return rec.Process
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("job %d recorded no process group in 10 s", taskID)
	return 0
}

// checkGroupGone waits up to 10 s for every process of the group to be
// gone. Children killed after their parent exited are reaped by init,
// which may take a moment.
func checkGroupGone(t *testing.T, pgid int) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if err = syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("process group %d still has processes 10 s after the job ended: %v", pgid, err)
}

// logCapture is a slog destination that a test can read while the
// server writes to it.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// innerStatus returns the status of the first per-job message of a
// killJobs reply.
func innerStatus(t *testing.T, f *frame) int {
	t.Helper()
	var d struct {
		Messages []struct {
			Status int `json:"status"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil || len(d.Messages) == 0 {
		t.Fatalf("killJobs reply has no messages: %s", f.raw)
	}
	return d.Messages[0].Status
}
