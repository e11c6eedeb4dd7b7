package sqlite

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// SQLite splits a script: sqlite3_prepare_v2 compiles the first statement
// of the text it is given and returns, in pzTail, where the rest begins.
//
// NOTE: go-sqlite3 v1.14.53 stores that rest, trimmed of whitespace, in the
// unexported field t of SQLiteStmt, and the statement handle, nil when the
// text held only whitespace and comments, in the unexported field s. It
// exports neither and offers no other way to prepare one statement at a
// time, so the engine reads both fields with reflect. New fails when the
// fields are missing or do not behave as expected, which every test of
// this package would then report.

// stmtLayout holds the reflect indexes of the two fields.
type stmtLayout struct {
	tail   []int // t string
	handle []int // s *C.sqlite3_stmt
}

var stmtFields, stmtLayoutErr = lookupStmtLayout()

func lookupStmtLayout() (stmtLayout, error) {
	typ := reflect.TypeFor[sqlite3.SQLiteStmt]()
	tail, ok := typ.FieldByName("t")
	if !ok || tail.Type.Kind() != reflect.String {
		return stmtLayout{}, errors.New("go-sqlite3 SQLiteStmt has no field t string; " +
			"the engine needs the driver version it was written for")
	}
	handle, ok := typ.FieldByName("s")
	if !ok || handle.Type.Kind() != reflect.Pointer {
		return stmtLayout{}, errors.New("go-sqlite3 SQLiteStmt has no pointer field s; " +
			"the engine needs the driver version it was written for")
	}
	return stmtLayout{tail: tail.Index, handle: handle.Index}, nil
}

// stmtTail returns the text after the statement that st compiled, trimmed
// of whitespace, and whether st holds a statement at all.
func stmtTail(st driver.Stmt) (tail string, ok bool) {
	v := reflect.ValueOf(st.(*sqlite3.SQLiteStmt)).Elem()
	return v.FieldByIndex(stmtFields.tail).String(), !v.FieldByIndex(stmtFields.handle).IsNil()
}

// checkStmtLayout prepares two scripts on conn and verifies that stmtTail
// reports what SQLite returned.
func checkStmtLayout(conn *sqlite3.SQLiteConn) error {
	cases := []struct {
		script, tail string
		ok           bool
	}{
		{"SELECT 1; SELECT 2 ", "SELECT 2", true},
		{"-- only a comment\n", "", false},
	}
	for _, c := range cases {
		st, err := conn.Prepare(c.script)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", c.script, err)
		}
		tail, ok := stmtTail(st)
		st.Close()
		if tail != c.tail || ok != c.ok {
			return fmt.Errorf("go-sqlite3 statement of %q has tail %q and statement %v, "+
				"expected %q and %v; the driver changed", c.script, tail, ok, c.tail, c.ok)
		}
	}
	return nil
}

// firstWindow is the number of bytes of a script that prepareNext hands to
// SQLite at first. go-sqlite3 copies the whole text it prepares, and its
// rest, so preparing statement after statement of the full script would
// copy the script once per statement.
const firstWindow = 4 << 10

// prepared is a statement that prepareNext compiled.
type prepared struct {
	stmt driver.Stmt // nil when the text held only whitespace and comments
	text string      // the statement's text, possibly with comments around it
}

// prepareNext compiles the first statement of script and returns it and
// the script after it. The guard gets the text being compiled, so that it
// can check PRAGMA statements.
//
// SQLite gets a window of the script that grows until the split is
// certain: when the compiled statement leaves text of the window
// unconsumed, SQLite read the whole statement and the ';' that ends it, so
// the rest of the script cannot change the split. Otherwise (an error, no
// rest, or only comments) the window grows, up to the whole script, whose
// result is then used.
func prepareNext(conn *sqlite3.SQLiteConn, g *guard, script string) (prepared, string, error) {
	window := min(len(script), firstWindow)
	for {
		whole := window == len(script)
		st, err := prepareWindow(conn, g, script[:window])
		if err != nil {
			if whole {
				return prepared{}, "", err
			}
			window = growWindow(window, len(script))
			continue
		}

		tail, ok := stmtTail(st)
		if !whole && tail == "" {
			st.Close()
			window = growWindow(window, len(script))
			continue
		}
		restAt, err := tailStart(script[:window], tail)
		if err != nil {
			st.Close()
			return prepared{}, "", err
		}
		p := prepared{text: script[:restAt]}
		if ok {
			p.stmt = st
		} else {
			st.Close()
		}
		return p, script[restAt:], nil
	}
}

func prepareWindow(conn *sqlite3.SQLiteConn, g *guard, text string) (driver.Stmt, error) {
	g.beginPrepare(text)
	defer g.endPrepare()
	return conn.Prepare(text)
}

func growWindow(window, limit int) int {
	return min(window*4, limit)
}

// tailStart returns the index in text where tail, the trimmed rest that
// go-sqlite3 returned for text, begins.
func tailStart(text, tail string) (int, error) {
	if tail == "" {
		return len(text), nil
	}
	// go-sqlite3 trims with strings.TrimSpace, so the end of tail is the
	// end of text without its trailing whitespace.
	trimmed := strings.TrimRightFunc(text, unicode.IsSpace)
	if !strings.HasSuffix(trimmed, tail) {
		return 0, fmt.Errorf("go-sqlite3 returned a rest %q that does not end the script", tail)
	}
	return len(trimmed) - len(tail), nil
}
