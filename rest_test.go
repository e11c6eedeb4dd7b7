package entrance_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goentrance/entrance"
)

// restReply is the reply of a REST call: its HTTP status and envelope.
type restReply struct {
	code   int
	header http.Header
	frame  *frame
}

// rest calls method (a path below /api/rest_j/v1/) over HTTP as user,
// with data as the JSON body of a POST or as the query of any other
// HTTP method. An unknown user sends no credentials.
func (e *env) rest(user, httpMethod, method string, data map[string]any) *restReply {
	e.t.Helper()
	target := e.http.URL + "/api/rest_j/v1/" + method
	var body io.Reader
	if httpMethod == http.MethodPost {
		b, err := json.Marshal(data)
		if err != nil {
			e.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	} else if len(data) > 0 {
		target += "?" + toQuery(e.t, data).Encode()
	}
	return e.restRaw(user, httpMethod, target, body)
}

// restRaw sends one HTTP request to target, a full URL.
func (e *env) restRaw(user, httpMethod, target string, body io.Reader) *restReply {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), httpMethod, target, body)
	if err != nil {
		e.t.Fatalf("build request: %v", err)
	}
	if token, known := testTokens[user]; known {
		req.Header.Set("Token-Code", token)
		req.Header.Set("Token-User", user)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", httpMethod, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read reply of %s %s: %v", httpMethod, target, err)
	}
	f := &frame{raw: b}
	if err := json.Unmarshal(b, f); err != nil {
		e.t.Fatalf("%s %s: reply is not an envelope: %q: %v", httpMethod, target, b, err)
	}
	return &restReply{code: resp.StatusCode, header: resp.Header, frame: f}
}

// toQuery turns request data into query parameters: strings as they are,
// numbers in decimal, anything else as JSON.
func toQuery(t *testing.T, data map[string]any) url.Values {
	t.Helper()
	q := url.Values{}
	for name, v := range data {
		switch v := v.(type) {
		case string:
			q.Set(name, v)
		case int, int64, float64:
			q.Set(name, fmt.Sprint(v))
		default:
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			q.Set(name, string(b))
		}
	}
	return q
}

// wantHTTPStatus is the HTTP status of a REST reply per envelope status.
var wantHTTPStatus = map[int]int{0: 200, 1: 400, 2: 412, 3: 403, 4: 206, -1: 401}

// checkSameEnvelope fails unless two replies have the same method, status,
// message and data.
func checkSameEnvelope(t *testing.T, restF, wsF *frame) {
	t.Helper()
	if restF.Method != wsF.Method {
		t.Errorf("method: REST %q, WebSocket %q", restF.Method, wsF.Method)
	}
	if restF.Status != wsF.Status {
		t.Errorf("status: REST %d, WebSocket %d", restF.Status, wsF.Status)
	}
	if restF.Message != wsF.Message {
		t.Errorf("message: REST %q, WebSocket %q", restF.Message, wsF.Message)
	}
	var restData, wsData any
	if err := json.Unmarshal(restF.Data, &restData); err != nil {
		t.Fatalf("decode REST data %s: %v", restF.Data, err)
	}
	if err := json.Unmarshal(wsF.Data, &wsData); err != nil {
		t.Fatalf("decode WebSocket data %s: %v", wsF.Data, err)
	}
	if !reflect.DeepEqual(restData, wsData) {
		t.Errorf("data differ:\nREST      %s\nWebSocket %s", restF.Data, wsF.Data)
	}
}

// runToEnd submits code over c and waits for the job's terminal status.
func runToEnd(t *testing.T, c *client, engine, code string) (string, int64) {
	t.Helper()
	execID, taskID := c.execute(engine, code)
	ev := c.follow(execID, nil)
	if got := ev.final.field(t, "status"); got != "Succeed" {
		t.Fatalf("%s job %q ended %v: %s", engine, code, got, ev.final.raw)
	}
	return execID, taskID
}

