package entrance_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/goentrance/entrance"
)

func TestRESTCookieCrossSite(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) { o.OriginPatterns = []string{"console.example"} })
	body := `{"executeApplicationName":"shell","executionCode":"echo hi"}`
	cases := []struct {
		name    string
		headers map[string]string
		cookies bool
		want    int
	}{
		{"cookies from another port", map[string]string{"Origin": "http://127.0.0.1:1"}, true, http.StatusForbidden},
		{"cookies from another site", map[string]string{"Sec-Fetch-Site": "cross-site"}, true, http.StatusForbidden},
		{"cookies same origin", map[string]string{"Sec-Fetch-Site": "same-origin"}, true, http.StatusOK},
		{"cookies no browser headers", nil, true, http.StatusOK},
		{"cookies allowed origin", map[string]string{"Origin": "http://console.example"}, true, http.StatusOK},
		{"headers from another site", map[string]string{"Origin": "http://evil.example"}, false, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", e.http.URL+"/api/rest_j/v1/entrance/execute", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "text/plain")
			if tc.cookies {
				req.AddCookie(&http.Cookie{Name: "Token-Code", Value: testTokens["alice"]})
				req.AddCookie(&http.Cookie{Name: "Token-User", Value: "alice"})
			} else {
				req.Header.Set("Token-Code", testTokens["alice"])
				req.Header.Set("Token-User", "alice")
			}
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("HTTP status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}
