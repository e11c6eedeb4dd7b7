package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// output collects what run prints while it runs.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// await waits up to 20 s until the output matches re at least n times
// and returns the submatches of the n-th match.
func (o *output) await(t *testing.T, re *regexp.Regexp, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		if all := re.FindAllStringSubmatch(o.String(), -1); len(all) >= n {
			return all[n-1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("output has fewer than %d matches of %s:\n%s", n, re, o.String())
	return nil
}

var (
	listeningLine = regexp.MustCompile(`entrance listening on http://(\S+)`)
	loginLine     = regexp.MustCompile(`console \(one-time login link\): http://\S+(/login\?code=\w+)`)
)

// startServer runs the example server with args until the test ends and
// returns its address and output.
func startServer(t *testing.T, args ...string) (string, *output) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &output{}
	errc := make(chan error, 1)
	args = append([]string{"-data", t.TempDir(), "-grace", "1s"}, args...)
	go func() { errc <- run(ctx, args, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	addr := out.await(t, listeningLine, 1)[1]
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + port, out
}

func TestRunRejectsPublicAddressWithoutToken(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		t.Run(addr, func(t *testing.T) {
			out := &output{}
			err := run(t.Context(), []string{"-addr", addr, "-data", t.TempDir()}, out)
			if err == nil {
				t.Fatal("run started without a configured token")
			}
			if !strings.Contains(err.Error(), "-token") {
				t.Errorf("error %q does not name -token", err)
			}
		})
	}
}

func TestRunPublicAddressWithToken(t *testing.T) {
	addr, _ := startServer(t, "-addr", "0.0.0.0:0", "-token", "public-token-1c9e")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
		"http://"+addr+"/api/rest_j/v1/jobhistory/list", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Token-Code", "public-token-1c9e")
	req.Header.Set("Token-User", "alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("request with the token: HTTP %d", resp.StatusCode)
	}
}

// noRedirects is a client that returns redirects instead of following
// them and keeps no cookies.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func get(t *testing.T, url string, cookies []*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestConsoleLoginLink(t *testing.T) {
	const token = "console-token-8e3b"
	addr, out := startServer(t, "-addr", "127.0.0.1:0", "-token", token, "-user", "alice")
	link := "http://" + addr + out.await(t, loginLine, 1)[1]

	resp, body := get(t, link, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: HTTP %d, want 303", resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Errorf("login redirects to %q, want /", loc)
	}
	if strings.Contains(body, token) {
		t.Errorf("login page contains the token: %q", body)
	}
	cookies := resp.Cookies()
	checkLoginCookies(t, cookies, map[string]string{"Token-Code": token, "Token-User": "alice"})

	if resp, _ := get(t, link, nil); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) > 0 {
		t.Errorf("used link: HTTP %d with %d cookies, want 403 and none",
			resp.StatusCode, len(resp.Cookies()))
	}
	for _, bad := range []string{"/login?code=0123456789abcdef0123456789abcdef", "/login", "/login?code="} {
		if resp, _ := get(t, "http://"+addr+bad, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: HTTP %d, want 403", bad, resp.StatusCode)
		}
	}
	next := "http://" + addr + out.await(t, loginLine, 2)[1]
	if next == link {
		t.Fatal("the next link is the used one")
	}
	if resp, _ := get(t, next, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("next link: HTTP %d, want 303", resp.StatusCode)
	}

	page, html := get(t, "http://"+addr+"/", cookies)
	if page.StatusCode != http.StatusOK || strings.Contains(html, token) {
		t.Errorf("console page: HTTP %d, contains token %v", page.StatusCode, strings.Contains(html, token))
	}
	checkCookiesAuthenticate(t, addr, cookies)
	if strings.Contains(out.String(), token) {
		t.Errorf("the server printed the configured token:\n%s", out.String())
	}
}

func checkLoginCookies(t *testing.T, cookies []*http.Cookie, want map[string]string) {
	t.Helper()
	if len(cookies) != len(want) {
		t.Fatalf("%d cookies, want %d: %v", len(cookies), len(want), cookies)
	}
	for _, c := range cookies {
		if c.Value != want[c.Name] {
			t.Errorf("cookie %s = %q, want %q", c.Name, c.Value, want[c.Name])
		}
		if !c.HttpOnly {
			t.Errorf("cookie %s is not HttpOnly", c.Name)
		}
		if c.SameSite != http.SameSiteStrictMode {
			t.Errorf("cookie %s has SameSite %v, want Strict", c.Name, c.SameSite)
		}
		if c.Path != "/" {
			t.Errorf("cookie %s has path %q, want /", c.Name, c.Path)
		}
	}
}

// checkCookiesAuthenticate calls the API with the login cookies alone.
func checkCookiesAuthenticate(t *testing.T, addr string, cookies []*http.Cookie) {
	t.Helper()
	resp, body := get(t, "http://"+addr+"/api/rest_j/v1/jobhistory/list", cookies)
	var env struct {
		Status int `json:"status"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil || resp.StatusCode != 200 || env.Status != 0 {
		t.Errorf("API call with the login cookies: HTTP %d: %s", resp.StatusCode, body)
	}
}
