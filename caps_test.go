package entrance_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/goentrance/entrance"
)

// storedLog returns every stored line of a job.
func (e *env) storedLog(taskID int64) []entrance.LogLine {
	e.t.Helper()
	lines, err := e.store.ReadLog(e.t.Context(), taskID, 1, -1)
	if err != nil {
		e.t.Fatalf("read log of job %d: %v", taskID, err)
	}
	return lines
}

var droppedMarker = regexp.MustCompile(`^(\d+) log lines dropped: the job's log reached its cap of (\d+) bytes`)

func TestLogByteCap(t *testing.T) {
	const total, limit = 1_000_000, 100_000
	cases := []struct {
		name   string
		code   string
		status string
		last   string // the line after the marker, if any
	}{
		{"succeeds", "seq 1 1000000", "Succeed", ""},
		{"fails", "seq 1 1000000; exit 3", "Failed", "shell exited with code 3"},
	}
	e := newEnv(t, func(o *entrance.Options) { o.Limits.MaxLogBytes = limit })
	c := e.dial("alice")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			execID, taskID := c.execute("shell", tc.code)
			ev := c.follow(execID, nil)
			if got := ev.final.field(t, "status"); got != tc.status {
				t.Fatalf("job ended %v, want %s", got, tc.status)
			}
			lines := e.storedLog(taskID)
			tail := 1
			if tc.last != "" {
				tail = 2
				if got := lines[len(lines)-1]; got.Text != tc.last || got.Level != entrance.LevelError {
					t.Errorf("last line %+v, want error line %q", got, tc.last)
				}
			}
			kept := lines[:len(lines)-tail]
			var size int
			for i, l := range kept {
				if want := strconv.Itoa(i + 1); l.Text != want {
					t.Fatalf("line %d is %q, want %q", l.Number, l.Text, want)
				}
				size += len(l.Text)
			}
			if size > limit {
				t.Errorf("kept %d bytes of text, over the cap of %d", size, limit)
			}
			if next := len(strconv.Itoa(len(kept) + 1)); size+next <= limit {
				t.Errorf("kept %d bytes, but line %d would have fit", size, len(kept)+1)
			}
			marker := lines[len(kept)]
			m := droppedMarker.FindStringSubmatch(marker.Text)
			if m == nil || marker.Level != entrance.LevelWarn {
				t.Fatalf("line after the kept lines is %+v, want the dropped-lines marker", marker)
			}
			if dropped, _ := strconv.Atoi(m[1]); dropped != total-len(kept) {
				t.Errorf("marker counts %d dropped lines, want %d", dropped, total-len(kept))
			}
			if m[2] != strconv.Itoa(limit) {
				t.Errorf("marker names a cap of %s bytes, want %d", m[2], limit)
			}
			if got := len(ev.lines); got != len(lines) {
				t.Errorf("pushed %d lines, stored %d", got, len(lines))
			}
			rec, err := e.store.Job(t.Context(), taskID)
			if err != nil {
				t.Fatal(err)
			}
			if rec.LogLines != int64(len(lines)) {
				t.Errorf("record counts %d lines, %d stored", rec.LogLines, len(lines))
			}
		})
	}
}

func TestLogLineCap(t *testing.T) {
	const limit = 1000
	cases := []struct {
		name string
		line string
		want string
	}{
		{"at the cap", strings.Repeat("a", limit), strings.Repeat("a", limit)},
		{"over the cap", strings.Repeat("a", limit+500),
			strings.Repeat("a", limit) + "... [line cut: 500 more bytes]"},
		// 999 bytes, then a 2-byte character that would end past the cap.
		{"inside a character", strings.Repeat("a", limit-1) + strings.Repeat("é", 100),
			strings.Repeat("a", limit-1) + "... [line cut: 200 more bytes]"},
	}
	e := newEnv(t, func(o *entrance.Options) {
		o.Engines["echo"] = echoEngine{}
		o.Limits.MaxLogLineBytes = limit
	})
	c := e.dial("alice")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			execID, taskID := c.execute("echo", tc.line)
			ev := c.follow(execID, nil)
			if len(ev.lines) != 1 || ev.lines[0] != tc.want {
				t.Errorf("pushed %q, want %q", ev.lines, tc.want)
			}
			stored := e.storedLog(taskID)
			if len(stored) != 1 || stored[0].Text != tc.want {
				t.Fatalf("stored %+v, want one line %q", stored, tc.want)
			}
			if !utf8.ValidString(stored[0].Text) {
				t.Errorf("stored line is not valid UTF-8")
			}
		})
	}
}

