package natstest

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readyTimeout bounds how long Start and Restart wait for the server.
const readyTimeout = 10 * time.Second

// Option configures Start.
type Option func(*server.Options)

// WithStoreDir keeps the JetStream store in dir instead of a fresh
// t.TempDir(), so a later Start can reopen it.
func WithStoreDir(dir string) Option {
	return func(o *server.Options) { o.StoreDir = dir }
}

// WithSyncAlways makes JetStream fsync every message before acknowledging it
// (sync_interval: always), as the opendo dev server runs.
func WithSyncAlways() Option {
	return func(o *server.Options) { o.SyncAlways = true }
}

// WithUsers turns on user/password authentication with these users, each
// with its own permissions, in the server's global account (which has
// JetStream). Connect with ConnAs.
func WithUsers(users ...*server.User) Option {
	return func(o *server.Options) { o.Users = append(o.Users, users...) }
}

// Server is an embedded nats-server owned by a test.
type Server struct {
	opts server.Options // as last started; Port is the bound port

	mu struct {
		sync.Mutex
		srv   *server.Server
		conns []*nats.Conn // made by Conn, for Restart to wait on
	}
}

// Start starts a server and registers its shutdown with t.Cleanup. It fails
// the test if the server does not become ready.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		NoSigs:    true,
		NoLog:     true,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	s := &Server{opts: o}
	s.start(t)
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	o := s.opts // the server keeps a pointer; give it its own copy
	srv, err := server.NewServer(&o)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		t.Fatalf("natstest: server not ready after %v", readyTimeout)
	}
	// Pin the port so that Restart comes back where clients reconnect.
	if addr, ok := srv.Addr().(*net.TCPAddr); ok && s.opts.Port == server.RANDOM_PORT {
		s.opts.Port = addr.Port
	}
	s.mu.Lock()
	s.mu.srv = srv
	s.mu.Unlock()
}

// URL returns the client URL, e.g. "nats://127.0.0.1:4222". It stays the
// same across Restart.
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// NATS returns the running server (nil after Shutdown).
func (s *Server) NATS() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.srv
}

// Conn returns a new connection, closed in t.Cleanup. It reconnects forever,
// so it survives Restart.
func (s *Server) Conn(t testing.TB) *nats.Conn {
	t.Helper()
	return s.ConnWith(t)
}

// ConnAs returns a new connection (see Conn) authenticated as user.
func (s *Server) ConnAs(t testing.TB, user, password string) *nats.Conn {
	t.Helper()
	return s.ConnWith(t, nats.UserInfo(user, password))
}

// ConnWith returns a new connection (see Conn) with extra options.
func (s *Server) ConnWith(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{
		nats.Name(t.Name()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20 * time.Millisecond),
	}, opts...)
	nc, err := nats.Connect(s.URL(), opts...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	s.mu.Lock()
	s.mu.conns = append(s.mu.conns, nc)
	s.mu.Unlock()
	return nc
}

// JetStream returns a JetStream context on a new connection (see Conn).
func (s *Server) JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(s.Conn(t))
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return js
}

// Restart shuts the server down and starts it again on the same port and
// store directory. It returns once every open connection made by Conn has
// reconnected, so that no request is lost on a connection that has not yet
// noticed the restart.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	var conns []*nats.Conn
	var events []chan nats.Status
	for _, nc := range s.mu.conns {
		if !nc.IsClosed() {
			conns = append(conns, nc)
			events = append(events, nc.StatusChanged(nats.CONNECTED, nats.CLOSED))
		}
	}
	s.mu.Unlock()
	s.Shutdown()
	s.start(t)
	timeout := time.After(readyTimeout)
	for i, nc := range conns {
		select {
		case <-events[i]: // CONNECTED can only follow the disconnect
		case <-timeout:
			t.Fatalf("natstest: connection %d not reconnected after %v", i, readyTimeout)
		}
		nc.RemoveStatusListener(events[i])
	}
}

// Shutdown stops the server and waits until it is down. It is idempotent.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.mu.srv
	s.mu.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}
