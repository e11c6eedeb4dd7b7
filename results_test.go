package entrance_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/engines/sqlite"
	"github.com/goentrance/entrance/sqlitestore"
)

// openFile reads one page of a result set over REST.
func openFile(t *testing.T, e *env, user, path string, page, pageSize int) *frame {
	t.Helper()
	r := e.rest(user, http.MethodGet, "filesystem/openFile",
		map[string]any{"path": path, "page": page, "pageSize": pageSize})
	if r.frame.Status != 0 {
		t.Fatalf("openFile %s page %d: %s", path, page, r.frame.raw)
	}
	return r.frame
}

// openFileData is the data of an openFile reply of a table result.
type openFileData struct {
	Metadata    []entrance.Column `json:"metadata"`
	FileContent [][]*string       `json:"fileContent"`
	Type        string            `json:"type"`
	TotalLine   int64             `json:"totalLine"`
	Page        int64             `json:"page"`
	TotalPage   int64             `json:"totalPage"`
}

func decodeTable(t *testing.T, f *frame) openFileData {
	t.Helper()
	var d openFileData
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatalf("decode table page %s: %v", shortRaw(f.raw), err)
	}
	return d
}

func shortRaw(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func TestSQLiteResultSets(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	_, taskID := runToEnd(t, c, "sqlite", `
create table scores (id INTEGER, name TEXT, score REAL, photo BLOB);
insert into scores values (1, 'ann', 1.5, x'CAFE'), (2, NULL, NULL, NULL), (3, 'o''neil', -2, x'');
select * from scores order by id;
update scores set score = 0 where id = 3;
select count(*) as n, max(score) as top from scores;
select name from scores where id > 100;`)

	tree := e.rest("alice", http.MethodGet, "filesystem/getDirFileTrees",
		map[string]any{"path": fmt.Sprintf("result://%d", taskID)})
	var trees struct {
		DirFileTrees struct {
			Name, Path string
			IsLeaf     bool
			Children   []struct {
				Name, Path string
				IsLeaf     bool
			}
		}
	}
	if err := json.Unmarshal(tree.frame.Data, &trees); err != nil {
		t.Fatalf("decode tree %s: %v", tree.frame.raw, err)
	}
	root := trees.DirFileTrees
	if root.Path != fmt.Sprintf("result://%d", taskID) || root.IsLeaf {
		t.Errorf("root %+v, want the result location, not a leaf", root)
	}
	if len(root.Children) != 3 {
		t.Fatalf("%d result sets, want 3 (one per select): %s", len(root.Children), tree.frame.raw)
	}
	for i, child := range root.Children {
		wantName := fmt.Sprintf("_%d.dolphin", i)
		if child.Name != wantName || !child.IsLeaf || child.Path != root.Path+"/"+wantName {
			t.Errorf("child %d is %+v, want leaf %s", i, child, wantName)
		}
	}

	str := func(s string) *string { return &s }
	cases := []struct {
		index   int
		columns []entrance.Column
		rows    [][]*string
	}{
		{0, []entrance.Column{{Name: "id", Type: "INTEGER"}, {Name: "name", Type: "TEXT"},
			{Name: "score", Type: "REAL"}, {Name: "photo", Type: "BLOB"}},
			[][]*string{{str("1"), str("ann"), str("1.5"), str("CAFE")}, {str("2"), nil, nil, nil},
				{str("3"), str("o'neil"), str("-2"), str("")}}},
		{1, []entrance.Column{{Name: "n"}, {Name: "top"}}, [][]*string{{str("3"), str("1.5")}}},
		{2, []entrance.Column{{Name: "name", Type: "TEXT"}}, [][]*string{}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("result set %d", tc.index), func(t *testing.T) {
			d := decodeTable(t, openFile(t, e, "alice",
				fmt.Sprintf("result://%d/_%d.dolphin", taskID, tc.index), 1, 100))
			if d.Type != "2" {
				t.Errorf("type %q, want 2 (table)", d.Type)
			}
			if !reflect.DeepEqual(d.Metadata, tc.columns) {
				t.Errorf("metadata %+v, want %+v", d.Metadata, tc.columns)
			}
			if !reflect.DeepEqual(d.FileContent, tc.rows) {
				t.Errorf("rows %s, want %s", rowsText(d.FileContent), rowsText(tc.rows))
			}
			if d.TotalLine != int64(len(tc.rows)) {
				t.Errorf("totalLine %d, want %d", d.TotalLine, len(tc.rows))
			}
		})
	}
}

// rowsText prints rows with NULL for nil values.
func rowsText(rows [][]*string) string {
	var b bytes.Buffer
	for _, row := range rows {
		b.WriteByte('[')
		for i, v := range row {
			if i > 0 {
				b.WriteByte(' ')
			}
			if v == nil {
				b.WriteString("NULL")
			} else {
				b.WriteString(strconv.Quote(*v))
			}
		}
		b.WriteByte(']')
	}
	return b.String()
}

func TestShellTextResult(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	_, withOutput := runToEnd(t, c, "shell", `echo "first line"; echo "to stderr" >&2; printf 'x\n\ny\n'`)
	_, silent := runToEnd(t, c, "shell", "echo only stderr >&2")

	f := openFile(t, e, "alice", fmt.Sprintf("result://%d/_0.dolphin", withOutput), 1, 5000)
	if got := f.field(t, "type"); got != "1" {
		t.Errorf("type %v, want 1 (text)", got)
	}
	if got := f.field(t, "metadata"); got != "NULL" {
		t.Errorf("metadata %v, want NULL", got)
	}
	if got, want := f.field(t, "fileContent"), "first line\nx\n\ny"; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	if got := f.field(t, "totalLine"); got != 4.0 {
		t.Errorf("totalLine %v, want 4", got)
	}

	second := openFile(t, e, "alice", fmt.Sprintf("result://%d/_0.dolphin", withOutput), 2, 2)
	if got, want := second.field(t, "fileContent"), "\ny"; got != want {
		t.Errorf("page 2 of size 2: text %q, want %q", got, want)
	}
	if got := second.field(t, "totalPage"); got != 2.0 {
		t.Errorf("totalPage %v, want 2", got)
	}

	tree := e.rest("alice", http.MethodGet, "filesystem/getDirFileTrees",
		map[string]any{"path": fmt.Sprintf("result://%d", silent)})
	children := tree.frame.field(t, "dirFileTrees").(map[string]any)["children"].([]any)
	if len(children) != 0 {
		t.Errorf("job without stdout has result sets: %s", tree.frame.raw)
	}
	missing := e.rest("alice", http.MethodGet, "filesystem/openFile",
		map[string]any{"path": fmt.Sprintf("result://%d/_0.dolphin", silent)})
	if missing.frame.Status != 1 {
		t.Errorf("missing result set: status %d, want 1: %s", missing.frame.Status, missing.frame.raw)
	}
}

// countQuery returns rows n, 'row n' for n from 1 to rows.
func countQuery(rows int) string {
	return fmt.Sprintf(`with recursive c(n) as (select 1 union all select n + 1 from c where n < %d)
select n, 'row ' || n as label from c`, rows)
}

func TestOpenFileLargeResult(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	_, large := runToEnd(t, c, "sqlite", countQuery(100_000))
	path := fmt.Sprintf("result://%d/_0.dolphin", large)

	cases := []struct {
		name      string
		page      int
		size      int
		first     int
		rows      int
		totalPage int64
	}{
		{"page 3 of 5000", 3, 5000, 10_001, 5000, 20},
		{"last page", 20, 5000, 95_001, 5000, 20},
		{"past the end", 21, 5000, 0, 0, 20},
		{"uneven last page", 4, 30_000, 90_001, 10_000, 4},
		{"one row", 77_777, 1, 77_777, 1, 100_000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decodeTable(t, openFile(t, e, "alice", path, tc.page, tc.size))
			if d.TotalLine != 100_000 || d.TotalPage != tc.totalPage || d.Page != int64(tc.page) {
				t.Errorf("totalLine %d, totalPage %d, page %d, want 100000, %d, %d",
					d.TotalLine, d.TotalPage, d.Page, tc.totalPage, tc.page)
			}
			if len(d.FileContent) != tc.rows {
				t.Fatalf("%d rows, want %d", len(d.FileContent), tc.rows)
			}
			for i, row := range d.FileContent {
				n := strconv.Itoa(tc.first + i)
				if len(row) != 2 || row[0] == nil || *row[0] != n || row[1] == nil || *row[1] != "row "+n {
					t.Fatalf("row %d of the page is %s, want [%s row %s]", i, rowsText([][]*string{row}), n, n)
				}
			}
		})
	}
}

