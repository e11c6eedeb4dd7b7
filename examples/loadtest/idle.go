package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/goentrance/entrance"
)

// childEnv is set, to "<url> <count>", in the environment of the child
// process that holds the idle connections.
const childEnv = "LOADTEST_IDLE_CHILD"

// idleTimeout bounds the dials of the child and the wait for them.
const idleTimeout = 2 * time.Minute

// runIdle measures the memory and goroutines that n idle connections cost
// the entrance, then the baseline server. The clients run in a child
// process, so this process holds only the servers, and the memory they
// gain is read from runtime.MemStats before and after.
func runIdle(ctx context.Context, cfg *config, n int) ([]result, error) {
	srv, err := startEntrance(ctx, cfg, map[string]entrance.Engine{"noop": noopEngine{}})
	if err != nil {
		return nil, err
	}
	ours, err := measureIdle(ctx, srv.wsURL(), n, cfg.memProfile)
	srv.close()
	if err != nil {
		return nil, err
	}

	b, err := startBaseline()
	if err != nil {
		return nil, err
	}
	base, err := measureIdle(ctx, b.wsURL(), n, "")
	b.close()
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}

	params := fmt.Sprintf("conns=%d", n)
	return []result{
		{scenario: "idle", params: params, metrics: ours.metrics()},
		{scenario: "idle-base", params: params,
			metrics: append(base.metrics(), metric{"ratio", ours.bytes() / base.bytes(), ratio})},
	}, nil
}

// idleCost is the server's cost of one idle connection: bytes of heap
// and stack in use, and goroutines.
type idleCost struct {
	heap, stack, goroutines float64
}

func (c idleCost) bytes() float64 { return c.heap + c.stack }

func (c idleCost) metrics() []metric {
	return []metric{
		{"heap+stack/conn", c.bytes(), kibibytes},
		{"heap/conn", c.heap, kibibytes},
		{"stack/conn", c.stack, kibibytes},
		{"goroutines/conn", c.goroutines, perConn},
	}
}

// measureIdle connects n clients from a child process and returns the
// growth of this process per connection once they are all idle.
func measureIdle(ctx context.Context, url string, n int, memProfile string) (idleCost, error) {
	before := settledMemory()

	self, err := os.Executable()
	if err != nil {
		return idleCost{}, fmt.Errorf("find own executable: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, idleTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), childEnv+"="+url+" "+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return idleCost{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return idleCost{}, err
	}
	if err := cmd.Start(); err != nil {
		return idleCost{}, fmt.Errorf("start client process: %w", err)
	}
	defer cmd.Wait()
	defer stdin.Close() // the child closes its connections and exits

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		return idleCost{}, fmt.Errorf("client process did not connect: %q, %v", line, err)
	}
	if err := waitGoroutinesSettle(ctx); err != nil {
		return idleCost{}, err
	}
	after := settledMemory()
	if memProfile != "" {
		if err := writeHeapProfile(memProfile); err != nil {
			return idleCost{}, err
		}
	}
	per := func(a, b int64) float64 { return float64(a-b) / float64(n) }
	return idleCost{
		heap:       per(after.heap, before.heap),
		stack:      per(after.stack, before.stack),
		goroutines: per(after.goroutines, before.goroutines),
	}, nil
}

// memory is the heap and stack in use and the goroutines of this process
// at one moment.
type memory struct {
	heap, stack, goroutines int64
}

// settledMemory collects garbage and returns runtime.MemStats.HeapInuse
// and StackInuse and the number of goroutines.
func settledMemory() memory {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memory{int64(m.HeapInuse), int64(m.StackInuse), int64(runtime.NumGoroutine())}
}

// waitGoroutinesSettle waits until the number of goroutines has not
// changed for half a second: the last accepted connections have then
// started their goroutines.
func waitGoroutinesSettle(ctx context.Context) error {
	last, stable := -1, 0
	for stable < 5 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the server to settle: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if n := runtime.NumGoroutine(); n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
	return nil
}

// runIdleChild is the child process: it opens the connections, reports
// "ready" on stdout, and closes them when its stdin ends. Each client
// reads in the background, so that it responds to the server's pings.
func runIdleChild(spec string) error {
	url, countText, found := strings.Cut(spec, " ")
	n, err := strconv.Atoi(countText)
	if !found || err != nil || n < 1 {
		return fmt.Errorf("invalid %s value %q: want a URL and a count", childEnv, spec)
	}
	if err := raiseOpenFileLimit(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), idleTimeout)
	defer cancel()
	conns, err := dialAll(ctx, url, n)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	for _, ws := range conns {
		ws.CloseRead(context.Background())
	}
	fmt.Println("ready")
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("wait for stdin to end: %w", err)
	}
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create heap profile: %w", err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		return fmt.Errorf("write heap profile: %w", err)
	}
	return nil
}
