// Package actortest runs objects in a test: a real runtime per test, on an
// embedded NATS server with its JetStream store and the objects' files in
// the test's temporary directory, and a clock the test moves.
//
//	func TestCounter(t *testing.T) {
//		env := actortest.New(t, func(rt *actor.Runtime) error {
//			return rt.Register("counter", counter.New)
//		})
//		resp, err := env.Get("counter", "a").Do(t.Context(), "incr", nil)
//		…
//		n, _, err := storage.GetInt(ctx, st, "count") // inside env.Run, the object's own storage
//	}
//
// Nothing is mocked: requests go over NATS, writes are journaled and made
// durable as in production. Only time is the test's: the runtime's clock
// stands still until Clock.Advance, and RunAlarm fires an object's alarm
// at once.
package actortest
