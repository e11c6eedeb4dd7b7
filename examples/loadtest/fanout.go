package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/goentrance/entrance"
)

// captureLimit bounds the bytes of log pushes kept for the baseline.
const captureLimit = 1 << 30

// watchSlack is how long watchers may take, after the engine stops, to
// receive the rest of the job.
const watchSlack = 60 * time.Second

// runFanout measures the entrance delivering a flooding job to n watchers,
// then the baseline delivering the same frames to n clients.
func runFanout(ctx context.Context, cfg *config, n int) ([]result, error) {
	ours, frames, err := fanoutEntrance(ctx, cfg, n)
	if err != nil {
		return nil, err
	}
	base, err := fanoutBaseline(ctx, cfg, n, frames)
	if err != nil {
		return nil, err
	}
	if cfg.verbose {
		fmt.Fprintf(os.Stderr, "fanout watchers=%d entrance: %v\n", n, ours)
		fmt.Fprintf(os.Stderr, "fanout watchers=%d baseline: %v\n", n, base)
	}
	oursRate := ours.perSecond(ours.frames)
	baseRate := base.perSecond(base.frames)
	params := fmt.Sprintf("watchers=%d", n)
	return []result{
		{scenario: "fanout", params: params, metrics: []metric{
			{"frames/s", oursRate, count},
			{"lines/s", ours.perSecond(ours.lines), count},
			{"bytes/frame", float64(ours.bytes) / float64(max(ours.frames, 1)), count},
		}},
		{scenario: "fanout-base", params: params, metrics: []metric{
			{"frames/s", baseRate, count},
			{"bytes/frame", float64(base.bytes) / float64(max(base.frames, 1)), count},
			{"ratio", oursRate / baseRate, ratio},
		}},
	}, nil
}

// fanoutEntrance runs the flood job with n watchers and returns what they
// received and the frames the first watcher kept.
func fanoutEntrance(ctx context.Context, cfg *config, n int) (totals, *capture, error) {
	engine := &floodEngine{start: make(chan struct{}), duration: cfg.duration}
	srv, err := startEntrance(ctx, cfg, map[string]entrance.Engine{"flood": engine})
	if err != nil {
		return totals{}, nil, err
	}
	defer srv.close()

	execID, err := srv.submit(ctx, "flood", "flood")
	if err != nil {
		return totals{}, nil, err
	}
	conns, err := dialAll(ctx, srv.wsURL(), n)
	if err != nil {
		return totals{}, nil, err
	}
	defer closeAll(conns)
	engine.gate = newGate(cfg.window, n)
	watchers := newWatchers(conns, true, engine.gate)
	if err := subscribeAll(ctx, watchers, execID); err != nil {
		return totals{}, nil, err
	}
	watchers[0].capture = &capture{limit: captureLimit, execID: execID}
	srv.fanout.gate.Store(engine.gate)

	t0, err := watchAll(ctx, watchers, execID, cfg.duration+watchSlack, func() { close(engine.start) })
	if err != nil {
		return totals{}, nil, err
	}
	if perr := srv.fanout.err.Load(); perr != nil {
		return totals{}, nil, *perr
	}
	if err := checkLines(watchers, engine.emitted.Load()); err != nil {
		return totals{}, nil, err
	}
	return sum(watchers, t0), watchers[0].capture, nil
}

// fanoutBaseline sends the captured frames, in order, to n clients of the
// baseline server with the same window, then the captured terminal status
// push: the same bytes the entrance's watchers received.
func fanoutBaseline(ctx context.Context, cfg *config, n int, frames *capture) (totals, error) {
	if err := frames.check(); err != nil {
		return totals{}, err
	}

	b, err := startBaseline()
	if err != nil {
		return totals{}, err
	}
	defer b.close()
	conns, err := dialAll(ctx, b.wsURL(), n)
	if err != nil {
		return totals{}, err
	}
	defer closeAll(conns)
	serverConns, err := b.waitConns(ctx, n)
	if err != nil {
		return totals{}, err
	}

	g := newGate(cfg.window, n)
	watchers := newWatchers(conns, false, g)
	replay := func(ctx context.Context) error { return b.replay(ctx, serverConns, frames, g) }
	t0, err := b.serveWatchers(ctx, watchers, frames.execID, cfg.duration+watchSlack, replay)
	if err != nil {
		return totals{}, fmt.Errorf("baseline: %w", err)
	}
	return sum(watchers, t0), nil
}

// serveWatchers runs the watchers while publish sends them frames, and
// returns when the watchers have seen the final push or either side fails.
func (b *baselineServer) serveWatchers(ctx context.Context, watchers []*watcher, execID string,
	limit time.Duration, publish func(context.Context) error) (time.Time, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	publishErr := make(chan error, 1)
	start := func() {
		go func() {
			err := publish(ctx)
			if err != nil {
				cancel() // stops the watchers, which would wait for the final push
			}
			publishErr <- err
		}()
	}

	t0, err := watchAll(ctx, watchers, execID, limit, start)
	cancel()
	if perr := <-publishErr; perr != nil && !errors.Is(perr, context.Canceled) {
		return t0, perr
	}
	return t0, err
}

// replay publishes the captured frames and then the final one.
func (b *baselineServer) replay(ctx context.Context, conns []*baselineConn, frames *capture,
	g *gate) error {
	for _, frame := range frames.frames {
		if err := g.wait(ctx); err != nil {
			return err
		}
		if err := g.publish(); err != nil {
			return err
		}
		if err := b.publish(conns, frame); err != nil {
			return err
		}
	}
	return b.publish(conns, frames.final)
}
