package sqlite_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goentrance/entrance/engines/sqlite"
)

func TestRunSplitsStatements(t *testing.T) {
	cases := []struct {
		name       string
		script     string
		statements int
		results    [][][]string // rows of each result set
	}{
		{
			name: "semicolons in literal, comment and trigger",
			script: `CREATE TABLE t(a TEXT);
-- a comment; with a semicolon
/* a block comment; with a semicolon */
CREATE TRIGGER tr AFTER INSERT ON t WHEN new.a = 'x' BEGIN
  INSERT INTO t VALUES ('from; trigger');
  UPDATE t SET a = a || ';' WHERE a = 'y';
END;
INSERT INTO t VALUES ('a;b'), ('it''s; here');
INSERT INTO t VALUES ('x');
SELECT a FROM t ORDER BY rowid;`,
			statements: 5,
			results:    [][][]string{{{"a;b"}, {"it's; here"}, {"x"}, {"from; trigger"}}},
		},
		{
			name:       "no final semicolon",
			script:     "SELECT 1;\nSELECT 2",
			statements: 2,
			results:    [][][]string{{{"1"}}, {{"2"}}},
		},
		{
			name:       "empty statements and comments only between",
			script:     ";; SELECT 1;;; /* nothing */ ; -- end\n SELECT 2; -- trailing",
			statements: 2,
			results:    [][][]string{{{"1"}}, {{"2"}}},
		},
		{
			name:       "quoted identifiers with semicolons",
			script:     `CREATE TABLE "a;b"([c;d] INT, ` + "`e;f`" + ` INT); SELECT * FROM "a;b"`,
			statements: 2,
			results:    [][][]string{{}},
		},
		{
			name:       "only comments",
			script:     "-- nothing here; really\n/* nor; here */",
			statements: 0,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, sqlite.Options{})
			rec := mustRun(t, e, c.script)

			if got := rec.statementLogs(); len(got) != c.statements {
				t.Errorf("ran %d statements, want %d:\n%s", len(got), c.statements, strings.Join(got, "\n"))
			}
			sets := rec.resultSets()
			if len(sets) != len(c.results) {
				t.Fatalf("got %d result sets, want %d", len(sets), len(c.results))
			}
			for i, want := range c.results {
				if got := sets[i].texts(); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("result set %d = %q, want %q", i, got, want)
				}
			}
		})
	}
}

// TestRunSplitsLongScripts covers scripts longer than the part of the
// script the engine hands to SQLite at first, with statements that cross
// its end and a statement longer than it.
func TestRunSplitsLongScripts(t *testing.T) {
	long := strings.Repeat("a;b ", 10000) // 40 kB with semicolons
	var b strings.Builder
	b.WriteString("CREATE TABLE t(n INTEGER, s TEXT);\n")
	for i := range 500 {
		fmt.Fprintf(&b, "INSERT INTO t VALUES (%d, 'value; number %d'); -- comment; %d\n", i, i, i)
	}
	b.WriteString("CREATE TRIGGER tr AFTER DELETE ON t BEGIN\n")
	for range 300 {
		b.WriteString("  INSERT INTO t VALUES (-1, 'deleted;');\n")
	}
	b.WriteString("END;\n")
	fmt.Fprintf(&b, "INSERT INTO t VALUES (500, '%s');\n", long)
	b.WriteString("DELETE FROM t WHERE n = 0;\n")
	b.WriteString("SELECT count(*), sum(n), max(length(s)) FROM t")

	e := newEngine(t, sqlite.Options{})
	rec := mustRun(t, e, b.String())

	if got := len(rec.statementLogs()); got != 505 {
		t.Errorf("ran %d statements, want 505", got)
	}
	sets := rec.resultSets()
	if len(sets) != 1 {
		t.Fatalf("got %d result sets, want 1", len(sets))
	}
	// Rows 1..500 remain, plus 300 rows of -1 from the trigger.
	want := fmt.Sprintf("[[%d %d %d]]", 500+300, 500*501/2-300, len(long))
	if got := fmt.Sprint(sets[0].texts()); got != want {
		t.Errorf("count, sum, length = %s, want %s", got, want)
	}
}

