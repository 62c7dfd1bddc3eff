package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/bus"
)

// clusterName is the NATS cluster name of `opendo cluster`.
const clusterName = "opendo-local"

// runCluster starts a local cluster for trying failover by hand: NATS
// servers clustered over routes, in this process, and runtime nodes, each
// an `opendo serve` child process that can be killed on its own.
func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster", stderr, "cluster [flags]")
	servers := fs.Int("servers", 3, "NATS servers (clustered, JetStream replicated over all of them)")
	nodes := fs.Int("nodes", 3, "runtime nodes (opendo serve processes)")
	port := fs.Int("port", 4222, "client port of the first NATS server; the others take the next ones, routes port+1000 on (0 = free ports)")
	data := fs.String("data", "./.opendo-cluster", "data directory (servers' stores and nodes' object files)")
	leaseTTL := fs.Duration("lease-ttl", actor.DefaultLeaseTTL, "nodes' lease TTL: how soon the others take a dead node's objects")
	logLevel := fs.String("log-level", "warn", "log level of servers' nodes")
	streams := fs.Int("journal-streams", 0, "streams the journal of a new cluster is spread over (default: one per server)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"cluster takes no arguments"}
	}
	if *servers < 1 || *servers > 9 || *nodes < 1 || *nodes > 9 {
		return usageError{"-servers and -nodes must be between 1 and 9"}
	}
	if _, err := newLogger(io.Discard, *logLevel); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the opendo binary to start nodes: %w", err)
	}
	if err := os.MkdirAll(*data, 0o755); err != nil {
		return err
	}
	unlock, err := lockDataDir(*data)
	if err != nil {
		if errors.Is(err, errDataDirLocked) {
			return fmt.Errorf("%s is in use by another opendo cluster: %w", *data, err)
		}
		return err
	}
	defer unlock()

	urls, stop, err := startLocalNATS(ctx, *data, *servers, *port)
	if err != nil {
		return err
	}
	defer stop()
	all := strings.Join(urls, ",")
	replicas := min(3, *servers)
	if *streams == 0 {
		*streams = *servers
	}

	var wg sync.WaitGroup
	procs := make([]*exec.Cmd, *nodes)
	defer func() {
		for _, p := range procs {
			if p != nil && p.Process != nil {
				_ = p.Process.Signal(syscall.SIGTERM)
			}
		}
		wg.Wait()
	}()
	ready := make(chan int, *nodes)
	exited := make(chan string, *nodes)
	for i := range *nodes {
		id := "node-" + strconv.Itoa(i+1)
		nargs := []string{"serve", "-nats", all, "-data", filepath.Join(*data, id), "-node-id", id,
			"-replicas", strconv.Itoa(replicas), "-journal-streams", strconv.Itoa(*streams),
			"-lease-ttl", leaseTTL.String(), "-log-level", *logLevel}
		cmd := exec.Command(exe, nargs...)
		outR, outW := io.Pipe()
		cmd.Stdout, cmd.Stderr = outW, outW
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", id, err)
		}
		procs[i] = cmd
		wg.Add(2)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(outR)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				line := sc.Text()
				if line == "ready" {
					ready <- i
					continue
				}
				fmt.Fprintf(stderr, "[%s] %s\n", id, line)
			}
			_, _ = io.Copy(io.Discard, outR)
		}()
		go func() {
			defer wg.Done()
			err := cmd.Wait()
			_ = outW.Close()
			how := "exited"
			if err != nil {
				how = err.Error()
			}
			exited <- fmt.Sprintf("%s (pid %d) %s; start it again with:\n  %s %s", id, cmd.Process.Pid, how, exe, strings.Join(nargs, " "))
		}()
	}
	for range *nodes {
		select {
		case <-ready:
		case msg := <-exited:
			return errors.New("a node stopped before it was ready: " + msg)
		case <-ctx.Done():
			return nil
		}
	}

	fmt.Fprintf(stdout, "opendo cluster: %d NATS servers %s (streams of %d replicas), data in %s\n", *servers, all, replicas, *data)
	for i, p := range procs {
		fmt.Fprintf(stdout, "  node-%d pid %d\n", i+1, p.Process.Pid)
	}
	fmt.Fprintf(stdout, "try:\n  go run ./cmd/opendo call -server %s counter my-counter incr\n", all)
	fmt.Fprintf(stdout, "  kill -9 %d    # node-1 dies: within about %v its objects answer from the others\n", procs[0].Process.Pid, *leaseTTL+time.Second)
	fmt.Fprintf(stdout, "ready\n")
	for {
		select {
		case msg := <-exited:
			fmt.Fprintln(stdout, msg)
		case <-ctx.Done():
			return nil
		}
	}
}

// startLocalNATS starts n embedded NATS servers on 127.0.0.1, clustered
// over routes when n > 1 (client ports from port on, routes port+1000 on;
// port 0 = free ports), each storing in dir/nats-<i>, and waits until they
// elected a JetStream meta leader. stop shuts them down.
func startLocalNATS(ctx context.Context, dir string, n, port int) (urls []string, stop func(), err error) {
	clientPorts, routePorts, err := clusterPorts(port, n)
	if err != nil {
		return nil, nil, err
	}
	routes := make([]string, n)
	for i, p := range routePorts {
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(p)
	}
	var srvs []*bus.Embedded
	stop = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range srvs {
			_ = s.Shutdown(sctx)
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	for i := range n {
		name := "nats-" + strconv.Itoa(i+1)
		cfg := bus.EmbeddedConfig{
			Name:     name,
			Addr:     "127.0.0.1:" + strconv.Itoa(clientPorts[i]),
			StoreDir: filepath.Join(dir, name),
		}
		if n > 1 {
			cfg.Cluster = &bus.EmbeddedCluster{Name: clusterName, Addr: "127.0.0.1:" + strconv.Itoa(routePorts[i]), Routes: routes}
		}
		s, err := bus.StartEmbedded(cfg)
		if err != nil {
			return nil, nil, err
		}
		srvs = append(srvs, s)
		urls = append(urls, s.URL())
	}
	if err := waitMetaLeader(ctx, srvs); err != nil {
		return nil, nil, err
	}
	return urls, stop, nil
}

// clusterPorts returns the client and route ports of n servers: from first
// on (routes first+1000 on), or free ports if first is 0.
func clusterPorts(first, n int) (client, route []int, err error) {
	if first != 0 {
		for i := range n {
			client = append(client, first+i)
			route = append(route, first+1000+i)
		}
		return client, route, nil
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range 2 * n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ls = append(ls, l)
	}
	for i, l := range ls {
		p := l.Addr().(*net.TCPAddr).Port
		if i < n {
			client = append(client, p)
		} else {
			route = append(route, p)
		}
	}
	return client, route, nil
}

// waitMetaLeader waits until every server knows the JetStream meta leader,
// so that the nodes can create their replicated streams.
func waitMetaLeader(ctx context.Context, srvs []*bus.Embedded) error {
	if len(srvs) < 2 {
		return nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		known := 0
		for _, s := range srvs {
			if jsz, err := s.Server().Jsz(&server.JSzOptions{}); err == nil && jsz.Meta != nil && jsz.Meta.Leader != "" {
				known++
			}
		}
		if known == len(srvs) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the NATS servers elected no JetStream leader within 60 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
