package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedConfig configures an in-process nats-server.
type EmbeddedConfig struct {
	// Addr is host:port to listen on; default 127.0.0.1:4222. Port 0 or -1
	// picks a free port. Use a non-loopback host only on purpose.
	Addr string
	// StoreDir holds JetStream data (required).
	StoreDir string
	// SyncAlways makes JetStream fsync every message before acknowledging
	// it (server-wide). Otherwise the server's default applies: written to
	// the OS at once, fsync'd every 2 minutes.
	SyncAlways bool
	// MaxPayload is the largest message; default 8 MiB.
	MaxPayload int32
	// Debug turns on the server's own logging.
	Debug bool
	// Name is the server's name; default "opendo-dev". The servers of a
	// cluster need distinct names.
	Name string
	// Cluster, if set, makes the server a member of a NATS cluster with
	// clustered JetStream (streams of up to as many replicas as servers).
	Cluster *EmbeddedCluster
}

// EmbeddedCluster is the cluster membership of an embedded server.
type EmbeddedCluster struct {
	// Name is the cluster's name, the same on every member (required).
	Name string
	// Addr is host:port where the server takes routes from the others.
	Addr string
	// Routes are the other members' route URLs (nats-route://host:port);
	// a route to the server itself is ignored, so every member may be given
	// the same list.
	Routes []string
}

// Embedded is a running in-process nats-server with JetStream.
type Embedded struct {
	srv    *server.Server
	syncer *storeSyncer
}

// StartEmbedded starts a nats-server in this process and waits until it
// accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("bus: embedded server needs a StoreDir")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:4222"
	}
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("bus: addr %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("bus: addr %q: bad port", cfg.Addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = 8 << 20
	}
	if cfg.Name == "" {
		cfg.Name = "opendo-dev"
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		SyncAlways: cfg.SyncAlways,
		MaxPayload: cfg.MaxPayload,
		NoSigs:     true,
		NoLog:      !cfg.Debug,
	}
	if c := cfg.Cluster; c != nil {
		chost, cport, err := net.SplitHostPort(c.Addr)
		if err != nil {
			return nil, fmt.Errorf("bus: cluster addr %q: %w", c.Addr, err)
		}
		opts.Cluster.Name = c.Name
		opts.Cluster.Host = chost
		if opts.Cluster.Port, err = strconv.Atoi(cport); err != nil {
			return nil, fmt.Errorf("bus: cluster addr %q: bad port", c.Addr)
		}
		opts.Routes = server.RoutesFromStr(strings.Join(c.Routes, ","))
	}
	// A busy port is told at once, not after the server's readiness wait.
	if opts.Port > 0 {
		if err := portFree(net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))); err != nil {
			return nil, err
		}
	}
	if opts.Cluster.Port > 0 {
		if err := portFree(net.JoinHostPort(opts.Cluster.Host, strconv.Itoa(opts.Cluster.Port))); err != nil {
			return nil, err
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	if cfg.Debug {
		srv.ConfigureLogger()
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("bus: embedded server on %s not ready (port in use?)", cfg.Addr)
	}
	return &Embedded{srv: srv, syncer: newStoreSyncer(cfg.StoreDir)}, nil
}

// portFree reports an error if addr cannot be listened on now (another
// server has it).
func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("bus: cannot listen on %s: %w (another opendo dev or nats-server? choose another address)", addr, err)
	}
	return l.Close()
}

// Sync flushes every message the server has stored so far to stable
// storage: it fsyncs the message blocks written since the previous Sync.
// With it, a group of acknowledged JetStream messages costs one fsync per
// block file instead of one per message (SyncAlways): a runtime calls it
// after appends are acknowledged and before it releases their replies
// (actor.Config.Sync). Concurrent calls are serialized.
func (e *Embedded) Sync() error {
	if err := e.syncer.sync(); err != nil {
		return fmt.Errorf("bus: sync store: %w", err)
	}
	return nil
}

// URL returns the client URL (nats://host:port).
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Server returns the nats-server.
func (e *Embedded) Server() *server.Server { return e.srv }

// Connect returns an in-process connection (no TCP) to the server.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	return nats.Connect("", nats.InProcessServer(e.srv), nats.Name(name), nats.MaxReconnects(-1))
}

// Shutdown stops the server and waits until it is down or ctx ends.
func (e *Embedded) Shutdown(ctx context.Context) error {
	e.srv.Shutdown()
	defer e.syncer.close()
	done := make(chan struct{})
	go func() { e.srv.WaitForShutdown(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
