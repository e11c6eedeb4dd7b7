package entrance

import (
	"errors"
	"io"
	"net/http"
)

// serveREST serves one REST call: the same handlers as WebSocket frames,
// with the parameters from the JSON body of a POST and from the query.
func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	req := &request{method: r.URL.Path, httpMethod: r.Method}
	user, err := s.auth.Authenticate(r)
	if err != nil {
		s.logger.Info("request rejected: not authenticated", "method", shorten(r.URL.Path, 200),
			"remote", r.RemoteAddr, "error", err)
		writeEnvelope(w, errorEnvelope(req.method, "",
			errorf(ReplyLoginRequired, ErrCodeUnauthorized, "login required: %v", err)))
		return
	}
	req.user = user
	if s.isClosing() {
		writeEnvelope(w, errorEnvelope(req.method, "", errShuttingDown()))
		return
	}
	if aerr := checkRESTMethod(w, r.Method); aerr != nil {
		writeEnvelope(w, errorEnvelope(req.method, "", aerr))
		return
	}

	var aerr *apiError
	if r.Method == http.MethodPost {
		req.params, aerr = s.bodyParams(w, r)
	}
	if aerr != nil {
		writeEnvelope(w, errorEnvelope(req.method, "", aerr))
		return
	}
	req.params.query = r.URL.Query()
	req.tag, _ = req.params.str("websocketTag")
	writeEnvelope(w, s.dispatch(r.Context(), req))
	if req.afterReply != nil {
		req.afterReply()
	}
}

// checkRESTMethod accepts the HTTP methods that Linkis clients use: GET
// with query parameters and POST with a JSON body.
func checkRESTMethod(w http.ResponseWriter, method string) *apiError {
	if method == http.MethodGet || method == http.MethodPost {
		return nil
	}
	w.Header().Set("Allow", "GET, POST")
	return errorf(ReplyError, ErrCodeUnknownMethod,
		"HTTP method %s is not supported: use GET with query parameters or POST with a JSON body",
		shorten(method, 20))
}

// bodyParams reads a JSON body of at most Limits.MaxFrameBytes.
func (s *Server) bodyParams(w http.ResponseWriter, r *http.Request) (params, *apiError) {
	limit := s.limits.MaxFrameBytes
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return params{}, errorf(ReplyError, ErrCodeFrameTooLarge,
			"request body is over the limit of %d bytes (Limits.MaxFrameBytes): split the request",
			limit)
	case err != nil:
		return params{}, errorf(ReplyError, ErrCodeInvalidFrame, "read request body: %v", err)
	}
	return decodeObject(body, "request body")
}

func writeEnvelope(w http.ResponseWriter, env *Envelope) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(httpStatus(env.Status))
	w.Write(encodeEnvelope(env))
}

func (s *Server) isClosing() bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	return s.closing
}

func errShuttingDown() *apiError {
	return errorf(ReplyError, ErrCodeShuttingDown, "server is shutting down: retry on another instance or later")
}
