package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/goentrance/entrance"
	"golang.org/x/sync/errgroup"
)

// noopEngine ends every job at once, so that the submit scenario measures
// submissions and not jobs.
type noopEngine struct{}

func (noopEngine) Run(context.Context, *entrance.Job, entrance.Output) error { return nil }

const executeFrame = `{"method":"/api/rest_j/v1/entrance/execute","data":` +
	`{"executeApplicationName":"noop","executionCode":"noop"}}`

var (
	executeReply   = []byte(`{"method":"/api/rest_j/v1/entrance/execute","status":`)
	executeReplyOK = []byte(`{"method":"/api/rest_j/v1/entrance/execute","status":0,`)
)

// runSubmit sends execute requests over n connections for cfg.duration,
// each connection waiting for the reply before it sends the next, and
// counts the replies that carry a taskID: the job is stored by then.
func runSubmit(ctx context.Context, cfg *config, n int) ([]result, error) {
	srv, err := startEntrance(ctx, cfg, map[string]entrance.Engine{"noop": noopEngine{}})
	if err != nil {
		return nil, err
	}
	defer srv.close()
	conns, err := dialAll(ctx, srv.wsURL(), n)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)

	var timedOut atomic.Bool
	timer := time.AfterFunc(cfg.duration+watchSlack, func() {
		timedOut.Store(true)
		closeAll(conns)
	})
	defer timer.Stop()
	stop := context.AfterFunc(ctx, func() { closeAll(conns) })
	defer stop()

	latencies := make([][]int64, n)
	start := time.Now()
	deadline := start.Add(cfg.duration)
	var g errgroup.Group
	for i, ws := range conns {
		g.Go(func() error { return submitLoop(ws, deadline, &latencies[i]) })
	}
	err = g.Wait()
	elapsed := time.Since(start)
	switch {
	case timedOut.Load():
		return nil, fmt.Errorf("replies did not arrive within %v", cfg.duration+watchSlack)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, err
	}
	return []result{submitResult(latencies, elapsed, n)}, nil
}

// submitLoop submits jobs one at a time until deadline and records the
// time from each request to its reply. The pushes of the jobs arrive on
// the same connection and are skipped.
func submitLoop(ws *websocket.Conn, deadline time.Time, latencies *[]int64) error {
	r := frameReader{ws: ws}
	for time.Now().Before(deadline) {
		sent := time.Now()
		if err := request(context.Background(), ws, executeFrame); err != nil {
			return fmt.Errorf("send execute request: %w", err)
		}
		for {
			data, err := r.next()
			if err != nil {
				return fmt.Errorf("read execute reply: %w", err)
			}
			if !bytes.HasPrefix(data, executeReply) {
				continue
			}
			if !bytes.HasPrefix(data, executeReplyOK) {
				return fmt.Errorf("execute rejected: %s", data)
			}
			*latencies = append(*latencies, int64(time.Since(sent)))
			break
		}
	}
	return nil
}

func submitResult(latencies [][]int64, elapsed time.Duration, n int) result {
	var all []int64
	for _, l := range latencies {
		all = append(all, l...)
	}
	slices.Sort(all)
	return result{
		scenario: "submit",
		params:   fmt.Sprintf("conns=%d", n),
		metrics: []metric{
			{"acks/s", float64(len(all)) / elapsed.Seconds(), count},
			{"p50", percentile(all, 50), millis},
			{"p99", percentile(all, 99), millis},
		},
	}
}