func TestOpenFileMemoryBounded(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("alice")
	_, small := runToEnd(t, c, "sqlite", countQuery(10_000))
	_, large := runToEnd(t, c, "sqlite", countQuery(100_000))

	// Page 2 is the last full page of the small result; page 20 the last
	// page of the large one.
	smallBytes := pageBytes(t, e.srv, small, 2)
	largeBytes := pageBytes(t, e.srv, large, 2)
	deepBytes := pageBytes(t, e.srv, large, 20)
	t.Logf("a page of 5000 rows allocates %d bytes with 10k rows stored, %d with 100k, "+
		"%d for the last page of 100k", smallBytes, largeBytes, deepBytes)
	for name, got := range map[string]uint64{"page 2 of 100k rows": largeBytes, "page 20 of 100k rows": deepBytes} {
		if float64(got) > 1.5*float64(smallBytes) {
			t.Errorf("serving %s allocated %d bytes, over 1.5 times the %d bytes "+
				"of page 2 of 10k rows", name, got, smallBytes)
		}
	}
}

// pageBytes returns the bytes allocated, on average over a few calls, to
// serve one page of 5000 rows of a job's first result set.
func pageBytes(t *testing.T, h http.Handler, taskID int64, page int) uint64 {
	t.Helper()
	target := openFileTarget(taskID, page, 5000)
	serveLocal(t, h, target) // warm up the store's connections and caches
	const calls = 5
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range calls {
		rec := serveLocal(t, h, target)
		if rec.Code != http.StatusOK {
			t.Fatalf("openFile: HTTP %d: %s", rec.Code, shortRaw(rec.Body.Bytes()))
		}
		if n := bytes.Count(rec.Body.Bytes(), []byte(`"row `)); n != 5000 {
			t.Fatalf("openFile page %d returned %d rows, want 5000", page, n)
		}
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / calls
}

func openFileTarget(taskID int64, page, pageSize int) string {
	q := url.Values{}
	q.Set("path", fmt.Sprintf("result://%d/_0.dolphin", taskID))
	q.Set("page", strconv.Itoa(page))
	q.Set("pageSize", strconv.Itoa(pageSize))
	return "/api/rest_j/v1/filesystem/openFile?" + q.Encode()
}

// serveLocal serves a GET as alice on h in process, without a network.
func serveLocal(tb testing.TB, h http.Handler, target string) *httptest.ResponseRecorder {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Token-Code", testTokens["alice"])
	req.Header.Set("Token-User", "alice")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestResultPathRejected(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := e.dial("alice"), e.dial("bob")
	_, own := runToEnd(t, alice, "shell", "echo mine")
	_, other := runToEnd(t, bob, "shell", "echo secret")
	ownLoc, otherLoc := fmt.Sprintf("result://%d", own), fmt.Sprintf("result://%d", other)

	cases := []struct {
		name   string
		path   string
		status int
	}{
		{"empty", "", 1},
		{"parent directory", "../", 1},
		{"parent of the store", "../../etc/passwd", 1},
		{"absolute path", "/etc/passwd", 1},
		{"file URL", "file:///etc/passwd", 1},
		{"hdfs URL", "hdfs:///tmp/linkis/alice", 1},
		{"dot segment to another job", ownLoc + "/../" + strconv.FormatInt(other, 10), 1},
		{"dot segment after a set", ownLoc + "/_0.dolphin/..", 1},
		{"dot segment before a set", ownLoc + "/./_0.dolphin", 1},
		{"encoded dots", ownLoc + "/%2e%2e/" + strconv.FormatInt(other, 10), 1},
		{"encoded slash", ownLoc + "%2F_0.dolphin", 1},
		{"encoded scheme", "result%3A%2F%2F" + strconv.FormatInt(own, 10), 1},
		{"double slash", ownLoc + "//_0.dolphin", 1},
		{"trailing slash", ownLoc + "/", 1},
		{"leading zeros", fmt.Sprintf("result://0%d", own), 1},
		{"plus sign", fmt.Sprintf("result://+%d", own), 1},
		{"task zero", "result://0", 1},
		{"negative task", "result://-1", 1},
		{"huge task", "result://99999999999999999999999", 1},
		{"upper-case scheme", fmt.Sprintf("RESULT://%d", own), 1},
		{"space before", " " + ownLoc, 1},
		{"query suffix", ownLoc + "/_0.dolphin?x=1", 1},
		{"other file name", ownLoc + "/_0.csv", 1},
		{"unknown job", "result://999999/_0.dolphin", 1},
		{"other user's set", otherLoc + "/_0.dolphin", 3},
		{"other user's location", otherLoc, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{"filesystem/openFile", "filesystem/getDirFileTrees"} {
				data := map[string]any{"path": tc.path}
				viaREST := e.rest("alice", http.MethodGet, method, data)
				viaWS, _ := alice.call(method, data)
				if viaREST.frame.Status != tc.status {
					t.Errorf("%s: status %d, want %d: %s", method, viaREST.frame.Status, tc.status, viaREST.frame.raw)
				}
				if bytes.Contains(viaREST.frame.raw, []byte("root:")) ||
					bytes.Contains(viaREST.frame.raw, []byte("secret")) {
					t.Errorf("%s: reply leaks content: %s", method, viaREST.frame.raw)
				}
				checkSameEnvelope(t, viaREST.frame, viaWS)
			}
		})
	}

	// The same strings sent escaped in the query reach the server decoded
	// once, and are rejected the same way.
	raw := e.restRaw("alice", http.MethodGet, e.http.URL+
		"/api/rest_j/v1/filesystem/openFile?path=result%3A%2F%2F"+strconv.FormatInt(own, 10)+
		"%2F..%2F"+strconv.FormatInt(other, 10), nil)
	if raw.frame.Status != 1 {
		t.Errorf("escaped traversal: status %d, want 1: %s", raw.frame.Status, raw.frame.raw)
	}

	// The canonical paths themselves are accepted, and root may read
	// every user's results.
	openFile(t, e, "alice", ownLoc+"/_0.dolphin", 1, 10)
	openFile(t, e, "root", otherLoc+"/_0.dolphin", 1, 10)
}

// BenchmarkOpenFilePage serves a page of 5000 rows of a 10,000-row and
// of a 100,000-row result set through the REST handler, in process: page 2
// of both, and page 20, the last, of the larger. The bytes per operation
// stay the same whatever the total size and the page, because only the
// page's rows are read from the store.
func BenchmarkOpenFilePage(b *testing.B) {
	h := newBenchServer(b)
	small := runLocal(b, h, countQuery(10_000))
	large := runLocal(b, h, countQuery(100_000))
	cases := []struct {
		name   string
		taskID int64
		page   int
	}{
		{"rows=10000/page=2", small, 2},
		{"rows=100000/page=2", large, 2},
		{"rows=100000/page=20", large, 20},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			target := openFileTarget(bc.taskID, bc.page, 5000)
			b.ReportAllocs()
			for b.Loop() {
				if rec := serveLocal(b, h, target); rec.Code != http.StatusOK {
					b.Fatalf("openFile: HTTP %d: %s", rec.Code, shortRaw(rec.Body.Bytes()))
				}
			}
		})
	}
}

