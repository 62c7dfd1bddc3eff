package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/actor/gateway"
	"github.com/opendo/opendo/examples/counter"
	"github.com/opendo/opendo/internal/natstest"
)

// seen is what the echo object received, as it answers it in JSON.
type seen struct {
	Method string              `json:"method"`
	Path   string              `json:"path"`
	Name   string              `json:"name"`
	ID     string              `json:"id"`
	Header map[string][]string `json:"header"`
	Body   string              `json:"body"`
	Calls  int                 `json:"calls"`
}

// echo answers what it received; paths starting with /status/<n> answer
// that status, /fail an error, /sleep sleeps past the gateway's timeout.
func echo(state *actor.State) actor.Handler {
	calls := 0
	return actor.HandlerFunc(func(ctx context.Context, req *actor.Request) (*actor.Response, error) {
		calls++
		switch {
		case req.Path == "/fail":
			return nil, actor.Errorf(http.StatusConflict, "my_code", "it failed")
		case req.Path == "/sleep":
			select {
			case <-time.After(2 * time.Second):
			case <-ctx.Done():
			}
			return actor.Text("late"), nil
		}
		resp, err := actor.JSON(seen{Method: req.Method, Path: req.Path, Name: state.Name(), ID: string(state.ID()),
			Header: req.Header, Body: string(req.Body), Calls: calls})
		if err != nil {
			return nil, err
		}
		resp.Header["X-Reply"] = []string{"yes"}
		resp.Header["Opendo-Internal"] = []string{"hidden"}
		if s, ok := strings.CutPrefix(req.Path, "/status/"); ok {
			s, _, _ = strings.Cut(s, "?")
			resp.Status, _ = strconv.Atoi(s)
		}
		return resp, nil
	})
}

// newGateway starts a server, a runtime serving "echo" and "counter", and
// the gateway in front of them.
func newGateway(t *testing.T, cfg gateway.Config) *httptest.Server {
	t.Helper()
	srv := natstest.Start(t)
	nc := srv.Conn(t)
	rt, err := actor.New(actor.Config{Conn: nc, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Register("echo", echo); err != nil {
		t.Fatal(err)
	}
	if err := rt.Register(counter.Namespace, counter.New); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = rt.Close(ctx)
	})
	gw, err := gateway.New(srv.Conn(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(gw)
	t.Cleanup(hs.Close)
	return hs
}

type reply struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, body string, header map[string]string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func decodeSeen(t *testing.T, r reply) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		t.Fatalf("status %d, body %q: %v", r.status, r.body, err)
	}
	return s
}

