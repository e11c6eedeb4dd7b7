package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"sync"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/sqlitestore"
)

// report gathers the jobs of every client and compares them with the
// store.
type report struct {
	mu    sync.Mutex
	jobs  []*jobResult
	conns int

	statuses   map[entrance.Status]int
	lines      int64 // lines stored
	received   int64 // line receipts
	lost       int64 // stored lines never received
	duplicated int64 // receipts beyond the first of a line
	mismatched int64 // lines received with other text or number than stored
	seams      int64 // pushes that did not start at the line due
	unfinished int64 // jobs not followed to their end, or not ended
	restarts   int64
}

func (r *report) add(jobs []*jobResult, conns int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs = append(r.jobs, jobs...)
	r.conns += conns
}

// check compares what the clients received with the store.
func (r *report) check(ctx context.Context, dir string) error {
	store, err := sqlitestore.Open(ctx, filepath.Join(dir, "entrance.db"), nil)
	if err != nil {
		return err
	}
	defer store.Close()
	r.statuses = map[entrance.Status]int{}
	for _, job := range r.jobs {
		rec, err := store.Job(ctx, job.taskID)
		if err != nil {
			return err
		}
		lines, err := store.ReadLog(ctx, job.taskID, 1, -1)
		if err != nil {
			return err
		}
		r.compare(job, rec, lines)
	}
	return nil
}

func (r *report) compare(job *jobResult, rec *entrance.JobRecord, lines []entrance.LogLine) {
	r.statuses[rec.Status]++
	if job.err != nil || !rec.Status.Terminal() || job.final == "" {
		r.unfinished++
	}
	r.lines += int64(len(lines))
	r.seams += int64(job.seams)
	for _, l := range lines {
		n := job.received[l.Number]
		r.received += int64(n)
		switch {
		case n == 0:
			r.lost++
		case job.texts[l.Number] != l.Text:
			r.mismatched++
		}
		if n > 1 {
			r.duplicated += int64(n - 1)
		}
	}
	for number, n := range job.received {
		if number < 1 || number > int64(len(lines)) {
			r.mismatched += int64(n)
		}
	}
}

func (r *report) print(out io.Writer) {
	var names []string
	for s := range r.statuses {
		names = append(names, string(s))
	}
	sort.Strings(names)
	fmt.Fprintf(out, "jobs:        %d (", len(r.jobs))
	for i, name := range names {
		if i > 0 {
			fmt.Fprint(out, ", ")
		}
		fmt.Fprintf(out, "%s %d", name, r.statuses[entrance.Status(name)])
	}
	fmt.Fprintln(out, ")")
	fmt.Fprintf(out, "connections: %d\n", r.conns)
	fmt.Fprintf(out, "restarts:    %d\n", r.restarts)
	fmt.Fprintf(out, "lines:       %d stored, %d received\n", r.lines, r.received)
	fmt.Fprintf(out, "lost:        %d\n", r.lost)
	fmt.Fprintf(out, "duplicated:  %d\n", r.duplicated)
	fmt.Fprintf(out, "mismatched:  %d\n", r.mismatched)
	fmt.Fprintf(out, "bad seams:   %d\n", r.seams)
	fmt.Fprintf(out, "unfinished:  %d\n", r.unfinished)
}
