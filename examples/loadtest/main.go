// Command loadtest measures an entrance over real WebSocket connections on
// loopback and prints one line per scenario:
//
//	go run ./examples/loadtest
//	go run ./examples/loadtest -runs 3 -scenarios fanout,latency
//
// It starts its own entrance in the same process, on 127.0.0.1:0, with a
// real SQLite store in a temporary directory. Two engines exist only here.
// "flood" logs lines as fast as the watchers take them, or at a fixed
// rate, and "noop" ends at once. The tool cannot target another server,
// because those engines must run inside the server. The clients run in
// the same process too, except for the idle scenario, whose clients run
// in a child process so that the server's memory can be measured alone.
//
// Scenarios:
//
//   - fanout: N watchers subscribed to one flooding job, then a plain
//     coder/websocket server sending the same frames to N clients (the
//     fanout-base line), and the ratio of the two.
//   - latency: watchers of a job that logs at a fixed rate, and the time
//     from the engine's Log call to the client's receipt, which each line
//     carries. The plain server then sends such frames at that rate.
//   - submit: execute requests acknowledged per second.
//   - idle: server memory and goroutines per idle connection, for the
//     entrance and for the plain coder/websocket server.
//
// With -runs above 1 each figure is the median of the runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if os.Getenv(childEnv) != "" {
		if err := runIdleChild(os.Getenv(childEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest child:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	scenarios     []string
	watchers      []int
	duration      time.Duration
	window        int
	latencyWatch  int
	rate          int
	latencyLength time.Duration
	conns         []int
	idleConns     int
	runs          int
	cpuProfile    string
	memProfile    string
	verbose       bool
}

var allScenarios = []string{"fanout", "latency", "submit", "idle"}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	lists := c.define(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: all options are flags", fs.Arg(0))
	}

	if err := c.resolve(lists); err != nil {
		return nil, err
	}
	return c, nil
}

// listFlags are the flags that take comma-separated lists.
type listFlags struct {
	scenarios, watchers, conns *string
}

func (c *config) define(fs *flag.FlagSet) listFlags {
	lists := listFlags{
		scenarios: fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated `list` of scenarios to run: fanout, latency, submit, idle"),
		watchers:  fs.String("watchers", "1,100,1000", "comma-separated watcher `counts` of the fanout scenario"),
		conns:     fs.String("conns", "1,10", "comma-separated connection `counts` of the submit scenario"),
	}
	fs.DurationVar(&c.duration, "duration", 3*time.Second, "how long the flood engine logs, and how long the submit scenario submits")
	fs.IntVar(&c.window, "window", 64, "log pushes that may be in flight to the slowest watcher in the fanout scenario; keep it well under the entrance's send queue of 1024")
	fs.IntVar(&c.latencyWatch, "latency-watchers", 1000, "watchers of the latency scenario")
	fs.IntVar(&c.rate, "rate", 100, "lines per second the latency scenario logs, one per frame")
	fs.DurationVar(&c.latencyLength, "latency-duration", 5*time.Second, "how long the latency scenario logs")
	fs.IntVar(&c.idleConns, "idle", 10_000, "idle connections of the idle scenario")
	fs.IntVar(&c.runs, "runs", 1, "runs of each scenario; figures are the median")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (server and in-process clients) to `file`")
	fs.StringVar(&c.memProfile, "memprofile", "", "write a heap profile of this process to `file` while the idle scenario's connections to the entrance are open")
	fs.BoolVar(&c.verbose, "v", false, "print the servers' warnings and errors, and the totals behind each figure, to stderr")
	return lists
}

// resolve reads the list flags and checks the numbers.
func (c *config) resolve(lists listFlags) error {
	c.scenarios = strings.Split(*lists.scenarios, ",")
	for _, s := range c.scenarios {
		if !slices.Contains(allScenarios, s) {
			return fmt.Errorf("unknown scenario %q: choose from %s", s, strings.Join(allScenarios, ", "))
		}
	}

	var err error
	if c.watchers, err = parseCounts("watchers", *lists.watchers); err != nil {
		return err
	}
	if c.conns, err = parseCounts("conns", *lists.conns); err != nil {
		return err
	}
	if c.runs < 1 || c.rate < 1 || c.window < 1 || c.latencyWatch < 1 || c.idleConns < 1 {
		return errors.New("-runs, -rate, -window, -latency-watchers and -idle must be at least 1")
	}
	return nil
}

