package main

import (
	_ "embed"
	"net/http"
)

//go:embed console.html
var consoleHTML []byte

// serveConsole serves the single-page console. The page reaches the API
// over the WebSocket with the cookies set by the login link.
func serveConsole(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; "+
		"style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(consoleHTML)
}
