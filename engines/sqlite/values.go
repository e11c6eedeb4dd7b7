package sqlite

import (
	"database/sql/driver"
	"fmt"
	"strconv"
	"time"
)

// formatRow converts one row from the driver to the text values of a
// table result set. All values of the row share one allocation.
func formatRow(dest []driver.Value) []*string {
	texts := make([]string, len(dest))
	row := make([]*string, len(dest))
	for i, v := range dest {
		if v == nil {
			continue
		}
		texts[i] = formatText(v)
		row[i] = &texts[i]
	}
	return row
}

// formatValue returns v as text, or nil for SQL NULL.
func formatValue(v driver.Value) *string {
	if v == nil {
		return nil
	}
	s := formatText(v)
	return &s
}

// formatText returns the text of a non-NULL value from go-sqlite3.
// Integers are written in decimal and floats in the shortest form that
// reads back the same ('g' format, so 1e+06 for a million). Text stays as
// it is, and blobs are written in upper-case hexadecimal, as SQLite's
// hex() writes them.
//
// The driver converts some values by the column's declared type: integers
// of a BOOLEAN column arrive as true or false, and values of DATE,
// DATETIME and TIMESTAMP columns as time.Time (see formatTime).
func formatText(v driver.Value) string {
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return v
	case []byte:
		return upperHex(v)
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return formatTime(v)
	default:
		return fmt.Sprint(v)
	}
}

func upperHex(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i] = digits[c>>4]
		out[2*i+1] = digits[c&0x0f]
	}
	return string(out)
}

// formatTime writes a time from a DATE, DATETIME or TIMESTAMP column in
// the forms SQLite's date functions use. A date at midnight UTC becomes
// 2006-01-02. Other times become 2006-01-02 15:04:05, with fractional
// seconds when present and the offset when it is not UTC. go-sqlite3 reads
// integers in these columns as Unix times, in seconds or, beyond 1e12,
// milliseconds.
//
// NOTE: go-sqlite3 v1.14.53 turns text it cannot parse as a time into the
// zero time, so such a value arrives as 0001-01-01 and its text is lost.
// Declaring the column TEXT, or selecting CAST(col AS TEXT), keeps it.
func formatTime(t time.Time) string {
	_, offset := t.Zone()
	if offset == 0 && t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0 {
		return t.Format(time.DateOnly)
	}
	if offset == 0 {
		return t.Format("2006-01-02 15:04:05.999999999")
	}
	return t.Format("2006-01-02 15:04:05.999999999-07:00")
}
