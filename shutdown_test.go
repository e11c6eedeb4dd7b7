package entrance_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/goentrance/entrance"
)

// restCall sends a REST request as user and decodes the envelope.
func (e *env) restCall(user, method, path, body string) (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method,
		e.http.URL+"/api/rest_j/v1/"+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Token-Code", testTokens[user])
	req.Header.Set("Token-User", user)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var env map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		e.t.Fatalf("%s %s: decode reply: %v", method, path, err)
	}
	return resp.StatusCode, env
}

// waitStatus waits until the store holds one of the statuses for a job.
func (e *env) waitStatus(taskID int64, want ...entrance.Status) *entrance.JobRecord {
	e.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; {
		rec, err := e.store.Job(e.t.Context(), taskID)
		if err != nil {
			e.t.Fatalf("read job %d: %v", taskID, err)
		}
		for _, s := range want {
			if rec.Status == s {
				return rec
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %d is %s after 20 s, want %v", taskID, rec.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gateEngine runs until open is closed or its job is cancelled.
type gateEngine struct{ open chan struct{} }

func (g gateEngine) Run(ctx context.Context, job *entrance.Job, out entrance.Output) error {
	out.Log(entrance.LevelInfo, "waiting for the gate")
	select {
	case <-g.open:
		out.Log(entrance.LevelInfo, "gate open")
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestShutdownGrace(t *testing.T) {
	gate := gateEngine{open: make(chan struct{})}
	edit := func(o *entrance.Options) {
		o.Engines["gate"] = gate
		o.Limits.MaxRunningPerUser = 1
	}
	e := newEnv(t, edit)
	c := e.dial("alice")
	slowID, slow := c.execute("shell", "echo slow-started; sleep 30")
	e.waitStatus(slow, entrance.StatusRunning)
	_, queued := c.execute("shell", "echo queued-done") // waits for slow
	bob := e.dial("bob")
	quickID, quick := bob.execute("gate", "x")
	e.waitStatus(quick, entrance.StatusRunning)
	e.waitStatus(queued, entrance.StatusScheduled)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- e.srv.Shutdown(ctx) }()

	// Submissions are rejected once the shutdown has begun.
	for deadline := time.Now().Add(5 * time.Second); ; {
		_, reply := e.restCall("alice", http.MethodPost, "entrance/execute",
			`{"executeApplicationName":"shell","executionCode":"echo late"}`)
		if reply["status"] != 0.0 {
			msg, _ := reply["message"].(string)
			if !strings.Contains(msg, "shutting down") {
				t.Errorf("late submission: %v", reply)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("submissions still accepted 5 s into the shutdown")
		}
	}

	close(gate.open) // the gate job ends within the grace period

	final := map[string]*frame{}
	for _, client := range []*client{c, bob} {
		for {
			f, err := client.tryRead(20 * time.Second)
			if err != nil {
				if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
					t.Errorf("connection ended with %v, want close code 1001", err)
				}
				break
			}
			if isPush(f) && strings.HasSuffix(f.Method, "/status") &&
				entrance.Status(f.field(t, "status").(string)).Terminal() {
				final[f.field(t, "execID").(string)] = f
			}
		}
	}
	if err := <-shutdownErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown returned %v, want the context's deadline error", err)
	}

	if f := final[quickID]; f == nil || f.field(t, "status") != "Succeed" {
		t.Errorf("job that finished within the grace period: final push %v", f)
	}
	f := final[slowID]
	if f == nil || f.field(t, "status") != "Cancelled" {
		t.Fatalf("job still running after the grace period: final push %v", f)
	}
	if desc, _ := f.field(t, "errDesc").(string); !strings.Contains(desc, "shut down") {
		t.Errorf("cancelled job's errDesc %q does not give the shutdown as reason", desc)
	}
	if n := len(final); n != 2 {
		t.Errorf("%d final status pushes, want 2", n)
	}
	e.waitStatus(quick, entrance.StatusSucceed)
	e.waitStatus(slow, entrance.StatusCancelled)
	e.waitStatus(queued, entrance.StatusScheduled)

	// The next start runs the queued job.
	e.stop()
	e2 := startEnv(t, e.dir, edit)
	rec := e2.waitStatus(queued, entrance.StatusSucceed, entrance.StatusFailed)
	if rec.Status != entrance.StatusSucceed {
		t.Errorf("queued job ended %s after the restart", rec.Status)
	}
}
