package entrance_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goentrance/entrance"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// documentedFrame is the execute request of Linkis's WebSocket document.
const documentedFrame = `{"method":"/api/rest_j/v1/entrance/execute","data":{"params":{"variable":{"k1":"v1"},"configuration":{"special":{"k2":"v2"},"runtime":{"k3":"v3"},"startup":{"k4":"v4"}}},"executeApplicationName":"spark","executionCode":"show tables","runType":"sql","source":{"scriptPath":"/home/Linkis/Linkis.sql"},"websocketTag":"37fcbd8b762d465a0c870684a0261c6e"}}`

func TestExecuteDocumentedFrame(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")

	c.sendRaw(documentedFrame)
	reply := c.read()
	if reply.Status != 1 {
		t.Fatalf("spark: status %d, want 1: %s", reply.Status, reply.raw)
	}
	if got := reply.errCode(t); got != 20009 {
		t.Errorf("spark: errCode %d, want 20009", got)
	}
	for _, want := range []string{"spark", "shell", "sqlite"} {
		if !strings.Contains(reply.Message, want) {
			t.Errorf("spark: message %q does not name %q", reply.Message, want)
		}
	}
	if reply.Tag != "37fcbd8b762d465a0c870684a0261c6e" {
		t.Errorf("spark: websocketTag %q not echoed", reply.Tag)
	}

	c.sendRaw(strings.Replace(documentedFrame, `"spark"`, `"sqlite"`, 1))
	reply = c.read()
	if reply.Status != 0 {
		t.Fatalf("sqlite: status %d: %s", reply.Status, reply.raw)
	}
	execID := reply.field(t, "execID").(string)
	if got := reply.field(t, "websocketTag"); got != "37fcbd8b762d465a0c870684a0261c6e" {
		t.Errorf("sqlite: data.websocketTag = %v", got)
	}
	ev := c.follow(execID, nil)
	if got := ev.statuses[len(ev.statuses)-1]; got != "Succeed" {
		t.Fatalf("show tables ended %s: %s", got, ev.final.raw)
	}
}

// levelScript prints 500 numbered lines: every 10th to stderr, every 7th
// with a Linkis WARN prefix, and reports through the engine's log.
const levelScript = `i=1
while [ $i -le 500 ]; do
  if [ $((i % 10)) -eq 0 ]; then echo "line $i" >&2
  elif [ $((i % 7)) -eq 0 ]; then echo "2026-12-04 10:00:00.000 WARN line $i"
  else echo "line $i"; fi
  i=$((i+1))
done`

func TestJobLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	c.send("entrance/execute", map[string]any{
		"executeApplicationName": "shell", "executionCode": levelScript, "websocketTag": "tab-1"})
	reply := c.read()
	if reply.Status != 0 {
		t.Fatalf("execute: %s", reply.raw)
	}
	execID := reply.field(t, "execID").(string)
	ev := c.follow(execID, nil)

	want := []string{"Inited", "Scheduled", "Running", "Succeed"}
	if !slices.Equal(ev.statuses, want) {
		t.Errorf("statuses %v, want %v", ev.statuses, want)
	}
	if len(ev.lines) != 500 {
		t.Fatalf("got %d log lines, want 500", len(ev.lines))
	}
	// stdout and stderr are two pipes, so only each stream keeps its order.
	var stdout, stderr []string
	for _, line := range ev.lines {
		if strings.Contains(line, "0") && strings.HasSuffix(line, "0") {
			stderr = append(stderr, line)
		} else {
			stdout = append(stdout, line)
		}
	}
	for i, line := range stderr {
		if want := fmt.Sprintf("line %d", 10*(i+1)); line != want {
			t.Fatalf("stderr line %d is %q, want %q", i+1, line, want)
		}
	}
	for i, n := 0, 1; i < len(stdout); i, n = i+1, n+1 {
		if n%10 == 0 {
			n++
		}
		if !strings.HasSuffix(stdout[i], fmt.Sprintf("line %d", n)) {
			t.Fatalf("stdout line %d is %q, want line %d", i+1, stdout[i], n)
		}
	}
	if got := len(ev.levels[2]); got != 50 {
		t.Errorf("%d error lines, want 50", got)
	}
	if got := len(ev.levels[1]); got != 64 {
		t.Errorf("%d warn lines, want 64", got)
	}
	if got := len(ev.levels[0]); got != 386 {
		t.Errorf("%d info lines, want 386", got)
	}
	if last := ev.fromLine[len(ev.fromLine)-1]; last != 501 {
		t.Errorf("last fromLine %d, want 501", last)
	}
	checkProgress(t, ev.progress)
	for i, tag := range ev.tags {
		if tag != "tab-1" {
			t.Fatalf("push %d has websocketTag %q, want tab-1", i, tag)
		}
	}

	page, _ := c.call("entrance/"+execID+"/log", map[string]any{"fromLine": 101, "size": 50})
	if page.Status != 0 {
		t.Fatalf("log page: %s", page.raw)
	}
	all := strings.Split(page.field(t, "log").([]any)[3].(string), "\n")
	if !slices.Equal(all, ev.lines[100:150]) {
		t.Errorf("lines 101-150 pulled differ from those pushed:\n%q\n%q", all, ev.lines[100:150])
	}
	if got := page.field(t, "fromLine"); got != 151.0 {
		t.Errorf("page fromLine %v, want 151", got)
	}
}

