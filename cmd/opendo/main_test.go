package main

import (
	"bytes"
	"context"
	"errors"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendo/opendo/internal/syncbuf"
)

const (
	devReadyTimeout = 60 * time.Second
	devStopTimeout  = 45 * time.Second // host gives the runtime 30 s to close
	devURLPrefix    = "opendo dev: NATS listening on "
)

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer = syncbuf.Buffer

// readyWatcher is runDev's stdout: it keeps the output and reports the
// NATS URL once the "ready" line is printed.
type readyWatcher struct {
	lockedBuffer
	once  sync.Once
	ready chan struct{}
}

func (w *readyWatcher) Write(p []byte) (int, error) {
	n, err := w.lockedBuffer.Write(p)
	if strings.Contains("\n"+w.String(), "\nready\n") {
		w.once.Do(func() { close(w.ready) })
	}
	return n, err
}

func (w *readyWatcher) url() string {
	for line := range strings.Lines(w.String()) {
		if rest, ok := strings.CutPrefix(line, devURLPrefix); ok {
			u, _, _ := strings.Cut(rest, " ")
			return strings.TrimSpace(u)
		}
	}
	return ""
}

// devServer is runDev running in this process.
type devServer struct {
	url     string
	stdout  *readyWatcher
	stderr  *lockedBuffer
	cancel  context.CancelFunc
	done    chan struct{}
	err     error // runDev's result, valid once done is closed
	stopped sync.Once
}

// startDev runs `opendo dev -addr 127.0.0.1:0 -data <tmp>` in a goroutine
// and waits until it prints "ready". It is stopped at the end of the test.
func startDev(t *testing.T) *devServer {
	t.Helper()
	dataDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	d := &devServer{
		stdout: &readyWatcher{ready: make(chan struct{})},
		stderr: &lockedBuffer{},
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go func() {
		defer close(d.done)
		d.err = runDev(ctx, []string{"-addr", "127.0.0.1:0", "-data", dataDir}, d.stdout, d.stderr)
	}()
	t.Cleanup(func() {
		if err := d.stop(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("runDev: %v", err)
		}
		if t.Failed() {
			t.Logf("dev stdout:\n%s\ndev stderr:\n%s", d.stdout.String(), d.stderr.String())
		}
	})
	select {
	case <-d.stdout.ready:
	case <-d.done:
		t.Fatalf("runDev returned before ready: %v\nstderr:\n%s", d.err, d.stderr.String())
	case <-time.After(devReadyTimeout):
		t.Fatalf("runDev not ready after %v", devReadyTimeout)
	}
	d.url = d.stdout.url()
	if d.url == "" {
		t.Fatalf("runDev printed ready without a %q line:\n%s", devURLPrefix, d.stdout.String())
	}
	return d
}

// stop cancels runDev's context and returns its result, or
// context.DeadlineExceeded if it does not return within devStopTimeout.
func (d *devServer) stop() error {
	d.stopped.Do(d.cancel)
	select {
	case <-d.done:
		return d.err
	case <-time.After(devStopTimeout):
		return context.DeadlineExceeded
	}
}

func TestRunUsage(t *testing.T) {
	ctx := context.Background()
	var u usageError

	var out, errb bytes.Buffer
	err := run(ctx, nil, &out, &errb)
	if !errors.As(err, &u) {
		t.Fatalf("run(no args) = %v, want a usage error", err)
	}
	if exitCode(err) != 2 {
		t.Errorf("exit code of %v = %d, want 2", err, exitCode(err))
	}
	if !strings.Contains(errb.String(), "usage: opendo") {
		t.Errorf("run(no args) stderr = %q, want the usage", errb.String())
	}

	out.Reset()
	errb.Reset()
	err = run(ctx, []string{"frobnicate"}, &out, &errb)
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("run(frobnicate) = %v, want a usage error naming the command", err)
	}
	if !strings.Contains(errb.String(), "usage: opendo") {
		t.Errorf("run(frobnicate) stderr = %q, want the usage", errb.String())
	}

	out.Reset()
	errb.Reset()
	if err := run(ctx, []string{"version"}, &out, &errb); err != nil {
		t.Fatalf("run(version) = %v", err)
	}
	if got, want := out.String(), "opendo "+version+"\n"; got != want {
		t.Errorf("run(version) printed %q, want %q", got, want)
	}

	out.Reset()
	errb.Reset()
	if err := run(ctx, []string{"help"}, &out, &errb); err != nil {
		t.Fatalf("run(help) = %v", err)
	}
	if !strings.Contains(out.String(), "usage: opendo") {
		t.Errorf("run(help) printed %q, want the usage", out.String())
	}

	// Bad arguments are refused before anything starts.
	for _, args := range [][]string{
		{"call", "counter"},
		{"dev", "-sync", "sometimes", "-data", t.TempDir()},
		{"dev", "-data", t.TempDir(), "extra"},
	} {
		errb.Reset()
		err := run(ctx, args, &out, &errb)
		if !errors.As(err, &u) || exitCode(err) != 2 {
			t.Errorf("run(%q) = %v, want a usage error (exit 2)", args, err)
		}
	}
}

