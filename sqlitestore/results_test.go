package sqlitestore_test

import (
	"errors"
	"reflect"
	"strconv"
	"testing"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/sqlitestore"
)

var testColumns = []entrance.Column{
	{Name: "id", Type: "int", Comment: "row number"},
	{Name: "name", Type: "string"},
	{Name: "note", Type: "string", Comment: "NULL on every 7th row"},
}

// tableRow returns row n (from 1) of the test table: n, "name-n", and a
// note that is NULL when n is a multiple of 7.
func tableRow(n int) []*string {
	id, name, note := strconv.Itoa(n), "name-"+strconv.Itoa(n), "note"
	if n%7 == 0 {
		return []*string{&id, &name, nil}
	}
	return []*string{&id, &name, &note}
}

// appendTable appends rows 1 to n of the test table in batches.
func appendTable(tb testing.TB, s *sqlitestore.Store, taskID int64, index, n, batch int) {
	tb.Helper()
	for first := 1; first <= n; first += batch {
		rows := make([][]*string, 0, batch)
		for i := first; i < first+batch && i <= n; i++ {
			rows = append(rows, tableRow(i))
		}
		if err := s.AppendRows(tb.Context(), taskID, index, rows); err != nil {
			tb.Fatalf("AppendRows: %v", err)
		}
	}
}

func TestResultRowsPage(t *testing.T) {
	s := openStore(t, dbPath(t))
	id := createJob(t, s, newJob("alice"))
	index, err := s.CreateResultSet(t.Context(), id,
		entrance.ResultMeta{Kind: entrance.ResultTable, Columns: testColumns})
	if err != nil {
		t.Fatal(err)
	}
	if index != 0 {
		t.Fatalf("first result set index = %d; want 0", index)
	}
	const total = 100_000
	appendTable(t, s, id, index, total, 10_000)

	page, err := s.ReadRows(t.Context(), id, index, 10_000, 5_000)
	if err != nil {
		t.Fatalf("ReadRows: %v", err)
	}
	if len(page) != 5_000 {
		t.Fatalf("ReadRows returned %d rows; want 5000", len(page))
	}
	for i, n := range map[int]int{0: 10_001, 2: 10_003, len(page) - 1: 15_000} {
		if !reflect.DeepEqual(page[i], tableRow(n)) {
			t.Errorf("page row %d = %v; want row %d %v", i, stringsOf(page[i]), n,
				stringsOf(tableRow(n)))
		}
	}
	if page[2][2] != nil { // 10003 is a multiple of 7
		t.Errorf("NULL note of row 10003 came back as %q; want nil", *page[2][2])
	}

	sets, err := s.ResultSets(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := []entrance.ResultSetInfo{{Index: 0,
		Meta: entrance.ResultMeta{Kind: entrance.ResultTable, Columns: testColumns}, Rows: total}}
	if !reflect.DeepEqual(sets, want) {
		t.Errorf("ResultSets = %+v; want %+v", sets, want)
	}
}

// stringsOf renders a row for failure messages.
func stringsOf(row []*string) []string {
	out := make([]string, len(row))
	for i, v := range row {
		out[i] = "NULL"
		if v != nil {
			out[i] = strconv.Quote(*v)
		}
	}
	return out
}

func TestReadRowsRanges(t *testing.T) {
	s := openStore(t, dbPath(t))
	id := createJob(t, s, newJob("alice"))
	index, err := s.CreateResultSet(t.Context(), id,
		entrance.ResultMeta{Kind: entrance.ResultTable, Columns: testColumns})
	if err != nil {
		t.Fatal(err)
	}
	appendTable(t, s, id, index, 10, 3)

	cases := []struct {
		name          string
		offset, limit int64
		first, count  int // first row number expected, and the row count
	}{
		{"first page", 0, 4, 1, 4},
		{"all", 0, -1, 1, 10},
		{"rest from offset", 7, -1, 8, 3},
		{"limit past the end", 8, 100, 9, 2},
		{"offset at the end", 10, 5, 0, 0},
		{"zero limit", 0, 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ReadRows(t.Context(), id, index, tc.offset, tc.limit)
			if err != nil {
				t.Fatalf("ReadRows(%d, %d): %v", tc.offset, tc.limit, err)
			}
			var want [][]*string
			for n := tc.first; n < tc.first+tc.count; n++ {
				want = append(want, tableRow(n))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ReadRows(%d, %d) returned %d rows; want rows %d to %d", tc.offset,
					tc.limit, len(got), tc.first, tc.first+tc.count-1)
			}
		})
	}

	if _, err := s.ReadRows(t.Context(), id, index, -1, 5); err == nil {
		t.Error("ReadRows with offset -1 succeeded; want an error")
	}
	if _, err := s.ReadRows(t.Context(), id, index+1, 0, 5); !errors.Is(err, entrance.ErrNotFound) {
		t.Errorf("ReadRows of a missing result set: %v; want ErrNotFound", err)
	}
}

