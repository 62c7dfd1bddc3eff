package alarms_test

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/alarms"
	"github.com/opendo/opendo/internal/natstest"
)

// delivery is one call of the Consume function.
type delivery struct {
	f   alarms.Firing
	at  time.Time // when fn was called
	ack func() error
}

// open opens Alarms on a fresh connection to srv, with the test's logger.
func open(t *testing.T, js jetstream.JetStream, cfg alarms.Config) *alarms.Alarms {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	a, err := alarms.Open(t.Context(), js, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return a
}

// startServer starts an embedded server and opens Alarms on it.
func startServer(t *testing.T, cfg alarms.Config, opts ...natstest.Option) (*natstest.Server, jetstream.JetStream, *alarms.Alarms) {
	t.Helper()
	srv := natstest.Start(t, opts...)
	js := srv.JetStream(t)
	return srv, js, open(t, js, cfg)
}

// consume starts consuming into a channel, stopped in t.Cleanup. With
// autoAck every firing is acknowledged as it arrives.
func consume(t *testing.T, a *alarms.Alarms, autoAck bool) <-chan delivery {
	t.Helper()
	ch := make(chan delivery, 10000)
	stop, err := a.Consume(t.Context(), func(f alarms.Firing, ack func() error, _ func(time.Duration) error) {
		d := delivery{f: f, at: time.Now(), ack: ack}
		if autoAck {
			if err := ack(); err != nil {
				t.Errorf("ack %v: %v", f, err)
			}
		}
		ch <- d
	})
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	t.Cleanup(stop)
	return ch
}

// next returns the next delivery, failing the test after timeout.
func next(t *testing.T, ch <-chan delivery, timeout time.Duration) delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(timeout):
		t.Fatalf("no firing within %v", timeout)
		return delivery{}
	}
}

// streamMsgs returns how many messages the alarm stream holds.
func streamMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), alarms.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// waitStreamMsgs waits until the alarm stream holds want messages (acks are
// asynchronous).
func waitStreamMsgs(t *testing.T, js jetstream.JetStream, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := streamMsgs(t, js)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream holds %d messages, want %d", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testLogger logs to t.Log until the test's cleanup; later logs (say,
// from a consumer noticing the server shut down) are dropped.
func testLogger(t *testing.T) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	t *testing.T

	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimSpace(p)))
	}
	return len(p), nil
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
