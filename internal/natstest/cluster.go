package natstest

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ClusterName is the name of the clusters StartCluster forms.
const ClusterName = "opendo-test"

// clusterTimeout bounds how long StartCluster, Restart and WaitJetStream
// wait for routes and JetStream elections, which take seconds on a loaded
// machine.
const clusterTimeout = 30 * time.Second

// pollEvery is how often cluster state is polled while waiting for it.
const pollEvery = 20 * time.Millisecond

// Cluster is a group of embedded nats-servers joined by routes, with
// clustered JetStream, owned by a test.
type Cluster struct {
	servers []*Server // member i is servers[i]; its options keep its ports and store
	account string    // account whose streams WaitJetStream checks

	mu struct {
		sync.Mutex
		started map[string]time.Time // by server name: when it last started
	}
}

// StartCluster starts n servers clustered over routes on 127.0.0.1, each with
// JetStream in its own store directory (t.TempDir(), or WithStoreDir's
// directory joined with the server's name) and SyncAlways, and registers
// their shutdown with t.Cleanup. It returns once every server is ready and
// routed to every other one; call WaitJetStream before relying on
// JetStream. opts apply to every server.
func StartCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: cluster of %d servers", n)
	}
	// Routes name every member's cluster port up front, so pick them all
	// before starting any server; a member's route to itself is ignored.
	ports := freePorts(t, 2*n)
	routes := make([]string, n)
	for i := range n {
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(ports[n+i])
	}
	c := &Cluster{}
	c.mu.started = make(map[string]time.Time, n)
	t.Cleanup(c.shutdownAll)
	for i := range n {
		o := server.Options{
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			SyncAlways: true,
			NoSigs:     true,
			NoLog:      true,
		}
		for _, opt := range opts {
			opt(&o)
		}
		o.ServerName = fmt.Sprintf("S-%d", i+1)
		if o.Port == server.RANDOM_PORT {
			o.Port = ports[i]
		}
		if o.StoreDir == "" {
			o.StoreDir = t.TempDir()
		} else {
			o.StoreDir = filepath.Join(o.StoreDir, o.ServerName)
		}
		o.Cluster = server.ClusterOpts{Name: ClusterName, Host: "127.0.0.1", Port: ports[n+i]}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		s := &Server{opts: o}
		c.start(t, s)
		c.servers = append(c.servers, s)
	}
	c.account = c.servers[0].NATS().GlobalAccount().GetName()
	for i := range c.servers {
		c.waitRoutes(t, i)
	}
	return c
}

// freePorts returns n distinct ports free on 127.0.0.1 right now.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		// Hold every listener until all are picked, so no port repeats.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: free port: %v", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// Size returns the number of servers, running or not.
func (c *Cluster) Size() int { return len(c.servers) }

// Server returns member i. Its Shutdown stops it like Cluster.Shutdown;
// its Restart, unlike Cluster.Restart, does not wait for its routes.
func (c *Cluster) Server(i int) *Server { return c.servers[i] }

// URL returns the client URL of server i; it stays the same across Restart.
func (c *Cluster) URL(i int) string { return c.servers[i].URL() }

// URLs returns the client URLs of all servers, comma-separated, as
// nats.Connect takes them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.servers))
	for i, s := range c.servers {
		urls[i] = s.URL()
	}
	return strings.Join(urls, ",")
}

// Conn returns a new connection to the cluster (any server, failing over
// to the others), closed in t.Cleanup. It reconnects forever.
func (c *Cluster) Conn(t testing.TB) *nats.Conn {
	t.Helper()
	return c.ConnWith(t)
}

// ConnWith returns a new connection (see Conn) with extra options.
func (c *Cluster) ConnWith(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{
		nats.Name(t.Name()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20 * time.Millisecond),
	}, opts...)
	nc, err := nats.Connect(c.URLs(), opts...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Shutdown stops server i and waits until it is down, as a crash would
// (its clients and routes see the connection drop). It is idempotent.
func (c *Cluster) Shutdown(i int) { c.servers[i].Shutdown() }

// Restart starts server i again (stopping it first if it runs) on the same
// ports and store directory, and returns once it is ready and routed to
// every other running server. JetStream may still be electing or catching
// up: see WaitJetStream.
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	s := c.servers[i]
	s.Shutdown()
	c.start(t, s)
	c.waitRoutes(t, i)
}

func (c *Cluster) start(t testing.TB, s *Server) {
	t.Helper()
	at := time.Now()
	s.start(t)
	c.mu.Lock()
	c.mu.started[s.opts.ServerName] = at
	c.mu.Unlock()
}

// upFor returns how long the server called name has been running.
func (c *Cluster) upFor(name string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Since(c.mu.started[name])
}

