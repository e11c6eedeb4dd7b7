package entrance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Options configure a Server. A nil *Options and every zero field mean
// the documented default.
type Options struct {
	// Store keeps jobs, logs and results. Required: New fails without it.
	// The Server does not close it.
	Store Store

	// Engines maps executeApplicationName values to engines.
	Engines map[string]Engine

	// Authenticator maps each HTTP request, including WebSocket upgrades,
	// to a user. Defaults to rejecting every request, so that an
	// entrance that runs code is never open by accident.
	Authenticator Authenticator

	// Admins may see and kill the jobs of every user.
	Admins []string

	// Instance is the host:port that execIDs name. Defaults to the
	// host name and port 9001.
	Instance string

	// Hub routes pushes to connections. Defaults to NewHub().
	Hub Fanout

	// OriginPatterns are the patterns, as in path.Match, of the
	// cross-origin pages allowed to open WebSocket connections and call
	// the REST API. A pattern matches the host[:port] of the Origin
	// header, or its scheme://host[:port] when the pattern contains
	// "://". Same-origin pages and clients that send no Origin header
	// (scripts, command-line tools) are always allowed. Requests from
	// other pages are rejected with 403, so that a page on another site
	// cannot use a browser's cookies to act for its user. Defaults to
	// none.
	OriginPatterns []string

	// Logger receives the server's log. Defaults to slog.Default().
	Logger *slog.Logger

	// Limits bound what clients and jobs may use.
	Limits Limits
}

// Limits bound what clients and jobs may use. Zero fields take the
// defaults in DefaultLimits. A negative value means no limit where the
// field's doc allows it.
type Limits struct {
	// MaxFrameBytes is the largest request frame or REST body. Default
	// 1,024,000 bytes.
	MaxFrameBytes int64

	// MaxRunning is the number of jobs that run at once in total, and
	// MaxRunningPerUser per user; further jobs wait in Scheduled.
	// Defaults 16 and 4; negative means no limit.
	MaxRunning        int
	MaxRunningPerUser int

	// MaxQueuedPerUser is the number of unfinished jobs a user may have;
	// further submissions are rejected. Default 100; negative means no
	// limit.
	MaxQueuedPerUser int

	// MaxConnsPerUser is the number of WebSocket connections a user may
	// have open at once. A further connection is accepted, sent one
	// status-1 frame that names the limit, and closed with code 1008.
	// Default 256; negative means no limit.
	MaxConnsPerUser int

	// SubmitsPerSecond is the rate at which each user may call execute
	// and submit, and SubmitBurst the number of calls a user may make at
	// once after a pause: a token bucket per user. Every call counts,
	// including those rejected as invalid, and calls over the rate are
	// rejected with status 1. Default no rate limit; SubmitBurst defaults
	// to SubmitsPerSecond rounded up, and at least 1.
	SubmitsPerSecond float64
	SubmitBurst      int

	// JobTimeout stops jobs that run longer; they end Timeout. The time
	// counts from Running. A Linkis 1.x submit request may set a shorter
	// limit with the label jobRunningTimeout, in seconds. Default none.
	JobTimeout time.Duration

	// MaxLogLineBytes cuts longer log lines to this many bytes, at a
	// UTF-8 character boundary, and appends how many bytes were cut.
	// Default 64 KiB; negative means no limit.
	MaxLogLineBytes int

	// MaxLogBytes caps the log text stored per job. Once it is reached,
	// the job's later lines are dropped, and a warn line at the end of
	// the log counts them. That line and the line with a failed job's
	// reason are kept past the cap. Default 256 MiB; negative means no
	// limit.
	MaxLogBytes int64

	// SendQueue is the number of frames queued per connection before it
	// is closed as too slow. Default 1024, also for negative values.
	SendQueue int

	// PingInterval and PingTimeout find dead WebSocket peers. Defaults
	// 30 s and 10 s.
	PingInterval time.Duration
	PingTimeout  time.Duration

	// StoreTimeout bounds each store call the server makes on its own.
	// Default 30 s.
	StoreTimeout time.Duration
}

// DefaultLimits are the limits of a zero Limits.
var DefaultLimits = Limits{
	MaxFrameBytes:     1_024_000,
	MaxRunning:        16,
	MaxRunningPerUser: 4,
	MaxQueuedPerUser:  100,
	MaxConnsPerUser:   256,
	MaxLogLineBytes:   64 << 10,
	MaxLogBytes:       256 << 20,
	SendQueue:         1024,
	PingInterval:      30 * time.Second,
	PingTimeout:       10 * time.Second,
	StoreTimeout:      30 * time.Second,
}

