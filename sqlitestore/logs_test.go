package sqlitestore_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/goentrance/entrance"
)

// logLines returns the lines numbered from first to last, with a level
// that cycles through the three levels.
func logLines(first, last int64) []entrance.LogLine {
	var lines []entrance.LogLine
	for n := first; n <= last; n++ {
		lines = append(lines, entrance.LogLine{
			Number: n,
			Level:  entrance.Level(n % 3),
			Text:   fmt.Sprintf("line %d", n),
		})
	}
	return lines
}

func TestReadLog(t *testing.T) {
	s := openStore(t, dbPath(t))
	id := createJob(t, s, newJob("alice"))
	for _, batch := range [][]entrance.LogLine{logLines(1, 4), logLines(5, 10)} {
		if err := s.AppendLog(t.Context(), id, batch); err != nil {
			t.Fatalf("AppendLog: %v", err)
		}
	}

	cases := []struct {
		name  string
		from  int64
		limit int
		want  []entrance.LogLine
	}{
		{"all", 1, -1, logLines(1, 10)},
		{"middle", 3, 4, logLines(3, 6)},
		{"from 0 means 1", 0, 2, logLines(1, 2)},
		{"limit past the end", 9, 100, logLines(9, 10)},
		{"rest from 5", 5, -1, logLines(5, 10)},
		{"last line", 10, 1, logLines(10, 10)},
		{"from past the end", 11, -1, nil},
		{"zero limit", 1, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ReadLog(t.Context(), id, tc.from, tc.limit)
			if err != nil {
				t.Fatalf("ReadLog(%d, %d): %v", tc.from, tc.limit, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ReadLog(%d, %d) = %v; want %v", tc.from, tc.limit, got, tc.want)
			}
		})
	}

	rec, err := s.Job(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.LogLines != 10 {
		t.Errorf("LogLines = %d; want 10", rec.LogLines)
	}
}

func TestAppendLogRejectsNumbering(t *testing.T) {
	s := openStore(t, dbPath(t))
	id := createJob(t, s, newJob("alice"))
	if err := s.AppendLog(t.Context(), id, logLines(1, 3)); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		lines []entrance.LogLine
	}{
		{"gap after stored lines", logLines(5, 6)},
		{"repeat of stored lines", logLines(3, 4)},
		{"gap inside the batch", append(logLines(4, 4), logLines(6, 6)...)},
		{"out of order", append(logLines(5, 5), logLines(4, 4)...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.AppendLog(t.Context(), id, tc.lines)
			if err == nil {
				t.Fatal("AppendLog succeeded; want an error")
			}
			if errors.Is(err, entrance.ErrNotFound) {
				t.Errorf("AppendLog: %v; want an error other than ErrNotFound", err)
			}
		})
	}

	got, err := s.ReadLog(t.Context(), id, 1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, logLines(1, 3)) {
		t.Errorf("stored lines after rejected appends = %v; want lines 1 to 3", got)
	}
	rec, err := s.Job(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.LogLines != 3 {
		t.Errorf("LogLines = %d; want 3", rec.LogLines)
	}
}

func TestAppendLogLargeBatches(t *testing.T) {
	s := openStore(t, dbPath(t))
	id := createJob(t, s, newJob("alice"))
	const batches, size = 5, 1000
	for b := range int64(batches) {
		if err := s.AppendLog(t.Context(), id, logLines(b*size+1, (b+1)*size)); err != nil {
			t.Fatal(err)
		}
	}

	got, err := s.ReadLog(t.Context(), id, 2500, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, logLines(2500, 2502)) {
		t.Errorf("ReadLog(2500, 3) = %v; want lines 2500 to 2502", got)
	}
	rec, err := s.Job(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.LogLines != batches*size {
		t.Errorf("LogLines = %d; want %d", rec.LogLines, batches*size)
	}
}

func TestReadLogRejectsDamagedPayload(t *testing.T) {
	cases := []struct {
		name    string
		payload string // SQL blob literal
	}{
		{"empty", `x''`},
		{"fewer lines than the key says", `x'000161000162'`},
		{"text longer than the payload", `x'0005616263'`},
		{"unterminated length", `x'0080'`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := dbPath(t)
			s := openStore(t, path)
			id := createJob(t, s, newJob("alice"))
			if err := s.AppendLog(t.Context(), id, logLines(1, 3)); err != nil {
				t.Fatal(err)
			}
			_, err := openRaw(t, path).Exec(
				`UPDATE log_batches SET payload = `+tc.payload+` WHERE task_id = ?`, id)
			if err != nil {
				t.Fatal(err)
			}

			got, err := s.ReadLog(t.Context(), id, 1, -1)
			if err == nil {
				t.Fatalf("ReadLog = %v; want an error", got)
			}
		})
	}
}
