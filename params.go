package entrance

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
)

// params is the data of one request: the JSON object of a frame or a POST
// body, or the query of a GET. Both transports read parameters through it,
// so a parameter is validated the same way whichever way it came.
type params struct {
	object map[string]json.RawMessage
	query  url.Values
}

// objectParams decodes a request's JSON data. Absent or null data is an
// empty object.
func objectParams(data json.RawMessage) (params, *apiError) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return params{}, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return params{}, errorf(ReplyError, ErrCodeInvalidParam,
			"invalid data: want a JSON object: %v", err)
	}
	return params{object: obj}, nil
}

func queryParams(q url.Values) params { return params{query: q} }

// raw returns the JSON of a parameter, or nil when it is absent or null.
func (p params) raw(name string) json.RawMessage {
	if p.query != nil {
		if !p.query.Has(name) {
			return nil
		}
		b, _ := json.Marshal(p.query.Get(name))
		return b
	}
	v := p.object[name]
	if string(v) == "null" {
		return nil
	}
	return v
}

// has reports whether a parameter is present and not null.
func (p params) has(name string) bool { return p.raw(name) != nil }

// str returns a string parameter, "" when absent.
func (p params) str(name string) (string, *apiError) {
	if p.query != nil {
		return p.query.Get(name), nil
	}
	v := p.raw(name)
	if v == nil {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", errorf(ReplyError, ErrCodeInvalidParam,
			"invalid parameter %s: want a string, got %s", name, shorten(string(v), 40))
	}
	return s, nil
}

// integer returns an integer parameter, def when absent or empty. A JSON
// number and a string of digits are both accepted, because REST clients
// send query values as strings.
func (p params) integer(name string, def int64) (int64, *apiError) {
	v := p.raw(name)
	if v == nil {
		return def, nil
	}
	text := string(v)
	if text[0] == '"' {
		if err := json.Unmarshal(v, &text); err != nil {
			return 0, invalidInteger(name, string(v))
		}
		text = strings.TrimSpace(text)
		if text == "" {
			return def, nil
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, invalidInteger(name, text)
	}
	return n, nil
}

func invalidInteger(name, value string) *apiError {
	return errorf(ReplyError, ErrCodeInvalidParam,
		"invalid parameter %s: want an integer, got %s", name, shorten(value, 40))
}

// decode unmarshals an object parameter into v; absent leaves v as is.
func (p params) decode(name string, v any) *apiError {
	raw := p.raw(name)
	if raw == nil {
		return nil
	}
	if p.query != nil {
		// A query value is a string that may itself hold JSON.
		var s string
		_ = json.Unmarshal(raw, &s)
		raw = json.RawMessage(s)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errorf(ReplyError, ErrCodeInvalidParam,
			"invalid parameter %s: %v", name, err)
	}
	return nil
}

// shorten cuts s to at most n bytes for use in a message.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