// withDefaults fills zero fields from DefaultLimits and turns negative
// "no limit" values into zero, which the server reads as unlimited.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	pick := func(v *int, def int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			*v = 0
		}
	}
	pick(&l.MaxRunning, d.MaxRunning)
	pick(&l.MaxRunningPerUser, d.MaxRunningPerUser)
	pick(&l.MaxQueuedPerUser, d.MaxQueuedPerUser)
	pick(&l.MaxConnsPerUser, d.MaxConnsPerUser)
	pick(&l.MaxLogLineBytes, d.MaxLogLineBytes)
	if l.SendQueue <= 0 {
		// A connection needs a queue, so there is no "no limit" here.
		l.SendQueue = d.SendQueue
	}
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = d.MaxFrameBytes
	}
	switch {
	case l.MaxLogBytes == 0:
		l.MaxLogBytes = d.MaxLogBytes
	case l.MaxLogBytes < 0:
		l.MaxLogBytes = 0
	}
	if l.JobTimeout < 0 {
		l.JobTimeout = 0
	}
	if l.SubmitsPerSecond < 0 {
		l.SubmitsPerSecond = 0
	}
	if l.SubmitBurst <= 0 {
		l.SubmitBurst = max(1, int(math.Ceil(l.SubmitsPerSecond)))
	}
	for _, p := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&l.PingInterval, d.PingInterval}, {&l.PingTimeout, d.PingTimeout},
		{&l.StoreTimeout, d.StoreTimeout},
	} {
		if *p.v <= 0 {
			*p.v = p.def
		}
	}
	return l
}

// Server is the entrance: an http.Handler that serves the WebSocket and
// REST API and runs the submitted jobs. It is safe for concurrent use.
type Server struct {
	store          Store
	hub            Fanout
	engines        map[string]Engine
	auth           Authenticator
	admins         map[string]bool
	instance       string
	originPatterns []string
	logger         *slog.Logger
	limits         Limits
	sched          *scheduler
	admission      admission
	userConns      connCounter
	submits        *submitRate

	// jobsCtx is the parent of every job's context; Shutdown cancels it
	// once the grace period is over.
	jobsCtx    context.Context
	cancelJobs context.CancelCauseFunc
	wg         sync.WaitGroup // jobs and connections

	jobsMu     sync.Mutex
	jobs       map[int64]*job // live jobs
	jobsClosed bool           // set by Shutdown: no job starts any more

	// connsCtx is the parent of every connection's context. Shutdown
	// cancels it only after the close handshakes had their time, so
	// that connections get the final pushes of cancelled jobs first.
	connsCtx    context.Context
	cancelConns context.CancelFunc

	connsMu  sync.Mutex
	conns    map[*wsConn]struct{}
	closing  bool
	shutOnce sync.Once
}

