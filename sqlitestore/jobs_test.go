package sqlitestore_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/goentrance/entrance"
)

// ms returns the UTC time at the given milliseconds since the epoch, the
// precision the store keeps.
func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func TestJobRoundTrip(t *testing.T) {
	s := openStore(t, dbPath(t))
	full := &entrance.JobRecord{
		TaskID:   777, // ignored
		Instance: "127.0.0.1:9001",
		User:     "alice",
		Creator:  "IDE",
		Engine:   "sql",
		RunType:  "sql",
		Code:     "SELECT ${n}",
		Params: entrance.Params{
			Variable: map[string]string{"n": "1", "run_date": "20240101"},
			Configuration: entrance.Configuration{
				Startup: map[string]any{"memory": "2g"},
				Runtime: map[string]any{"timeout": 30.0, "strict": true},
				Special: map[string]any{"nested": map[string]any{"k": []any{"a", nil}}},
			},
		},
		Source:       json.RawMessage(`{"scriptPath":"/tmp/a.sql"}`),
		Tag:          "tag-1",
		Status:       entrance.StatusFailed,
		ErrCode:      21101,
		ErrDesc:      "engine failed",
		Progress:     0.25,
		ProgressInfo: []entrance.ProgressInfo{{ID: "job-1", SucceedTasks: 2, TotalTasks: 10}},
		Created:      ms(1_700_000_000_001),
		Updated:      ms(1_700_000_000_002),
		Started:      ms(1_700_000_000_003),
		Ended:        ms(1_700_000_000_004),
		LogLines:     9, // ignored: no line is stored
		Process:      4242,
	}
	bare := &entrance.JobRecord{User: "bob", Created: ms(1_700_000_000_000)}

	cases := []struct {
		name string
		rec  *entrance.JobRecord
		want func(id int64) entrance.JobRecord
	}{
		{"every field", full, func(id int64) entrance.JobRecord {
			want := *full
			want.TaskID, want.LogLines = id, 0
			return want
		}},
		{"defaults", bare, func(id int64) entrance.JobRecord {
			return entrance.JobRecord{TaskID: id, User: "bob", Status: entrance.StatusInited,
				Created: bare.Created, Updated: bare.Created}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := createJob(t, s, tc.rec)
			got, err := s.Job(t.Context(), id)
			if err != nil {
				t.Fatalf("Job(%d): %v", id, err)
			}
			if want := tc.want(id); !reflect.DeepEqual(*got, want) {
				t.Errorf("Job(%d) =\n%+v\nwant\n%+v", id, *got, want)
			}
		})
	}
}

