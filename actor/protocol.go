package actor

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/opendo/opendo/storage"
)

// Headers of the wire protocol (docs/protocol.md).
const (
	HeaderMethod    = "Opendo-Method"
	HeaderPath      = "Opendo-Path"
	HeaderRequestID = "Opendo-Request-Id"
	HeaderName      = "Opendo-Name"
	HeaderID        = "Opendo-Id"
	HeaderStatus    = "Opendo-Status"
	HeaderError     = "Opendo-Error"
	// HeaderHops counts how often a request was forwarded between the
	// nodes of a deployment (set by the runtime; docs/cluster.md).
	HeaderHops = "Opendo-Hops"
	// HeaderReply carries the caller's reply subject on a forwarded
	// request, whose own reply subject is the forwarding node's (so that
	// it learns when the owner is gone; docs/cluster.md).
	HeaderReply = "Opendo-Reply"
)

// MaxPathLen bounds the Opendo-Path header.
const MaxPathLen = 4096

// decodeRequest turns a NATS message into a Request. It validates only
// what the protocol fixes; the body is the message data.
func decodeRequest(m *nats.Msg) (*Request, error) {
	req := &Request{Method: "POST", Body: m.Data}
	for k, v := range m.Header {
		switch k {
		case HeaderMethod:
			if len(v) > 0 && v[0] != "" {
				req.Method = v[0]
			}
		case HeaderPath:
			if len(v) > 0 {
				req.Path = v[0]
			}
		case HeaderRequestID:
			if len(v) > 0 {
				req.ID = v[0]
			}
		case HeaderName, HeaderID, HeaderHops, HeaderReply:
		default:
			if req.Header == nil {
				req.Header = make(Header, len(m.Header))
			}
			req.Header[k] = v
		}
	}
	if len(req.Path) > MaxPathLen {
		return nil, Errorf(http.StatusBadRequest, CodeBadRequest, "path longer than %d bytes", MaxPathLen)
	}
	if len(req.Method) > 64 {
		return nil, Errorf(http.StatusBadRequest, CodeBadRequest, "method longer than 64 bytes")
	}
	if req.ID != "" {
		if err := ValidRequestID(req.ID); err != nil {
			return nil, Errorf(http.StatusBadRequest, CodeBadRequest, "header %s: %v", HeaderRequestID, err)
		}
	}
	return req, nil
}

// encodeResponse builds the reply message for resp.
func encodeResponse(subject string, resp *Response) *nats.Msg {
	m := &nats.Msg{Subject: subject, Data: resp.Body}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	if status != http.StatusOK || len(resp.Header) > 0 {
		m.Header = make(nats.Header, len(resp.Header)+1)
		for k, v := range resp.Header {
			m.Header[k] = v
		}
		if status != http.StatusOK {
			m.Header.Set(HeaderStatus, strconv.Itoa(status))
		}
	}
	return m
}

// encodeError builds the error reply for err.
func encodeError(subject string, err error) *nats.Msg {
	e := toError(err)
	m := &nats.Msg{Subject: subject, Header: nats.Header{}, Data: []byte(e.Message)}
	m.Header.Set(HeaderStatus, strconv.Itoa(e.Status))
	m.Header.Set(HeaderError, e.Code)
	return m
}

// toError maps any error to an *Error with a stable code.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	status, code := http.StatusInternalServerError, CodeHandlerError
	switch {
	case errors.Is(err, storage.ErrKeyTooLarge), errors.Is(err, storage.ErrValueTooLarge),
		errors.Is(err, storage.ErrTooManyKeys), errors.Is(err, storage.ErrLimitExceeded):
		status, code = http.StatusBadRequest, CodeLimitExceeded
	case errors.Is(err, storage.ErrInvalidArgument), errors.Is(err, storage.ErrInvalidState),
		errors.Is(err, storage.ErrSQL), errors.Is(err, storage.ErrForbiddenSQL),
		errors.Is(err, storage.ErrReservedName), errors.Is(err, storage.ErrNotFound),
		errors.Is(err, storage.ErrMultipleRows), errors.Is(err, storage.ErrInvalidBookmark),
		errors.Is(err, storage.ErrBookmarkExpired):
		status, code = http.StatusBadRequest, CodeInvalidArgument
	case errors.Is(err, storage.ErrTransactionTooLarge):
		status, code = http.StatusRequestEntityTooLarge, CodeTooLarge
	case errors.Is(err, ErrInvalidID), errors.Is(err, ErrInvalidName):
		status, code = http.StatusBadRequest, CodeInvalidID
	case errors.Is(err, ErrUnknownNamespace):
		status, code = http.StatusNotFound, CodeUnknownNamespace
	case errors.Is(err, ErrClosed):
		status, code = http.StatusServiceUnavailable, CodeUnavailable
	}
	return &Error{Status: status, Code: code, Message: err.Error()}
}

// decodeReply turns a reply message into a Response or an *Error.
func decodeReply(m *nats.Msg) (*Response, error) {
	status := http.StatusOK
	if s := m.Header.Get(HeaderStatus); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, &Error{Status: http.StatusBadGateway, Code: CodeInternal, Message: "bad status header " + strconv.Quote(s)}
		}
		status = n
	}
	if code := m.Header.Get(HeaderError); code != "" {
		return nil, &Error{Status: status, Code: code, Message: string(m.Data)}
	}
	if m.Header.Get("Status") == "503" { // NATS no-responders
		return nil, &Error{Status: http.StatusNotFound, Code: CodeUnknownNamespace, Message: "no running opendo runtime serves this subject; the request was not run"}
	}
	resp := &Response{Status: status, Body: m.Data}
	for k, v := range m.Header {
		if k == HeaderStatus {
			continue
		}
		if resp.Header == nil {
			resp.Header = make(Header, len(m.Header))
		}
		resp.Header[k] = v
	}
	return resp, nil
}
