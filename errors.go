package entrance

import "errors"

// Sentinel errors. Store implementations return ErrNotFound; the others
// come from execID parsing and from the server's lifecycle.
var (
	// ErrNotFound means no job or result set has the requested id.
	ErrNotFound = errors.New("entrance: not found")

	// ErrInvalidExecID means a string is not an execID in either format.
	ErrInvalidExecID = errors.New("entrance: invalid execID")

	// ErrClosed means the server or store has been shut down.
	ErrClosed = errors.New("entrance: closed")
)

// Error codes sent as data.errorMsg.errCode in error replies and as
// data.errCode of failed jobs. The 2000x codes are the ones Linkis uses for
// the same errors; the others belong to this library.
const (
	ErrCodeUserMissing    = 20005 // execute user missing
	ErrCodeCodeEmpty      = 20007 // executionCode missing or blank
	ErrCodeEngineUnknown  = 20009 // engine missing or not registered
	ErrCodeInvalidFrame   = 21001 // blank frame or not a JSON object
	ErrCodeUnknownMethod  = 21002 // no endpoint has the method
	ErrCodeInvalidParam   = 21003 // a parameter has the wrong type or value
	ErrCodeJobNotFound    = 21004 // no job has the id
	ErrCodeForbidden      = 21005 // the job or result belongs to another user
	ErrCodeLimit          = 21006 // a concurrency or rate limit was reached
	ErrCodeFrameTooLarge  = 21007 // a frame exceeded the size limit
	ErrCodeNotSupported   = 21008 // e.g. pause
	ErrCodeShuttingDown   = 21009 // the server is shutting down
	ErrCodeInternal       = 21010 // the store failed
	ErrCodeUnauthorized   = 21011 // no valid credentials
	ErrCodeEngineFailed   = 21101 // the engine returned an error
	ErrCodeVariable       = 21102 // ${...} substitution failed
	ErrCodeServerStopped  = 21103 // the server stopped while the job ran
	ErrCodeTimeout        = 21104 // the job ran past its time limit
	ErrCodeKilled         = 21105 // the job was killed
	ErrCodeShutdownCancel = 21106 // the job was cancelled by a shutdown
)
