package entrance_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/goentrance/entrance"
)

// checkLimitReply checks a status-1 reply that rejects a request over a
// limit and names the limit and its value.
func checkLimitReply(t *testing.T, f *frame, mentions ...string) {
	t.Helper()
	if f.Status != 1 {
		t.Fatalf("status %d, want 1: %s", f.Status, f.raw)
	}
	if got := f.errCode(t); got != 21006 {
		t.Errorf("errCode %d, want 21006", got)
	}
	for _, want := range mentions {
		if !strings.Contains(f.Message, want) {
			t.Errorf("message %q does not mention %q", f.Message, want)
		}
	}
}

func TestMaxRunningPerUserHoldsJobs(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) { o.Limits.MaxRunningPerUser = 1 })
	alice := e.dial("alice")
	firstExec, firstTask := alice.execute("shell", "echo started; sleep 30")
	e.awaitStatus("alice", firstTask, "Running")

	secondExec, secondTask := alice.execute("shell", "echo second")
	e.awaitStatus("alice", secondTask, "Scheduled")
	time.Sleep(300 * time.Millisecond)
	e.awaitStatus("alice", secondTask, "Scheduled")

	_, _, other := e.dial("bob").runToEnd("shell", "echo bob")
	if got := other.final.field(t, "status"); got != "Succeed" {
		t.Errorf("another user's job ended %v while alice was at her limit", got)
	}

	if f, _ := alice.call("entrance/"+firstExec+"/kill", nil); f.Status != 0 {
		t.Fatalf("kill: %s", f.raw)
	}
	ev := alice.follow(secondExec, nil)
	if got := ev.final.field(t, "status"); got != "Succeed" {
		t.Errorf("held job ended %v after the first was killed", got)
	}
}

func TestMaxQueuedPerUserRejects(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) { o.Limits.MaxQueuedPerUser = 2 })
	alice := e.dial("alice")
	alice.execute("shell", "sleep 30")
	alice.execute("shell", "sleep 30")

	f, _ := alice.call("entrance/execute", map[string]any{
		"executeApplicationName": "shell", "executionCode": "echo third"})
	checkLimitReply(t, f, "MaxQueuedPerUser", "is 2")

	code, f := e.restAs(restCall{creds: credentialsOf("alice"), post: true, method: "entrance/execute",
		data: map[string]any{"executeApplicationName": "shell", "executionCode": "echo third"}})
	checkLimitReply(t, f, "MaxQueuedPerUser", "is 2")
	if code != http.StatusBadRequest {
		t.Errorf("REST: HTTP %d, want 400", code)
	}

	if _, _, ev := e.dial("bob").runToEnd("shell", "echo bob"); ev.final.field(t, "status") != "Succeed" {
		t.Errorf("another user was limited: %s", ev.final.raw)
	}
}

func TestMaxConnsPerUserRejects(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) { o.Limits.MaxConnsPerUser = 2 })
	first := e.dial("alice")
	e.dial("alice")

	extra, _, err := e.dialAs(credentialsOf("alice"), nil)
	if err != nil {
		t.Fatalf("upgrade over the limit: %v", err)
	}
	checkLimitReply(t, extra.read(), "MaxConnsPerUser", "is 2")
	_, err = extra.tryRead(5 * time.Second)
	if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
		t.Errorf("connection over the limit ended with %v (close code %d), want 1008", err, got)
	}

	if f, _ := e.dial("bob").call("jobhistory/list", nil); f.Status != 0 {
		t.Errorf("another user was limited: %s", f.raw)
	}

	// Closing a connection frees its place once the server notices that it closed.
	first.conn.Close(websocket.StatusNormalClosure, "")
	for deadline := time.Now().Add(5 * time.Second); ; {
		c := e.dial("alice")
		c.send("jobhistory/list", nil)
		f := c.read()
		if f.Status == 0 {
			break
		}
		c.conn.CloseNow()
		if time.Now().After(deadline) {
			t.Fatalf("no connection accepted 5 s after one closed: %s", f.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSubmitRateLimit(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) {
		o.Limits.SubmitsPerSecond = 0.5
		o.Limits.SubmitBurst = 3
	})
	alice := e.dial("alice")
	for range 3 {
		alice.execute("shell", "true")
	}
	f, _ := alice.call("entrance/execute", map[string]any{
		"executeApplicationName": "shell", "executionCode": "true"})
	checkLimitReply(t, f, "SubmitsPerSecond", "is 0.5", "3 (SubmitBurst)", "retry in")

	_, f = e.restAs(restCall{creds: credentialsOf("alice"), post: true, method: "entrance/submit",
		data: map[string]any{"executionContent": map[string]any{"code": "true"},
			"labels": map[string]any{"engineType": "shell"}}})
	checkLimitReply(t, f, "SubmitsPerSecond")

	if f, _ := e.dial("bob").call("entrance/execute", map[string]any{
		"executeApplicationName": "shell", "executionCode": "true"}); f.Status != 0 {
		t.Errorf("another user was limited: %s", f.raw)
	}
}
