package entrance_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/goentrance/entrance"
)

func TestTokenAuthenticator(t *testing.T) {
	auth := entrance.NewTokenAuthenticator(map[string][]string{
		"tok-alice": {"alice"},
		"tok-team":  {"alice", "bob"},
		"tok-proxy": nil,
		"":          nil, // ignored: an empty token never matches
	})
	cases := []struct {
		name    string
		headers map[string]string
		cookies map[string]string
		user    string
		err     error
	}{
		{name: "headers", headers: map[string]string{"Token-Code": "tok-alice", "Token-User": "alice"},
			user: "alice"},
		{name: "cookies", cookies: map[string]string{"Token-Code": "tok-alice", "Token-User": "alice"},
			user: "alice"},
		{name: "spaces trimmed", headers: map[string]string{"Token-Code": " tok-alice ", "Token-User": "alice "},
			user: "alice"},
		{name: "listed second user", headers: map[string]string{"Token-Code": "tok-team", "Token-User": "bob"},
			user: "bob"},
		{name: "unlisted user", headers: map[string]string{"Token-Code": "tok-alice", "Token-User": "bob"},
			err: entrance.ErrBadToken},
		{name: "token for any user", headers: map[string]string{"Token-Code": "tok-proxy", "Token-User": "carol"},
			user: "carol"},
		{name: "unknown token", headers: map[string]string{"Token-Code": "tok-alicf", "Token-User": "alice"},
			err: entrance.ErrBadToken},
		{name: "token prefix", headers: map[string]string{"Token-Code": "tok-ali", "Token-User": "alice"},
			err: entrance.ErrBadToken},
		{name: "header beats cookie", headers: map[string]string{"Token-Code": "wrong"},
			cookies: map[string]string{"Token-Code": "tok-alice", "Token-User": "alice"}, err: entrance.ErrBadToken},
		{name: "no credentials", err: entrance.ErrNoCredentials},
		{name: "user only", headers: map[string]string{"Token-User": "alice"}, err: entrance.ErrNoCredentials},
		{name: "token only", headers: map[string]string{"Token-Code": "tok-alice"}, err: entrance.ErrNoCredentials},
		{name: "blank token", headers: map[string]string{"Token-Code": "  ", "Token-User": "alice"},
			err: entrance.ErrNoCredentials},
		{name: "control character in user", err: entrance.ErrBadUser,
			headers: map[string]string{"Token-Code": "tok-proxy", "Token-User": "eve\x1b[2J"}},
		{name: "user too long", err: entrance.ErrBadUser,
			headers: map[string]string{"Token-Code": "tok-proxy", "Token-User": strings.Repeat("u", 257)}},
		{name: "invalid UTF-8 user", err: entrance.ErrBadUser,
			headers: map[string]string{"Token-Code": "tok-proxy", "Token-User": "\xff"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api/rest_j/v1/jobhistory/list", nil)
			for name, value := range tc.headers {
				r.Header.Set(name, value)
			}
			for name, value := range tc.cookies {
				r.AddCookie(&http.Cookie{Name: name, Value: value})
			}
			user, err := auth.Authenticate(r)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if user != tc.user {
				t.Errorf("user %q, want %q", user, tc.user)
			}
		})
	}
}

func TestNoAuthenticatorRejectsAll(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) { o.Authenticator = nil })
	code, f := e.restAs(restCall{creds: credentialsOf("alice"), method: "jobhistory/list"})
	if code != http.StatusUnauthorized || f.Status != -1 {
		t.Errorf("REST: HTTP %d: %s", code, f.raw)
	}
	if !strings.Contains(f.Message, "Options.Authenticator") {
		t.Errorf("message %q does not name the option to set", f.Message)
	}
	if _, resp, err := e.dialAs(credentialsOf("alice"), nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("WebSocket: upgrade not rejected with 401: %v", err)
	}
}

func TestAuthenticatorFunc(t *testing.T) {
	e := newEnv(t, func(o *entrance.Options) {
		o.Authenticator = entrance.AuthenticatorFunc(func(r *http.Request) (string, error) {
			if r.Header.Get("X-Test-User") == "" {
				return "", errors.New("missing X-Test-User")
			}
			return r.Header.Get("X-Test-User"), nil
		})
	})
	h := http.Header{"X-Test-User": {"dave"}}
	if _, f := e.restAs(restCall{method: "jobhistory/list", header: h}); f.Status != 0 {
		t.Errorf("accepted user rejected: %s", f.raw)
	}
	if _, f := e.restAs(restCall{method: "jobhistory/list"}); f.Status != -1 ||
		!strings.Contains(f.Message, "X-Test-User") {
		t.Errorf("rejection does not carry the authenticator's error: %s", f.raw)
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	var logs logCapture
	e := newEnv(t, func(o *entrance.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	const wrongToken = "tok-wrong-4f2a9c"
	const jobSecret = "job-password-77d1"

	alice := e.dial("alice")
	for _, creds := range []credentials{
		{user: "alice", token: wrongToken},
		{user: "bob", token: testTokens["alice"]},
	} {
		if _, _, err := e.dialAs(creds, nil); err == nil {
			t.Fatalf("upgrade with invalid credentials accepted")
		}
		e.restAs(restCall{creds: creds, method: "jobhistory/list"})
	}
	e.restAs(restCall{post: true, method: "entrance/execute",
		header: cookieHeader("alice", "http://evil.example", "cross-site")})
	e.restAs(restCall{creds: credentialsOf("root"), method: "jobhistory/list"})

	alice.runToEnd("shell", "echo "+jobSecret)
	alice.runToEnd("shell", "echo "+jobSecret+" >&2; exit 3")
	execID, _ := alice.execute("shell", "sleep 30 # "+jobSecret)
	e.dial("bob").call("entrance/"+execID+"/status", nil)
	alice.call("entrance/"+execID+"/kill", nil)
	alice.follow(execID, nil)
	e.stop()

	out := logs.String()
	secrets := []string{wrongToken, jobSecret}
	for _, token := range testTokens {
		secrets = append(secrets, token)
	}
	for _, secret := range secrets {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
	// The capture saw each kind of event, so the check above means
	// something.
	for _, event := range []string{"connection rejected", "request rejected: not authenticated",
		"request rejected: cross-origin", "job started", "job ended", "job kill requested"} {
		if !strings.Contains(out, event) {
			t.Errorf("the log has no %q event:\n%s", event, out)
		}
	}
}

func TestUpgradeRejectionIsEnvelope(t *testing.T) {
	e := newEnv(t, nil)
	req, err := http.NewRequest("GET", e.http.URL+"/api/rest_j/v1/entrance/connect", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("HTTP status %d, want 401", resp.StatusCode)
	}
	var env struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("body is not an envelope: %v", err)
	}
	if env.Status != -1 {
		t.Errorf("envelope status %d, want -1", env.Status)
	}
	if !strings.Contains(env.Message, "Token-Code") {
		t.Errorf("message %q does not say which credentials are missing", env.Message)
	}
}