func checkProgress(t *testing.T, values []float64) {
	t.Helper()
	if len(values) == 0 {
		t.Fatal("no progress push")
	}
	for i := 1; i < len(values); i++ {
		if values[i] < values[i-1] {
			t.Errorf("progress went down: %v", values)
		}
	}
	for _, v := range values[:len(values)-1] {
		if v >= 1 {
			t.Errorf("progress %v reached 1 before the end: %v", v, values)
		}
	}
	if last := values[len(values)-1]; last != 1 {
		t.Errorf("final progress %v, want 1", last)
	}
}

func TestKillEndsProcessGroup(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	execID, taskID := c.execute("shell", "echo started; sleep 30 & sleep 30")

	var pgid int
	for deadline := time.Now().Add(10 * time.Second); pgid == 0; {
		rec, err := e.store.Job(t.Context(), taskID)
		if err != nil {
			t.Fatal(err)
		}
		pgid = rec.Process
		if time.Now().After(deadline) {
			t.Fatal("job recorded no process group")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(-pgid, 0); err != nil {
		t.Fatalf("process group %d not alive before kill: %v", pgid, err)
	}

	kill, pushes := c.call("entrance/"+execID+"/kill", nil)
	if kill.Status != 0 {
		t.Fatalf("kill: %s", kill.raw)
	}
	ev := c.follow(execID, nil)
	for _, p := range pushes {
		if strings.HasSuffix(p.Method, "/status") {
			ev.statuses = append([]string{p.field(t, "status").(string)}, ev.statuses...)
		}
	}
	if got := ev.final.field(t, "status"); got != "Cancelled" {
		t.Fatalf("killed job ended %v", got)
	}
	// Killed children are reaped by init, which may take a moment.
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if err = syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("process group %d still has processes 10 s after the kill: %v", pgid, err)
}

func TestManyJobsOneConnection(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	const n = 50
	for i := range n {
		c.send("entrance/execute", map[string]any{
			"executeApplicationName": "shell",
			"executionCode":          fmt.Sprintf("echo job-%d; echo job-%d-done", i, i),
			"websocketTag":           fmt.Sprintf("tag-%d", i),
		})
	}
	byExec := map[string]int{}
	lines := map[string][]string{}
	final := map[string]string{}
	for len(final) < n {
		f := c.read()
		switch {
		case f.Message == "execution request accepted":
			byExec[f.field(t, "execID").(string)] = len(byExec)
		case isPush(f):
			execID := f.field(t, "execID").(string)
			i, known := byExec[execID]
			if !known {
				t.Fatalf("push for unknown execID before its reply: %s", f.raw)
			}
			if f.Tag != fmt.Sprintf("tag-%d", i) {
				t.Fatalf("push of job %d has tag %q", i, f.Tag)
			}
			switch {
			case strings.HasSuffix(f.Method, "/log"):
				all := f.field(t, "log").([]any)[3].(string)
				lines[execID] = append(lines[execID], strings.Split(all, "\n")...)
			case strings.HasSuffix(f.Method, "/status"):
				if st := f.field(t, "status").(string); st == "Succeed" || st == "Failed" {
					final[execID] = st
				}
			}
		default:
			t.Fatalf("unexpected frame: %s", f.raw)
		}
	}
	for execID, i := range byExec {
		if final[execID] != "Succeed" {
			t.Errorf("job %d ended %s", i, final[execID])
		}
		want := []string{fmt.Sprintf("job-%d", i), fmt.Sprintf("job-%d-done", i)}
		if !slices.Equal(lines[execID], want) {
			t.Errorf("job %d lines %q, want %q", i, lines[execID], want)
		}
	}
}

func TestBadInputAnswered(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) { o.Limits.MaxFrameBytes = 4096 })
	c := e.dial("alice")
	cases := []struct {
		name    string
		frame   string
		status  int
		errCode int
		mention string
	}{
		{"blank frame", "   ", 1, 21001, "blank"},
		{"invalid JSON", `{"method": `, 1, 21001, "JSON"},
		{"JSON array", `[1,2]`, 1, 21001, "JSON object"},
		{"unknown method", `{"method":"/api/rest_j/v1/entrance/fly","data":{}}`, 1, 21002, "fly"},
		{"no method", `{"data":{}}`, 1, 21002, "method"},
		{"method not a string", `{"method":5,"data":{}}`, 1, 21001, "method"},
		{"data not an object", `{"method":"/api/rest_j/v1/entrance/execute","data":"x"}`, 1, 21003, "data"},
		{"missing executionCode", `{"method":"/api/rest_j/v1/entrance/execute","data":{"executeApplicationName":"shell"}}`, 1, 20007, "executionCode"},
		{"blank executionCode", `{"method":"/api/rest_j/v1/entrance/execute","data":{"executeApplicationName":"shell","executionCode":"  "}}`, 1, 20007, "executionCode"},
		{"missing engine", `{"method":"/api/rest_j/v1/entrance/execute","data":{"executionCode":"ls"}}`, 1, 20009, "executeApplicationName"},
		{"unknown engine", `{"method":"/api/rest_j/v1/entrance/execute","data":{"executeApplicationName":"hive","executionCode":"ls"}}`, 1, 20009, "hive"},
		{"executionCode a number", `{"method":"/api/rest_j/v1/entrance/execute","data":{"executeApplicationName":"shell","executionCode":5}}`, 1, 21003, "executionCode"},
		{"params a string", `{"method":"/api/rest_j/v1/entrance/execute","data":{"executeApplicationName":"shell","executionCode":"ls","params":"x"}}`, 1, 21003, "params"},
		{"unknown execID", `{"method":"/api/rest_j/v1/entrance/030514IDEshell127.0.0.1:9001IDE_alice_999999/status","data":{}}`, 1, 21004, "999999"},
		{"unknown taskID", `{"method":"/api/rest_j/v1/entrance/999999/log","data":{}}`, 1, 21004, "999999"},
		{"garbage execID", `{"method":"/api/rest_j/v1/entrance/xyz!/status","data":{}}`, 1, 21003, "xyz!"},
		{"taskID zero", `{"method":"/api/rest_j/v1/entrance/0/status","data":{}}`, 1, 21003, "taskID 0"},
		{"taskID negative", `{"method":"/api/rest_j/v1/entrance/-1/status","data":{}}`, 1, 21003, "taskID -1"},
		{"taskID too large", `{"method":"/api/rest_j/v1/entrance/999999999999999999999999/status","data":{}}`, 1, 21003, "taskID"},
		{"params wrong shape", `{"method":"/api/rest_j/v1/entrance/execute","data":{"executeApplicationName":"shell","executionCode":"ls","params":{"variable":{"a":5}}}}`, 1, 21003, "must be a string"},
		{"fromLine not a number", `{"method":"/api/rest_j/v1/entrance/1/log","data":{"fromLine":"abc"}}`, 1, 21003, "fromLine"},
		{"oversized frame", `{"method":"/api/rest_j/v1/entrance/execute","data":{"executionCode":"` + strings.Repeat("x", 8000) + `"}}`, 1, 21007, "limit"},
	}
	_, taskID := c.execute("shell", "echo ok")
	_ = taskID
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.sendRaw(tc.frame)
			f := readReply(t, c)
			if f.Status != tc.status {
				t.Errorf("status %d, want %d: %s", f.Status, tc.status, f.raw)
			}
			if got := f.errCode(t); got != tc.errCode {
				t.Errorf("errCode %d, want %d: %s", got, tc.errCode, f.raw)
			}
			if !strings.Contains(f.Message, tc.mention) {
				t.Errorf("message %q does not mention %q", f.Message, tc.mention)
			}
			// The connection still serves requests.
			status, _ := c.call("entrance/1/status", nil)
			if status.Status != 0 {
				t.Errorf("status after bad input: %s", status.raw)
			}
		})
	}
}

