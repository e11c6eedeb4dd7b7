package entrance

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Authenticator maps an HTTP request (a REST call or a WebSocket upgrade)
// to the user it acts for. A request it returns an error for is rejected
// with 401 and a reply of status -1. It is called concurrently.
type Authenticator interface {
	Authenticate(r *http.Request) (user string, err error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request) (string, error)

// Authenticate calls f(r).
func (f AuthenticatorFunc) Authenticate(r *http.Request) (string, error) { return f(r) }

// Errors of TokenAuthenticator. None of them repeats the credentials.
var (
	ErrNoCredentials = errors.New("missing Token-Code and Token-User: send them as headers or cookies")
	ErrBadToken      = errors.New("invalid Token-Code or Token-User")
	ErrBadUser       = errors.New("invalid Token-User: want at most 256 bytes of UTF-8 " +
		"text without control characters")
)

// maxUserBytes is the longest Token-User that TokenAuthenticator accepts.
const maxUserBytes = 256

type denyAll struct{}

func (denyAll) Authenticate(*http.Request) (string, error) {
	return "", errors.New("no authenticator configured: set Options.Authenticator")
}

// TokenAuthenticator is Linkis token authentication: each request carries
// Token-Code and Token-User, as headers or as cookies (a browser cannot set
// headers on a WebSocket). A token acts for the users listed with it, or
// for any user when its list is empty.
type TokenAuthenticator struct {
	tokens []tokenEntry
}

type tokenEntry struct {
	digest [sha256.Size]byte
	users  []string // empty: any user
}

// NewTokenAuthenticator returns an authenticator for tokens, a map from
// each token to the users it may act for (nil or empty: any user).
func NewTokenAuthenticator(tokens map[string][]string) *TokenAuthenticator {
	a := &TokenAuthenticator{}
	for token, users := range tokens {
		if token == "" {
			continue
		}
		a.tokens = append(a.tokens, tokenEntry{digest: sha256.Sum256([]byte(token)), users: users})
	}
	return a
}

// Authenticate returns the Token-User of a request whose Token-Code is
// valid for that user. Tokens are compared in constant time, and every
// configured token is compared, so the time taken does not tell which
// token came close. A Token-User with control characters, invalid UTF-8
// or more than 256 bytes is rejected, because the user name goes into
// execIDs and logs.
func (a *TokenAuthenticator) Authenticate(r *http.Request) (string, error) {
	code := credential(r, "Token-Code")
	user := credential(r, "Token-User")
	if code == "" || user == "" {
		return "", ErrNoCredentials
	}
	if !validUser(user) {
		return "", ErrBadUser
	}
	digest := sha256.Sum256([]byte(code))
	var match *tokenEntry
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(digest[:], a.tokens[i].digest[:]) == 1 {
			match = &a.tokens[i]
		}
	}
	if match == nil || (len(match.users) > 0 && !slices.Contains(match.users, user)) {
		return "", ErrBadToken
	}
	return user, nil
}

// credential reads a header, or else the cookie of the same name.
func credential(r *http.Request, name string) string {
	if v := strings.TrimSpace(r.Header.Get(name)); v != "" {
		return v
	}
	if c, err := r.Cookie(name); err == nil {
		return strings.TrimSpace(c.Value)
	}
	return ""
}

// validUser reports whether a user name is short UTF-8 text without
// control characters.
func validUser(user string) bool {
	if len(user) > maxUserBytes || !utf8.ValidString(user) {
		return false
	}
	return !strings.ContainsFunc(user, unicode.IsControl)
}
