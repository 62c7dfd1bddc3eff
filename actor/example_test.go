package actor_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/bus"
	"github.com/opendo/opendo/storage"
)

// A greeter remembers how many times it greeted each caller.
func newGreeter(state *actor.State) actor.Handler {
	return actor.HandlerFunc(func(ctx context.Context, req *actor.Request) (*actor.Response, error) {
		who := string(req.Body)
		n, _, err := storage.GetInt(ctx, state.Storage(), "seen/"+who)
		if err != nil {
			return nil, err
		}
		if err := storage.PutInt(ctx, state.Storage(), "seen/"+who, n+1); err != nil {
			return nil, err
		}
		return actor.Text("hello " + who + " #" + strconv.FormatInt(n+1, 10) + " from " + state.Name()), nil
	})
}

func Example() {
	dir, _ := os.MkdirTemp("", "opendo-example")
	defer os.RemoveAll(dir)

	// An embedded NATS server, as `opendo dev` runs.
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())
	nc, _ := srv.Connect("example")
	defer nc.Close()

	// The runtime hosts the "greeter" namespace.
	rt, _ := actor.New(actor.Config{Conn: nc, DataDir: filepath.Join(dir, "objects")})
	rt.Register("greeter", newGreeter)
	if err := rt.Start(context.Background()); err != nil {
		panic(err)
	}
	defer rt.Close(context.Background())

	// Any client calls objects by name.
	client, _ := actor.NewClient(nc, actor.ClientConfig{})
	lobby := client.Namespace("greeter").Get("lobby")
	for _, who := range []string{"ada", "ada", "bob"} {
		resp, err := lobby.Do(context.Background(), "greet", []byte(who))
		if err != nil {
			panic(err)
		}
		fmt.Println(string(resp.Body))
	}
	// Output:
	// hello ada #1 from lobby
	// hello ada #2 from lobby
	// hello bob #1 from lobby
}

// An object goes back to an earlier state of its own with a bookmark.
func Example_bookmark() {
	dir, _ := os.MkdirTemp("", "opendo-example")
	defer os.RemoveAll(dir)
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())
	nc, _ := srv.Connect("example")
	defer nc.Close()

	rt, _ := actor.New(actor.Config{Conn: nc, DataDir: filepath.Join(dir, "objects")})
	rt.Register("doc", func(state *actor.State) actor.Handler {
		return actor.HandlerFunc(func(ctx context.Context, req *actor.Request) (*actor.Response, error) {
			st := state.Storage()
			switch req.Path {
			case "write":
				return nil, st.Put(ctx, "text", req.Body)
			case "bookmark":
				b, err := st.Bookmark(ctx)
				return actor.Text(b), err
			case "restore":
				undo, err := st.RestoreBookmark(ctx, string(req.Body))
				return actor.Text(undo), err
			}
			v, _, err := st.Get(ctx, "text")
			return actor.Bytes(v), err
		})
	})
	if err := rt.Start(context.Background()); err != nil {
		panic(err)
	}
	defer rt.Close(context.Background())

	client, _ := actor.NewClient(nc, actor.ClientConfig{})
	doc := client.Namespace("doc").Get("readme")
	call := func(path, body string) string {
		resp, err := doc.Do(context.Background(), path, []byte(body))
		if err != nil {
			panic(err)
		}
		return string(resp.Body)
	}
	call("write", "first draft")
	good := call("bookmark", "")
	call("write", "oops, overwritten")
	fmt.Println(call("read", ""))
	undo := call("restore", good)
	fmt.Println(call("read", ""))
	call("restore", undo)
	fmt.Println(call("read", ""))
	// Output:
	// oops, overwritten
	// first draft
	// oops, overwritten
}

func ExampleNameID() {
	fmt.Println(actor.NameID("counter", "my-counter"))
	// Output: 6de1a1491c5b0fab20594b167787364f
}
