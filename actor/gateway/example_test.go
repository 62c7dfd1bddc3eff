package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/actor/gateway"
	"github.com/opendo/opendo/bus"
)

// newNotes is an object written the net/http way: a ServeMux whose
// handlers use the object's storage through the request's context.
func newNotes(state *actor.State) actor.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /notes/{key}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := state.Storage().Put(r.Context(), r.PathValue("key"), body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /notes/{key}", func(w http.ResponseWriter, r *http.Request) {
		v, ok, err := state.Storage().Get(r.Context(), r.PathValue("key"))
		switch {
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		case !ok:
			http.NotFound(w, r)
		default:
			fmt.Fprintf(w, "%s (in %s)\n", v, state.Name())
		}
	})
	return actor.HTTPHandler(mux)
}

func Example() {
	dir, _ := os.MkdirTemp("", "opendo-gateway-example")
	defer os.RemoveAll(dir)
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())
	nc, _ := srv.Connect("example")
	defer nc.Close()

	rt, _ := actor.New(actor.Config{Conn: nc, DataDir: filepath.Join(dir, "objects")})
	rt.Register("board", newNotes)
	if err := rt.Start(context.Background()); err != nil {
		panic(err)
	}
	defer rt.Close(context.Background())

	// The gateway: /<namespace>/<name>/<path> calls the object.
	gw, _ := gateway.New(nc, gateway.Config{})
	hs := httptest.NewServer(gw)
	defer hs.Close()

	req, _ := http.NewRequest("PUT", hs.URL+"/board/kitchen/notes/milk", strings.NewReader("2 litres"))
	resp, _ := http.DefaultClient.Do(req)
	fmt.Println(resp.Status)
	for _, path := range []string{"/board/kitchen/notes/milk", "/board/kitchen/notes/eggs"} {
		resp, _ := http.Get(hs.URL + path)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %s", resp.Status, body)
	}
	// Output:
	// 201 Created
	// 200 OK 2 litres (in kitchen)
	// 404 Not Found 404 page not found
}
