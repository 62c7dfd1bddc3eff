package actortest_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/actor/actortest"
	"github.com/opendo/opendo/examples/counter"
	"github.com/opendo/opendo/storage"
)

// TestKit: calls over NATS, direct reads and writes of an object's storage,
// and an alarm fired on demand with the test's clock.
func TestKit(t *testing.T) {
	env := actortest.New(t, func(rt *actor.Runtime) error {
		if err := rt.Register(counter.Namespace, counter.New); err != nil {
			return err
		}
		return rt.Register("alarmed", newAlarmed)
	})
	for want := 1; want <= 2; want++ {
		resp, err := env.Get(counter.Namespace, "a").Do(t.Context(), "incr", nil)
		if err != nil || string(resp.Body) != strconv.Itoa(want) {
			t.Fatalf("incr: %v %v", resp, err)
		}
	}
	// What the handler wrote, read from inside the object; then a write.
	var keys []string
	err := env.Run(counter.Namespace, "a", func(ctx context.Context, st storage.Storage) error {
		entries, err := st.List(ctx, storage.ListOptions{})
		for _, e := range entries {
			keys = append(keys, e.Key)
		}
		if err != nil {
			return err
		}
		return storage.PutInt(ctx, st, keys[0], 41)
	})
	if err != nil || len(keys) != 1 {
		t.Fatalf("run: %v, keys %v", err, keys)
	}
	if resp, err := env.Get(counter.Namespace, "a").Do(t.Context(), "incr", nil); err != nil || string(resp.Body) != "42" {
		t.Fatalf("incr after the direct write: %v %v", resp, err)
	}
	// A failing Run keeps none of its writes.
	boom := errors.New("boom")
	if err := env.Run(counter.Namespace, "a", func(ctx context.Context, st storage.Storage) error {
		if err := storage.PutInt(ctx, st, keys[0], 0); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failing run: %v", err)
	}
	if resp, _ := env.Get(counter.Namespace, "a").Do(t.Context(), "get", nil); string(resp.Body) != "42" {
		t.Fatalf("after a failing run: %s", resp.Body)
	}

	// An alarm an hour ahead runs now, without waiting an hour.
	if _, err := env.Get("alarmed", "x").Do(t.Context(), "arm", nil); err != nil {
		t.Fatal(err)
	}
	if ran, err := env.RunAlarm("alarmed", "x"); err != nil || !ran {
		t.Fatalf("RunAlarm: %v, %v", ran, err)
	}
	if resp, _ := env.Get("alarmed", "x").Do(t.Context(), "fired", nil); string(resp.Body) != "1" {
		t.Fatalf("alarm fired %s times, want 1", resp.Body)
	}
	if ran, err := env.RunAlarm("alarmed", "x"); err != nil || ran {
		t.Fatalf("second RunAlarm: %v, %v (no alarm left)", ran, err)
	}
}

// alarmed sets an alarm an hour ahead and counts its firings.
type alarmed struct{ state *actor.State }

func newAlarmed(state *actor.State) actor.Handler { return &alarmed{state} }

func (a *alarmed) Handle(ctx context.Context, req *actor.Request) (*actor.Response, error) {
	st := a.state.Storage()
	switch req.Path {
	case "arm":
		return actor.Text("ok"), st.SetAlarm(ctx, time.Now().Add(time.Hour))
	case "fired":
		n, _, err := storage.GetInt(ctx, st, "fired")
		return actor.Text(strconv.FormatInt(n, 10)), err
	}
	return nil, actor.Errorf(404, "not_found", "no path %s", req.Path)
}

func (a *alarmed) Alarm(ctx context.Context, _ actor.AlarmInfo) error {
	st := a.state.Storage()
	n, _, err := storage.GetInt(ctx, st, "fired")
	if err != nil {
		return err
	}
	return storage.PutInt(ctx, st, "fired", n+1)
}
