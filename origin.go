package entrance

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// checkOriginPatterns rejects a pattern that path.Match cannot parse, so
// that a typo fails New instead of rejecting every cross-origin page.
func checkOriginPatterns(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("invalid origin pattern %q: %w", p, err)
		}
	}
	return nil
}

// allowOrigin reports whether the request may be served. It rejects a
// request that a browser sent from a page of another origin, unless an
// OriginPatterns entry allows that origin, with HTTP 403 and status 3.
// Browsers attach cookies to such requests, so serving them would let
// any page a user visits submit code or kill jobs as that user.
func (s *Server) allowOrigin(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if s.originAllowed(r, origin) {
		return true
	}
	s.logger.Info("request rejected: cross-origin", "method", shorten(r.URL.Path, 200),
		"remote", r.RemoteAddr, "origin", shorten(origin, 200),
		"fetchSite", shorten(r.Header.Get("Sec-Fetch-Site"), 40))
	desc := fmt.Sprintf("cross-origin request from %q rejected: this server accepts "+
		"same-origin pages and those its OriginPatterns allow", shorten(origin, 200))
	if origin == "" {
		desc = "cross-origin request rejected: the browser sent Sec-Fetch-Site " +
			r.Header.Get("Sec-Fetch-Site") + " without an Origin to check"
	}
	writeEnvelope(w, errorEnvelope(r.URL.Path, "", errorf(ReplyForbidden, ErrCodeForbidden, "%s", desc)))
	return false
}

// originAllowed applies the origin policy. Without an Origin header a
// request is allowed unless its Sec-Fetch-Site header shows that a page of
// another origin sent it (a browser leaves Origin out of some of those).
// With one, the origin's host must be the request's Host or match an
// OriginPatterns entry.
func (s *Server) originAllowed(r *http.Request, origin string) bool {
	if origin == "" {
		site := r.Header.Get("Sec-Fetch-Site")
		return site != "cross-site" && site != "same-site"
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, pattern := range s.originPatterns {
		target := u.Host
		if strings.Contains(pattern, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(pattern), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}
