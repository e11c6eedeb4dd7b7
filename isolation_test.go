package entrance_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// accessCase is one endpoint of the access matrix with the status each
// authenticated caller gets: alice owns the job, bob is another user and
// root is an admin.
type accessCase struct {
	name   string
	method string // the path after /api/rest_j/v1/
	post   bool   // REST sends a JSON body with POST; else a GET query
	data   map[string]any
	want   map[string]int
	// inner reads the status of killJobs, which replies 0 and carries
	// one envelope per job.
	inner bool
}

// accessCases lists every endpoint, about the finished job of alice that
// execID and taskID name.
func accessCases(execID string, taskID int64) []accessCase {
	task := strconv.FormatInt(taskID, 10)
	ownerOnly := map[string]int{"alice": 0, "bob": 3, "root": 0}
	return []accessCase{
		{name: "execute as alice", method: "entrance/execute", post: true, want: ownerOnly,
			data: map[string]any{"executeApplicationName": "shell", "executionCode": "echo hi",
				"executeUser": "alice"}},
		{name: "submit as alice", method: "entrance/submit", post: true, want: ownerOnly,
			data: map[string]any{
				"executionContent": map[string]any{"code": "echo hi", "runType": "sh"},
				"labels":           map[string]any{"engineType": "shell", "userCreator": "alice-IDE"}}},
		{name: "status", method: "entrance/" + execID + "/status", want: ownerOnly},
		{name: "progress", method: "entrance/" + execID + "/progress", want: ownerOnly},
		{name: "log", method: "entrance/" + execID + "/log", want: ownerOnly,
			data: map[string]any{"fromLine": 1, "size": 10}},
		{name: "kill", method: "entrance/" + execID + "/kill", want: ownerOnly},
		{name: "pause", method: "entrance/" + execID + "/pause",
			want: map[string]int{"alice": 1, "bob": 3, "root": 1}},
		{name: "killJobs", method: "entrance/" + execID + "/killJobs", post: true, inner: true,
			want: ownerOnly, data: map[string]any{"idList": []string{execID}}},
		{name: "jobhistory get", method: "jobhistory/" + task + "/get", want: ownerOnly},
		{name: "jobhistory list own", method: "jobhistory/list",
			want: map[string]int{"alice": 0, "bob": 0, "root": 0}},
		{name: "jobhistory list of alice", method: "jobhistory/list", want: ownerOnly,
			data: map[string]any{"executeUser": "alice"}},
		{name: "getDirFileTrees", method: "filesystem/getDirFileTrees", want: ownerOnly,
			data: map[string]any{"path": "result://" + task}},
		{name: "openFile", method: "filesystem/openFile", want: ownerOnly,
			data: map[string]any{"path": "result://" + task + "/_0.dolphin"}},
	}
}

// checkAccess compares a reply with the status the case expects for user.
func checkAccess(t *testing.T, tc accessCase, user string, f *frame) {
	t.Helper()
	got := f.Status
	if tc.inner && got == 0 {
		got = innerStatus(t, f)
	}
	if want := tc.want[user]; got != want {
		t.Fatalf("status %d, want %d: %s", got, want, f.raw)
	}
	if got != 3 || tc.inner {
		return
	}
	// A rejected caller learns nothing about the job: the reply contains
	// the error and nothing else.
	var data map[string]json.RawMessage
	if err := json.Unmarshal(f.Data, &data); err != nil {
		t.Fatalf("decode data: %v: %s", err, f.raw)
	}
	if len(data) != 1 || data["errorMsg"] == nil {
		t.Errorf("status-3 reply carries more than errorMsg: %s", f.raw)
	}
	if strings.Contains(string(f.raw), "Succeed") || strings.Contains(string(f.raw), "result-line") {
		t.Errorf("status-3 reply reveals the job: %s", f.raw)
	}
}

