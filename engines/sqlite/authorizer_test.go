package sqlite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goentrance/entrance/engines/sqlite"
)

func TestRunDeniesDangerousStatements(t *testing.T) {
	out := filepath.Join(t.TempDir(), "copy.db")
	cases := []struct {
		name   string
		script string
		want   []string // substrings of the error description
	}{
		{"attach file", `ATTACH '/etc/passwd' AS x`,
			[]string{"statement 1: not authorized", `denied ATTACH "/etc/passwd"`}},
		{"attach after other statements", "SELECT 1;\nattach database 'other.db' as o",
			[]string{"statement 2: not authorized", `denied ATTACH "other.db"`}},
		{"attach memory", `ATTACH ':memory:' AS m`, []string{"not authorized", "denied ATTACH"}},
		{"detach", `DETACH main`, []string{"statement 1:"}},
		{"load_extension", `SELECT load_extension('x')`,
			[]string{"not authorized to use function: load_extension", "denied function load_extension"}},
		{"load_extension upper case", `SELECT LOAD_EXTENSION('/tmp/x.so', 'init')`,
			[]string{"not authorized", "denied function load_extension"}},
		{"fts3_tokenizer", `SELECT fts3_tokenizer('simple')`, []string{"not authorized", "fts3_tokenizer"}},
		{"vacuum into", fmt.Sprintf(`VACUUM INTO '%s'`, out), []string{"denied ATTACH", "VACUUM INTO"}},
		{"vacuum", `VACUUM`, []string{"statement 1:", "denied ATTACH"}},
		{"set user_version", `PRAGMA user_version = 7`, []string{"not authorized", "denied PRAGMA user_version"}},
		{"set user_version empty", `PRAGMA user_version = ''`, []string{"not authorized", "denied PRAGMA user_version"}},
		{"set with comment", `PRAGMA main . user_version /* c */ = ''`, []string{"not authorized"}},
		{"set in parentheses", `PRAGMA user_version('')`, []string{"not authorized"}},
		{"set journal_mode", `PRAGMA journal_mode = DELETE`, []string{"not authorized"}},
		{"set journal_mode empty", `PRAGMA journal_mode = ''`, []string{"not authorized"}},
		{"set foreign_keys", `PRAGMA foreign_keys = ON`, []string{"not authorized"}},
		{"writable_schema", `PRAGMA writable_schema = 1`, []string{"not authorized"}},
		{"database_list", `PRAGMA database_list`, []string{"not authorized", "denied PRAGMA database_list"}},
		{"optimize", `PRAGMA optimize`, []string{"not authorized"}},
		{"wal_checkpoint", `PRAGMA wal_checkpoint(TRUNCATE)`, []string{"not authorized"}},
		{"explain pragma", `EXPLAIN PRAGMA user_version = ''`, []string{"not authorized"}},
		{"optimize function", `SELECT * FROM pragma_optimize(1)`, []string{"not authorized"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, sqlite.Options{})
			mustRun(t, e, `CREATE TABLE t(a); PRAGMA user_version`)

			je := jobError(t, e, c.script)
			for _, want := range c.want {
				if !strings.Contains(je.Desc, want) {
					t.Errorf("Desc = %q, want %q in it", je.Desc, want)
				}
			}
		})
	}

	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("VACUUM INTO created %s (Stat: %v)", out, err)
	}
}

func TestRunDeniedPragmaChangesNothing(t *testing.T) {
	e := newEngine(t, sqlite.Options{})
	mustRun(t, e, `CREATE TABLE t(a)`)
	for _, script := range []string{`PRAGMA user_version = 5`, `PRAGMA journal_mode = ''`} {
		jobError(t, e, script)
	}

	rec := mustRun(t, e, `PRAGMA user_version; PRAGMA journal_mode`)
	sets := rec.resultSets()
	if len(sets) != 2 {
		t.Fatalf("got %d result sets, want 2", len(sets))
	}
	if got := fmt.Sprint(sets[0].texts()); got != "[[0]]" {
		t.Errorf("user_version = %s, want [[0]]", got)
	}
	if got := fmt.Sprint(sets[1].texts()); got != "[[wal]]" {
		t.Errorf("journal_mode = %s, want [[wal]]", got)
	}
}

func TestRunAllowsInformationalPragmas(t *testing.T) {
	cases := []struct {
		name   string
		script string
		want   string // rows of the last result set
	}{
		{"table_info", `PRAGMA table_info(t)`, "[[0 a INTEGER 0 <nil> 0] [1 b TEXT 0 <nil> 0]]"},
		{"qualified table_info", `PRAGMA main.table_info('t')`, "[[0 a INTEGER 0 <nil> 0] [1 b TEXT 0 <nil> 0]]"},
		{"table_info function", `SELECT name FROM pragma_table_info('t')`, "[[a] [b]]"},
		{"index_list", `PRAGMA index_list(t)`, "[]"},
		{"user_version", `PRAGMA user_version;`, "[[0]]"},
		{"quoted name", `PRAGMA "user_version"`, "[[0]]"},
		{"user_version function", `SELECT * FROM pragma_user_version`, "[[0]]"},
		{"foreign_keys", `PRAGMA foreign_keys -- comment`, "[[0]]"},
		{"integrity_check", `PRAGMA integrity_check`, "[[ok]]"},
		{"quick_check with limit", `PRAGMA quick_check(10)`, "[[ok]]"},
		{"functions", `SELECT count(*) > 0 FROM pragma_function_list`, "[[1]]"},
		{"transaction", `BEGIN; SAVEPOINT s; INSERT INTO t VALUES (1, 'x'); RELEASE s; COMMIT;
SELECT count(*) FROM t`, "[[1]]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, sqlite.Options{})
			mustRun(t, e, `CREATE TABLE t(a INTEGER, b TEXT)`)

			rec := mustRun(t, e, c.script)
			sets := rec.resultSets()
			if len(sets) == 0 {
				t.Fatal("got no result set")
			}
			if got := fmt.Sprint(sets[len(sets)-1].texts()); got != c.want {
				t.Errorf("rows = %s, want %s", got, c.want)
			}
		})
	}
}
