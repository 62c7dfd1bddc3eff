package actor_test

import (
	"strconv"
	"testing"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/alarms"
	"github.com/opendo/opendo/examples/counter"
	"github.com/opendo/opendo/internal/natstest"
)

// startWith starts a runtime on srv that hosts only the given namespaces.
func startWith(t *testing.T, srv *natstest.Server, factories map[string]actor.Factory) *actor.Runtime {
	t.Helper()
	rt, err := actor.New(actor.Config{Conn: srv.Conn(t), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for ns, f := range factories {
		if err := rt.Register(ns, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeRuntime(t, rt) })
	return rt
}

// TestNamespacesShareOneNATS: runtimes that host different namespaces on
// one NATS receive only their own requests and firings, so every call
// succeeds (before, every runtime subscribed to every namespace in one
// queue group, and about half of the calls to a user's own namespace
// beside `opendo dev` failed with unknown_namespace).
func TestNamespacesShareOneNATS(t *testing.T) {
	srv := natstest.Start(t)
	startWith(t, srv, map[string]actor.Factory{counter.Namespace: counter.New})
	startWith(t, srv, map[string]actor.Factory{"todo": probe})
	c, err := actor.NewClient(srv.Conn(t), actor.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		got, err := c.Namespace(counter.Namespace).Get("c").Do(t.Context(), "incr", nil)
		if err != nil {
			t.Fatalf("call %d to counter: %v", i, err)
		}
		if want := strconv.Itoa(i + 1); string(got.Body) != want {
			t.Fatalf("counter = %s, want %s", got.Body, want)
		}
		if _, err := c.Namespace("todo").Get("list").Do(t.Context(), "put", []byte("k"+strconv.Itoa(i)+"=v")); err != nil {
			t.Fatalf("call %d to todo: %v", i, err)
		}
	}
	// A namespace nobody hosts is named in the error.
	_, err = c.Namespace("nope").Get("x").Do(t.Context(), "incr", nil)
	wantCode(t, err, actor.CodeUnknownNamespace)

	// Each namespace has its own alarm consumer; the catch-all one of
	// earlier versions is gone (the alarm stream is a work queue, whose
	// consumers may not overlap).
	js := srv.JetStream(t)
	for _, name := range []string{alarms.DefaultConsumer + "-" + counter.Namespace, alarms.DefaultConsumer + "-todo"} {
		if _, err := js.Consumer(t.Context(), alarms.DefaultStream, name); err != nil {
			t.Errorf("consumer %s: %v", name, err)
		}
	}
	if _, err := js.Consumer(t.Context(), alarms.DefaultStream, alarms.DefaultConsumer); err == nil {
		t.Errorf("the catch-all consumer %s exists", alarms.DefaultConsumer)
	}
}
