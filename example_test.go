package entrance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/sqlitestore"
)

// upper is a complete engine: it logs each line of the code in upper case
// and reports its progress line by line.
type upper struct{}

func (upper) Run(ctx context.Context, job *entrance.Job, out entrance.Output) error {
	lines := strings.Split(job.Code, "\n")
	for i, line := range lines {
		if err := ctx.Err(); err != nil {
			return err
		}
		if line == "fail" {
			return &entrance.JobError{Code: 42, Desc: "the code asked to fail"}
		}
		out.Log(entrance.LevelInfo, strings.ToUpper(line))
		out.Progress(float64(i+1)/float64(len(lines)), nil)
	}
	return nil
}

// DefaultRunType makes runType optional in requests for this engine.
func (upper) DefaultRunType() string { return "txt" }

// Example_engine registers an engine, submits a job over REST and reads
// its log once it has succeeded.
func Example_engine() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	store, err := sqlitestore.Open(context.Background(), filepath.Join(dir, "jobs.db"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	srv, err := entrance.New(&entrance.Options{
		Store:         store,
		Engines:       map[string]entrance.Engine{"upper": upper{}},
		Authenticator: entrance.NewTokenAuthenticator(map[string][]string{"secret": {"alice"}}),
		Instance:      "127.0.0.1:9001",
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()

	reply := call(ts.URL, "POST", "entrance/execute",
		`{"executeApplicationName": "upper", "executionCode": "hello\n${greeting} world"`+
			`, "params": {"variable": {"greeting": "bye"}}}`)
	fmt.Println("execID:", reply["execID"])
	for status := ""; status != "Succeed"; time.Sleep(10 * time.Millisecond) {
		status, _ = call(ts.URL, "GET", "entrance/1/status", "")["status"].(string)
	}
	log := call(ts.URL, "GET", "entrance/1/log?fromLine=1&size=-1", "")["log"].([]any)
	fmt.Println(log[3])
	// Output:
	// execID: 030514IDEupper127.0.0.1:9001IDE_alice_1
	// replaced ${greeting} with bye
	// HELLO
	// BYE WORLD
}

// call makes a REST call as alice and returns the reply's data.
func call(base, method, path, body string) map[string]any {
	req, _ := http.NewRequest(method, base+"/api/rest_j/v1/"+path, strings.NewReader(body))
	req.Header.Set("Token-Code", "secret")
	req.Header.Set("Token-User", "alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var env struct{ Data map[string]any }
	json.NewDecoder(resp.Body).Decode(&env)
	return env.Data
}