func TestRunShowTables(t *testing.T) {
	const schema = `CREATE TABLE zebra(a); CREATE TABLE apple(b); CREATE VIEW mango AS SELECT 1;
CREATE TABLE seq(id INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO seq DEFAULT VALUES`
	// sqlite_sequence, which AUTOINCREMENT creates, is left out.
	const tables = "[[apple] [mango] [seq] [zebra]]"
	cases := []struct {
		name    string
		script  string
		results []string // rows of each result set
	}{
		{"alone", "show tables", []string{tables}},
		{"semicolon", "show tables;", []string{tables}},
		{"upper case", "SHOW TABLES;", []string{tables}},
		{"mixed case and spacing", "  Show \t Tables  -- list them\n", []string{tables}},
		{"between SQL", "SELECT 1; show tables; SELECT 2", []string{"[[1]]", tables, "[[2]]"}},
		{"ended by newline", "/* first */ show tables\nSELECT 3", []string{tables, "[[3]]"}},
		{"after a new table", "CREATE TABLE banana(c);\nshow tables",
			[]string{"[[apple] [banana] [mango] [seq] [zebra]]"}},
		{"twice", "show tables; show tables", []string{tables, tables}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, sqlite.Options{})
			mustRun(t, e, schema)
			rec := mustRun(t, e, c.script)

			sets := rec.resultSets()
			if len(sets) != len(c.results) {
				t.Fatalf("got %d result sets, want %d", len(sets), len(c.results))
			}
			for i, want := range c.results {
				if got := fmt.Sprint(sets[i].texts()); got != want {
					t.Errorf("result set %d = %s, want %s", i, got, want)
				}
			}
		})
	}
}

func TestRunShowTablesColumn(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	rec := mustRun(t, e, "show tables")

	sets := rec.resultSets()
	if len(sets) != 1 {
		t.Fatalf("got %d result sets, want 1", len(sets))
	}
	if cols := sets[0].meta.Columns; len(cols) != 1 || cols[0].Name != "name" {
		t.Errorf("columns = %v, want one named name", cols)
	}
	if rows := sets[0].texts(); len(rows) != 0 {
		t.Errorf("rows of an empty database = %v, want none", rows)
	}
	if lines := rec.statementLogs(); len(lines) != 1 || lines[0] != "statement 1: show tables" {
		t.Errorf("statement lines = %q, want [statement 1: show tables]", lines)
	}
}

func TestRunShowTablesLookalikes(t *testing.T) {
	cases := []struct {
		name, script string
	}{
		{"extra word", "show tables in db"},
		{"joined words", "showtables"},
		{"longer word", "show tablesx"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, sqlite.Options{})
			je := jobError(t, e, c.script)
			if !strings.Contains(je.Desc, "syntax error") {
				t.Errorf("Desc = %q, want SQLite's syntax error", je.Desc)
			}
		})
	}
}

// FuzzSplitStatements runs arbitrary scripts on a throwaway database and
// checks that Run returns, without a panic, and reports progress that
// never goes down and stays within [0, 1].
func FuzzSplitStatements(f *testing.F) {
	seeds := []string{
		"SELECT 1; SELECT 2",
		"show tables; SELECT 'a;b' -- c;\n",
		"CREATE TABLE t(a); CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END; INSERT INTO t VALUES (1)",
		"/* unterminated ; comment",
		"SELECT 'unterminated ; string",
		"SELECT [a;b",
		";;;",
		"EXPLAIN QUERY PLAN SELECT 1; PRAGMA table_info(t)",
		"PRAGMA user_version = ''; ATTACH 'x' AS y; SELECT load_extension('z')",
		"SHOW\tTABLES\r\nSELECT x'00'",
		"SELECT '\xff\xfe'; SELECT \"é;\"",
	}
	for _, s := range seeds {
		f.Add(s)
	}

	e := newEngine(f, sqlite.Options{QueryTimeout: 100 * time.Millisecond, MaxRows: 100})
	f.Fuzz(func(t *testing.T, script string) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()

		start := time.Now()
		rec, _ := runScript(ctx, e, script)
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Fatalf("Run took %v", elapsed)
		}
		last := 0.0
		for _, p := range rec.progress {
			if !(p.fraction >= last && p.fraction <= 1) {
				t.Fatalf("progress %v after %v", p.fraction, last)
			}
			last = p.fraction
		}
	})
}
