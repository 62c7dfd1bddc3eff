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

func ExampleNameID() {
	fmt.Println(actor.NameID("counter", "my-counter"))
	// Output: 6de1a1491c5b0fab20594b167787364f
}
