package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// schemaVersion is the version of the schema below, kept in
// PRAGMA user_version. A file with a higher version was written by a newer
// release of this package, and Open rejects it. Version 1 kept one row per
// log line, and Open rejects such a file too rather than convert its logs.
const schemaVersion = 2

// schema creates every table and index that is missing.
//
// Times are milliseconds since the Unix epoch. jobs.task_id uses
// AUTOINCREMENT, so SQLite never issues an id again, not even the id of a
// deleted newest row. jobs.log_lines and result_sets.row_count are kept in
// the transaction that appends, so reading them costs no COUNT(*).
//
// log_batches holds each AppendLog call as one row: the lines
// [first_line, end_line) with a payload made by encodeLogBatch. One row per
// call instead of one per line makes a batch cost about one row to write.
// The key ends in end_line, not first_line, so that the batches holding
// line n and later are the keys above (task_id, n), one range seek.
const schema = `
CREATE TABLE IF NOT EXISTS jobs (
	task_id       INTEGER PRIMARY KEY AUTOINCREMENT,
	instance      TEXT    NOT NULL,
	user_name     TEXT    NOT NULL,
	creator       TEXT    NOT NULL,
	engine        TEXT    NOT NULL,
	run_type      TEXT    NOT NULL,
	code          TEXT    NOT NULL,
	params        TEXT    NOT NULL,
	source        TEXT,
	tag           TEXT    NOT NULL,
	status        TEXT    NOT NULL,
	err_code      INTEGER NOT NULL DEFAULT 0,
	err_desc      TEXT    NOT NULL DEFAULT '',
	progress      REAL    NOT NULL DEFAULT 0,
	progress_info TEXT,
	created       INTEGER NOT NULL,
	updated       INTEGER NOT NULL,
	started       INTEGER,
	ended         INTEGER,
	log_lines     INTEGER NOT NULL DEFAULT 0,
	process       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs (user_name, task_id);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, task_id);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);

CREATE TABLE IF NOT EXISTS status_history (
	task_id  INTEGER NOT NULL REFERENCES jobs (task_id) ON DELETE CASCADE,
	status   TEXT    NOT NULL,
	err_code INTEGER NOT NULL,
	err_desc TEXT    NOT NULL,
	at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS status_history_task ON status_history (task_id);

CREATE TABLE IF NOT EXISTS log_batches (
	task_id    INTEGER NOT NULL REFERENCES jobs (task_id) ON DELETE CASCADE,
	first_line INTEGER NOT NULL,
	end_line   INTEGER NOT NULL,
	payload    BLOB    NOT NULL,
	PRIMARY KEY (task_id, end_line)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS result_sets (
	task_id   INTEGER NOT NULL REFERENCES jobs (task_id) ON DELETE CASCADE,
	idx       INTEGER NOT NULL,
	kind      INTEGER NOT NULL,
	columns   TEXT    NOT NULL,
	width     INTEGER NOT NULL,
	row_count INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (task_id, idx)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS result_rows (
	task_id    INTEGER NOT NULL,
	idx        INTEGER NOT NULL,
	row_no     INTEGER NOT NULL,
	row_values TEXT    NOT NULL,
	PRIMARY KEY (task_id, idx, row_no),
	FOREIGN KEY (task_id, idx) REFERENCES result_sets (task_id, idx) ON DELETE CASCADE
) WITHOUT ROWID;
`

// migrate creates the schema in an empty file and checks the version of
// an existing one, in one transaction.
func migrate(ctx context.Context, conn *sql.Conn) (err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin schema transaction: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()

	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("schema version %d is newer than version %d of this package",
			version, schemaVersion)
	}
	if version != 0 && version < schemaVersion {
		return fmt.Errorf("schema version %d is older than version %d of this package "+
			"and is not migrated: open a new file", version, schemaVersion)
	}

	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	// PRAGMA takes no bound parameters, and the version is a constant.
	setVersion := fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)
	if _, err := tx.ExecContext(ctx, setVersion); err != nil {
		return fmt.Errorf("write schema version: %w", err)
	}

	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit schema: %w", err)
	}
	return nil
}
