package entrance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/sqlitestore"
)

// countingSubscriber counts the frames it receives.
type countingSubscriber struct {
	frames atomic.Int64
}

func (s *countingSubscriber) Deliver(*entrance.Frame) { s.frames.Add(1) }

// BenchmarkHubPublish publishes one frame to 1, 100 and 1,000 subscribers
// of a job. Its allocations per publish must not grow with the number of
// subscribers.
func BenchmarkHubPublish(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			const taskID = 7
			hub := entrance.NewHub()
			subs := make([]*countingSubscriber, n)
			for i := range subs {
				subs[i] = &countingSubscriber{}
				hub.Subscribe(taskID, subs[i])
			}
			f := &entrance.Frame{Data: []byte(`{"method":"m"}`), TaskID: taskID}
			b.ReportAllocs()

			published := int64(0)
			for b.Loop() {
				hub.Publish(f)
				published++
			}

			for i, s := range subs {
				if got := s.frames.Load(); got != published {
					b.Fatalf("subscriber %d received %d frames; want %d", i, got, published)
				}
			}
			b.ReportMetric(float64(published*int64(n))/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// lineCounter is a Fanout that counts the log lines published and reports
// the taskID of each job's last push.
type lineCounter struct {
	*entrance.Hub
	lines atomic.Int64
	ended chan int64
}

func (h *lineCounter) Publish(f *entrance.Frame) {
	h.lines.Add(f.EndLine - f.FirstLine)
	h.Hub.Publish(f)
	if f.Last {
		h.ended <- f.TaskID
	}
}

// repeatEngine logs the same line a number of times, as fast as Output.Log
// accepts it.
type repeatEngine struct {
	lines int
	text  string
}

func (e repeatEngine) Run(ctx context.Context, _ *entrance.Job, out entrance.Output) error {
	for i := range e.lines {
		if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		out.Log(entrance.LevelInfo, e.text)
	}
	return nil
}

// BenchmarkLogIngestion runs jobs whose engine logs 100,000 lines each,
// and measures the lines per second from Output.Log through the SQLite
// store to the hub. An operation is one job, from the execute request to
// its terminal status push.
func BenchmarkLogIngestion(b *testing.B) {
	const linesPerJob = 100_000
	store, err := sqlitestore.Open(b.Context(), filepath.Join(b.TempDir(), "entrance.db"), nil)
	if err != nil {
		b.Fatalf("open store: %v", err)
	}
	b.Cleanup(func() { store.Close() })
	hub := &lineCounter{Hub: entrance.NewHub(), ended: make(chan int64, 1)}
	srv, err := entrance.New(&entrance.Options{
		Store: store,
		Engines: map[string]entrance.Engine{"repeat": repeatEngine{lines: linesPerJob,
			text: "2024-01-01 00:00:00.000 INFO line of output from the engine, about 80 bytes long"}},
		Authenticator: entrance.NewTokenAuthenticator(map[string][]string{"tok": {"alice"}}),
		Instance:      "127.0.0.1:9001",
		Hub:           hub,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatalf("new server: %v", err)
	}
	b.Cleanup(func() { srv.Close() })
	b.ReportAllocs()

	for b.Loop() {
		taskID := submitREST(b, srv, "repeat", "run")
		if ended := <-hub.ended; ended != taskID {
			b.Fatalf("job %d ended; want job %d", ended, taskID)
		}
	}

	if got, want := hub.lines.Load(), int64(b.N)*linesPerJob; got != want {
		b.Fatalf("hub received %d lines; want %d", got, want)
	}
	b.ReportMetric(float64(hub.lines.Load())/b.Elapsed().Seconds(), "lines/s")
}

// submitREST executes code over REST as alice and returns the taskID.
func submitREST(tb testing.TB, srv http.Handler, engine, code string) int64 {
	tb.Helper()
	body := fmt.Sprintf(`{"executeApplicationName":%q,"executionCode":%q}`, engine, code)
	req := httptest.NewRequest(http.MethodPost, "/api/rest_j/v1/entrance/execute",
		strings.NewReader(body))
	req.Header.Set("Token-Code", "tok")
	req.Header.Set("Token-User", "alice")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		tb.Fatalf("execute: HTTP %d: %s", rec.Code, rec.Body)
	}
	var reply struct {
		Data struct {
			TaskID int64 `json:"taskID"`
		} `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil || reply.Data.TaskID == 0 {
		tb.Fatalf("execute reply %s: %v", rec.Body, err)
	}
	return reply.Data.TaskID
}
