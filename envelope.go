package entrance

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Reply statuses: the envelope's "status" field.
const (
	ReplyOK            = 0  // success
	ReplyError         = 1  // bad request, engine failure, not found
	ReplyInvalid       = 2  // validation failed
	ReplyForbidden     = 3  // permission denied
	ReplyWarning       = 4  // success with a warning
	ReplyLoginRequired = -1 // not logged in
)

// Envelope is the shape of every reply and push, on both transports.
type Envelope struct {
	Method  string `json:"method"`
	Status  int    `json:"status"`
	Message string `json:"message"`
	Tag     string `json:"websocketTag,omitempty"`
	Data    any    `json:"data"`
}

// httpStatus maps an envelope status to the HTTP status of a REST reply.
func httpStatus(status int) int {
	switch status {
	case ReplyOK:
		return http.StatusOK
	case ReplyError:
		return http.StatusBadRequest
	case ReplyInvalid:
		return http.StatusPreconditionFailed
	case ReplyForbidden:
		return http.StatusForbidden
	case ReplyWarning:
		return http.StatusPartialContent
	case ReplyLoginRequired:
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

// apiError is a failed request: the envelope status, the errCode and a
// message that names the offending value.
type apiError struct {
	status int
	code   int
	desc   string
}

func (e *apiError) Error() string { return e.desc }

func errorf(status, code int, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, desc: fmt.Sprintf(format, args...)}
}

// errorData is the data of an error reply.
type errorData struct {
	ErrorMsg errorMsg `json:"errorMsg"`
}

type errorMsg struct {
	ErrCode int    `json:"errCode"`
	Desc    string `json:"desc"`
	Level   int    `json:"level"`
}

// errorEnvelope builds the reply for a failed request.
func errorEnvelope(method, tag string, e *apiError) *Envelope {
	return &Envelope{
		Method:  method,
		Status:  e.status,
		Message: e.desc,
		Tag:     tag,
		Data:    errorData{ErrorMsg: errorMsg{ErrCode: e.code, Desc: e.desc, Level: 2}},
	}
}

// encodeEnvelope encodes env as a single JSON object without a trailing
// newline.
func encodeEnvelope(env *Envelope) []byte {
	b, err := json.Marshal(env)
	if err != nil {
		// Every Data value is built by this package from JSON-safe types,
		// so this only happens on a programming error.
		b, _ = json.Marshal(errorEnvelope(env.Method, env.Tag,
			errorf(ReplyError, ErrCodeInternal, "encode reply: %v", err)))
	}
	return b
}