func TestAccessMatrix(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.dial("alice")
	execID, taskID, ev := owner.runToEnd("shell", "echo result-line")
	if got := ev.final.field(t, "status"); got != "Succeed" {
		t.Fatalf("setup job ended %v: %s", got, ev.final.raw)
	}
	cases := accessCases(execID, taskID)
	clients := map[string]*client{"alice": owner, "bob": e.dial("bob"), "root": e.dial("root")}

	for _, user := range []string{"alice", "bob", "root"} {
		for _, tc := range cases {
			t.Run("rest/"+user+"/"+tc.name, func(t *testing.T) {
				code, f := e.restAs(restCall{creds: credentialsOf(user), post: tc.post,
					method: tc.method, data: tc.data})
				checkAccess(t, tc, user, f)
				if want := httpStatusOf(f.Status); code != want {
					t.Errorf("HTTP status %d, want %d for status %d", code, want, f.Status)
				}
			})
			t.Run("ws/"+user+"/"+tc.name, func(t *testing.T) {
				c := &client{t: t, conn: clients[user].conn}
				f, _ := c.call(tc.method, tc.data)
				checkAccess(t, tc, user, f)
			})
		}
	}

	unauthenticated := []struct {
		name  string
		creds credentials
	}{
		{"no token", credentials{}},
		{"user without token", credentials{user: "alice"}},
		{"wrong token", credentials{user: "alice", token: "tok-wrong"}},
		{"token of another user", credentials{user: "alice", token: testTokens["bob"]}},
	}
	for _, bad := range unauthenticated {
		for _, tc := range cases {
			t.Run("rest/"+bad.name+"/"+tc.name, func(t *testing.T) {
				code, f := e.restAs(restCall{creds: bad.creds, post: tc.post,
					method: tc.method, data: tc.data})
				if code != http.StatusUnauthorized || f.Status != -1 {
					t.Fatalf("HTTP %d, status %d, want 401 and -1: %s", code, f.Status, f.raw)
				}
				if got := f.errCode(t); got != 21011 {
					t.Errorf("errCode %d, want 21011", got)
				}
			})
		}
		t.Run("ws/"+bad.name, func(t *testing.T) {
			c, resp, err := e.dialAs(bad.creds, nil)
			if err == nil {
				c.conn.CloseNow()
				t.Fatal("upgrade accepted")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("upgrade rejected with %v, want HTTP 401", resp)
			}
		})
	}
}

// httpStatusOf is the HTTP status of a REST reply with an envelope status.
func httpStatusOf(status int) int {
	return map[int]int{0: 200, 1: 400, 2: 412, 3: 403, 4: 206, -1: 401}[status]
}

