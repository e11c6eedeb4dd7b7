// Command server runs an entrance with the shell and sqlite engines, a
// SQLite job store and a small web console.
//
//	go run ./examples/server -addr 127.0.0.1:9001 -data ./entrance-data
//
// It prints the console URL, which carries a one-time login, and the
// token for API clients. SIGINT or SIGTERM shut it down: running jobs get
// a grace period to finish, then they are cancelled.
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
	"syscall"
	"time"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/engines/shell"
	"github.com/goentrance/entrance/engines/sqlite"
	"github.com/goentrance/entrance/sqlitestore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
		// The flag package has printed the usage.
	case err != nil:
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	addr       string
	data       string
	token      string
	tokensFile string
	user       string
	admins     string
	grace      time.Duration
	jobTimeout time.Duration
	maxRunning int
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:9001", "`host:port` to listen on; it is also the instance part of execIDs")
	fs.StringVar(&c.data, "data", "./entrance-data", "`directory` for the job store, the sqlite engine's database and job working directories")
	fs.StringVar(&c.token, "token", "", "Linkis `token` that may act for any user (default: a random token, printed at start-up)")
	fs.StringVar(&c.tokensFile, "tokens", "", "`file` of tokens, one per line: TOKEN followed by the users it may act for, comma-separated, or * for any user")
	fs.StringVar(&c.user, "user", "admin", "`user` the console logs in as")
	fs.StringVar(&c.admins, "admins", "", "comma-separated `users` who may see and kill every user's jobs")
	fs.DurationVar(&c.grace, "grace", 30*time.Second, "how long running jobs may take to finish at shutdown before they are cancelled")
	fs.DurationVar(&c.jobTimeout, "job-timeout", 0, "time limit of a job; 0 means none unless the request sets one")
	fs.IntVar(&c.maxRunning, "max-running", 0, "`number` of jobs that run at once; later jobs wait in Scheduled (0: the library default, 16)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: all options are flags", fs.Arg(0))
	}
	return c, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	tokens, generated, err := loadTokens(cfg)
	if err != nil {
		return err
	}
	ln, err := listen(cfg, generated)
	if err != nil {
		return err
	}
	defer ln.Close()
	if err := os.MkdirAll(cfg.data, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}

	store, err := sqlitestore.Open(ctx, filepath.Join(cfg.data, "entrance.db"), nil)
	if err != nil {
		return err
	}
	defer store.Close()
	sqlEngine, err := sqlite.New(&sqlite.Options{Path: filepath.Join(cfg.data, "sqlite.db")})
	if err != nil {
		return err
	}
	defer sqlEngine.Close()
	jobsDir := filepath.Join(cfg.data, "jobs")
	if err := os.MkdirAll(jobsDir, 0o700); err != nil {
		return fmt.Errorf("create jobs directory: %w", err)
	}

	srv, err := entrance.New(&entrance.Options{
		Store: store,
		Engines: map[string]entrance.Engine{
			"shell":  shell.New(&shell.Options{WorkDir: jobsDir}),
			"sqlite": sqlEngine,
		},
		Authenticator: entrance.NewTokenAuthenticator(tokens),
		Admins:        splitList(cfg.admins),
		Instance:      ln.Addr().String(),
		Limits:        entrance.Limits{JobTimeout: cfg.jobTimeout, MaxRunning: cfg.maxRunning},
	})
	if err != nil {
		return err
	}
	return serve(ctx, cfg, ln, srv, tokens, generated, out)
}

// serve runs the HTTP server until ctx is done, then shuts everything
// down in order: no new connections, running jobs get the grace period,
// the rest are cancelled, sockets close with 1001. run closes the store
// after serve returns.
func serve(ctx context.Context, cfg *config, ln net.Listener, srv *entrance.Server,
	tokens map[string][]string, generated string, out io.Writer) error {
	consoleToken := generated
	if consoleToken == "" {
		consoleToken = tokenFor(tokens, cfg.user)
	}
	login := newLogin(consoleToken, cfg.user, ln.Addr().String(), out)
	mux := http.NewServeMux()
	mux.Handle("/api/", srv)
	mux.Handle("/ws/", srv)
	mux.HandleFunc("GET /login", login.serve)
	mux.HandleFunc("GET /{$}", serveConsole)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})

	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()

	fmt.Fprintf(out, "entrance listening on http://%s\n", ln.Addr())
	if generated != "" {
		fmt.Fprintf(out, "API token (Token-Code header, any Token-User): %s\n", generated)
	}
	login.announce()

	select {
	case err := <-errc:
		srv.Close()
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	slog.Info("shutting down", "grace", cfg.grace)
	graceCtx, cancel := context.WithTimeout(context.Background(), cfg.grace)
	defer cancel()
	httpSrv.Shutdown(graceCtx)
	if err := srv.Shutdown(graceCtx); err != nil {
		slog.Warn("grace period over: running jobs were cancelled", "error", err)
	}
	httpSrv.Close()
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