// readReply returns the next frame that is not a push.
func readReply(t *testing.T, c *client) *frame {
	t.Helper()
	for {
		f := c.read()
		if !isPush(f) {
			return f
		}
	}
}

func TestSecondConnectionReceivesPushes(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.dial("alice")
	execID, _ := owner.execute("shell", "echo first; read x < /dev/null; sleep 1; echo second; echo third")

	watcher := e.dial("alice")
	status, _ := watcher.call("entrance/"+execID+"/status", nil)
	if status.Status != 0 {
		t.Fatalf("status: %s", status.raw)
	}
	ev := watcher.follow(execID, nil)
	if got := ev.final.field(t, "status"); got != "Succeed" {
		t.Fatalf("job ended %v", got)
	}
	if !slices.Contains(ev.lines, "third") {
		t.Errorf("watcher did not receive later lines: %q", ev.lines)
	}
}

func TestLogPastEndPointsAtNextLine(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	execID, _ := c.execute("shell", "echo one; echo two")
	c.follow(execID, nil)
	reply, _ := c.call("entrance/"+execID+"/log", map[string]any{"fromLine": 100})
	if reply.Status != 0 {
		t.Fatalf("log: %s", reply.raw)
	}
	if got := reply.field(t, "fromLine"); got != 3.0 {
		t.Errorf("fromLine %v, want 3", got)
	}
}

