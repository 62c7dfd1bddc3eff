// Package natstest runs an embedded nats-server with JetStream for tests.
//
// Start binds the server to 127.0.0.1 on a random port with its JetStream
// store in t.TempDir() (or WithStoreDir), and shuts it down in t.Cleanup.
// Connections made with Conn use loopback TCP and reconnect forever, so they
// survive Restart, which stops the server and starts it again on the same
// port and store (the way tests exercise a server crash or upgrade) and
// returns once those connections have reconnected.
//
//	s := natstest.Start(t, natstest.WithSyncAlways())
//	js := s.JetStream(t)
//	...
//	s.Restart(t) // js works on, on the same connection
//
// A Server is safe for concurrent use, except that Restart and Shutdown
// must not race with each other.
package natstest
