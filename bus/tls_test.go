package bus_test

import (
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/opendo/opendo/bus"

	"github.com/opendo/opendo/internal/tlstest"
)

// TestConnectTLSAndUserAuth: bus.Connect verifies the server with a CA
// file and authenticates with a user and password.
func TestConnectTLSAndUserAuth(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.New(t, dir)
	caFile, certPEM, keyPEM := ca.CertFile, ca.CertPEM, ca.KeyPEM
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		TLS: true, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Username: "node", Password: "s3cret",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	url := "tls://127.0.0.1:" + strconv.Itoa(srv.Addr().(*net.TCPAddr).Port)

	nc, err := bus.Connect(bus.ConnectConfig{URL: url, TLSCA: caFile, User: "node", Password: "s3cret"})
	if err != nil {
		t.Fatalf("connect with CA and user: %v", err)
	}
	nc.Close()
	if _, err := bus.Connect(bus.ConnectConfig{URL: url, TLSCA: caFile, User: "node", Password: "wrong"}); err == nil {
		t.Fatal("connect with a wrong password succeeded")
	}
	if _, err := bus.Connect(bus.ConnectConfig{URL: url, User: "node", Password: "s3cret"}); err == nil {
		t.Fatal("connect without trusting the CA succeeded")
	}
}
