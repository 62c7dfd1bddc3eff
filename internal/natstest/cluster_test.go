package natstest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/internal/natstest"
)

// TestClusterSurvivesServerRestart: an R3 stream keeps taking writes with
// one server of three down, and the restarted server (same ports, same
// store) catches up; a cluster started again on the same store directories
// still has the stream.
func TestClusterSurvivesServerRestart(t *testing.T) {
	dir := t.TempDir()
	c := natstest.StartCluster(t, 3, natstest.WithStoreDir(dir))
	if got := strings.Count(c.URLs(), ",") + 1; got != 3 || c.Size() != 3 {
		t.Fatalf("URLs() = %q (%d URLs), Size() = %d; want 3", c.URLs(), got, c.Size())
	}
	for i := range c.Size() {
		if !strings.HasPrefix(c.URL(i), "nats://127.0.0.1:") {
			t.Errorf("URL(%d) = %q, want a loopback URL", i, c.URL(i))
		}
	}
	c.WaitJetStream(t)
	js, err := jetstream.New(c.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	c.WaitJetStream(t, "S")

	url0 := c.URL(0)
	c.Shutdown(0)
	c.Shutdown(0)           // idempotent
	c.WaitJetStream(t, "S") // a new leader, if server 0 led
	if _, err := js.Publish(ctx, "s.1", []byte("with two of three")); err != nil {
		t.Fatalf("publish with server 0 down: %v", err)
	}
	c.Restart(t, 0)
	if c.URL(0) != url0 {
		t.Errorf("URL(0) changed from %s to %s", url0, c.URL(0))
	}
	c.WaitJetStream(t, "S")

	// Read from the restarted server alone: it caught up on the write it missed.
	nc0, err := nats.Connect(c.URL(0), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc0.Close()
	js0, err := jetstream.New(nc0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js0.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
	if !c.Server(0).NATS().JetStreamIsStreamCurrent(c.Server(0).NATS().GlobalAccount().GetName(), "S") {
		t.Error("restarted server 0 is not current on stream S")
	}
	nc0.Close()

	// The same store directories make the same cluster again.
	for i := range c.Size() {
		c.Shutdown(i)
	}
	again := natstest.StartCluster(t, 3, natstest.WithStoreDir(dir))
	again.WaitJetStream(t, "S")
	js2, err := jetstream.New(again.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := js2.Stream(ctx, "S")
	if err != nil {
		t.Fatalf("stream lost with the store dirs: %v", err)
	}
	m, err := s2.GetLastMsgForSubject(ctx, "s.1")
	if err != nil || string(m.Data) != "with two of three" {
		t.Fatalf("after a cluster restart: %v, %v", m, err)
	}
}