// newBenchServer starts an entrance with the sqlite engine and a real
// store in a temporary directory, without a network listener.
func newBenchServer(b *testing.B) http.Handler {
	b.Helper()
	dir := b.TempDir()
	store, err := sqlitestore.Open(b.Context(), filepath.Join(dir, "entrance.db"), nil)
	if err != nil {
		b.Fatalf("open store: %v", err)
	}
	engine, err := sqlite.New(&sqlite.Options{Path: filepath.Join(dir, "data.db")})
	if err != nil {
		b.Fatalf("open sqlite engine: %v", err)
	}
	srv, err := entrance.New(&entrance.Options{
		Store:         store,
		Engines:       map[string]entrance.Engine{"sqlite": engine},
		Authenticator: entrance.NewTokenAuthenticator(map[string][]string{testTokens["alice"]: {"alice"}}),
		Instance:      "127.0.0.1:9001",
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatalf("new server: %v", err)
	}
	b.Cleanup(func() {
		srv.Close()
		store.Close()
		engine.Close()
	})
	return srv
}

// runLocal runs SQL as alice through h and waits until the job succeeds.
func runLocal(b *testing.B, h http.Handler, code string) int64 {
	b.Helper()
	body, _ := json.Marshal(map[string]any{"executeApplicationName": "sqlite", "executionCode": code})
	req := httptest.NewRequest(http.MethodPost, "/api/rest_j/v1/entrance/execute", bytes.NewReader(body))
	req.Header.Set("Token-Code", testTokens["alice"])
	req.Header.Set("Token-User", "alice")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var reply struct {
		Data struct{ TaskID int64 }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil || reply.Data.TaskID == 0 {
		b.Fatalf("execute: %s: %v", rec.Body.Bytes(), err)
	}

	target := fmt.Sprintf("/api/rest_j/v1/entrance/%d/status", reply.Data.TaskID)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		var status struct {
			Data struct{ Status entrance.Status }
		}
		json.Unmarshal(serveLocal(b, h, target).Body.Bytes(), &status)
		switch {
		case status.Data.Status == entrance.StatusSucceed:
			return reply.Data.TaskID
		case status.Data.Status.Terminal():
			b.Fatalf("job %d ended %s", reply.Data.TaskID, status.Data.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("job %d did not end within a minute", reply.Data.TaskID)
	return 0
}
