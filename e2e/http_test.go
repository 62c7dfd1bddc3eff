package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// httpURL returns the URL a process printed after prefix ("…HTTP
// listening on URL").
func httpURL(t *testing.T, out string, prefix string) string {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(prefix) + `(https?://\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q line in:\n%s", prefix, out)
	}
	return strings.TrimSuffix(m[1], ",")
}

// post sends a POST and returns the status and body.
func post(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Post(url, "text/plain", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHTTPGateway: opendo dev serves HTTP (README's curl), and opendo
// gateway serves the same objects alone, over HTTPS, in front of dev's
// NATS.
func TestHTTPGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts opendo dev and opendo gateway; skipped with -short")
	}
	dev := startDev(t, "dev", t.TempDir())
	base := httpURL(t, dev.stdout.String(), "opendo dev: HTTP listening on ")
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("dev serves HTTP on %s, want loopback", base)
	}
	for want := 1; want <= 2; want++ {
		if status, body := post(t, http.DefaultClient, base+"/counter/my-counter/incr"); status != 200 || body != strconv.Itoa(want) {
			t.Fatalf("incr over dev's HTTP: %d %q, want 200 %d", status, body, want)
		}
	}

	// opendo gateway alone, with TLS.
	dir := t.TempDir()
	cert, key, pool := selfSigned(t, dir)
	cmd := exec.Command(opendoBinary(t), "gateway", "-nats", dev.URL, "-http", "127.0.0.1:0", "-http-tls-cert", cert, "-http-tls-key", key)
	out, errb := newStdoutWatcher(), &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("gateway stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
		}
	})
	select {
	case <-out.ready:
	case err := <-exited:
		t.Fatalf("opendo gateway exited: %v\n%s", err, errb.String())
	case <-time.After(readyTimeout):
		t.Fatal("opendo gateway not ready")
	}
	gw := httpURL(t, out.String(), "HTTP listening on ")
	if !strings.HasPrefix(gw, "https://127.0.0.1:") {
		t.Fatalf("gateway on %s, want https on loopback", gw)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if status, body := post(t, client, gw+"/counter/my-counter/incr"); status != 200 || body != "3" {
		t.Fatalf("incr over the gateway: %d %q, want 200 3", status, body)
	}
	resp, err := client.Get(gw + "/nope/x/y")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Opendo-Error") != "unknown_namespace" {
		t.Errorf("unknown namespace over the gateway: %d %s", resp.StatusCode, resp.Header.Get("Opendo-Error"))
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("gateway after SIGTERM: %v", err)
		}
	case <-time.After(exitTimeout):
		t.Error("gateway did not exit on SIGTERM")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "opendo test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}