// TestGatewayRequest: method, path with query, headers and body reach the
// object; its status, headers and body come back; hop-by-hop and opendo's
// own headers go neither way.
func TestGatewayRequest(t *testing.T) {
	hs := newGateway(t, gateway.Config{})
	r := do(t, "PUT", hs.URL+"/echo/room%2F1/status/201?since=5&x=%20y", "hello", map[string]string{
		"X-Test":      "1",
		"Opendo-Path": "/evil",
		"Connection":  "keep-alive, X-Test",
	})
	if r.status != 201 || r.header.Get("X-Reply") != "yes" || r.header.Get("Opendo-Internal") != "" {
		t.Fatalf("reply %d %v", r.status, r.header)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	s := decodeSeen(t, r)
	if s.Method != "PUT" || s.Path != "/status/201?since=5&x=%20y" || s.Name != "room/1" || s.Body != "hello" {
		t.Errorf("object saw %+v", s)
	}
	if s.Header["X-Test"][0] != "1" || s.Header["Host"] == nil {
		t.Errorf("headers %v", s.Header)
	}
	for k := range s.Header {
		if strings.HasPrefix(k, "Opendo-") || k == "Connection" {
			t.Errorf("header %s reached the object", k)
		}
	}

	// By ID: the same object.
	id := actor.NameID("echo", "room/1")
	s = decodeSeen(t, do(t, "GET", hs.URL+"/echo/@"+string(id)+"/", "", nil))
	if s.ID != string(id) || s.Calls != 2 || s.Path != "/" {
		t.Errorf("by ID: %+v", s)
	}
	// No path at all.
	if s := decodeSeen(t, do(t, "GET", hs.URL+"/echo/room%2F1", "", nil)); s.Path != "/" || s.Calls != 3 {
		t.Errorf("no path: %+v", s)
	}
	// A name that begins with "@" is percent-encoded.
	if s := decodeSeen(t, do(t, "GET", hs.URL+"/echo/%40home/x", "", nil)); s.Name != "@home" {
		t.Errorf("%%40 name: %+v", s)
	}
	// HEAD: the status and headers, no body.
	if r := do(t, "HEAD", hs.URL+"/echo/a/", "", nil); r.status != 200 || r.body != "" || r.header.Get("Content-Length") == "" {
		t.Errorf("HEAD: %d %q %v", r.status, r.body, r.header)
	}
}

// TestGatewayCounter: the counter example over HTTP, as curl would call it.
func TestGatewayCounter(t *testing.T) {
	hs := newGateway(t, gateway.Config{})
	for want := 1; want <= 3; want++ {
		r := do(t, "POST", hs.URL+"/counter/my-counter/incr", "", nil)
		if r.status != 200 || r.body != strconv.Itoa(want) {
			t.Fatalf("incr %d: %d %q", want, r.status, r.body)
		}
	}
	if r := do(t, "GET", hs.URL+"/counter/my-counter/get", "", nil); r.body != "3" {
		t.Errorf("get: %d %q", r.status, r.body)
	}
}

// TestGatewayErrors: each failure has its HTTP status and its code in
// Opendo-Error, and reaches no object it should not.
func TestGatewayErrors(t *testing.T) {
	hs := newGateway(t, gateway.Config{Timeout: 300 * time.Millisecond, MaxHeaderBytes: 4 << 10})
	big := strings.Repeat("x", 2<<20) // over the test server's 1 MiB max_payload
	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		code                     string
	}{
		{"no namespace", "GET", "/", "", nil, 404, actor.CodeUnknownNamespace},
		{"unknown namespace", "GET", "/nope/a/x", "", nil, 404, actor.CodeUnknownNamespace},
		{"bad namespace", "GET", "/a.b/a/x", "", nil, 404, actor.CodeUnknownNamespace},
		{"no object", "GET", "/echo/", "", nil, 400, actor.CodeInvalidID},
		{"bad ID", "GET", "/echo/@zz/x", "", nil, 400, actor.CodeInvalidID},
		{"control character in the name", "GET", "/echo/a%07b/x", "", nil, 400, actor.CodeInvalidID},
		{"name too long", "GET", "/echo/" + strings.Repeat("n", actor.MaxNameLen+1) + "/x", "", nil, 400, actor.CodeInvalidID},
		{"bad request ID", "GET", "/echo/a/x", "", map[string]string{actor.HeaderRequestID: "a b"}, 400, actor.CodeBadRequest},
		{"handler error", "GET", "/echo/a/fail", "", nil, 409, "my_code"},
		{"body too large", "POST", "/echo/a/x", big, nil, 413, actor.CodeTooLarge},
		{"headers too large", "GET", "/echo/a/x", "", map[string]string{"X-Big": strings.Repeat("h", 5<<10)}, 431, actor.CodeTooLarge},
		{"no reply in time", "GET", "/echo/slow/sleep", "", nil, 504, gateway.CodeGatewayTimeout},
		{"invalid status from the object", "GET", "/echo/a/status/99", "", nil, 502, actor.CodeInternal},
	} {
		r := do(t, tc.method, hs.URL+tc.path, tc.body, tc.header)
		if r.status != tc.status || r.header.Get(actor.HeaderError) != tc.code {
			t.Errorf("%s: %d %s %q, want %d %s", tc.name, r.status, r.header.Get(actor.HeaderError), r.body, tc.status, tc.code)
		}
		if r.status >= 400 && !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: Content-Type %q", tc.name, r.header.Get("Content-Type"))
		}
	}
	// None of the refused requests ran: object "a" counts only this call.
	if s := decodeSeen(t, do(t, "GET", hs.URL+"/echo/a/x", "", nil)); s.Calls != 3 {
		t.Errorf("object a ran %d calls, want 3 (fail, invalid status, this one)", s.Calls)
	}
}