// New returns a Server. It recovers the jobs the store holds as
// unfinished: jobs that never started run now, and jobs that were running
// when the previous server stopped end Failed.
func New(opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	if opts.Store == nil {
		return nil, errors.New("new server: Options.Store is required")
	}
	s := &Server{
		store:          opts.Store,
		hub:            opts.Hub,
		engines:        make(map[string]Engine, len(opts.Engines)),
		auth:           opts.Authenticator,
		admins:         map[string]bool{},
		instance:       opts.Instance,
		originPatterns: opts.OriginPatterns,
		logger:         opts.Logger,
		limits:         opts.Limits.withDefaults(),
		jobs:           map[int64]*job{},
		conns:          map[*wsConn]struct{}{},
	}
	for name, e := range opts.Engines {
		if e == nil {
			return nil, fmt.Errorf("new server: engine %q is nil", name)
		}
		s.engines[name] = e
	}
	for _, a := range opts.Admins {
		s.admins[a] = true
	}
	if err := checkOriginPatterns(s.originPatterns); err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	if s.hub == nil {
		s.hub = NewHub()
	}
	if s.auth == nil {
		s.auth = denyAll{}
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.instance == "" {
		host, _ := os.Hostname()
		s.instance = net.JoinHostPort(host, "9001")
	}
	s.sched = newScheduler(s.limits)
	s.admission = admission{max: s.limits.MaxQueuedPerUser, counts: map[string]int{}}
	s.userConns = connCounter{max: s.limits.MaxConnsPerUser, counts: map[string]int{}}
	s.submits = newSubmitRate(s.limits)
	s.jobsCtx, s.cancelJobs = context.WithCancelCause(context.Background())
	s.connsCtx, s.cancelConns = context.WithCancel(context.Background())
	if err := s.recover(); err != nil {
		s.cancelJobs(errShutdown)
		s.cancelConns()
		return nil, err
	}
	return s, nil
}

func (s *Server) isAdmin(user string) bool { return s.admins[user] }

// connectPaths are the paths that accept WebSocket connections.
var connectPaths = map[string]bool{
	"/api/rest_j/v1/entrance/connect": true,
	"/api/rest_j/entrance/connect":    true,
	"/ws/api/entrance/connect":        true,
}

// ServeHTTP serves WebSocket connections on the connect paths and the
// REST API under /api/rest_j/v1/. It rejects requests from pages of
// other origins first (see Options.OriginPatterns).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.allowOrigin(w, r) {
		return
	}
	switch {
	case connectPaths[r.URL.Path]:
		s.serveWebSocket(w, r)
	case strings.HasPrefix(r.URL.Path, methodPrefix):
		s.serveREST(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	user, err := s.auth.Authenticate(r)
	if err != nil {
		s.logger.Info("connection rejected", "remote", r.RemoteAddr, "error", err)
		writeEnvelope(w, errorEnvelope(r.URL.Path, "",
			errorf(ReplyLoginRequired, ErrCodeUnauthorized, "login required: %v", err)))
		return
	}
	// The connection takes its place before the upgrade completes, so
	// that a client whose upgrade has succeeded holds its place.
	limitErr := s.userConns.acquire(user)
	ws, err := s.acceptWebSocket(w, r)
	if err != nil {
		if limitErr == nil {
			s.userConns.release(user)
		}
		s.logger.Info("websocket upgrade failed", "remote", r.RemoteAddr, "user", user, "error", err)
		return
	}
	// Frames over the limit are read up to 16 times the limit so that
	// they can get a reply; see skipOversized.
	ws.SetReadLimit(16*s.limits.MaxFrameBytes + 1)

	if aerr := limitErr; aerr != nil {
		s.logger.Info("connection rejected: limit reached", "remote", r.RemoteAddr,
			"user", user, "limit", "MaxConnsPerUser", "max", s.limits.MaxConnsPerUser)
		s.rejectConn(ws, r, aerr)
		return
	}
	c := s.newConn(ws, user, r.RemoteAddr)
	if !s.addConn(c) {
		s.userConns.release(user)
		ws.Close(websocket.StatusGoingAway, reasonShutdown)
		return
	}
	// The handler returns at once, so that net/http frees the request and
	// the goroutine that served it: an idle connection then costs one
	// goroutine, whose stack starts small. addConn counted that goroutine
	// in s.wg, which Shutdown waits for. The connection ends by its own
	// close; Shutdown closes it with 1001 after the last pushes of the
	// jobs that ended are queued, and cancels connsCtx to drop those left.
	go func() {
		defer s.removeConn(c)
		defer s.userConns.release(user)
		c.serve(s.connsCtx)
	}()
}

func (s *Server) addConn(c *wsConn) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) removeConn(c *wsConn) {
	s.connsMu.Lock()
	delete(s.conns, c)
	s.connsMu.Unlock()
	s.wg.Done()
}

// Shutdown stops the server in this order. It rejects new connections and
// submissions and leaves queued jobs in the store for the next start. It
// lets running jobs finish until ctx is done and then cancels the rest,
// which end Cancelled with an errDesc naming the shutdown. It closes every
// WebSocket connection with code 1001 once the frames already queued are
// sent, and waits for the goroutines the server started. When it returns,
// every write the server made to the store has returned. It does not close
// the store. It returns ctx's error if jobs had to be cancelled. Calling
// it again waits for the first call's work.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.shutOnce.Do(func() {
		s.connsMu.Lock()
		s.closing = true
		s.connsMu.Unlock()
		s.jobsMu.Lock()
		s.jobsClosed = true
		s.jobsMu.Unlock()

		s.sched.cancelWaiting()
		if err = s.waitJobs(ctx); err != nil {
			s.logger.Info("shutdown: cancelling the jobs still running")
			s.cancelJobs(errShutdown)
			s.waitJobs(context.Background())
		}

		s.closeConns(ctx)
		s.cancelJobs(errShutdown)
	})
	s.wg.Wait()
	return err
}

// closeHandshakeWait is how long Shutdown waits for close handshakes once
// its context is done.
const closeHandshakeWait = time.Second

// closeConns closes every connection with code 1001 and waits for the
// connections to end until ctx is done and closeHandshakeWait has passed.
// Then it closes those left without a handshake. The server's jobs have
// ended, so the wait group counts connections only.
func (s *Server) closeConns(ctx context.Context) {
	s.connsMu.Lock()
	for c := range s.conns {
		c.close(websocket.StatusGoingAway, reasonShutdown)
	}
	s.connsMu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		timer := time.NewTimer(closeHandshakeWait)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
		}
	}
	s.cancelConns()
	<-done
}

// Close shuts the server down like Shutdown, without a grace period for
// running jobs; connections get up to a second for their close
// handshakes.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Shutdown(ctx)
	return nil
}

// waitJobs waits until no job is live or ctx is done.
func (s *Server) waitJobs(ctx context.Context) error {
	for {
		s.jobsMu.Lock()
		var next *job
		for _, j := range s.jobs {
			next = j
			break
		}
		s.jobsMu.Unlock()
		if next == nil {
			return nil
		}
		select {
		case <-next.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
