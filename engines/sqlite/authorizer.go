package sqlite

import (
	"fmt"
	"strings"
	"sync"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// guard is the authorizer of a connection. SQLite calls authorize while it
// prepares a statement, and again while it runs one that prepares others
// (VACUUM, the pragma table-valued functions). A nil *guard applies the
// same rules without recording anything, for connections between jobs.
type guard struct {
	mu sync.Mutex
	// statement is the text being prepared for the job, empty while
	// statements run.
	statement string
	// denied describes the last action rejected since the last take.
	denied string
}

// authorize is the callback of sqlite3.SQLiteConn.RegisterAuthorizer.
// arg1 and arg2 depend on the action, as documented for
// sqlite3_set_authorizer. dbName is the schema ("main", "temp") or empty.
func (g *guard) authorize(action int, arg1, arg2, dbName string) int {
	if g == nil {
		if deniedAction(action, arg1, arg2, "") != "" {
			return sqlite3.SQLITE_DENY
		}
		return sqlite3.SQLITE_OK
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	reason := deniedAction(action, arg1, arg2, g.statement)
	if reason == "" {
		return sqlite3.SQLITE_OK
	}
	g.denied = reason
	return sqlite3.SQLITE_DENY
}

// beginPrepare records that text is being prepared and clears the last
// denial.
func (g *guard) beginPrepare(text string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.statement = text
	g.denied = ""
}

func (g *guard) endPrepare() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.statement = ""
}

// take returns the description of the last rejected action, or "", and
// clears it.
func (g *guard) take() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.denied
	g.denied = ""
	return d
}

// deniedAction returns why the action is rejected, or "" when it is
// allowed. statement is the text being prepared, or empty when the action
// comes from a statement that runs. Everything not named here is allowed:
// reading and writing the tables of the database, creating and dropping
// schema objects, and transactions.
func deniedAction(action int, arg1, arg2, statement string) string {
	switch action {
	case sqlite3.SQLITE_ATTACH:
		// VACUUM attaches a temporary database (arg1 empty), and
		// VACUUM INTO attaches the output file.
		return fmt.Sprintf("ATTACH %q: attaching databases is not allowed, "+
			"and VACUUM and VACUUM INTO attach one", arg1)
	case sqlite3.SQLITE_DETACH:
		return fmt.Sprintf("DETACH %q: detaching databases is not allowed", arg1)
	case sqlite3.SQLITE_FUNCTION:
		// arg2 is the function name, and arg1 is empty.
		if deniedFunctions[strings.ToLower(arg2)] {
			return fmt.Sprintf("function %s: functions that load code or "+
				"touch files are not allowed", arg2)
		}
	case sqlite3.SQLITE_PRAGMA:
		// arg1 is the pragma name, arg2 its argument or empty.
		if !pragmaAllowed(strings.ToLower(arg1), arg2, statement) {
			return deniedPragma(arg1, arg2)
		}
	}
	return ""
}

// deniedFunctions are SQL functions that load shared libraries or read or
// write files. Of these, the SQLite library that go-sqlite3 builds has
// load_extension and, because FTS3 is compiled in, fts3_tokenizer. The
// others come with the sqlite3 shell and are listed in case a build adds
// them.
var deniedFunctions = map[string]bool{
	"load_extension": true,
	"fts3_tokenizer": true,
	"readfile":       true,
	"writefile":      true,
	"edit":           true,
}

// readPragmas are the pragmas a job may run without an argument. Each
// only reports a setting or the schema. With an argument most of them
// change a setting, and a connection's settings would outlive the job.
// database_list is left out because it reports the path of the file.
var readPragmas = map[string]bool{
	"application_id":            true,
	"auto_vacuum":               true,
	"automatic_index":           true,
	"busy_timeout":              true,
	"cache_size":                true,
	"cache_spill":               true,
	"cell_size_check":           true,
	"collation_list":            true,
	"compile_options":           true,
	"data_version":              true,
	"defer_foreign_keys":        true,
	"encoding":                  true,
	"foreign_keys":              true,
	"freelist_count":            true,
	"function_list":             true,
	"ignore_check_constraints":  true,
	"journal_mode":              true,
	"journal_size_limit":        true,
	"legacy_alter_table":        true,
	"locking_mode":              true,
	"max_page_count":            true,
	"mmap_size":                 true,
	"module_list":               true,
	"page_count":                true,
	"page_size":                 true,
	"pragma_list":               true,
	"query_only":                true,
	"read_uncommitted":          true,
	"recursive_triggers":        true,
	"reverse_unordered_selects": true,
	"schema_version":            true,
	"secure_delete":             true,
	"synchronous":               true,
	"temp_store":                true,
	"trusted_schema":            true,
	"user_version":              true,
	"wal_autocheckpoint":        true,
}

// inspectPragmas are the pragmas a job may run with or without an
// argument, because the argument only names a table or an index, or
// limits the number of errors reported. They are the pragmas that SQLite
// 3.54 treats as a query when given one argument, except optimize.
var inspectPragmas = map[string]bool{
	"foreign_key_check": true,
	"foreign_key_list":  true,
	"index_info":        true,
	"index_list":        true,
	"index_xinfo":       true,
	"integrity_check":   true,
	"quick_check":       true,
	"table_info":        true,
	"table_list":        true,
	"table_xinfo":       true,
}

// pragmaAllowed reports whether PRAGMA name, with arg as its argument, is
// in the allowlist. name must be lower case. statement is as for
// deniedAction.
//
// go-sqlite3 passes a missing argument and an empty string argument both
// as "", and setting user_version to an empty string sets it to 0. So a
// read pragma prepared from the job's text is allowed only when that text
// has no argument. A read pragma prepared while a statement runs comes
// from its pragma table-valued function (SELECT * FROM
// pragma_user_version), which has no argument column for these pragmas.
func pragmaAllowed(name, arg, statement string) bool {
	if inspectPragmas[name] {
		return true
	}
	if !readPragmas[name] || arg != "" {
		return false
	}
	return statement == "" || !pragmaHasArgument(statement)
}

func deniedPragma(name, arg string) string {
	if arg != "" {
		return fmt.Sprintf("PRAGMA %s = %q: only read-only informational "+
			"pragmas are allowed, and setting one is not", name, arg)
	}
	return fmt.Sprintf("PRAGMA %s: only read-only informational pragmas "+
		"are allowed", name)
}
