package entrance

import (
	"context"
	"net/http"
	"strings"
)

// request is one API call, from a WebSocket frame or a REST call. The same
// handlers serve both, so both transports return the same envelope.
type request struct {
	method string // as the client sent it; the reply carries it back
	path   string // the method without the /api/rest_j/v1/ prefix
	id     string // the {id} or {taskID} segment, if the route has one
	user   string
	tag    string
	params params

	// conn is the WebSocket connection that sent the request, nil for
	// REST. Requests about a job subscribe it to the job's pushes.
	conn *wsConn

	// httpMethod is the HTTP method of a REST call, "" over WebSocket.
	httpMethod string

	// afterReply, when set by a handler, runs once the reply has been
	// written (REST) or is ready to queue (WebSocket), so that no push of
	// a new job can overtake the reply that names it. Over WebSocket, a
	// subscription made in afterReply queues the reply together with the
	// start of the subscription.
	afterReply func()
}

type handler func(ctx context.Context, r *request) (*Envelope, *apiError)

// route finds the handler of a method path such as
// /api/rest_j/v1/entrance/123/status and stores the {id} segment in r.
func (s *Server) route(r *request) (handler, *apiError) {
	path, ok := strings.CutPrefix(r.method, methodPrefix)
	if !ok {
		path, ok = strings.CutPrefix(r.method, strings.TrimPrefix(methodPrefix, "/"))
	}
	if !ok || path == "" {
		return nil, unknownMethod(r.method)
	}
	r.path = path
	segs := strings.Split(path, "/")
	switch {
	case len(segs) == 2 && segs[0] == "entrance" && (segs[1] == "execute" || segs[1] == "submit"):
		return s.handleExecute, nil
	case len(segs) == 3 && segs[0] == "entrance" && segs[1] != "":
		r.id = segs[1]
		return s.jobHandler(segs[2], r.method)
	case len(segs) == 3 && segs[0] == "jobhistory" && segs[2] == "get" && segs[1] != "":
		r.id = segs[1]
		return s.handleHistoryGet, nil
	case path == "jobhistory/list":
		return s.handleHistoryList, nil
	case path == "filesystem/getDirFileTrees":
		return s.handleDirFileTrees, nil
	case path == "filesystem/openFile":
		return s.handleOpenFile, nil
	}
	return nil, unknownMethod(r.method)
}

func (s *Server) jobHandler(action, method string) (handler, *apiError) {
	switch action {
	case "status":
		return s.handleStatus, nil
	case "progress":
		return s.handleProgress, nil
	case "log":
		return s.handleLog, nil
	case "kill":
		return s.handleKill, nil
	case "pause":
		return s.handlePause, nil
	case "killJobs":
		return s.handleKillJobs, nil
	}
	return nil, unknownMethod(method)
}

func unknownMethod(method string) *apiError {
	return errorf(ReplyError, ErrCodeUnknownMethod,
		"unknown method %q: methods look like /api/rest_j/v1/entrance/execute "+
			"or /api/rest_j/v1/entrance/{execID}/status", shorten(method, 200))
}

// dispatch runs one request and returns its reply envelope.
func (s *Server) dispatch(ctx context.Context, r *request) *Envelope {
	h, aerr := s.route(r)
	if aerr == nil && r.httpMethod != "" {
		aerr = checkHTTPMethod(r)
	}
	var env *Envelope
	if aerr == nil {
		env, aerr = h(ctx, r)
	}
	if aerr != nil {
		s.logger.Debug("request rejected", "method", shorten(r.method, 200),
			"user", r.user, "status", aerr.status, "errCode", aerr.code, "error", aerr.desc)
		return errorEnvelope(r.method, r.tag, aerr)
	}
	env.Method = r.method
	if env.Tag == "" {
		env.Tag = r.tag
	}
	return env
}

// checkHTTPMethod rejects a GET for the endpoints that take a JSON body.
func checkHTTPMethod(r *request) *apiError {
	needsPost := r.path == "entrance/execute" || r.path == "entrance/submit" ||
		strings.HasSuffix(r.path, "/killJobs")
	if needsPost && r.httpMethod != http.MethodPost {
		return errorf(ReplyError, ErrCodeUnknownMethod,
			"%s needs POST with a JSON body, got %s", r.path, r.httpMethod)
	}
	return nil
}

// ok builds a success envelope.
func ok(message string, data any) *Envelope {
	return &Envelope{Status: ReplyOK, Message: message, Data: data}
}
