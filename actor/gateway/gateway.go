package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/opendo/opendo/actor"
)

// Defaults of Config.
const (
	DefaultTimeout        = 35 * time.Second // the runtime's handler deadline (30 s) and some
	DefaultMaxHeaderBytes = 64 << 10
)

// CodeGatewayTimeout is the error code of a call that got no reply within
// Config.Timeout (504): the request may have run.
const CodeGatewayTimeout = "gateway_timeout"

// headerOverhead is room kept in a NATS message for the protocol's own
// headers (method, path, name, request ID) besides the caller's.
const headerOverhead = 8 << 10

// Config configures a gateway.
type Config struct {
	// Prefix and Partitions must match the runtimes'.
	Prefix     string
	Partitions int
	// Timeout bounds one call; default DefaultTimeout.
	Timeout time.Duration
	// MaxHeaderBytes bounds a request's headers (431 beyond); default
	// DefaultMaxHeaderBytes. Pass it to http.Server.MaxHeaderBytes too.
	MaxHeaderBytes int
	// Logger receives errors that reach no caller; default slog.Default().
	Logger *slog.Logger
}

// Gateway is an http.Handler that calls objects over NATS.
type Gateway struct {
	nc     *nats.Conn
	client *actor.Client
	cfg    Config
	log    *slog.Logger
}

// New returns a gateway calling objects over nc.
func New(nc *nats.Conn, cfg Config) (*Gateway, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c, err := actor.NewClient(nc, actor.ClientConfig{Prefix: cfg.Prefix, Partitions: cfg.Partitions, Timeout: cfg.Timeout})
	if err != nil {
		return nil, err
	}
	return &Gateway{nc: nc, client: c, cfg: cfg, log: cfg.Logger}, nil
}

// hopHeaders are not forwarded in either direction (RFC 9110, 7.6.1).
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// target is what a URL addresses.
type target struct {
	ns   string
	name string   // set for /<ns>/<name>/…
	id   actor.ID // set for /<ns>/@<id>/…
	path string   // "/" + the rest, with "?query" if any
}

// parseTarget splits /<ns>/<name>/<path…> and /<ns>/@<id>/<path…>. Each
// segment is split on the escaped path, so a name may hold "/" as %2F; a
// literal "@" starting the second segment marks an ID, and a name that
// begins with "@" is written %40….
func parseTarget(u *url.URL) (target, error) {
	raw := strings.TrimPrefix(u.EscapedPath(), "/")
	nsRaw, rest, _ := strings.Cut(raw, "/")
	objRaw, pathRaw, hasPath := strings.Cut(rest, "/")
	var t target
	var err error
	if t.ns, err = url.PathUnescape(nsRaw); err != nil || t.ns == "" {
		return t, actor.Errorf(http.StatusNotFound, actor.CodeUnknownNamespace, "no namespace in the URL: want /<namespace>/<name>/<path>")
	}
	if objRaw == "" {
		return t, actor.Errorf(http.StatusBadRequest, actor.CodeInvalidID, "no object in the URL: want /%s/<name>/<path> or /%s/@<id>/<path>", t.ns, t.ns)
	}
	if id, ok := strings.CutPrefix(objRaw, "@"); ok {
		if _, err := actor.ParseID(id); err != nil {
			return t, actor.Errorf(http.StatusBadRequest, actor.CodeInvalidID, "%v", err)
		}
		t.id = actor.ID(id)
	} else if t.name, err = url.PathUnescape(objRaw); err != nil {
		return t, actor.Errorf(http.StatusBadRequest, actor.CodeInvalidID, "object name: %v", err)
	}
	t.path = "/"
	if hasPath {
		t.path += pathRaw
	}
	if u.RawQuery != "" {
		t.path += "?" + u.RawQuery
	}
	if len(t.path) > actor.MaxPathLen {
		return t, actor.Errorf(http.StatusRequestURITooLong, actor.CodeBadRequest, "path longer than %d bytes", actor.MaxPathLen)
	}
	return t, nil
}

