package reminder

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/storage"
)

// Namespace is the namespace the example is served under.
const Namespace = "reminder"

// Reminder is one pending or fired reminder.
type Reminder struct {
	ID      int64  `json:"id"`
	Due     int64  `json:"due"`
	Text    string `json:"text"`
	FiredAt int64  `json:"fired_at,omitempty"`
	Retry   int    `json:"retry,omitempty"`
}

// Object is one reminder queue.
type Object struct {
	state *actor.State
	now   func() time.Time
}

// New is the actor.Factory of the namespace (real time).
func New(state *actor.State) actor.Handler { return &Object{state: state, now: time.Now} }

// NewWithClock returns a factory whose objects read time from now (tests).
func NewWithClock(now func() time.Time) actor.Factory {
	return func(state *actor.State) actor.Handler { return &Object{state: state, now: now} }
}

// Handle serves the paths listed in the package doc.
func (o *Object) Handle(ctx context.Context, req *actor.Request) (*actor.Response, error) {
	st := o.state.Storage()
	switch req.Path {
	case "add":
		var in struct {
			InMS int64  `json:"in_ms"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(req.Body, &in); err != nil {
			return badRequest("body: %v", err)
		}
		var next int64
		if _, err := storage.GetJSON(ctx, st, "next-id", &next); err != nil {
			return nil, err
		}
		next++
		r := Reminder{ID: next, Due: o.now().Add(time.Duration(in.InMS) * time.Millisecond).UnixMilli(), Text: in.Text}
		if err := storage.PutJSON(ctx, st, "next-id", next); err != nil {
			return nil, err
		}
		if err := storage.PutJSON(ctx, st, pendingKey(r.ID), r); err != nil {
			return nil, err
		}
		if err := o.rearm(ctx); err != nil {
			return nil, err
		}
		return actor.JSON(map[string]int64{"id": r.ID, "due": r.Due})
	case "cancel":
		var in struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(req.Body, &in); err != nil {
			return badRequest("body: %v", err)
		}
		ok, err := st.Delete(ctx, pendingKey(in.ID))
		if err != nil {
			return nil, err
		}
		if err := o.rearm(ctx); err != nil {
			return nil, err
		}
		return actor.JSON(map[string]bool{"cancelled": ok})
	case "pending":
		rs, err := list(ctx, st, "pending/")
		if err != nil {
			return nil, err
		}
		return actor.JSON(rs)
	case "fired":
		rs, err := list(ctx, st, "fired/")
		if err != nil {
			return nil, err
		}
		return actor.JSON(rs)
	case "alarm":
		t, ok, err := st.Alarm(ctx)
		if err != nil {
			return nil, err
		}
		if !ok {
			return actor.JSON(map[string]any{"alarm": nil})
		}
		return actor.JSON(map[string]any{"alarm": t.UnixMilli()})
	}
	return &actor.Response{Status: http.StatusNotFound, Body: []byte("unknown path")}, nil
}

// Alarm fires every due reminder, then re-arms for the next one.
func (o *Object) Alarm(ctx context.Context, info actor.AlarmInfo) error {
	st := o.state.Storage()
	pending, err := list(ctx, st, "pending/")
	if err != nil {
		return err
	}
	now := o.now()
	for _, r := range pending {
		if r.Due > now.UnixMilli() {
			continue
		}
		if _, err := st.Delete(ctx, pendingKey(r.ID)); err != nil {
			return err
		}
		r.FiredAt, r.Retry = now.UnixMilli(), info.RetryCount
		if err := storage.PutJSON(ctx, st, firedKey(r.ID), r); err != nil {
			return err
		}
	}
	return o.rearm(ctx)
}

// rearm sets the alarm to the earliest pending reminder, or deletes it.
func (o *Object) rearm(ctx context.Context) error {
	st := o.state.Storage()
	pending, err := list(ctx, st, "pending/")
	if err != nil {
		return err
	}
	if len(pending) == 0 {
		return st.DeleteAlarm(ctx)
	}
	sort.Slice(pending, func(i, j int) bool { return pending[i].Due < pending[j].Due })
	return st.SetAlarm(ctx, time.UnixMilli(pending[0].Due))
}

func list(ctx context.Context, st storage.KV, prefix string) ([]Reminder, error) {
	es, err := st.List(ctx, storage.ListOptions{Prefix: prefix})
	if err != nil {
		return nil, err
	}
	rs := make([]Reminder, 0, len(es))
	for _, e := range es {
		var r Reminder
		if err := json.Unmarshal(e.Value, &r); err != nil {
			return nil, fmt.Errorf("reminder %q: %w", e.Key, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// Keys sort by ID (zero-padded) so that List returns reminders in order.
func pendingKey(id int64) string { return fmt.Sprintf("pending/%016d", id) }
func firedKey(id int64) string   { return fmt.Sprintf("fired/%016d", id) }

func badRequest(format string, args ...any) (*actor.Response, error) {
	return &actor.Response{Status: http.StatusBadRequest, Body: fmt.Appendf(nil, format, args...)}, nil
}