func TestJobTimeout(t *testing.T) {
	cases := []struct {
		name   string
		limit  time.Duration // Limits.JobTimeout
		method string
		data   map[string]any
		status string
		within time.Duration // the time limit that applies
	}{
		{"server limit", 500 * time.Millisecond, "entrance/execute",
			map[string]any{"executeApplicationName": "shell", "executionCode": "sleep 30"},
			"Timeout", 500 * time.Millisecond},
		{"label seconds", 0, "entrance/submit", submitBody("sleep 30", 1), "Timeout", time.Second},
		{"label string", 0, "entrance/submit", submitBody("sleep 30", "1"), "Timeout", time.Second},
		{"label under server limit", 5 * time.Second, "entrance/submit",
			submitBody("sleep 30", 1), "Timeout", time.Second},
		{"label over server limit", 300 * time.Millisecond, "entrance/submit",
			submitBody("sleep 30", 60), "Timeout", 300 * time.Millisecond},
		{"finishes in time", 0, "entrance/submit", submitBody("echo done", 20), "Succeed", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *entrance.Options) { o.Limits.JobTimeout = tc.limit })
			c := e.dial("alice")
			// The time limit starts when the job runs, which may be before
			// the client reads the reply, so the clock starts before the
			// request.
			start := time.Now()
			reply, _ := c.call(tc.method, tc.data)
			if reply.Status != 0 {
				t.Fatalf("submit: %s", reply.raw)
			}
			execID := reply.field(t, "execID").(string)
			ev := c.follow(execID, nil)
			took := time.Since(start)
			if got := ev.final.field(t, "status"); got != tc.status {
				t.Fatalf("job ended %v, want %s: %s", got, tc.status, ev.final.raw)
			}
			if tc.status != "Timeout" {
				return
			}
			if got := ev.final.field(t, "errCode"); got != float64(entrance.ErrCodeTimeout) {
				t.Errorf("errCode %v, want %d", got, entrance.ErrCodeTimeout)
			}
			want := "job ran past its time limit of " + tc.within.String()
			if got := ev.final.field(t, "errDesc"); got != want {
				t.Errorf("errDesc %q, want %q", got, want)
			}
			if last := ev.lines[len(ev.lines)-1]; last != want {
				t.Errorf("last log line %q, want %q", last, want)
			}
			if took < tc.within || took > tc.within+10*time.Second {
				t.Errorf("job ended after %v, want a little over %v", took, tc.within)
			}
		})
	}
}

// submitBody is a Linkis 1.x submit body for a shell job with the
// jobRunningTimeout label.
func submitBody(code string, timeout any) map[string]any {
	return map[string]any{
		"executionContent": map[string]any{"code": code, "runType": "sh"},
		"labels": map[string]any{"engineType": "shell-1", "userCreator": "alice-IDE",
			"jobRunningTimeout": timeout},
	}
}

func TestFailureReasonLogged(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	execID, taskID := c.execute("shell", "echo before; exit 4")
	ev := c.follow(execID, nil)
	want := []string{"before", "shell exited with code 4"}
	if fmt.Sprint(ev.lines) != fmt.Sprint(want) {
		t.Errorf("pushed lines %q, want %q", ev.lines, want)
	}
	if got := len(e.storedLog(taskID)); got != 2 {
		t.Errorf("stored %d lines, want 2", got)
	}
}
