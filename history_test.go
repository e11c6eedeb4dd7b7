package entrance_test

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goentrance/entrance"
)

// oldBody and linkis1xBody are the same shell job in the two request
// shapes that Linkis clients send.
var (
	oldBody = map[string]any{
		"executeApplicationName": "shell",
		"requestApplicationName": "IDE",
		"executionCode":          "echo ${k1}; echo second",
		"runType":                "sh",
		"params": map[string]any{
			"variable": map[string]any{"k1": "v1"},
			"configuration": map[string]any{
				"startup": map[string]any{"k4": "v4"},
				"runtime": map[string]any{"k3": 3.0},
				"special": map[string]any{"k2": "v2"},
			},
		},
		"source": map[string]any{"scriptPath": "/home/alice/first.sh"},
	}
	linkis1xBody = map[string]any{
		"executionContent": map[string]any{"code": "echo ${k1}; echo second", "runType": "sh"},
		"labels":           map[string]any{"engineType": "shell-1", "userCreator": "alice-IDE"},
		"executeUser":      "alice",
		"params":           oldBody["params"],
		"source":           oldBody["source"],
	}
)

func TestSubmitLinkis1xMatchesOld(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	cases := []struct {
		name      string
		transport string
		method    string
		body      map[string]any
	}{
		{"old body over WebSocket", "ws", "entrance/execute", oldBody},
		{"old body over REST", "rest", "entrance/execute", oldBody},
		{"1.x body over REST submit", "rest", "entrance/submit", linkis1xBody},
		{"1.x body over WebSocket submit", "ws", "entrance/submit", linkis1xBody},
		{"1.x body over REST execute", "rest", "entrance/execute", linkis1xBody},
	}
	var first map[string]any
	var firstText any
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var reply *frame
			if tc.transport == "rest" {
				reply = e.rest("alice", http.MethodPost, tc.method, tc.body).frame
			} else {
				reply, _ = c.call(tc.method, tc.body)
			}
			if reply.Status != 0 {
				t.Fatalf("submit: %s", reply.raw)
			}
			taskID := int64(reply.field(t, "taskID").(float64))
			if st := waitStatus(t, e, "alice", taskID); st != "Succeed" {
				t.Fatalf("job ended %s", st)
			}

			task := historyTask(t, e, "alice", taskID)
			for _, field := range []string{"taskID", "execId", "resultLocation",
				"createdTime", "updatedTime", "costTime"} {
				delete(task, field)
			}
			text := e.rest("alice", http.MethodGet, "filesystem/openFile",
				map[string]any{"path": fmt.Sprintf("result://%d/_0.dolphin", taskID)}).frame.field(t, "fileContent")
			if first == nil {
				first, firstText = task, text
				if text != "v1\nsecond" {
					t.Errorf("result %q, want %q", text, "v1\nsecond")
				}
				return
			}
			for _, name := range slices.Sorted(maps.Keys(first)) {
				if fmt.Sprint(task[name]) != fmt.Sprint(first[name]) {
					t.Errorf("%s: %v, want %v as with the old body", name, task[name], first[name])
				}
			}
			if len(task) != len(first) {
				t.Errorf("task has %d fields, want %d", len(task), len(first))
			}
			if text != firstText {
				t.Errorf("result %q, want %q", text, firstText)
			}
		})
	}
}

func TestSubmitLinkis1xAsOtherUser(t *testing.T) {
	e := newEnv(t, nil)
	body := maps.Clone(linkis1xBody)
	delete(body, "executeUser")
	body["labels"] = map[string]any{"engineType": "shell", "userCreator": "bob-IDE"}
	r := e.rest("alice", http.MethodPost, "entrance/submit", body)
	if r.frame.Status != 3 || r.code != http.StatusForbidden {
		t.Fatalf("status %d, HTTP %d, want 3 and 403: %s", r.frame.Status, r.code, r.frame.raw)
	}
	if !strings.Contains(r.frame.Message, "bob") {
		t.Errorf("message %q does not name the user", r.frame.Message)
	}
}

// historyTask returns the task of jobhistory/{taskID}/get.
func historyTask(t *testing.T, e *env, user string, taskID int64) map[string]any {
	t.Helper()
	r := e.rest(user, http.MethodGet, fmt.Sprintf("jobhistory/%d/get", taskID), nil)
	if r.frame.Status != 0 {
		t.Fatalf("jobhistory get %d: %s", taskID, r.frame.raw)
	}
	return r.frame.field(t, "task").(map[string]any)
}

// historyJob is a stored job as the list test expects to find it.
type historyJob struct {
	taskID  int64
	user    string
	status  entrance.Status
	engine  string
	created time.Time
}

