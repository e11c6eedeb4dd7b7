package entrance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
)

// params is the data of one request: the JSON object of a frame or a POST
// body, and the query of a REST call. Both transports read parameters
// through it, so a parameter is validated the same way whichever way it
// came. A name in the object takes precedence over the same name in the
// query.
type params struct {
	object map[string]json.RawMessage
	query  url.Values
}

// objectParams decodes the JSON data of a frame. Absent or null data is an
// empty object.
func objectParams(data json.RawMessage) (params, *apiError) {
	return decodeObject(data, "data")
}

// decodeObject decodes a JSON object. label names the object in error
// messages.
func decodeObject(data json.RawMessage, label string) (params, *apiError) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return params{}, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return params{}, errorf(ReplyError, ErrCodeInvalidParam,
			"invalid %s: want a JSON object: %v", label, err)
	}
	return params{object: obj}, nil
}

// raw returns the JSON of a parameter, or nil when it is absent or null.
// A query value is returned as a JSON string.
func (p params) raw(name string) json.RawMessage {
	v, fromQuery := p.lookup(name)
	if fromQuery {
		b, _ := json.Marshal(v)
		return b
	}
	return p.object[name]
}

// lookup reports whether name comes from the query, and its value there.
// It returns ("", false) when the object has the name or neither has it.
func (p params) lookup(name string) (string, bool) {
	if v, found := p.object[name]; found && string(v) != "null" {
		return "", false
	}
	if p.query != nil && p.query.Has(name) {
		return p.query.Get(name), true
	}
	return "", false
}

// has reports whether a parameter is present and not null.
func (p params) has(name string) bool {
	if _, fromQuery := p.lookup(name); fromQuery {
		return true
	}
	v, found := p.object[name]
	return found && string(v) != "null"
}

// str returns a string parameter, "" when absent.
func (p params) str(name string) (string, *apiError) {
	if v, fromQuery := p.lookup(name); fromQuery {
		return v, nil
	}
	v := p.object[name]
	if v == nil || string(v) == "null" {
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
	if !p.has(name) {
		return def, nil
	}
	v := p.raw(name)
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

// decode unmarshals an object parameter into v, and leaves v as it is when
// the parameter is absent. A query value is a string that contains the
// JSON.
func (p params) decode(name string, v any) *apiError {
	if !p.has(name) {
		return nil
	}
	raw := p.object[name]
	if q, fromQuery := p.lookup(name); fromQuery {
		raw = json.RawMessage(q)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errorf(ReplyError, ErrCodeInvalidParam,
			"invalid parameter %s: %s", name, describeJSONError(err))
	}
	return nil
}

// describeJSONError rewords a decoding error in the terms of the request
// instead of Go's types.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		return err.Error()
	}
	want := "a value of another type"
	switch typeErr.Type.Kind() {
	case reflect.Struct, reflect.Map:
		want = "an object"
	case reflect.Slice, reflect.Array:
		want = "an array"
	case reflect.String:
		want = "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		want = "an integer"
	case reflect.Float64, reflect.Float32:
		want = "a number"
	case reflect.Bool:
		want = "true or false"
	}
	if typeErr.Field == "" {
		return fmt.Sprintf("want %s, got a JSON %s", want, typeErr.Value)
	}
	return fmt.Sprintf("field %s must be %s, got a JSON %s", typeErr.Field, want, typeErr.Value)
}

// shorten cuts s to at most n bytes for use in a message.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
