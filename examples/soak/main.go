// Command soak runs an entrance in process and drives it with clients
// that disconnect at random, kill jobs and, when asked, live through
// server restarts. Every client follows its jobs with the resume protocol
// (a log request with the last fromLine it saw). At the end the command
// compares what each client received with the store, reports jobs, lines,
// lost and duplicated lines, and fails when any line was lost or repeated.
//
//	go run ./examples/soak -duration 10m
//
// All traffic stays on 127.0.0.1, and the data lives in a temporary
// directory that is removed at the end.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/engines/shell"
	"github.com/goentrance/entrance/sqlitestore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	duration     time.Duration
	clients      int
	maxLines     int
	killRate     float64
	restartEvery time.Duration
	seed         uint64
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.DurationVar(&c.duration, "duration", time.Minute, "how long clients submit jobs; the last jobs then get up to a minute to end")
	fs.IntVar(&c.clients, "clients", 12, "`number` of concurrent clients, each with its own user")
	fs.IntVar(&c.maxLines, "lines", 3000, "maximum `number` of log lines per job; each job logs a random number up to it")
	fs.Float64Var(&c.killRate, "kill", 0.2, "`fraction` of jobs that their client kills while they run")
	fs.DurationVar(&c.restartEvery, "restart-every", 20*time.Second, "interval between graceful server restarts; 0 means none")
	fs.Uint64Var(&c.seed, "seed", uint64(time.Now().UnixNano()), "random `seed`, printed in the report")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: all options are flags", fs.Arg(0))
	}
	if c.clients < 1 || c.maxLines < 1 || c.killRate < 0 || c.killRate > 1 {
		return nil, errors.New("invalid flags: -clients and -lines must be positive, -kill in [0, 1]")
	}
	return c, nil
}

const soakToken = "soak-token"

// servers runs one entrance at a time behind a fixed listener, so that a
// restart swaps the handler while clients keep the same address.
type servers struct {
	dir    string
	logger *slog.Logger

	mu    sync.RWMutex
	srv   *entrance.Server
	store *sqlitestore.Store

	restarts atomic.Int64
}

// ServeHTTP hands the request to the current entrance, or replies with
// status 503 while a restart is in progress.
func (s *servers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	srv := s.srv
	s.mu.RUnlock()
	if srv == nil {
		http.Error(w, "restarting", http.StatusServiceUnavailable)
		return
	}
	srv.ServeHTTP(w, r)
}

// start opens the store and starts an entrance on it.
func (s *servers) start(ctx context.Context) error {
	store, err := sqlitestore.Open(ctx, filepath.Join(s.dir, "entrance.db"), nil)
	if err != nil {
		return err
	}
	srv, err := entrance.New(&entrance.Options{
		Store: store,
		Engines: map[string]entrance.Engine{
			"counter": counter{},
			"shell":   shell.New(&shell.Options{WorkDir: s.dir, KillGrace: 200 * time.Millisecond}),
		},
		Authenticator: entrance.NewTokenAuthenticator(map[string][]string{soakToken: nil}),
		Instance:      "127.0.0.1:9001",
		Logger:        s.logger,
		Limits:        entrance.Limits{MaxRunning: 24, MaxRunningPerUser: 3},
	})
	if err != nil {
		return errors.Join(err, store.Close())
	}
	s.mu.Lock()
	s.srv, s.store = srv, store
	s.mu.Unlock()
	return nil
}

// stop shuts the current entrance down with a grace period and closes its
// store.
func (s *servers) stop(grace time.Duration) error {
	s.mu.Lock()
	srv, store := s.srv, s.store
	s.srv, s.store = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	srv.Shutdown(ctx) // an error only means that jobs were cancelled
	return store.Close()
}

// restartLoop restarts the entrance every interval until ctx is done.
func (s *servers) restartLoop(ctx context.Context, every time.Duration) error {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		if err := s.stop(time.Second); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		if err := s.start(context.Background()); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		s.restarts.Add(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "entrance-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	s := &servers{dir: dir, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := s.start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go httpSrv.Serve(ln)
	defer httpSrv.Close()

	fmt.Fprintf(out, "soak: %d clients for %v against http://%s, seed %d\n",
		cfg.clients, cfg.duration, ln.Addr(), cfg.seed)
	rep, err := drive(ctx, cfg, s, "http://"+ln.Addr().String())
	if stopErr := s.stop(5 * time.Second); err == nil {
		err = stopErr
	}
	if err != nil {
		return err
	}
	if err := rep.check(ctx, dir); err != nil {
		return err
	}
	rep.restarts = s.restarts.Load()
	rep.print(out)
	if rep.lost > 0 || rep.duplicated > 0 || rep.mismatched > 0 || rep.seams > 0 ||
		rep.unfinished > 0 {
		return errors.New("lines were lost, repeated, changed or out of order, or jobs did not end")
	}
	return nil
}

// drive runs the clients and the restarts until the duration is over
// and every client has followed its last job to the end.
func drive(ctx context.Context, cfg *config, s *servers, baseURL string) (*report, error) {
	submitCtx, stopSubmitting := context.WithTimeout(ctx, cfg.duration)
	defer stopSubmitting()
	// Jobs submitted near the end get a minute to finish.
	hardCtx, cancel := context.WithTimeout(ctx, cfg.duration+time.Minute)
	defer cancel()

	restartErr := make(chan error, 1)
	if cfg.restartEvery > 0 {
		go func() { restartErr <- s.restartLoop(submitCtx, cfg.restartEvery) }()
	} else {
		restartErr <- nil
	}

	rep := &report{}
	var wg sync.WaitGroup
	for i := range cfg.clients {
		c := newClient(cfg, baseURL, fmt.Sprintf("soak%d", i+1), cfg.seed+uint64(i))
		wg.Go(func() {
			jobs := c.loop(submitCtx, hardCtx)
			rep.add(jobs, c.conns)
		})
	}
	wg.Wait()
	if err := <-restartErr; err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return rep, nil
}
