package natstest_test

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/internal/natstest"
)

func TestRestartKeepsStreamsAndConnections(t *testing.T) {
	dir := t.TempDir()
	srv := natstest.Start(t, natstest.WithStoreDir(dir), natstest.WithSyncAlways())
	url := srv.URL()
	js := srv.JetStream(t)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "s.1", []byte("kept")); err != nil {
		t.Fatal(err)
	}

	srv.Restart(t)
	if srv.URL() != url {
		t.Errorf("URL changed from %s to %s", url, srv.URL())
	}
	s, err := js.Stream(t.Context(), "S") // on the reconnected connection
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(t.Context(), "s.1")
	if err != nil || string(m.Data) != "kept" {
		t.Fatalf("after restart: %v, %v", m, err)
	}

	// A second server on the same store, after the first is gone.
	srv.Shutdown()
	srv.Shutdown() // idempotent
	again := natstest.Start(t, natstest.WithStoreDir(dir))
	if _, err := again.JetStream(t).Stream(t.Context(), "S"); err != nil {
		t.Fatalf("stream lost with the store dir: %v", err)
	}
	if nc := again.Conn(t); nc.ConnectedUrl() == "" || !nc.IsConnected() {
		t.Fatal("not connected")
	}
}
