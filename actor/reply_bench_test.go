package actor_test

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/examples/counter"
	"github.com/opendo/opendo/internal/natstest"
)

// BenchmarkReplyConn measures what a separate reply connection
// (Config.ReplyConn, the defence in depth of docs/security.md) costs, side
// by side with replies on the runtime's own connection, for reads of one
// object and increments spread over 100 objects, with 64 concurrent
// callers:
//
//	go test -run '^$' -bench ReplyConn -count 5 ./actor/
func BenchmarkReplyConn(b *testing.B) {
	for _, sep := range []bool{false, true} {
		name := "shared"
		if sep {
			name = "separate"
		}
		for _, path := range []string{"get", "incr"} {
			b.Run(name+"/"+path, func(b *testing.B) {
				srv := natstest.Start(b)
				cfg := actor.Config{Conn: srv.Conn(b), DataDir: b.TempDir()}
				if sep {
					cfg.ReplyConn = srv.Conn(b)
				}
				rt, _ := counterRuntime(b, cfg)
				defer closeRuntime(b, rt)
				// The callers' own connection, as a remote client would have.
				c, err := actor.NewClient(srv.Conn(b), actor.ClientConfig{})
				if err != nil {
					b.Fatal(err)
				}
				ns := c.Namespace(counter.Namespace)
				for k := range 100 {
					if _, err := ns.Get("c"+strconv.Itoa(k)).Do(b.Context(), "incr", nil); err != nil {
						b.Fatal(err)
					}
				}
				var next atomic.Int64
				b.SetParallelism(32) // 64 callers on 2 cores
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						name := "c0"
						if path == "incr" {
							name = "c" + strconv.Itoa(int(next.Add(1)%100))
						}
						if _, err := ns.Get(name).Do(b.Context(), path, nil); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