// apiCase is one request made over both transports.
type apiCase struct {
	name       string
	httpMethod string
	method     string
	data       map[string]any
	status     int
}

func TestRESTMatchesWebSocket(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := e.dial("alice"), e.dial("bob")
	shellExec, shellTask := runToEnd(t, alice, "shell", "echo one; echo two >&2; echo three")
	_, sqlTask := runToEnd(t, alice, "sqlite", "select 1 as n, null as z; select 'x' as s")
	bobExec, bobTask := runToEnd(t, bob, "shell", "echo bob")
	failExec, _ := alice.execute("shell", "echo failing; exit 3")
	alice.follow(failExec, nil)

	shellID, sqlID, bobID := fmt.Sprint(shellTask), fmt.Sprint(sqlTask), fmt.Sprint(bobTask)
	const get, post = http.MethodGet, http.MethodPost
	cases := []apiCase{
		{"status by execID", get, "entrance/" + shellExec + "/status", nil, 0},
		{"status by taskID", get, "entrance/" + shellID + "/status", nil, 0},
		{"status of failed job", get, "entrance/" + failExec + "/status", nil, 0},
		{"status posted", post, "entrance/" + shellID + "/status", map[string]any{}, 0},
		{"progress", get, "entrance/" + shellExec + "/progress", nil, 0},
		{"log all", get, "entrance/" + shellExec + "/log", map[string]any{"fromLine": 0, "size": -1}, 0},
		{"log page", get, "entrance/" + shellID + "/log", map[string]any{"fromLine": 2, "size": 1}, 0},
		{"log past end", get, "entrance/" + shellID + "/log", map[string]any{"fromLine": 99}, 0},
		{"kill finished", get, "entrance/" + shellExec + "/kill", nil, 0},
		{"pause", get, "entrance/" + shellExec + "/pause", nil, 1},
		{"status unknown taskID", get, "entrance/999999/status", nil, 1},
		{"status unknown execID", get, "entrance/030514IDEshell127.0.0.1:9001IDE_alice_999999/status", nil, 1},
		{"status garbage id", get, "entrance/not-an-id/status", nil, 1},
		{"status other user", get, "entrance/" + bobExec + "/status", nil, 3},
		{"log other user", get, "entrance/" + bobID + "/log", nil, 3},
		{"kill other user", get, "entrance/" + bobID + "/kill", nil, 3},
		{"unknown action", get, "entrance/" + shellID + "/fly", nil, 1},
		{"history get", get, "jobhistory/" + shellID + "/get", nil, 0},
		{"history get sqlite", get, "jobhistory/" + sqlID + "/get", nil, 0},
		{"history get unknown", get, "jobhistory/999999/get", nil, 1},
		{"history get other user", get, "jobhistory/" + bobID + "/get", nil, 3},
		{"history get not a number", get, "jobhistory/abc/get", nil, 1},
		{"history list", get, "jobhistory/list", nil, 0},
		{"history list filtered", get, "jobhistory/list",
			map[string]any{"status": "Succeed", "executeApplicationName": "shell", "pageNow": 1, "pageSize": 1}, 0},
		{"history list other user", get, "jobhistory/list", map[string]any{"executeUser": "bob"}, 3},
		{"history list bad status", get, "jobhistory/list", map[string]any{"status": "Done"}, 1},
		{"dir tree shell", get, "filesystem/getDirFileTrees", map[string]any{"path": "result://" + shellID}, 0},
		{"dir tree sqlite", get, "filesystem/getDirFileTrees", map[string]any{"path": "result://" + sqlID}, 0},
		{"dir tree other user", get, "filesystem/getDirFileTrees", map[string]any{"path": "result://" + bobID}, 3},
		{"open text", get, "filesystem/openFile", map[string]any{"path": "result://" + shellID + "/_0.dolphin"}, 0},
		{"open table", get, "filesystem/openFile",
			map[string]any{"path": "result://" + sqlID + "/_0.dolphin", "page": 1, "pageSize": 10}, 0},
		{"open second table", get, "filesystem/openFile", map[string]any{"path": "result://" + sqlID + "/_1.dolphin"}, 0},
		{"open missing set", get, "filesystem/openFile", map[string]any{"path": "result://" + sqlID + "/_7.dolphin"}, 1},
		{"open traversal", get, "filesystem/openFile", map[string]any{"path": "result://" + sqlID + "/../" + bobID}, 1},
		{"open other user", get, "filesystem/openFile", map[string]any{"path": "result://" + bobID + "/_0.dolphin"}, 3},
		{"killJobs finished, unknown, other", post, "entrance/x/killJobs",
			map[string]any{"idList": []any{shellExec, "999999", bobExec}}, 0},
		{"killJobs empty", post, "entrance/x/killJobs", map[string]any{"idList": []any{}}, 1},
		{"execute without code", post, "entrance/execute", map[string]any{"executeApplicationName": "shell"}, 1},
		{"execute unknown engine", post, "entrance/execute",
			map[string]any{"executeApplicationName": "hive", "executionCode": "show tables"}, 1},
		{"submit as other user", post, "entrance/submit",
			map[string]any{"executeUser": "bob", "executeApplicationName": "shell", "executionCode": "id"}, 3},
		{"unknown endpoint", get, "nothing/here", nil, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			viaREST := e.rest("alice", tc.httpMethod, tc.method, tc.data)
			viaWS, _ := alice.call(tc.method, tc.data)
			if viaREST.frame.Status != tc.status {
				t.Errorf("REST status %d, want %d: %s", viaREST.frame.Status, tc.status, viaREST.frame.raw)
			}
			if viaREST.code != wantHTTPStatus[tc.status] {
				t.Errorf("HTTP status %d, want %d", viaREST.code, wantHTTPStatus[tc.status])
			}
			checkSameEnvelope(t, viaREST.frame, viaWS)
		})
	}
}

