package actor

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrInvalidID: a string is not a valid object ID.
	ErrInvalidID = errors.New("actor: invalid object id")
	// ErrInvalidName: an object name is empty, too long or holds control characters.
	ErrInvalidName = errors.New("actor: invalid object name")
	// ErrUnknownNamespace: no namespace of that name is registered.
	ErrUnknownNamespace = errors.New("actor: unknown namespace")
	// ErrClosed: the runtime is shutting down or closed.
	ErrClosed = errors.New("actor: runtime closed")
)

// Stable error codes carried in the Opendo-Error reply header. Clients
// switch on these, never on the message text.
const (
	CodeBadRequest       = "bad_request"       // malformed request (400)
	CodeInvalidID        = "invalid_id"        // bad object ID or name (400)
	CodeUnknownNamespace = "unknown_namespace" // namespace not served (404)
	CodeInvalidArgument  = "invalid_argument"  // storage call with bad arguments (400)
	CodeLimitExceeded    = "limit_exceeded"    // key/value/batch/SQL limit (400)
	CodeTooLarge         = "too_large"         // request or transaction too large (413)
	CodeHandlerError     = "handler_error"     // the handler returned an error (500)
	CodeHandlerPanic     = "handler_panic"     // the handler panicked (500)
	CodeConflict         = "conflict"          // another node wrote the object's journal (409)
	CodeUnavailable      = "unavailable"       // journal unreachable or runtime closing (503)
	CodeOverloaded       = "overloaded"        // too much queued; the request was not run (503)
	CodeTimeout          = "timeout"           // the handler ran past its deadline; its writes were rolled back (504)
	CodeInternal         = "internal"          // bug or unexpected failure (500)
)

// Error is an error reply: an HTTP-like status, a stable code and a
// message. A handler may return one to choose them; Client.Call returns one
// for every error reply.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Message) }

// Errorf builds an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}
