package e2e

import (
	"crypto/tls"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opendo/opendo/internal/tlstest"
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
	cert := tlstest.New(t, dir)
	cmd := exec.Command(opendoBinary(t), "gateway", "-nats", dev.URL, "-http", "127.0.0.1:0", "-http-tls-cert", cert.CertFile, "-http-tls-key", cert.KeyFile)
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
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}}
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
