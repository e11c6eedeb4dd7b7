package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/goentrance/entrance"
)

// runLatency measures the time from the engine's Log call to each
// watcher's receipt, for a job that logs cfg.rate lines per second, then
// the same for the baseline server sending frames of the same size at the
// same rate. The lines come far enough apart that each goes out in a push
// of its own.
func runLatency(ctx context.Context, cfg *config, n int) ([]result, error) {
	ours, frames, err := latencyEntrance(ctx, cfg, n)
	if err != nil {
		return nil, err
	}
	base, err := latencyBaseline(ctx, cfg, n, frames)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}

	params := fmt.Sprintf("watchers=%d rate=%d/s", n, cfg.rate)
	return []result{
		{scenario: "latency", params: params, metrics: ours},
		{scenario: "latency-base", params: params, metrics: base},
	}, nil
}

// latencyEntrance runs the paced job with n watchers and returns their
// figures and the first pushes of the first watcher.
func latencyEntrance(ctx context.Context, cfg *config, n int) ([]metric, *capture, error) {
	engine := &floodEngine{
		start:    make(chan struct{}),
		duration: cfg.latencyLength,
		interval: time.Second / time.Duration(cfg.rate),
	}
	srv, err := startEntrance(ctx, cfg, map[string]entrance.Engine{"flood": engine})
	if err != nil {
		return nil, nil, err
	}
	defer srv.close()

	execID, err := srv.submit(ctx, "flood", "paced")
	if err != nil {
		return nil, nil, err
	}
	conns, err := dialAll(ctx, srv.wsURL(), n)
	if err != nil {
		return nil, nil, err
	}
	defer closeAll(conns)
	watchers := newWatchers(conns, true, nil)
	if err := subscribeAll(ctx, watchers, execID); err != nil {
		return nil, nil, err
	}
	startRecording(watchers, cfg)
	watchers[0].capture = &capture{limit: 1 << 20, execID: execID}

	t0, err := watchAll(ctx, watchers, execID, cfg.latencyLength+watchSlack, func() { close(engine.start) })
	if err != nil {
		return nil, nil, err
	}
	if err := checkLines(watchers, engine.emitted.Load()); err != nil {
		return nil, nil, err
	}
	return latencyMetrics(watchers, t0), watchers[0].capture, nil
}

// latencyBaseline sends n clients of the baseline server, at the same
// rate, copies of the entrance's first log push with the emit time
// replaced, then the captured terminal status push.
func latencyBaseline(ctx context.Context, cfg *config, n int, frames *capture) ([]metric, error) {
	if err := frames.check(); err != nil {
		return nil, err
	}
	b, err := startBaseline()
	if err != nil {
		return nil, err
	}
	defer b.close()
	conns, err := dialAll(ctx, b.wsURL(), n)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	serverConns, err := b.waitConns(ctx, n)
	if err != nil {
		return nil, err
	}

	watchers := newWatchers(conns, false, nil)
	startRecording(watchers, cfg)
	pace := func(ctx context.Context) error {
		return b.pace(ctx, serverConns, frames, time.Second/time.Duration(cfg.rate), cfg.latencyLength)
	}
	t0, err := b.serveWatchers(ctx, watchers, frames.execID, cfg.latencyLength+watchSlack, pace)
	if err != nil {
		return nil, err
	}
	return latencyMetrics(watchers, t0), nil
}

// pace publishes a copy of the first captured push every interval for
// duration, each with the time of publishing as its emit time, then the
// final push.
func (b *baselineServer) pace(ctx context.Context, conns []*baselineConn, frames *capture,
	interval, duration time.Duration) error {
	template := frames.frames[0]
	i := bytes.Index(template, []byte(emitPrefix))
	if i < 0 {
		return errors.New("the captured push has no emit time")
	}
	stamp := template[i+len(emitPrefix):]
	stamp = stamp[:len(stamp)-len(bytes.TrimLeft(stamp, "0123456789"))]

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	deadline := time.Now().Add(duration)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
		now := time.Now()
		if !now.Before(deadline) {
			return b.publish(conns, frames.final)
		}
		frame := bytes.ReplaceAll(template, stamp, strconv.AppendInt(nil, now.UnixNano(), 10))
		if err := b.publish(conns, frame); err != nil {
			return err
		}
	}
}

func startRecording(watchers []*watcher, cfg *config) {
	expected := int(cfg.latencyLength.Seconds()*float64(cfg.rate)) + 16
	for _, w := range watchers {
		w.recording = true
		w.latencies = make([]int64, 0, expected)
	}
}

func latencyMetrics(watchers []*watcher, t0 time.Time) []metric {
	var all []int64
	for _, w := range watchers {
		all = append(all, w.latencies...)
	}
	slices.Sort(all)
	t := sum(watchers, t0)
	return []metric{
		{"deliveries/s", t.perSecond(int64(len(all))), count},
		{"lines/frame", float64(len(all)) / float64(max(t.frames, 1)), ratio},
		{"p50", percentile(all, 50), millis},
		{"p99", percentile(all, 99), millis},
		{"max", percentile(all, 100), millis},
	}
}
