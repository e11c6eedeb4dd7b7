package main

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
)

// loadTokens reads -token and -tokens. With neither, it generates a random
// token that may act for any user and returns it as generated.
func loadTokens(cfg *config) (tokens map[string][]string, generated string, err error) {
	tokens = map[string][]string{}
	if cfg.token != "" {
		tokens[cfg.token] = nil
	}
	if cfg.tokensFile != "" {
		if err := readTokensFile(cfg.tokensFile, tokens); err != nil {
			return nil, "", err
		}
	}
	if len(tokens) > 0 {
		return tokens, "", nil
	}
	generated = randomHex(16)
	tokens[generated] = nil
	return tokens, generated, nil
}

// readTokensFile reads lines "TOKEN user1,user2" or "TOKEN *"; blank lines
// and lines starting with # are skipped.
func readTokensFile(path string, tokens map[string][]string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read tokens: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return fmt.Errorf("read tokens: %s line %d: want TOKEN and then users or *", path, n)
		}
		if fields[1] == "*" {
			tokens[fields[0]] = nil
		} else {
			tokens[fields[0]] = splitList(fields[1])
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read tokens: %w", err)
	}
	return nil
}

// tokenFor returns a token that may act for user, or "".
func tokenFor(tokens map[string][]string, user string) string {
	for token, users := range tokens {
		if len(users) == 0 {
			return token
		}
		for _, u := range users {
			if u == user {
				return token
			}
		}
	}
	return ""
}

// listen opens the listener. A non-loopback address needs a token that
// the operator configured, because a generated one is printed to the log.
func listen(cfg *config, generated string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("invalid -addr %q: %w", cfg.addr, err)
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if !loopback && generated != "" {
		return nil, fmt.Errorf("refusing to listen on %s without a configured token: "+
			"the shell engine runs any code it is sent; set -token or -tokens", cfg.addr)
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return ln, nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// login hands out the console's credentials through one-time links, so
// that the token never appears in the address bar or in access logs. Each
// link works once; using it prints the next one.
type login struct {
	token, user, addr string
	out               io.Writer

	mu   sync.Mutex
	code string
}

func newLogin(token, user, addr string, out io.Writer) *login {
	return &login{token: token, user: user, addr: addr, out: out, code: randomHex(16)}
}

// announce prints the current one-time login link.
func (l *login) announce() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.announceLocked()
}

func (l *login) announceLocked() {
	if l.token == "" {
		fmt.Fprintf(l.out, "console login disabled: no token may act for user %q\n", l.user)
		return
	}
	fmt.Fprintf(l.out, "console (one-time login link): http://%s/login?code=%s\n", l.addr, l.code)
}

func (l *login) serve(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("code")
	l.mu.Lock()
	valid := l.token != "" && code != "" && subtle.ConstantTimeCompare([]byte(code), []byte(l.code)) == 1
	if valid {
		l.code = randomHex(16)
		l.announceLocked()
	}
	l.mu.Unlock()
	if !valid {
		http.Error(w, "this login link is invalid or was already used: "+
			"open the newest link the server printed", http.StatusForbidden)
		return
	}
	// HttpOnly keeps the token from scripts, and SameSite=Strict keeps
	// browsers from sending it with requests that other sites start.
	// Secure is set when this process terminated TLS for the request.
	for name, value := range map[string]string{"Token-Code": l.token, "Token-User": l.user} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