func parseCounts(name, list string) ([]int, error) {
	var counts []int
	for field := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("invalid -%s value %q: want positive integers separated by commas", name, field)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	if err := raiseOpenFileLimit(); err != nil {
		return err
	}
	if cfg.cpuProfile != "" {
		stop, err := startCPUProfile(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	for _, name := range cfg.scenarios {
		if err := runScenario(ctx, cfg, name, out); err != nil {
			return fmt.Errorf("scenario %s: %w", name, err)
		}
	}
	return nil
}

// runScenario runs one scenario cfg.runs times for each of its sizes and
// prints the median of each figure.
func runScenario(ctx context.Context, cfg *config, name string, out io.Writer) error {
	type job struct {
		size int
		fn   func(context.Context, *config, int) ([]result, error)
	}
	var jobs []job
	switch name {
	case "fanout":
		for _, n := range cfg.watchers {
			jobs = append(jobs, job{n, runFanout})
		}
	case "latency":
		jobs = append(jobs, job{cfg.latencyWatch, runLatency})
	case "submit":
		for _, n := range cfg.conns {
			jobs = append(jobs, job{n, runSubmit})
		}
	case "idle":
		jobs = append(jobs, job{cfg.idleConns, runIdle})
	}
	for _, j := range jobs {
		var runs [][]result
		for range cfg.runs {
			if err := ctx.Err(); err != nil {
				return err
			}
			res, err := j.fn(ctx, cfg, j.size)
			if err != nil {
				return err
			}
			runs = append(runs, res)
		}
		for i := range runs[0] {
			fmt.Fprintln(out, medianResult(runs, i).String())
		}
	}
	return nil
}

// raiseOpenFileLimit lifts the soft limit of open files to the hard
// limit: 10,000 idle connections need 10,000 descriptors in each process.
func raiseOpenFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read open file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("raise open file limit to %d: %w", lim.Max, err)
		}
	}
	return nil
}

func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// result is the outcome of one scenario run: a name, the parameters and
// the measured figures, printed as one line.
type result struct {
	scenario string
	params   string
	metrics  []metric
}

// metric is one measured figure. format prints its value.
type metric struct {
	name   string
	value  float64
	format func(float64) string
}

func (r result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %s", r.scenario, r.params)
	for _, m := range r.metrics {
		fmt.Fprintf(&b, " %s=%s", m.name, m.format(m.value))
	}
	return b.String()
}

// medianResult returns the i-th result of the first run with each figure
// replaced by its median over all runs.
func medianResult(runs [][]result, i int) result {
	first := runs[0][i]
	out := result{scenario: first.scenario, params: first.params}
	if len(runs) > 1 {
		out.params += fmt.Sprintf(" runs=%d(median)", len(runs))
	}
	for k, m := range first.metrics {
		values := make([]float64, 0, len(runs))
		for _, r := range runs {
			values = append(values, r[i].metrics[k].value)
		}
		m.value = median(values)
		out.metrics = append(out.metrics, m)
	}
	return out
}

func median(values []float64) float64 {
	s := slices.Clone(values)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Formats of figures.
func count(v float64) string     { return fmt.Sprintf("%.0f", v) }
func ratio(v float64) string     { return fmt.Sprintf("%.2f", v) }
func kibibytes(v float64) string { return fmt.Sprintf("%.1fKiB", v/1024) }
func millis(v float64) string {
	return fmt.Sprintf("%.2fms", v/float64(time.Millisecond))
}
func perConn(v float64) string { return fmt.Sprintf("%.2f", v) }

// percentile returns the p-th percentile (0-100) of sorted values, by the
// nearest-rank method.
func percentile(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	rank = min(max(rank, 0), len(sorted)-1)
	return float64(sorted[rank])
}
