package actor

import (
	"context"
	"encoding/json"
	"time"

	"github.com/opendo/opendo/storage"
)

// Header holds request or response headers (as in net/http and NATS).
type Header map[string][]string

// Get returns the first value of key ("" if none). Keys match exactly.
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces the values of key.
func (h Header) Set(key, value string) { h[key] = []string{value} }

// Request is one call to an object.
type Request struct {
	Method string // free-form verb, default "POST"
	Path   string // free-form path such as "incr" or "/rooms/1/messages"
	ID     string // request ID (from the caller, or a generated ULID)
	Header Header // caller headers other than opendo's own
	Body   []byte
}

// Response is a handler's reply.
type Response struct {
	Status int // HTTP-like status; 0 means 200
	Header Header
	Body   []byte
}

// Text returns a 200 response with a text body.
func Text(s string) *Response { return &Response{Status: 200, Body: []byte(s)} }

// Bytes returns a 200 response with body b.
func Bytes(b []byte) *Response { return &Response{Status: 200, Body: b} }

// JSON returns a 200 response with v encoded as JSON.
func JSON(v any) (*Response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &Response{Status: 200, Header: Header{"Content-Type": {"application/json"}}, Body: b}, nil
}

// Handler serves the requests of one object. The runtime calls Handle from
// the object's own goroutine, one request at a time in arrival order.
//
// All storage writes made during Handle form one atomic transaction. If
// Handle returns an error (or panics), they are rolled back and the caller
// gets an error reply; otherwise they are journaled and the response is
// released only once they are durable.
type Handler interface {
	Handle(ctx context.Context, req *Request) (*Response, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) (*Response, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, req *Request) (*Response, error) { return f(ctx, req) }

// AlarmInfo describes an alarm firing.
type AlarmInfo struct {
	RetryCount    int       // 0 on the first attempt
	IsRetry       bool      // RetryCount > 0
	ScheduledTime time.Time // when the alarm was due
}

// AlarmHandler is implemented by handlers that want alarms. Alarm runs
// through the object's mailbox like a request, never concurrently with one.
type AlarmHandler interface {
	Alarm(ctx context.Context, info AlarmInfo) error
}

// Factory builds the handler of one object. It is called on activation, and
// again after the handler panicked (the object restarts from its last
// committed state).
type Factory func(state *State) Handler

// State is what an object knows about itself.
type State struct {
	ns      string
	id      ID
	name    string
	storage storage.Storage
	o       *object // for BlockConcurrencyWhile and WaitUntil
}

// Namespace returns the object's namespace.
func (s *State) Namespace() string { return s.ns }

// ID returns the object's ID.
func (s *State) ID() ID { return s.id }

// Name returns the object's name, or "" if it was only ever addressed by a
// unique ID.
func (s *State) Name() string { return s.name }

// Storage returns the object's storage. It may only be used from within
// Handle or Alarm.
func (s *State) Storage() storage.Storage { return s.storage }