func TestSchedulerStartsJobsInOrder(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) { o.Limits.MaxRunningPerUser = 1 })
	alice := e.dial("alice")
	var order []string
	for i := range 4 {
		alice.send("entrance/execute", map[string]any{
			"executeApplicationName": "shell", "executionCode": fmt.Sprintf("echo q%d; sleep 0.2", i)})
	}
	// bob is not held back by alice's queue.
	bob := e.dial("bob")
	bobExec, _ := bob.execute("shell", "echo bob")
	bobEvents := bob.follow(bobExec, nil)
	if got := bobEvents.final.field(t, "status"); got != "Succeed" {
		t.Fatalf("bob's job ended %v", got)
	}

	waiting := map[string][]float64{}
	done := 0
	for done < 4 {
		f := alice.read()
		switch {
		case strings.HasSuffix(f.Method, "/log"):
			order = append(order, strings.TrimSpace(f.field(t, "log").([]any)[3].(string)))
		case strings.HasSuffix(f.Method, "/waitingSize"):
			execID := f.field(t, "execID").(string)
			waiting[execID] = append(waiting[execID], f.field(t, "waitingSize").(float64))
		case strings.HasSuffix(f.Method, "/status") && f.field(t, "status") == "Succeed":
			done++
		}
	}
	if want := []string{"q0", "q1", "q2", "q3"}; !slices.Equal(order, want) {
		t.Errorf("jobs started in order %v, want %v", order, want)
	}
	if len(waiting) != 3 {
		t.Errorf("%d jobs got waitingSize pushes, want 3: %v", len(waiting), waiting)
	}
	for execID, sizes := range waiting {
		if last := sizes[len(sizes)-1]; last != 0 {
			t.Errorf("job %s: last waitingSize %v, want 0", execID, last)
		}
	}
	if len(bobEvents.statuses) != 4 {
		t.Errorf("bob's job statuses %v, want no wait", bobEvents.statuses)
	}
}