// storeHistory stores 100 finished jobs, one per hour from base: 70 of
// alice and 30 of bob, in three statuses and two engines.
func storeHistory(t *testing.T, e *env, base time.Time) []historyJob {
	t.Helper()
	statuses := []entrance.Status{entrance.StatusSucceed, entrance.StatusFailed, entrance.StatusCancelled}
	var jobs []historyJob
	for i := range 100 {
		j := historyJob{user: "alice", status: statuses[i%3], engine: "shell",
			created: base.Add(time.Duration(i) * time.Hour)}
		if d := i % 10; d == 3 || d == 7 || d == 9 {
			j.user = "bob"
		}
		if i%4 == 0 {
			j.engine = "sqlite"
		}
		rec := &entrance.JobRecord{Instance: "127.0.0.1:9001", User: j.user, Creator: "IDE",
			Engine: j.engine, RunType: "sh", Code: fmt.Sprintf("echo %d", i), Status: j.status,
			Created: j.created, Updated: j.created.Add(time.Second),
			Started: j.created.Add(time.Millisecond), Ended: j.created.Add(time.Second)}
		taskID, err := e.store.CreateJob(t.Context(), rec)
		if err != nil {
			t.Fatalf("store job %d: %v", i, err)
		}
		j.taskID = taskID
		jobs = append(jobs, j)
	}
	return jobs
}

func TestHistoryListPagingAndFilters(t *testing.T) {
	e := newEnv(t, nil)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	jobs := storeHistory(t, e, base)
	ms := func(hours int) int64 { return base.Add(time.Duration(hours) * time.Hour).UnixMilli() }

	cases := []struct {
		name   string
		user   string
		params map[string]any
		size   int
		match  func(historyJob) bool
	}{
		{"alice all", "alice", nil, 7,
			func(j historyJob) bool { return j.user == "alice" }},
		{"alice default page size", "alice", nil, 0,
			func(j historyJob) bool { return j.user == "alice" }},
		{"alice failed", "alice", map[string]any{"status": "Failed"}, 5,
			func(j historyJob) bool { return j.user == "alice" && j.status == "Failed" }},
		{"alice sqlite", "alice", map[string]any{"executeApplicationName": "sqlite"}, 4,
			func(j historyJob) bool { return j.user == "alice" && j.engine == "sqlite" }},
		{"alice date range inclusive", "alice", map[string]any{"startDate": ms(10), "endDate": ms(40)}, 6,
			func(j historyJob) bool {
				return j.user == "alice" && !j.created.Before(base.Add(10*time.Hour)) &&
					!j.created.After(base.Add(40*time.Hour))
			}},
		{"alice start date only", "alice", map[string]any{"startDate": ms(90)}, 3,
			func(j historyJob) bool { return j.user == "alice" && !j.created.Before(base.Add(90*time.Hour)) }},
		{"alice all filters", "alice", map[string]any{"status": "Succeed", "executeApplicationName": "shell",
			"startDate": ms(20), "endDate": ms(80)}, 2,
			func(j historyJob) bool {
				return j.user == "alice" && j.status == "Succeed" && j.engine == "shell" &&
					!j.created.Before(base.Add(20*time.Hour)) && !j.created.After(base.Add(80*time.Hour))
			}},
		{"alice names herself", "alice", map[string]any{"executeUser": "alice"}, 50,
			func(j historyJob) bool { return j.user == "alice" }},
		{"bob all", "bob", nil, 8,
			func(j historyJob) bool { return j.user == "bob" }},
		{"nothing matches", "alice", map[string]any{"startDate": ms(200)}, 10,
			func(historyJob) bool { return false }},
		{"root sees all", "root", nil, 30,
			func(historyJob) bool { return true }},
		{"root filters by user", "root", map[string]any{"executeUser": "bob", "status": "Cancelled"}, 3,
			func(j historyJob) bool { return j.user == "bob" && j.status == "Cancelled" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want []int64
			for _, j := range slices.Backward(jobs) {
				if tc.match(j) {
					want = append(want, j.taskID)
				}
			}
			got := listAllPages(t, e, tc.user, tc.params, tc.size, len(want))
			if !slices.Equal(got, want) {
				t.Errorf("taskIDs %v, want %v", got, want)
			}
		})
	}
}

// listAllPages reads every page of jobhistory/list, checks each page's
// size and total, and returns the taskIDs in the order listed.
func listAllPages(t *testing.T, e *env, user string, filter map[string]any, size, total int) []int64 {
	t.Helper()
	pageSize := size
	if pageSize == 0 {
		pageSize = 20 // the default
	}
	var ids []int64
	for page := 1; ; page++ {
		params := maps.Clone(filter)
		if params == nil {
			params = map[string]any{}
		}
		params["pageNow"] = page
		if size > 0 {
			params["pageSize"] = size
		}
		r := e.rest(user, http.MethodGet, "jobhistory/list", params)
		if r.frame.Status != 0 {
			t.Fatalf("page %d: %s", page, r.frame.raw)
		}
		if got := r.frame.field(t, "totalPage"); got != float64(total) {
			t.Errorf("page %d: totalPage %v, want %d", page, got, total)
		}
		tasks := r.frame.field(t, "tasks").([]any)
		if want := min(pageSize, max(total-(page-1)*pageSize, 0)); len(tasks) != want {
			t.Fatalf("page %d has %d tasks, want %d", page, len(tasks), want)
		}
		for _, task := range tasks {
			task := task.(map[string]any)
			if user != "root" && task["umUser"] != user {
				t.Errorf("page %d lists task %v of %v", page, task["taskID"], task["umUser"])
			}
			ids = append(ids, int64(task["taskID"].(float64)))
		}
		if len(tasks) == 0 {
			return ids
		}
	}
}

