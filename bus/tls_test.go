package bus_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/opendo/opendo/bus"
)

// TestConnectTLSAndUserAuth: bus.Connect verifies the server with a CA
// file and authenticates with a user and password.
func TestConnectTLSAndUserAuth(t *testing.T) {
	dir := t.TempDir()
	caFile, certPEM, keyPEM := selfSignedCA(t, dir)
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

// selfSignedCA writes a self-signed certificate for 127.0.0.1 (its own
// CA) to dir and returns the CA file and the PEM certificate and key.
func selfSignedCA(t *testing.T, dir string) (string, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "opendo test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, certPEM, keyPEM
}