func (c *Cluster) shutdownAll() {
	for _, s := range c.servers {
		s.Shutdown()
	}
}

// running returns the servers that run now.
func (c *Cluster) running() []*server.Server {
	var up []*server.Server
	for _, s := range c.servers {
		if srv := s.NATS(); srv != nil && srv.Running() {
			up = append(up, srv)
		}
	}
	return up
}

// waitRoutes waits until server i has a route to every other running
// server and they to it.
func (c *Cluster) waitRoutes(t testing.TB, i int) {
	t.Helper()
	c.waitFor(t, "routes", func() string {
		me := c.servers[i].NATS()
		if me == nil {
			return "server " + strconv.Itoa(i) + " is down"
		}
		for _, srv := range c.running() {
			if srv == me {
				continue
			}
			if !routed(srv, me.Name()) {
				return srv.Name() + " has no route to " + me.Name()
			}
			if !routed(me, srv.Name()) {
				return me.Name() + " has no route to " + srv.Name()
			}
		}
		return ""
	})
}

// routed reports whether srv has a route to the server called name.
func routed(srv *server.Server, name string) bool {
	rz, err := srv.Routez(nil)
	if err != nil {
		return false
	}
	for _, r := range rz.Routes {
		if r.RemoteName == name {
			return true
		}
	}
	return false
}

// WaitJetStream waits until JetStream has a meta leader, until each of
// streams (in the global account) has a leader, and until every running
// server is current with each of those leaders, as the leader sees it (a
// server that just restarted believes itself current before it has heard
// from a leader). It fails the test after 30 s.
func (c *Cluster) WaitJetStream(t testing.TB, streams ...string) {
	t.Helper()
	c.waitFor(t, "JetStream", func() string {
		up := c.running()
		var meta *server.Server
		for _, srv := range up {
			if srv.JetStreamIsLeader() {
				meta = srv
			}
		}
		if meta == nil {
			return "no meta leader"
		}
		jsi, err := meta.Jsz(&server.JSzOptions{})
		if err != nil || jsi.Meta == nil {
			return fmt.Sprintf("meta leader %s: no cluster info (%v)", meta.Name(), err)
		}
		if why := c.lagging(up, meta, jsi.Meta.Replicas); why != "" {
			return "meta group: " + why
		}
		for _, stream := range streams {
			if why := c.streamReady(up, stream); why != "" {
				return "stream " + stream + ": " + why
			}
		}
		return ""
	})
}

// streamReady tells why stream has no leader followed by every running
// server assigned to it, or "".
func (c *Cluster) streamReady(up []*server.Server, stream string) string {
	var leader *server.Server
	for _, srv := range up {
		if srv.JetStreamIsStreamLeader(c.account, stream) {
			leader = srv
		}
	}
	if leader == nil {
		return "no leader"
	}
	jsi, err := leader.Jsz(&server.JSzOptions{Account: c.account, Streams: true})
	if err != nil {
		return fmt.Sprintf("leader %s: %v", leader.Name(), err)
	}
	for _, ad := range jsi.AccountDetails {
		for _, sd := range ad.Streams {
			if sd.Name != stream {
				continue
			}
			if sd.Cluster == nil || sd.Cluster.Leader != leader.Name() {
				return "leader " + leader.Name() + " is stepping down"
			}
			var assigned []*server.Server
			for _, srv := range up {
				if srv.JetStreamIsStreamAssigned(c.account, stream) {
					assigned = append(assigned, srv)
				}
			}
			return c.lagging(assigned, leader, sd.Cluster.Replicas)
		}
	}
	return "not found on its leader " + leader.Name()
}

// lagging tells which of servers (other than leader) the leader does not
// see as a current replica, or "". A replica counts only once the leader
// has heard from it since it last started: until then the leader still
// shows what it knew of the replica before a restart.
func (c *Cluster) lagging(servers []*server.Server, leader *server.Server, replicas []*server.PeerInfo) string {
	for _, srv := range servers {
		if srv == leader {
			continue
		}
		i := slices.IndexFunc(replicas, func(p *server.PeerInfo) bool { return p.Name == srv.Name() })
		switch {
		case i < 0:
			return srv.Name() + " is not a replica yet"
		case replicas[i].Offline || !replicas[i].Current:
			return fmt.Sprintf("%s is not current (lag %d)", srv.Name(), replicas[i].Lag)
		case replicas[i].Active >= c.upFor(srv.Name()):
			return fmt.Sprintf("%s not heard from since it started", srv.Name())
		}
	}
	return ""
}

// waitFor polls check until it returns "" and fails the test with its last
// answer after clusterTimeout.
func (c *Cluster) waitFor(t testing.TB, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(clusterTimeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		why := check()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: cluster %s not ready after %v: %s", what, clusterTimeout, why)
		}
		<-tick.C
	}
}