func TestRESTLoginRequired(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name   string
		header map[string]string
	}{
		{"no credentials", nil},
		{"wrong token", map[string]string{"Token-Code": "tok-bob", "Token-User": "alice"}},
		{"user only", map[string]string{"Token-User": "alice"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
				e.http.URL+"/api/rest_j/v1/entrance/execute",
				strings.NewReader(`{"executeApplicationName":"shell","executionCode":"touch pwned"}`))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := e.http.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var f frame
			if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
				t.Fatalf("decode reply: %v", err)
			}
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("HTTP status %d, want 401", resp.StatusCode)
			}
			if f.Status != -1 {
				t.Errorf("envelope status %d, want -1", f.Status)
			}
			if !strings.Contains(f.Message, "login required") {
				t.Errorf("message %q does not say login required", f.Message)
			}
		})
	}
	list := e.rest("root", http.MethodGet, "jobhistory/list", nil)
	if got := list.frame.field(t, "totalPage"); got != 0.0 {
		t.Errorf("rejected requests created jobs: totalPage %v", got)
	}
}

func TestRESTWrongHTTPMethod(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name       string
		httpMethod string
		method     string
		mention    []string
		allow      string
	}{
		{"GET execute", http.MethodGet, "entrance/execute", []string{"POST", "GET"}, ""},
		{"GET submit", http.MethodGet, "entrance/submit", []string{"POST", "GET"}, ""},
		{"GET killJobs", http.MethodGet, "entrance/1/killJobs", []string{"POST"}, ""},
		{"DELETE status", http.MethodDelete, "entrance/1/status", []string{"DELETE", "GET", "POST"}, "GET, POST"},
		{"PUT execute", http.MethodPut, "entrance/execute", []string{"PUT"}, "GET, POST"},
		{"PATCH kill", http.MethodPatch, "entrance/1/kill", []string{"PATCH"}, "GET, POST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := map[string]any{"executeApplicationName": "shell", "executionCode": "echo hi"}
			r := e.restRaw("alice", tc.httpMethod,
				e.http.URL+"/api/rest_j/v1/"+tc.method+"?"+toQuery(t, data).Encode(), nil)
			if r.frame.Status != 1 || r.code != http.StatusBadRequest {
				t.Errorf("status %d, HTTP %d, want 1 and 400: %s", r.frame.Status, r.code, r.frame.raw)
			}
			if got := r.frame.errCode(t); got != entrance.ErrCodeUnknownMethod {
				t.Errorf("errCode %d, want %d", got, entrance.ErrCodeUnknownMethod)
			}
			for _, want := range tc.mention {
				if !strings.Contains(r.frame.Message, want) {
					t.Errorf("message %q does not name %s", r.frame.Message, want)
				}
			}
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow header %q, want %q", got, tc.allow)
			}
		})
	}
	list := e.rest("alice", http.MethodGet, "jobhistory/list", nil)
	if got := list.frame.field(t, "totalPage"); got != 0.0 {
		t.Errorf("rejected requests created jobs: totalPage %v", got)
	}
}