// taskIDsOf returns the taskIDs and umUsers of a jobhistory/list reply.
func taskIDsOf(t *testing.T, f *frame) ([]int64, []string) {
	t.Helper()
	var d struct {
		Tasks []struct {
			TaskID int64  `json:"taskID"`
			UmUser string `json:"umUser"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatalf("decode tasks: %v: %s", err, f.raw)
	}
	var ids []int64
	var users []string
	for _, task := range d.Tasks {
		ids = append(ids, task.TaskID)
		users = append(users, task.UmUser)
	}
	return ids, users
}

func TestHistoryListOnlyOwnJobs(t *testing.T) {
	e := newEnv(t, nil)
	_, aliceTask, _ := e.dial("alice").runToEnd("shell", "echo a")
	_, bobTask, _ := e.dial("bob").runToEnd("shell", "echo b")
	cases := []struct {
		user string
		want []int64 // newest first
	}{
		{"alice", []int64{aliceTask}},
		{"bob", []int64{bobTask}},
		{"root", []int64{bobTask, aliceTask}},
	}
	for _, tc := range cases {
		t.Run("rest/"+tc.user, func(t *testing.T) {
			_, f := e.restAs(restCall{creds: credentialsOf(tc.user), method: "jobhistory/list"})
			if ids, users := taskIDsOf(t, f); !slices.Equal(ids, tc.want) {
				t.Errorf("tasks %v of users %v, want %v", ids, users, tc.want)
			}
		})
		t.Run("ws/"+tc.user, func(t *testing.T) {
			c := e.dial(tc.user)
			c.t = t
			f, _ := c.call("jobhistory/list", nil)
			if ids, users := taskIDsOf(t, f); !slices.Equal(ids, tc.want) {
				t.Errorf("tasks %v of users %v, want %v", ids, users, tc.want)
			}
		})
	}
}

func TestPushesOnlyToOwner(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, root := e.dial("alice"), e.dial("bob"), e.dial("root")
	execID, _ := alice.execute("shell", "sleep 2; echo private-line")

	denied, _ := bob.call("entrance/"+execID+"/status", nil)
	if denied.Status != 3 {
		t.Fatalf("bob's status request: %s", denied.raw)
	}
	if f, _ := bob.call("entrance/"+execID+"/log", nil); f.Status != 3 {
		t.Fatalf("bob's log request: %s", f.raw)
	}
	watched, _ := root.call("entrance/"+execID+"/status", nil)
	if watched.Status != 0 {
		t.Fatalf("root's status request: %s", watched.raw)
	}

	for name, c := range map[string]*client{"alice": alice, "root": root} {
		ev := c.follow(execID, nil)
		if !slices.Contains(ev.lines, "private-line") {
			t.Errorf("%s did not receive the job's log: %q", name, ev.lines)
		}
	}
	// The job has ended, so every push it made has been sent.
	if f, err := bob.tryRead(300 * time.Millisecond); err == nil {
		t.Errorf("bob received a frame about alice's job: %s", f.raw)
	}
}

func TestAdminKillsAnyJob(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.dial("alice")
	execID, taskID := alice.execute("shell", "echo started; sleep 30")
	e.awaitStatus("alice", taskID, "Running")

	code, f := e.restAs(restCall{creds: credentialsOf("bob"), method: jobPath(taskID, "kill")})
	if code != http.StatusForbidden || f.Status != 3 {
		t.Fatalf("bob's kill: HTTP %d: %s", code, f.raw)
	}
	e.awaitStatus("alice", taskID, "Running")

	code, f = e.restAs(restCall{creds: credentialsOf("root"), method: jobPath(taskID, "kill")})
	if code != http.StatusOK || f.Status != 0 {
		t.Fatalf("root's kill: HTTP %d: %s", code, f.raw)
	}
	ev := alice.follow(execID, nil)
	if got := ev.final.field(t, "status"); got != "Cancelled" {
		t.Errorf("job killed by root ended %v", got)
	}
}

func TestAdminSubmitsForUser(t *testing.T) {
	e := newEnv(t, nil)
	root := e.dial("root")
	reply, _ := root.call("entrance/execute", map[string]any{
		"executeApplicationName": "shell", "executionCode": "echo for-alice", "executeUser": "alice"})
	if reply.Status != 0 {
		t.Fatalf("execute: %s", reply.raw)
	}
	execID := reply.field(t, "execID").(string)
	if !strings.Contains(execID, "_alice_") {
		t.Errorf("execID %s does not name alice", execID)
	}
	taskID := int64(reply.field(t, "taskID").(float64))
	root.follow(execID, nil)

	_, f := e.restAs(restCall{creds: credentialsOf("alice"),
		method: "jobhistory/" + strconv.FormatInt(taskID, 10) + "/get"})
	if f.Status != 0 {
		t.Fatalf("alice cannot read the job root submitted for her: %s", f.raw)
	}
	var d struct {
		Task struct {
			UmUser string `json:"umUser"`
		} `json:"task"`
	}
	json.Unmarshal(f.Data, &d)
	if d.Task.UmUser != "alice" {
		t.Errorf("umUser %q, want alice", d.Task.UmUser)
	}
	if _, f := e.restAs(restCall{creds: credentialsOf("bob"),
		method: jobPath(taskID, "status")}); f.Status != 3 {
		t.Errorf("bob reads alice's job: %s", f.raw)
	}
}