// ServeHTTP calls the object the URL names and writes its reply.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t, err := parseTarget(r.URL)
	if err != nil {
		writeError(w, err)
		return
	}
	if n := headerSize(r.Header); n > g.cfg.MaxHeaderBytes {
		writeError(w, actor.Errorf(http.StatusRequestHeaderFieldsTooLarge, actor.CodeTooLarge, "headers of %d bytes, max %d", n, g.cfg.MaxHeaderBytes))
		return
	}
	maxBody := g.maxBody(r.Header)
	if r.ContentLength > maxBody {
		writeError(w, actor.Errorf(http.StatusRequestEntityTooLarge, actor.CodeTooLarge, "body of %d bytes, max %d", r.ContentLength, maxBody))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, actor.Errorf(http.StatusRequestEntityTooLarge, actor.CodeTooLarge, "body over %d bytes", maxBody))
			return
		}
		writeError(w, actor.Errorf(http.StatusBadRequest, actor.CodeBadRequest, "reading the body: %v", err))
		return
	}
	req := &actor.Request{Method: r.Method, Path: t.path, Body: body, Header: requestHeader(r)}
	if id := r.Header.Get(actor.HeaderRequestID); id != "" {
		if err := actor.ValidRequestID(id); err != nil {
			writeError(w, actor.Errorf(http.StatusBadRequest, actor.CodeBadRequest, "header %s: %v", actor.HeaderRequestID, err))
			return
		}
		req.ID = id
	}
	ns := g.client.Namespace(t.ns)
	stub := ns.Get(t.name)
	if t.id != "" {
		stub = ns.ByID(t.id)
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.Timeout)
	defer cancel()
	resp, err := stub.Call(ctx, req)
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
			err = actor.Errorf(http.StatusGatewayTimeout, CodeGatewayTimeout, "no reply within %v; the request may have run", g.cfg.Timeout)
		case r.Context().Err() != nil:
			return // the caller went away
		case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting),
			errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrMaxPayload):
			err = actor.Errorf(http.StatusServiceUnavailable, actor.CodeUnavailable, "NATS: %v", err)
		}
		writeError(w, err)
		return
	}
	h := w.Header()
	for k, v := range resp.Header {
		if hopHeaders[textproto.CanonicalMIMEHeaderKey(k)] || isProtocolHeader(k) {
			continue
		}
		h[k] = v
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	if status < 200 || status > 599 {
		g.log.Warn("gateway: a handler answered an invalid status; sending 502", "status", status)
		writeError(w, actor.Errorf(http.StatusBadGateway, actor.CodeInternal, "the object answered status %d", status))
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(resp.Body)
	}
}

// maxBody is the largest body a request with these headers may carry: the
// server's max_payload less the headers and the protocol's own.
func (g *Gateway) maxBody(h http.Header) int64 {
	return g.nc.MaxPayload() - int64(headerSize(h)) - headerOverhead
}

// headerSize is the size of h as NATS headers.
func headerSize(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// isProtocolHeader reports opendo's own headers (Opendo-…), which a caller
// may not set and a handler's reply does not expose, except the request ID.
func isProtocolHeader(k string) bool {
	return len(k) >= 7 && strings.EqualFold(k[:7], "opendo-")
}

// requestHeader is the header the object sees: the caller's, without
// hop-by-hop and protocol headers, and with Host.
func requestHeader(r *http.Request) actor.Header {
	out := make(actor.Header, len(r.Header)+1)
	for k, v := range r.Header {
		if hopHeaders[k] || isProtocolHeader(k) {
			continue
		}
		out[k] = v
	}
	if r.Host != "" {
		out["Host"] = []string{r.Host}
	}
	return out
}

// writeError writes err as opendo's error reply over HTTP: its status, the
// code in Opendo-Error, the message as text.
func writeError(w http.ResponseWriter, err error) {
	var e *actor.Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, actor.ErrUnknownNamespace):
		e = &actor.Error{Status: http.StatusNotFound, Code: actor.CodeUnknownNamespace, Message: err.Error()}
	case errors.Is(err, actor.ErrInvalidName), errors.Is(err, actor.ErrInvalidID):
		e = &actor.Error{Status: http.StatusBadRequest, Code: actor.CodeInvalidID, Message: err.Error()}
	default:
		e = &actor.Error{Status: http.StatusBadGateway, Code: actor.CodeInternal, Message: err.Error()}
	}
	h := w.Header()
	h.Set(actor.HeaderError, e.Code)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	fmt.Fprintln(w, e.Message)
}
