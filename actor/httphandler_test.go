package actor_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/opendo/opendo/actor"
)

// TestHTTPHandler: the adapter gives the handler the request as net/http
// would, and returns what it wrote.
func TestHTTPHandler(t *testing.T) {
	type ctxKey struct{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(ctxKey{}) != "call" {
			t.Error("the handler does not get the call's context")
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Id", r.PathValue("id"))
		w.WriteHeader(http.StatusContinue) // not relayed
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "<html>"+r.URL.Query().Get("q")+r.Host+string(body)+r.Header.Get("X-In"))
	})
	mux.HandleFunc("POST /incr", func(w http.ResponseWriter, r *http.Request) {})
	h := actor.HTTPHandler(mux)
	ctx := context.WithValue(context.Background(), ctxKey{}, "call")

	resp, err := h.Handle(ctx, &actor.Request{Method: "GET", Path: "/items/7?q=x", Body: []byte("b"),
		Header: actor.Header{"Host": {"example.org"}, "X-In": {"!"}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusAccepted || resp.Header.Get("X-Id") != "7" || string(resp.Body) != "<html>xexample.orgb!" ||
		resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("response %d %v %q", resp.Status, resp.Header, resp.Body)
	}
	// A NATS call's bare path, no method (POST), no header; nothing written: 200.
	if resp, err := h.Handle(ctx, &actor.Request{Path: "incr"}); err != nil || resp.Status != 200 || len(resp.Body) != 0 {
		t.Errorf("bare path: %+v, %v", resp, err)
	}
	if resp, err := h.Handle(ctx, &actor.Request{Method: "GET", Path: "nothing"}); err != nil || resp.Status != 404 {
		t.Errorf("unknown path: %+v, %v", resp, err)
	}
	var ae *actor.Error
	if _, err := h.Handle(ctx, &actor.Request{Path: "/%zz"}); !errors.As(err, &ae) || ae.Code != actor.CodeBadRequest {
		t.Errorf("bad path: %v", err)
	}
}