func TestDevAndCall(t *testing.T) {
	d := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, want := range []string{"1\n", "2\n"} {
		var out, errb bytes.Buffer
		if err := run(ctx, []string{"call", "-server", d.url, "counter", "x", "incr"}, &out, &errb); err != nil {
			t.Fatalf("call counter x incr: %v (stderr %q)", err, errb.String())
		}
		if out.String() != want {
			t.Fatalf("call counter x incr printed %q, want %q (stderr %q)", out.String(), want, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"call", "-server", d.url, "counter", "x", "get"}, &out, &errb); err != nil || out.String() != "2\n" {
		t.Fatalf("call counter x get = %v, printed %q, want 2 (stderr %q)", err, out.String(), errb.String())
	}

	out.Reset()
	errb.Reset()
	err := run(ctx, []string{"call", "-server", d.url, "nosuchns", "x", "incr"}, &out, &errb)
	if err == nil {
		t.Fatalf("call to an unknown namespace succeeded, printed %q", out.String())
	}
	if exitCode(err) != 1 {
		t.Errorf("exit code of %v = %d, want 1", err, exitCode(err))
	}
	if !strings.Contains(errb.String(), "unknown_namespace") {
		t.Errorf("call to an unknown namespace: stderr %q, want it to name unknown_namespace", errb.String())
	}

	if err := d.stop(); err != nil {
		t.Fatalf("runDev after cancel = %v, want nil", err)
	}
}

// natscliExample is the request of docs/protocol.md, after `nats`.
var natscliExample = []string{"req", "opendo.name.counter", "", "-H", "Opendo-Name: my-counter", "-H", "Opendo-Path: incr"}

// shellQuote quotes args as a POSIX shell would need them.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		safe := a != ""
		for _, r := range a {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+%", r)) {
				safe = false
				break
			}
		}
		if safe {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// findNatsCLI returns the path of natscli's `nats`: on PATH, else in
// $GOPATH/bin where `go install` puts it.
func findNatsCLI() string {
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	for _, dir := range filepath.SplitList(build.Default.GOPATH) {
		p := filepath.Join(dir, "bin", "nats")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// TestNatsCLIExample runs the natscli example of docs/protocol.md against a
// real `opendo dev`, and checks that the document shows exactly that command.
func TestNatsCLIExample(t *testing.T) {
	docLine := shellQuote(append([]string{"nats", "--server", "nats://127.0.0.1:4222"}, natscliExample...))
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), docLine+"\n") {
		t.Errorf("docs/protocol.md does not show the command this test runs:\n%s", docLine)
	}

	nats := findNatsCLI()
	if nats == "" {
		if os.Getenv("OPENDO_REQUIRE_NATSCLI") == "1" {
			t.Fatal("natscli not found (PATH, $GOPATH/bin) and OPENDO_REQUIRE_NATSCLI=1: go install github.com/nats-io/natscli/nats@v0.5.0")
		}
		t.Skip("natscli not found; go install github.com/nats-io/natscli/nats@v0.5.0 (OPENDO_REQUIRE_NATSCLI=1 makes this a failure)")
	}

	d := startDev(t)
	home := t.TempDir() // no natscli context of the user's
	for _, want := range []string{"1", "2"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, nats, append([]string{"--server", d.url}, natscliExample...)...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "NATS_CONTEXT=")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", cmd, err, stdout.String(), stderr.String())
		}
		if got := lastLine(stdout.String()); got != want {
			t.Fatalf("%s printed %q (last line %q), want the reply %q\nstderr:\n%s", cmd, stdout.String(), got, want, stderr.String())
		}
	}
}

// lastLine returns the last non-blank line of s, trimmed.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// TestDevDefaultsToLoopback: opendo dev's embedded NATS listens on
// 127.0.0.1 unless -addr says otherwise, and dev's and opendo gateway's
// HTTP on 127.0.0.1:8787 unless -http does (TestHTTPGateway, e2e, checks
// the address they print).
func TestDevDefaultsToLoopback(t *testing.T) {
	var out, errb bytes.Buffer
	_ = run(context.Background(), []string{"dev", "-h"}, &out, &errb)
	if !strings.Contains(errb.String(), `-addr string`) || !strings.Contains(errb.String(), `(default "127.0.0.1:4222")`) {
		t.Fatalf("dev -h does not show -addr defaulting to 127.0.0.1:4222:\n%s", errb.String())
	}
	// The HTTP gateway of dev, and opendo gateway, too.
	for _, cmd := range []string{"dev", "gateway"} {
		out.Reset()
		errb.Reset()
		_ = run(context.Background(), []string{cmd, "-h"}, &out, &errb)
		if !strings.Contains(errb.String(), `-http string`) || !strings.Contains(errb.String(), `(default "127.0.0.1:8787")`) {
			t.Fatalf("%s -h does not show -http defaulting to 127.0.0.1:8787:\n%s", cmd, errb.String())
		}
	}
}

// TestHelpCommand: `opendo help CMD` prints CMD's own usage on stdout, and
// call takes -nats like every other command (-server stays an alias).
func TestHelpCommand(t *testing.T) {
	for _, cmd := range []string{"call", "dev", "serve", "gateway", "journal", "bench", "cluster"} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), []string{"help", cmd}, &out, &errb); err != nil {
			t.Errorf("help %s: %v", cmd, err)
		}
		if !strings.Contains(out.String(), "usage: opendo "+cmd) {
			t.Errorf("help %s printed:\n%s", cmd, out.String())
		}
	}
	var out, errb bytes.Buffer
	_ = run(context.Background(), []string{"help", "call"}, &out, &errb)
	if !strings.Contains(out.String(), "-nats string") || !strings.Contains(out.String(), "-server string") {
		t.Errorf("call has no -nats or -server:\n%s", out.String())
	}
}
