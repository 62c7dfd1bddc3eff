package bus_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/opendo/opendo/bus"
)

func TestValidToken(t *testing.T) {
	for _, tok := range []string{"counter", "a-b_C9", strings.Repeat("x", 64)} {
		if err := bus.ValidToken(tok); err != nil {
			t.Errorf("ValidToken(%q) = %v", tok, err)
		}
	}
	for _, tok := range []string{"", "a.b", "*", ">", "a b", "é", "a\x00", strings.Repeat("x", 65)} {
		if err := bus.ValidToken(tok); !errors.Is(err, bus.ErrInvalidToken) {
			t.Errorf("ValidToken(%q) = %v, want ErrInvalidToken", tok, err)
		}
	}
}

// TestPartitionMatchesServerMapping checks that Subjects.Partition is the
// hash of nats-server's partition() mapping function, so that a server
// mapping can route requests by partition.
func TestPartitionMatchesServerMapping(t *testing.T) {
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	subj, err := bus.NewSubjects("", 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Server().GlobalAccount().AddMapping("opendo.req.*.*", "mapped.{{partition(64,1,2)}}.{{wildcard(1)}}.{{wildcard(2)}}"); err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("mapped.>")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		ns, id := "ns"+strconv.Itoa(i%3), strconv.Itoa(i*7919)
		if err := nc.Publish(subj.Request(ns, id), nil); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if want := "mapped." + strconv.Itoa(subj.Partition(ns, id)) + "." + ns + "." + id; m.Subject != want {
			t.Fatalf("server mapped to %s, Subjects.Partition says %s", m.Subject, want)
		}
	}
}

func TestEmbeddedSyncAndConnect(t *testing.T) {
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if !strings.HasPrefix(srv.URL(), "nats://127.0.0.1:") {
		t.Fatalf("URL %s is not on loopback", srv.URL())
	}
	t.Setenv("NATS_URL", srv.URL())
	nc, err := bus.Connect(bus.ConnectConfig{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := js.Publish("s", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := srv.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestResolveURL(t *testing.T) {
	t.Setenv("NATS_URL", "")
	if got := bus.ResolveURL(""); got != bus.DefaultURL {
		t.Errorf("ResolveURL = %s", got)
	}
	t.Setenv("NATS_URL", "nats://example:1")
	if got := bus.ResolveURL(""); got != "nats://example:1" {
		t.Errorf("ResolveURL with NATS_URL = %s", got)
	}
	if got := bus.ResolveURL("nats://x:2"); got != "nats://x:2" {
		t.Errorf("ResolveURL(explicit) = %s", got)
	}
}
