package bus_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/opendo/opendo/bus"
	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/internal/syncbuf"
)

// TestConnectLogsDisconnects: operators see a connection drop and come
// back in the logs.
func TestConnectLogsDisconnects(t *testing.T) {
	srv := natstest.Start(t)
	var buf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	nc, err := bus.Connect(bus.ConnectConfig{URL: srv.URL(), Name: "test-node", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	srv.Restart(t)
	// The handlers run on the connection's callback goroutine, soon after.
	deadline := time.Now().Add(10 * time.Second)
	for _, want := range []string{`msg="nats disconnected" conn=test-node`, `msg="nats reconnected" conn=test-node url=nats://127.0.0.1:`} {
		for !strings.Contains(buf.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("log lacks %q:\n%s", want, buf.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestEmbeddedListensOnLoopbackByDefault: an address without a host binds
// 127.0.0.1, never every interface (opendo dev's -addr defaults to
// 127.0.0.1:4222; see TestDevDefaultsToLoopback in cmd/opendo).
func TestEmbeddedListensOnLoopbackByDefault(t *testing.T) {
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Addr: ":0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if !strings.HasPrefix(srv.URL(), "nats://127.0.0.1:") {
		t.Fatalf("URL %s: not bound to loopback", srv.URL())
	}
}

// TestEmbeddedBusyPort: a port in use is reported at once, clearly.
func TestEmbeddedBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = bus.StartEmbedded(bus.EmbeddedConfig{Addr: l.Addr().String(), StoreDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("start on a busy port: %v", err)
	}
}
