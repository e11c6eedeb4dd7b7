package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadTokens(t *testing.T) {
	cases := []struct {
		name    string
		token   string // -token
		file    string // contents of the -tokens file; "" means no file
		want    map[string][]string
		mention string // in the error; "" means no error
	}{
		{name: "flag", token: "tok-flag", want: map[string][]string{"tok-flag": nil}},
		{name: "file", file: "# team tokens\n\ntok-a alice,bob\ntok-any *\n",
			want: map[string][]string{"tok-a": {"alice", "bob"}, "tok-any": nil}},
		{name: "flag and file", token: "tok-flag", file: "tok-a alice\n",
			want: map[string][]string{"tok-flag": nil, "tok-a": {"alice"}}},
		{name: "line without users", file: "tok-a alice\ntok-b\n", mention: "line 2"},
		{name: "line with spaces in users", file: "tok-a alice, bob\n", mention: "line 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config{token: tc.token}
			if tc.file != "" {
				cfg.tokensFile = filepath.Join(t.TempDir(), "tokens")
				if err := os.WriteFile(cfg.tokensFile, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			tokens, generated, err := loadTokens(cfg)
			if tc.mention != "" {
				if err == nil || !strings.Contains(err.Error(), tc.mention) {
					t.Fatalf("error %v, want one naming %q", err, tc.mention)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if generated != "" {
				t.Errorf("generated a token although one was configured")
			}
			if !reflect.DeepEqual(tokens, tc.want) {
				t.Errorf("tokens %v, want %v", tokens, tc.want)
			}
		})
	}
}

func TestLoadTokensGenerates(t *testing.T) {
	first, generated, err := loadTokens(&config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(generated) != 32 || strings.Trim(generated, "0123456789abcdef") != "" {
		t.Errorf("generated token %q, want 32 hex digits", generated)
	}
	if users, ok := first[generated]; !ok || users != nil {
		t.Errorf("generated token not allowed for any user: %v", first)
	}
	_, again, _ := loadTokens(&config{})
	if again == generated {
		t.Error("two start-ups generated the same token")
	}
}

func TestLoadTokensMissingFile(t *testing.T) {
	_, _, err := loadTokens(&config{tokensFile: filepath.Join(t.TempDir(), "absent")})
	if err == nil || !strings.Contains(err.Error(), "read tokens") {
		t.Errorf("error %v, want a read tokens error", err)
	}
}
