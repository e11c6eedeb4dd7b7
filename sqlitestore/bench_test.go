package sqlitestore_test

import (
	"runtime"
	"testing"

	"github.com/goentrance/entrance"
)

// BenchmarkCreateJob creates jobs from at least 10 goroutines, so that the
// writer commits them in groups.
func BenchmarkCreateJob(b *testing.B) {
	s := openStore(b, dbPath(b))
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((10 + procs - 1) / procs) // RunParallel starts this many per P
	b.ReportAllocs()
	b.ResetTimer()

	b.RunParallel(func(pb *testing.PB) {
		rec := newJob("alice")
		for pb.Next() {
			if _, err := s.CreateJob(b.Context(), rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAppendLog appends batches of 100 lines of 60 bytes to one job
// from one goroutine; each batch waits for its own commit.
func BenchmarkAppendLog(b *testing.B) {
	s := openStore(b, dbPath(b))
	id := createJob(b, s, newJob("alice"))
	const size = 100
	batch := make([]entrance.LogLine, size)
	for i := range batch {
		batch[i].Text = "2024-01-01 00:00:00 INFO a line of output from the engine ."
	}
	b.ReportAllocs()
	b.ResetTimer()

	next := int64(1)
	for b.Loop() {
		for i := range batch {
			batch[i].Number = next
			next++
		}
		if err := s.AppendLog(b.Context(), id, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkReadRowsPage reads a page of 5,000 rows of three columns from a
// result set of 100,000 rows, at the start and near the end.
func BenchmarkReadRowsPage(b *testing.B) {
	s := openStore(b, dbPath(b))
	id := createJob(b, s, newJob("alice"))
	index, err := s.CreateResultSet(b.Context(), id,
		entrance.ResultMeta{Kind: entrance.ResultTable, Columns: testColumns})
	if err != nil {
		b.Fatal(err)
	}
	appendTable(b, s, id, index, 100_000, 10_000)

	for _, page := range []struct {
		name   string
		offset int64
	}{{"page1", 0}, {"page19", 90_000}} {
		b.Run(page.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rows, err := s.ReadRows(b.Context(), id, index, page.offset, 5_000)
				if err != nil || len(rows) != 5_000 {
					b.Fatalf("ReadRows: %d rows, %v", len(rows), err)
				}
			}
		})
	}
}

// BenchmarkReadLog reads 1,000 lines from a log of 100,000 lines stored in
// batches of 100, at the start and near the end, and the last 10 lines, as
// a watcher that catches up does.
func BenchmarkReadLog(b *testing.B) {
	s := openStore(b, dbPath(b))
	id := createJob(b, s, newJob("alice"))
	const total, size = 100_000, 100
	for first := int64(1); first <= total; first += size {
		if err := s.AppendLog(b.Context(), id, logLines(first, first+size-1)); err != nil {
			b.Fatal(err)
		}
	}

	for _, read := range []struct {
		name  string
		from  int64
		limit int
	}{{"first1000", 1, 1000}, {"near_end1000", 98_951, 1000}, {"last10", total - 9, 10}} {
		b.Run(read.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				lines, err := s.ReadLog(b.Context(), id, read.from, read.limit)
				if err != nil || len(lines) != read.limit {
					b.Fatalf("ReadLog: %d lines, %v", len(lines), err)
				}
			}
		})
	}
}