func TestCreateJobZeroTimes(t *testing.T) {
	s := openStore(t, dbPath(t))
	before := time.Now().Truncate(time.Millisecond)
	id := createJob(t, s, &entrance.JobRecord{User: "alice"})
	after := time.Now()

	got, err := s.Job(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Created.Before(before) || got.Created.After(after) {
		t.Errorf("Created = %v; want between %v and %v", got.Created, before, after)
	}
	if !got.Updated.Equal(got.Created) {
		t.Errorf("Updated = %v; want Created %v", got.Updated, got.Created)
	}
}

func TestCreateJobRejects(t *testing.T) {
	s := openStore(t, dbPath(t))
	cases := []struct {
		name string
		rec  *entrance.JobRecord
	}{
		{"invalid source", &entrance.JobRecord{User: "a", Source: json.RawMessage(`{`)}},
		{"invalid status", &entrance.JobRecord{User: "a", Status: "Paused"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if id, err := s.CreateJob(t.Context(), tc.rec); err == nil {
				t.Errorf("CreateJob returned taskID %d; want an error", id)
			}
		})
	}
}

func TestUpdateStatus(t *testing.T) {
	s := openStore(t, dbPath(t))
	id := createJob(t, s, newJob("alice"))
	created := newJob("alice").Created

	steps := []struct {
		update      entrance.StatusUpdate
		started     time.Time
		ended       time.Time
		wantUpdated time.Time
	}{
		{entrance.StatusUpdate{Status: entrance.StatusScheduled, At: ms(2000)},
			time.Time{}, time.Time{}, ms(2000)},
		{entrance.StatusUpdate{Status: entrance.StatusRunning, At: ms(3000)},
			ms(3000), time.Time{}, ms(3000)},
		{entrance.StatusUpdate{Status: entrance.StatusRunning, At: ms(3500)},
			ms(3000), time.Time{}, ms(3500)},
		{entrance.StatusUpdate{Status: entrance.StatusFailed, ErrCode: 21101,
			ErrDesc: "exit status 1", At: ms(4000)}, ms(3000), ms(4000), ms(4000)},
	}
	for _, step := range steps {
		if err := s.UpdateStatus(t.Context(), id, step.update); err != nil {
			t.Fatalf("UpdateStatus(%s): %v", step.update.Status, err)
		}
		got, err := s.Job(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != step.update.Status {
			t.Errorf("after %s: status %s", step.update.Status, got.Status)
		}
		if !got.Started.Equal(step.started) || !got.Ended.Equal(step.ended) {
			t.Errorf("after %s at %v: started %v, ended %v; want %v, %v", step.update.Status,
				step.update.At, got.Started, got.Ended, step.started, step.ended)
		}
		if !got.Updated.Equal(step.wantUpdated) {
			t.Errorf("after %s: updated %v; want %v", step.update.Status, got.Updated, step.wantUpdated)
		}
		if got.ErrCode != step.update.ErrCode || got.ErrDesc != step.update.ErrDesc {
			t.Errorf("after %s: error %d %q", step.update.Status, got.ErrCode, got.ErrDesc)
		}
	}

	history, err := s.StatusHistory(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := []entrance.StatusUpdate{{Status: entrance.StatusInited, At: created}}
	for _, step := range steps {
		want = append(want, step.update)
	}
	if !slices.Equal(history, want) {
		t.Errorf("StatusHistory =\n%v\nwant\n%v", history, want)
	}
}

func TestUnknownJob(t *testing.T) {
	s := openStore(t, dbPath(t))
	createJob(t, s, newJob("alice"))
	const unknown = 42
	ctx := t.Context()

	calls := []struct {
		name string
		call func() error
	}{
		{"Job", func() error { _, err := s.Job(ctx, unknown); return err }},
		{"UpdateStatus", func() error {
			return s.UpdateStatus(ctx, unknown, entrance.StatusUpdate{Status: entrance.StatusRunning})
		}},
		{"SetProgress", func() error { return s.SetProgress(ctx, unknown, entrance.ProgressUpdate{}) }},
		{"SetProcess", func() error { return s.SetProcess(ctx, unknown, 1) }},
		{"StatusHistory", func() error { _, err := s.StatusHistory(ctx, unknown); return err }},
		{"AppendLog", func() error {
			return s.AppendLog(ctx, unknown, []entrance.LogLine{{Number: 1, Text: "x"}})
		}},
		{"AppendLog empty", func() error { return s.AppendLog(ctx, unknown, nil) }},
		{"ReadLog", func() error { _, err := s.ReadLog(ctx, unknown, 1, -1); return err }},
		{"CreateResultSet", func() error {
			_, err := s.CreateResultSet(ctx, unknown, entrance.ResultMeta{Kind: entrance.ResultText})
			return err
		}},
		{"ResultSets", func() error { _, err := s.ResultSets(ctx, unknown); return err }},
		{"AppendRows", func() error { return s.AppendRows(ctx, unknown, 0, [][]*string{{nil}}) }},
		{"ReadRows", func() error { _, err := s.ReadRows(ctx, unknown, 0, 0, 10); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, entrance.ErrNotFound) {
				t.Errorf("%s(%d): %v; want ErrNotFound", c.name, unknown, err)
			}
		})
	}
}

func TestSetProgressAndProcess(t *testing.T) {
	s := openStore(t, dbPath(t))
	id := createJob(t, s, newJob("alice"))
	info := []entrance.ProgressInfo{{ID: "stage-1", SucceedTasks: 1, FailedTasks: 2,
		RunningTasks: 3, TotalTasks: 6}}

	err := s.SetProgress(t.Context(), id, entrance.ProgressUpdate{Progress: 0.5, Info: info})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetProcess(t.Context(), id, 1234); err != nil {
		t.Fatal(err)
	}
	got, err := s.Job(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Progress != 0.5 || !slices.Equal(got.ProgressInfo, info) || got.Process != 1234 {
		t.Errorf("progress %v %v, process %d; want 0.5 %v, 1234",
			got.Progress, got.ProgressInfo, got.Process, info)
	}

	if err := s.SetProgress(t.Context(), id, entrance.ProgressUpdate{Progress: 0.75}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetProcess(t.Context(), id, 0); err != nil {
		t.Fatal(err)
	}
	got, err = s.Job(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Progress != 0.75 || got.ProgressInfo != nil || got.Process != 0 {
		t.Errorf("after reset: progress %v %v, process %d; want 0.75 [], 0",
			got.Progress, got.ProgressInfo, got.Process)
	}
}