func TestRESTOversizedBody(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) { o.Limits.MaxFrameBytes = 4096 })
	body := `{"executeApplicationName":"shell","executionCode":"` + strings.Repeat("x", 8000) + `"}`
	r := e.restRaw("alice", http.MethodPost, e.http.URL+"/api/rest_j/v1/entrance/execute",
		strings.NewReader(body))
	if r.frame.Status != 1 || r.code != http.StatusBadRequest {
		t.Fatalf("status %d, HTTP %d, want 1 and 400: %s", r.frame.Status, r.code, r.frame.raw)
	}
	if got := r.frame.errCode(t); got != entrance.ErrCodeFrameTooLarge {
		t.Errorf("errCode %d, want %d", got, entrance.ErrCodeFrameTooLarge)
	}
	for _, want := range []string{"4096", "limit"} {
		if !strings.Contains(r.frame.Message, want) {
			t.Errorf("message %q does not name %q", r.frame.Message, want)
		}
	}

	fits := e.rest("alice", http.MethodPost, "entrance/execute",
		map[string]any{"executeApplicationName": "shell", "executionCode": "echo small"})
	if fits.frame.Status != 0 {
		t.Errorf("body under the limit rejected: %s", fits.frame.raw)
	}
}

func TestRESTInvalidBody(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name    string
		body    string
		mention string
	}{
		{"not JSON", `executeApplicationName=shell`, "request body"},
		{"array", `[1, 2]`, "JSON object"},
		{"truncated", `{"executionCode": "ls"`, "request body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.restRaw("alice", http.MethodPost, e.http.URL+"/api/rest_j/v1/entrance/execute",
				strings.NewReader(tc.body))
			if r.frame.Status != 1 {
				t.Errorf("status %d, want 1: %s", r.frame.Status, r.frame.raw)
			}
			if !strings.Contains(r.frame.Message, tc.mention) {
				t.Errorf("message %q does not mention %q", r.frame.Message, tc.mention)
			}
		})
	}
}

func TestRESTPostQueryParameters(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	execID, _ := runToEnd(t, c, "shell", "echo a; echo b; echo c")

	// A POST without a body reads the query; a body value wins over the
	// query value of the same name.
	target := e.http.URL + "/api/rest_j/v1/entrance/" + execID + "/log?fromLine=2&size=1"
	onlyQuery := e.restRaw("alice", http.MethodPost, target, nil)
	if got := onlyQuery.frame.field(t, "fromLine"); got != 3.0 {
		t.Errorf("query only: fromLine %v, want 3: %s", got, onlyQuery.frame.raw)
	}
	both := e.restRaw("alice", http.MethodPost, target, strings.NewReader(`{"fromLine": 3}`))
	if got := both.frame.field(t, "fromLine"); got != 4.0 {
		t.Errorf("body and query: fromLine %v, want 4: %s", got, both.frame.raw)
	}
}

