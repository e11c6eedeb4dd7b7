package sqlitestore

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeRow checks that decodeRow agrees with json.Unmarshal on any
// input: both fail, or both return the same row.
func FuzzDecodeRow(f *testing.F) {
	seeds := []string{
		`["a",null,"b"]`, `[]`, `null`, `[null]`, `["a\"b"]`, `[ "a" ]`, `["\u00e9\ud83d\ude00"]`,
		`["a",]`, `[,]`, `[1]`, "[\"\xff\"]", "[\"a\tb\"]", `["<&>"]`, `["]"]`, `["a"]"]`,
		`["\"]`, `nullnull`, `[nullx]`, `[]]`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		var want []*string
		wantErr := json.Unmarshal([]byte(data), &want)
		got, _, err := decodeRow(data, nil)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("decodeRow(%q) error %v; json.Unmarshal error %v", data, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeRow(%q) = %v; json.Unmarshal gives %v", data, got, want)
		}
	})
}

// FuzzRowRoundTrip checks that appendRow writes JSON that decodes, with
// decodeRow and with json.Unmarshal, to what json.Marshal and
// json.Unmarshal make of the row.
func FuzzRowRoundTrip(f *testing.F) {
	f.Add("plain", "with \"quote\" and \\", false)
	f.Add("<html> & \u2028", "\xff\xfe invalid", true)
	f.Add("", "tab\there\nnewline", false)
	f.Fuzz(func(t *testing.T, a, b string, bIsNull bool) {
		row := []*string{&a, nil, &b}
		if bIsNull {
			row[2] = nil
		}
		marshalled, err := json.Marshal(row)
		if err != nil {
			t.Fatal(err)
		}
		var want []*string
		if err := json.Unmarshal(marshalled, &want); err != nil {
			t.Fatal(err)
		}

		encoded, err := appendRow(nil, row)
		if err != nil {
			t.Fatalf("appendRow: %v", err)
		}
		var viaJSON []*string
		if err := json.Unmarshal(encoded, &viaJSON); err != nil {
			t.Fatalf("json.Unmarshal(%q): %v", encoded, err)
		}
		if !reflect.DeepEqual(viaJSON, want) {
			t.Errorf("json.Unmarshal(%q) = %v; want %v", encoded, viaJSON, want)
		}
		got, _, err := decodeRow(string(encoded), nil)
		if err != nil {
			t.Fatalf("decodeRow(%q): %v", encoded, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("decodeRow(%q) = %v; want %v", encoded, got, want)
		}
	})
}
