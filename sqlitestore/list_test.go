package sqlitestore_test

import (
	"slices"
	"testing"
	"time"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/sqlitestore"
)

// createHundredJobs stores 100 jobs and returns them with their taskIDs.
// Job i (from 0) belongs to alice when i is even and to bob otherwise. It
// runs the sql engine when i is a multiple of 3, and the shell engine
// otherwise. It succeeded when i is a multiple of 4. It was created i
// minutes after a fixed time.
func createHundredJobs(t *testing.T, s *sqlitestore.Store) []*entrance.JobRecord {
	t.Helper()
	base := ms(1_700_000_000_000)
	jobs := make([]*entrance.JobRecord, 100)
	for i := range jobs {
		rec := newJob("bob")
		if i%2 == 0 {
			rec.User = "alice"
		}
		if i%3 == 0 {
			rec.Engine = "sql"
		}
		if i%4 == 0 {
			rec.Status = entrance.StatusSucceed
		}
		rec.Created = base.Add(time.Duration(i) * time.Minute)
		rec.TaskID = createJob(t, s, rec)
		jobs[i] = rec
	}
	return jobs
}

func TestListJobs(t *testing.T) {
	s := openStore(t, dbPath(t))
	jobs := createHundredJobs(t, s)
	from, to := jobs[10].Created, jobs[19].Created

	cases := []struct {
		name   string
		filter entrance.JobFilter
		match  func(*entrance.JobRecord) bool
	}{
		{"all", entrance.JobFilter{}, func(*entrance.JobRecord) bool { return true }},
		{"first page", entrance.JobFilter{Limit: 10},
			func(*entrance.JobRecord) bool { return true }},
		{"last partial page", entrance.JobFilter{Offset: 90, Limit: 20},
			func(*entrance.JobRecord) bool { return true }},
		{"offset past the end", entrance.JobFilter{Offset: 200, Limit: 10},
			func(*entrance.JobRecord) bool { return true }},
		{"user", entrance.JobFilter{User: "alice"},
			func(r *entrance.JobRecord) bool { return r.User == "alice" }},
		{"user page 3", entrance.JobFilter{User: "alice", Offset: 40, Limit: 20},
			func(r *entrance.JobRecord) bool { return r.User == "alice" }},
		{"unknown user", entrance.JobFilter{User: "carol"},
			func(r *entrance.JobRecord) bool { return false }},
		{"status", entrance.JobFilter{Status: entrance.StatusSucceed},
			func(r *entrance.JobRecord) bool { return r.Status == entrance.StatusSucceed }},
		{"engine", entrance.JobFilter{Engine: "sql"},
			func(r *entrance.JobRecord) bool { return r.Engine == "sql" }},
		{"time range inclusive", entrance.JobFilter{From: from, To: to},
			func(r *entrance.JobRecord) bool { return !r.Created.Before(from) && !r.Created.After(to) }},
		{"from only", entrance.JobFilter{From: jobs[95].Created},
			func(r *entrance.JobRecord) bool { return !r.Created.Before(jobs[95].Created) }},
		{"to only", entrance.JobFilter{To: jobs[4].Created},
			func(r *entrance.JobRecord) bool { return !r.Created.After(jobs[4].Created) }},
		{"every filter", entrance.JobFilter{User: "alice", Engine: "sql",
			Status: entrance.StatusSucceed, From: from, To: jobs[60].Created, Limit: 2},
			func(r *entrance.JobRecord) bool {
				return r.User == "alice" && r.Engine == "sql" &&
					r.Status == entrance.StatusSucceed &&
					!r.Created.Before(from) && !r.Created.After(jobs[60].Created)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantIDs, wantTotal := expectedPage(jobs, tc.filter, tc.match)
			got, total, err := s.ListJobs(t.Context(), tc.filter)
			if err != nil {
				t.Fatalf("ListJobs: %v", err)
			}
			if total != wantTotal {
				t.Errorf("total = %d; want %d", total, wantTotal)
			}
			var gotIDs []int64
			for _, rec := range got {
				gotIDs = append(gotIDs, rec.TaskID)
			}
			if !slices.Equal(gotIDs, wantIDs) {
				t.Errorf("taskIDs = %v; want %v", gotIDs, wantIDs)
			}
		})
	}
}

// expectedPage computes the taskIDs and total that ListJobs should return.
func expectedPage(jobs []*entrance.JobRecord, f entrance.JobFilter,
	match func(*entrance.JobRecord) bool) ([]int64, int64) {
	var ids []int64
	for _, rec := range slices.Backward(jobs) {
		if match(rec) {
			ids = append(ids, rec.TaskID)
		}
	}
	total := int64(len(ids))
	ids = ids[min(f.Offset, total):]
	if f.Limit > 0 {
		ids = ids[:min(f.Limit, int64(len(ids)))]
	}
	if len(ids) == 0 {
		ids = nil
	}
	return ids, total
}

func TestListJobsRecordFields(t *testing.T) {
	s := openStore(t, dbPath(t))
	rec := newJob("alice")
	id := createJob(t, s, rec)
	if err := s.AppendLog(t.Context(), id, []entrance.LogLine{{Number: 1, Text: "x"}}); err != nil {
		t.Fatal(err)
	}

	got, _, err := s.ListJobs(t.Context(), entrance.JobFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Job(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Code != want.Code || got[0].LogLines != 1 {
		t.Errorf("ListJobs = %+v; want [%+v]", got, want)
	}
}

func TestListJobsRejectsNegative(t *testing.T) {
	s := openStore(t, dbPath(t))
	cases := []struct {
		name   string
		filter entrance.JobFilter
	}{
		{"offset", entrance.JobFilter{Offset: -1}},
		{"limit", entrance.JobFilter{Limit: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := s.ListJobs(t.Context(), tc.filter); err == nil {
				t.Error("ListJobs succeeded; want an error")
			}
		})
	}
}

func TestUnfinishedJobs(t *testing.T) {
	s := openStore(t, dbPath(t))
	statuses := []entrance.Status{
		entrance.StatusInited, entrance.StatusSucceed, entrance.StatusWaitForRetry,
		entrance.StatusFailed, entrance.StatusScheduled, entrance.StatusCancelled,
		entrance.StatusRunning, entrance.StatusTimeout,
	}
	var want []int64
	for _, status := range statuses {
		id := createJob(t, s, newJob("alice"))
		if status != entrance.StatusInited {
			err := s.UpdateStatus(t.Context(), id, entrance.StatusUpdate{Status: status})
			if err != nil {
				t.Fatal(err)
			}
		}
		if !status.Terminal() {
			want = append(want, id)
		}
	}

	got, err := s.UnfinishedJobs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []int64
	for _, rec := range got {
		gotIDs = append(gotIDs, rec.TaskID)
		if rec.Status.Terminal() {
			t.Errorf("job %d has terminal status %s", rec.TaskID, rec.Status)
		}
	}
	if !slices.Equal(gotIDs, want) {
		t.Errorf("UnfinishedJobs taskIDs = %v; want %v, oldest first", gotIDs, want)
	}
}