func TestBadParametersBothTransports(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	execID, taskID := runToEnd(t, c, "sqlite", "select 1 as n")
	result := fmt.Sprintf("result://%d/_0.dolphin", taskID)
	logMethod := "entrance/" + execID + "/log"
	cases := []struct {
		name   string
		method string
		data   map[string]any
		param  string
	}{
		{"fromLine not a number", logMethod, map[string]any{"fromLine": "abc"}, "fromLine"},
		{"fromLine fraction", logMethod, map[string]any{"fromLine": "1.5"}, "fromLine"},
		{"fromLine negative", logMethod, map[string]any{"fromLine": -2}, "fromLine"},
		{"fromLine overflow", logMethod, map[string]any{"fromLine": "99999999999999999999"}, "fromLine"},
		{"size negative", logMethod, map[string]any{"size": -5}, "size"},
		{"size not a number", logMethod, map[string]any{"size": "ten"}, "size"},
		{"page negative", "filesystem/openFile", map[string]any{"path": result, "page": -1}, "page"},
		{"page zero", "filesystem/openFile", map[string]any{"path": result, "page": 0}, "page"},
		{"page overflow", "filesystem/openFile",
			map[string]any{"path": result, "page": "9223372036854775807"}, "page"},
		{"pageSize zero", "filesystem/openFile", map[string]any{"path": result, "pageSize": 0}, "pageSize"},
		{"pageSize huge", "filesystem/openFile", map[string]any{"path": result, "pageSize": 10000000}, "pageSize"},
		{"pageSize negative", "filesystem/openFile", map[string]any{"path": result, "pageSize": -5}, "pageSize"},
		{"path missing", "filesystem/openFile", map[string]any{}, "path"},
		{"pageNow negative", "jobhistory/list", map[string]any{"pageNow": -1}, "pageNow"},
		{"pageNow not a number", "jobhistory/list", map[string]any{"pageNow": "first"}, "pageNow"},
		{"list pageSize zero", "jobhistory/list", map[string]any{"pageSize": 0}, "pageSize"},
		{"list pageSize huge", "jobhistory/list", map[string]any{"pageSize": 1000000}, "pageSize"},
		{"startDate not a number", "jobhistory/list", map[string]any{"startDate": "yesterday"}, "startDate"},
		{"startDate negative", "jobhistory/list", map[string]any{"startDate": -1}, "date"},
		{"startDate after endDate", "jobhistory/list",
			map[string]any{"startDate": 2000, "endDate": 1000}, "startDate"},
		{"status unknown", "jobhistory/list", map[string]any{"status": "Done"}, "status"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			viaREST := e.rest("alice", http.MethodGet, tc.method, tc.data)
			viaWS, _ := c.call(tc.method, tc.data)
			for transport, f := range map[string]*frame{"REST": viaREST.frame, "WebSocket": viaWS} {
				if f.Status != 1 {
					t.Errorf("%s: status %d, want 1: %s", transport, f.Status, f.raw)
				}
				if !strings.Contains(f.Message, tc.param) {
					t.Errorf("%s: message %q does not name %s", transport, f.Message, tc.param)
				}
			}
			if viaREST.code != http.StatusBadRequest {
				t.Errorf("HTTP status %d, want 400", viaREST.code)
			}
		})
	}
}

// waitStatus polls the status of a job over REST until it is terminal.
func waitStatus(t *testing.T, e *env, user string, taskID int64) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		r := e.rest(user, http.MethodGet, fmt.Sprintf("entrance/%d/status", taskID), nil)
		if r.frame.Status != 0 {
			t.Fatalf("status of job %d: %s", taskID, r.frame.raw)
		}
		if st := r.frame.field(t, "status").(string); entrance.Status(st).Terminal() {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("job %d did not end within 20 s", taskID)
	return ""
}