func TestKillJobsMixedList(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := e.dial("alice"), e.dial("bob")
	finishedExec, finishedTask := runToEnd(t, alice, "shell", "echo done")
	bobExec, bobTask := bob.execute("shell", "echo bob; sleep 30")
	waitRunning(t, e, "bob", bobTask)

	cases := []struct {
		name      string
		transport string
		byTaskID  bool
	}{
		{"REST execIDs", "rest", false},
		{"REST taskIDs", "rest", true},
		{"WebSocket execIDs", "ws", false},
		{"WebSocket taskIDs", "ws", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runningExec, runningTask := alice.execute("shell", "echo started; sleep 30")
			waitRunning(t, e, "alice", runningTask)
			ids := []any{runningExec, finishedExec, "030514IDEshell127.0.0.1:9001IDE_alice_999999", bobExec}
			body := map[string]any{"idList": ids}
			if tc.byTaskID {
				ids = []any{runningTask, finishedTask, 999999, bobTask}
				body = map[string]any{"taskIDList": ids}
			}
			var reply *frame
			if tc.transport == "rest" {
				reply = e.rest("alice", http.MethodPost, "entrance/all/killJobs", body).frame
			} else {
				reply, _ = alice.call("entrance/all/killJobs", body)
			}
			if reply.Status != 0 {
				t.Fatalf("killJobs: %s", reply.raw)
			}
			checkKillMessages(t, reply, ids, []int{0, 0, 1, 3})
			if st := waitStatus(t, e, "alice", runningTask); st != "Cancelled" {
				t.Errorf("killed job ended %s, want Cancelled", st)
			}
		})
	}
	st := e.rest("bob", http.MethodGet, fmt.Sprintf("entrance/%d/status", bobTask), nil)
	if got := st.frame.field(t, "status"); got != "Running" {
		t.Errorf("bob's job is %v after alice's killJobs, want Running", got)
	}
}

// checkKillMessages checks that a killJobs reply has one envelope per id,
// in order, with the given statuses.
func checkKillMessages(t *testing.T, reply *frame, ids []any, statuses []int) {
	t.Helper()
	messages := reply.field(t, "messages").([]any)
	if len(messages) != len(ids) {
		t.Fatalf("%d messages for %d ids: %s", len(messages), len(ids), reply.raw)
	}
	for i, m := range messages {
		m := m.(map[string]any)
		if got := m["status"]; got != float64(statuses[i]) {
			t.Errorf("id %v: status %v, want %d: %v", ids[i], got, statuses[i], m)
		}
		if want := fmt.Sprintf("/api/rest_j/v1/entrance/%v/kill", ids[i]); m["method"] != want {
			t.Errorf("id %v: method %v, want %s", ids[i], m["method"], want)
		}
	}
}

func TestKillJobsInvalidLists(t *testing.T) {
	e := newEnv(t, nil)
	tooMany := make([]any, 1001)
	for i := range tooMany {
		tooMany[i] = i + 1
	}
	cases := []struct {
		name    string
		body    map[string]any
		mention string
	}{
		{"no lists", map[string]any{}, "idList"},
		{"empty lists", map[string]any{"idList": []any{}, "taskIDList": []any{}}, "idList"},
		{"id not a string or number", map[string]any{"idList": []any{true}}, "idList"},
		{"idList not a list", map[string]any{"idList": "1,2"}, "idList"},
		{"over the limit", map[string]any{"taskIDList": tooMany}, "1000"},
	}
	c := e.dial("alice")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			viaREST := e.rest("alice", http.MethodPost, "entrance/x/killJobs", tc.body)
			viaWS, _ := c.call("entrance/x/killJobs", tc.body)
			if viaREST.frame.Status != 1 {
				t.Errorf("status %d, want 1: %s", viaREST.frame.Status, viaREST.frame.raw)
			}
			if !strings.Contains(viaREST.frame.Message, tc.mention) {
				t.Errorf("message %q does not mention %q", viaREST.frame.Message, tc.mention)
			}
			checkSameEnvelope(t, viaREST.frame, viaWS)
		})
	}
}

// waitRunning polls the status of a job over REST until it is Running.
func waitRunning(t *testing.T, e *env, user string, taskID int64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		r := e.rest(user, http.MethodGet, fmt.Sprintf("entrance/%d/status", taskID), nil)
		switch st := r.frame.field(t, "status"); st {
		case "Running":
			return
		case "Succeed", "Failed", "Cancelled", "Timeout":
			t.Fatalf("job %d ended %v before it was seen running", taskID, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("job %d not running within 20 s", taskID)
}
