package sqlitestore

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Result rows are stored as JSON arrays of strings, with null for SQL NULL.
// encoding/json spends most of its time on reflection for this one shape,
// so appendRow and decodeRow handle the common case themselves and hand
// everything else to encoding/json. Both give the same results as
// json.Marshal and json.Unmarshal on a []*string, which FuzzDecodeRow
// checks.

// appendRow appends row to buf as a JSON array.
func appendRow(buf []byte, row []*string) ([]byte, error) {
	if row == nil {
		return append(buf, "null"...), nil
	}
	buf = append(buf, '[')
	for i, v := range row {
		if i > 0 {
			buf = append(buf, ',')
		}
		switch {
		case v == nil:
			buf = append(buf, "null"...)
		case isPlain(*v):
			buf = append(buf, '"')
			buf = append(buf, *v...)
			buf = append(buf, '"')
		default:
			quoted, err := json.Marshal(*v)
			if err != nil {
				return nil, err
			}
			buf = append(buf, quoted...)
		}
	}
	return append(buf, ']'), nil
}

// isPlain reports whether s can go into a JSON string as it is: valid
// UTF-8 with no quote, backslash or control character.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return utf8.ValidString(s)
}

// decodeRow decodes a row that appendRow wrote. The values of plain
// strings share the memory of data. Input in any other layout, such as
// JSON with spaces, goes to json.Unmarshal whole. scratch is reused for
// the elements of the array and returned for the next call.
func decodeRow(data string, scratch []string) ([]*string, []string, error) {
	values, ok := splitRow(data, scratch[:0])
	if !ok {
		var row []*string
		err := json.Unmarshal([]byte(data), &row)
		return row, values, err
	}

	row := make([]*string, len(values))
	strs := make([]string, len(values))
	for i, v := range values {
		switch {
		case v == "null":
			continue
		case isPlain(v[1 : len(v)-1]):
			strs[i] = v[1 : len(v)-1]
		default:
			if err := json.Unmarshal([]byte(v), &strs[i]); err != nil {
				return nil, values, err
			}
		}
		row[i] = &strs[i]
	}
	return row, values, nil
}

// splitRow appends the elements of a JSON array without spaces to values,
// each either null or a complete string token with its quotes. It returns
// false for anything else.
func splitRow(data string, values []string) ([]string, bool) {
	if len(data) < 2 || data[0] != '[' || data[len(data)-1] != ']' {
		return values, false
	}
	rest := data[1 : len(data)-1]
	for rest != "" {
		var v string
		switch {
		case strings.HasPrefix(rest, "null"):
			v = "null"
		case rest[0] == '"':
			end := stringEnd(rest)
			if end < 0 {
				return values, false
			}
			v = rest[:end]
		default:
			return values, false
		}
		values = append(values, v)

		rest = rest[len(v):]
		if len(rest) > 0 {
			if rest[0] != ',' || len(rest) == 1 {
				return values, false
			}
			rest = rest[1:]
		}
	}
	return values, true
}

// stringEnd returns the length of the JSON string token at the start of s,
// closing quote included, or -1 when the string does not end.
func stringEnd(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // skip the escaped byte, which may be a quote
		case '"':
			return i + 1
		}
	}
	return -1
}
