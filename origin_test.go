package entrance_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goentrance/entrance"
	"github.com/goentrance/entrance/sqlitestore"
)

// cookieHeader returns the headers of a browser that logged in as user:
// the credentials as cookies, and the given Origin and Sec-Fetch-Site.
func cookieHeader(user, origin, fetchSite string) http.Header {
	h := http.Header{}
	h.Set("Cookie", "Token-Code="+testTokens[user]+"; Token-User="+user)
	if origin != "" {
		h.Set("Origin", origin)
	}
	if fetchSite != "" {
		h.Set("Sec-Fetch-Site", fetchSite)
	}
	return h
}

func TestOriginPolicyWebSocket(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) {
		o.OriginPatterns = []string{"console.example", "https://*.tools.example"}
	})
	cases := []struct {
		name   string
		origin string
		want   int // 0: accepted, else the HTTP status of the rejected upgrade
	}{
		{"no origin", "", 0},
		{"same origin", e.http.URL, 0},
		{"allowed host", "http://console.example", 0},
		{"allowed scheme and host", "https://a.tools.example", 0},
		{"other site", "http://evil.example", http.StatusForbidden},
		{"allowed host, other scheme pattern", "http://a.tools.example", http.StatusForbidden},
		{"lookalike host", "http://console.example.evil.example", http.StatusForbidden},
		{"opaque origin", "null", http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := e.dialAs(credentials{}, cookieHeader("alice", tc.origin, ""))
			if tc.want != 0 {
				if err == nil {
					c.conn.CloseNow()
					t.Fatal("cross-site upgrade accepted")
				}
				if resp == nil || resp.StatusCode != tc.want {
					t.Fatalf("upgrade rejected with %v, want HTTP %d", resp, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("upgrade rejected: %v", err)
			}
			c.t = t
			if f, _ := c.call("jobhistory/list", nil); f.Status != 0 {
				t.Errorf("request over the accepted connection: %s", f.raw)
			}
		})
	}
}

func TestOriginPolicyREST(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) { o.OriginPatterns = []string{"console.example"} })
	execute := map[string]any{"executeApplicationName": "shell", "executionCode": "echo hi"}
	cases := []struct {
		name      string
		origin    string
		fetchSite string
		want      int // envelope status
	}{
		{"script without origin", "", "", 0},
		{"same origin", e.http.URL, "same-origin", 0},
		{"typed address", "", "none", 0},
		{"allowed origin", "http://console.example", "cross-site", 0},
		{"other site", "http://evil.example", "cross-site", 3},
		{"sibling site", "http://evil.console.example", "same-site", 3},
		{"cross-site without origin", "", "cross-site", 3},
		{"same-site without origin", "", "same-site", 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, f := e.restAs(restCall{post: true, method: "entrance/execute", data: execute,
				header: cookieHeader("alice", tc.origin, tc.fetchSite)})
			if f.Status != tc.want {
				t.Fatalf("status %d, want %d: %s", f.Status, tc.want, f.raw)
			}
			if tc.want == 3 && code != http.StatusForbidden {
				t.Errorf("HTTP status %d, want 403", code)
			}
			if tc.want == 3 && !strings.Contains(f.Message, "cross-origin") {
				t.Errorf("message %q does not give the reason", f.Message)
			}
		})
	}

	// Only the four accepted requests created jobs.
	_, f := e.restAs(restCall{creds: credentialsOf("alice"), method: "jobhistory/list"})
	if ids, _ := taskIDsOf(t, f); len(ids) != 4 {
		t.Errorf("%d jobs stored, want 4: %v", len(ids), ids)
	}
}

func TestNewRejectsBadOriginPattern(t *testing.T) {
	store, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "entrance.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv, err := entrance.New(&entrance.Options{Store: store, OriginPatterns: []string{"[a-"}})
	if err == nil {
		srv.Close()
		t.Fatal("New accepted the pattern [a-")
	}
	if !strings.Contains(err.Error(), "[a-") {
		t.Errorf("error %q does not name the pattern", err)
	}
}
