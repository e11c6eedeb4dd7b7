package entrance

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

// crossSiteCookieRequest reports whether a REST request authenticated by
// cookies comes from a page of another origin. Browsers send cookies with
// such requests (SameSite does not tell ports apart), so without this check
// any local page could submit code as the console's user. Requests that
// carry Token-Code as a header come from a client that chose to send it,
// not from a browser's ambient credentials, and are not checked.
func (s *Server) crossSiteCookieRequest(r *http.Request) bool {
	if r.Header.Get("Token-Code") != "" {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return !s.originAllowed(r)
	}
	return r.Header.Get("Origin") != "" && !s.originAllowed(r)
}

// originAllowed reports whether the request's Origin is the server's own
// host or matches Options.OriginPatterns.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, pattern := range s.originPatterns {
		if matched, _ := path.Match(strings.ToLower(pattern), strings.ToLower(u.Host)); matched {
			return true
		}
	}
	return false
}