func TestResultSetsOfJob(t *testing.T) {
	s := openStore(t, dbPath(t))
	id := createJob(t, s, newJob("alice"))

	sets, err := s.ResultSets(t.Context(), id)
	if err != nil || len(sets) != 0 {
		t.Fatalf("ResultSets of a job without results = %v, %v; want none, nil", sets, err)
	}

	metas := []entrance.ResultMeta{
		{Kind: entrance.ResultText},
		{Kind: entrance.ResultTable, Columns: testColumns},
		{Kind: entrance.ResultTable, Columns: []entrance.Column{}},
	}
	for want, meta := range metas {
		index, err := s.CreateResultSet(t.Context(), id, meta)
		if err != nil {
			t.Fatal(err)
		}
		if index != want {
			t.Errorf("CreateResultSet index = %d; want %d", index, want)
		}
	}
	text := "hello"
	if err := s.AppendRows(t.Context(), id, 0, [][]*string{{&text}, {nil}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRows(t.Context(), id, 2, [][]*string{{&text, nil, &text}}); err != nil {
		t.Errorf("AppendRows to a table without columns: %v", err)
	}

	sets, err = s.ResultSets(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := []entrance.ResultSetInfo{
		{Index: 0, Meta: metas[0], Rows: 2},
		{Index: 1, Meta: metas[1], Rows: 0},
		{Index: 2, Meta: metas[2], Rows: 1},
	}
	if !reflect.DeepEqual(sets, want) {
		t.Errorf("ResultSets = %+v; want %+v", sets, want)
	}
}

func TestResultRejects(t *testing.T) {
	s := openStore(t, dbPath(t))
	id := createJob(t, s, newJob("alice"))
	index, err := s.CreateResultSet(t.Context(), id,
		entrance.ResultMeta{Kind: entrance.ResultTable, Columns: testColumns})
	if err != nil {
		t.Fatal(err)
	}
	appendTable(t, s, id, index, 2, 2)
	v := "v"

	cases := []struct {
		name string
		call func() error
	}{
		{"invalid kind", func() error {
			_, err := s.CreateResultSet(t.Context(), id, entrance.ResultMeta{Kind: 7})
			return err
		}},
		{"row too short", func() error {
			return s.AppendRows(t.Context(), id, index, [][]*string{tableRow(3), {&v}})
		}},
		{"row too long", func() error {
			return s.AppendRows(t.Context(), id, index, [][]*string{{&v, &v, &v, &v}})
		}},
		{"missing result set", func() error {
			return s.AppendRows(t.Context(), id, index+1, [][]*string{tableRow(1)})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err == nil {
				t.Error("call succeeded; want an error")
			}
		})
	}

	rows, err := s.ReadRows(t.Context(), id, index, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Errorf("result set holds %d rows after rejected appends; want 2", len(rows))
	}
}
