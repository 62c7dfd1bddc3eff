package actor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/opendo/opendo/bus"
)

// ClientConfig configures a Client. Prefix and Partitions must match the
// runtime's.
type ClientConfig struct {
	Prefix     string
	Partitions int
	// Timeout applies to calls whose context has no deadline; default 30 s.
	Timeout time.Duration
}

// Client calls objects over NATS. It is safe for concurrent use.
type Client struct {
	nc      *nats.Conn
	subj    bus.Subjects
	timeout time.Duration
}

// NewClient returns a client that uses nc.
func NewClient(nc *nats.Conn, cfg ClientConfig) (*Client, error) {
	subj, err := bus.NewSubjects(cfg.Prefix, cfg.Partitions)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &Client{nc: nc, subj: subj, timeout: cfg.Timeout}, nil
}

// NamespaceClient addresses the objects of one namespace.
type NamespaceClient struct {
	c  *Client
	ns string
}

// Namespace returns a client for namespace ns. An invalid namespace makes
// every call fail with ErrUnknownNamespace.
func (c *Client) Namespace(ns string) *NamespaceClient { return &NamespaceClient{c: c, ns: ns} }

// Stub calls one object.
type Stub struct {
	c    *Client
	ns   string
	id   ID
	name string
	err  error
}

// Get returns the stub of the object called name.
func (n *NamespaceClient) Get(name string) *Stub {
	s := &Stub{c: n.c, ns: n.ns, name: name}
	if err := bus.ValidToken(n.ns); err != nil {
		s.err = fmt.Errorf("%w: %v", ErrUnknownNamespace, err)
	} else if err := ValidName(name); err != nil {
		s.err = err
	} else {
		s.id = NameID(n.ns, name)
	}
	return s
}

// ByID returns the stub of the object with the given ID.
func (n *NamespaceClient) ByID(id ID) *Stub {
	s := &Stub{c: n.c, ns: n.ns, id: id}
	if err := bus.ValidToken(n.ns); err != nil {
		s.err = fmt.Errorf("%w: %v", ErrUnknownNamespace, err)
	} else if _, err := ParseID(string(id)); err != nil {
		s.err = err
	}
	return s
}

// ID returns the object's ID.
func (s *Stub) ID() ID { return s.id }

// Call sends req to the object and waits for its reply. An error reply is
// returned as an *Error (use errors.As) with a stable Code.
func (s *Stub) Call(ctx context.Context, req *Request) (*Response, error) {
	if s.err != nil {
		return nil, s.err
	}
	m := nats.NewMsg(s.c.subj.Request(s.ns, string(s.id)))
	m.Data = req.Body
	for k, v := range req.Header {
		m.Header[k] = v
	}
	if req.Method != "" {
		m.Header.Set(HeaderMethod, req.Method)
	}
	if req.Path != "" {
		m.Header.Set(HeaderPath, req.Path)
	}
	if req.ID != "" {
		m.Header.Set(HeaderRequestID, req.ID)
	}
	if s.name != "" {
		m.Header.Set(HeaderName, s.name)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.c.timeout)
		defer cancel()
	}
	reply, err := s.c.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			// Runtimes subscribe only to the namespaces they registered.
			return nil, &Error{Status: http.StatusNotFound, Code: CodeUnknownNamespace, Message: "no running opendo runtime serves namespace " + strconv.Quote(s.ns) + "; the request was not run"}
		}
		return nil, err
	}
	return decodeReply(reply)
}

// Do is Call with a path and a body.
func (s *Stub) Do(ctx context.Context, path string, body []byte) (*Response, error) {
	return s.Call(ctx, &Request{Path: path, Body: body})
}
