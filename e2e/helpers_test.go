package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/internal/syncbuf"
)

const (
	readyTimeout = 60 * time.Second // build cache warm-up and JetStream recovery included
	exitTimeout  = 30 * time.Second // how long a killed or stopped child may take to be reaped
	callTimeout  = 2 * time.Second  // one call under load
	setupTimeout = 15 * time.Second // one call outside the load (first activation, recovery)
	urlPrefix    = "opendo dev: NATS listening on "
)

var (
	binDirOnce sync.Once
	binDir     string // temporary directory holding the binaries, removed by TestMain
	binDirErr  error

	opendoBin  builtBinary
	linnodeBin builtBinary
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// builtBinary is a command built once per test run.
type builtBinary struct {
	once sync.Once
	path string
	err  error
}

// opendoBinary builds ./cmd/opendo once per test run and returns its path.
func opendoBinary(t *testing.T) string {
	t.Helper()
	return opendoBin.get(t, "./cmd/opendo", "opendo")
}

// get builds pkg (a path relative to the module root) into binDir as name,
// once, with -race when OPENDO_E2E_RACE=1, and returns its path.
func (b *builtBinary) get(t *testing.T, pkg, name string) string {
	t.Helper()
	b.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			b.err = err
			return
		}
		binDirOnce.Do(func() { binDir, binDirErr = os.MkdirTemp("", "opendo-e2e-") })
		if binDirErr != nil {
			b.err = binDirErr
			return
		}
		path := filepath.Join(binDir, name)
		args := []string{"build", "-o", path}
		if os.Getenv("OPENDO_E2E_RACE") == "1" {
			args = append(args, "-race")
		}
		args = append(args, pkg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool(), args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		b.path = path
	})
	if b.err != nil {
		t.Fatalf("building %s: %v", pkg, b.err)
	}
	return b.path
}

// goTool returns the go command of the toolchain running the tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// moduleRoot walks up from the package directory to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the e2e package")
		}
		dir = parent
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer = syncbuf.Buffer

// stdoutWatcher receives the child's stdout, keeps it, and reports the NATS
// URL and the "ready" line as soon as they are printed.
type stdoutWatcher struct {
	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
	url     string
	ready   chan struct{} // closed on the "ready" line
	isReady bool
}

func newStdoutWatcher() *stdoutWatcher { return &stdoutWatcher{ready: make(chan struct{})} }

func (w *stdoutWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
		if rest, ok := strings.CutPrefix(line, urlPrefix); ok && w.url == "" {
			w.url, _, _ = strings.Cut(rest, " ")
		}
		if line == "ready" && !w.isReady {
			w.isReady = true
			close(w.ready)
		}
	}
	return len(p), nil
}

func (w *stdoutWatcher) URL() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.url
}

func (w *stdoutWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// devProc is one running `opendo dev` child process.
type devProc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	URL    string
	stdout *stdoutWatcher
	stderr *lockedBuffer
	exited chan struct{} // closed once the process is reaped
	err    error         // cmd.Wait's result, valid once exited is closed
}

// startDev starts `opendo dev` on dataDir with a free port and waits until
// it prints "ready". The child is killed at the end of the test if it is
// still running, and its output is logged if the test failed.
func startDev(t *testing.T, name, dataDir string, extra ...string) *devProc {
	t.Helper()
	bin := opendoBinary(t)
	args := append([]string{"dev", "-addr", "127.0.0.1:0", "-http", "127.0.0.1:0", "-data", dataDir}, extra...)
	p := &devProc{
		t:      t,
		name:   name,
		cmd:    exec.Command(bin, args...),
		stdout: newStdoutWatcher(),
		stderr: &lockedBuffer{},
		exited: make(chan struct{}),
	}
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	p.cmd.WaitDelay = 5 * time.Second // do not hang on the output pipes
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: start %s: %v", name, bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			select {
			case <-p.exited:
			case <-time.After(exitTimeout):
				t.Errorf("%s: pid %d not reaped %v after SIGKILL", name, p.cmd.Process.Pid, exitTimeout)
			}
		}
		if t.Failed() {
			t.Logf("%s: stdout of opendo dev:\n%s", name, p.stdout.String())
			t.Logf("%s: stderr of opendo dev:\n%s", name, p.stderr.String())
		}
	})
	select {
	case <-p.stdout.ready:
	case <-p.exited:
		t.Fatalf("%s: opendo dev exited before ready: %v\nstderr:\n%s", name, p.err, p.stderr.String())
	case <-time.After(readyTimeout):
		t.Fatalf("%s: opendo dev not ready after %v", name, readyTimeout)
	}
	p.URL = p.stdout.URL()
	if p.URL == "" {
		t.Fatalf("%s: opendo dev printed ready but no %q line:\n%s", name, urlPrefix, p.stdout.String())
	}
	return p
}

// kill sends SIGKILL and waits until the process is reaped.
func (p *devProc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("%s: kill: %v", p.name, err)
	}
	p.wait()
}

// stop sends SIGTERM and returns the exit code, failing the test if the
// process does not exit within exitTimeout.
func (p *devProc) stop() int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("%s: SIGTERM: %v", p.name, err)
	}
	p.wait()
	return p.cmd.ProcessState.ExitCode()
}

func (p *devProc) wait() {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(exitTimeout):
		p.t.Fatalf("%s: opendo dev (pid %d) did not exit within %v", p.name, p.cmd.Process.Pid, exitTimeout)
	}
}

// connect opens a client connection that does not reconnect: once the
// server dies, calls fail at once instead of waiting for their timeout.
func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.NoReconnect(), nats.Timeout(5*time.Second), nats.Name("opendo-e2e"))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func newClient(t *testing.T, nc *nats.Conn) *actor.Client {
	t.Helper()
	c, err := actor.NewClient(nc, actor.ClientConfig{})
	if err != nil {
		t.Fatalf("actor.NewClient: %v", err)
	}
	return c
}

// callInt calls the counter object name on path and parses its reply.
func callInt(ctx context.Context, c *actor.Client, name, path string) (int64, error) {
	resp, err := c.Namespace("counter").Get(name).Do(ctx, path, nil)
	if err != nil {
		return 0, err
	}
	if resp.Status != 0 && resp.Status != 200 {
		return 0, fmt.Errorf("status %d: %s", resp.Status, resp.Body)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(resp.Body)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reply %q: %v", resp.Body, err)
	}
	return n, nil
}

// getCounter reads the counter name from a freshly started process.
func getCounter(t *testing.T, p *devProc, name string) int64 {
	t.Helper()
	nc := connect(t, p.URL)
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	n, err := callInt(ctx, newClient(t, nc), name, "get")
	if err != nil {
		t.Fatalf("%s: get %s: %v", p.name, name, err)
	}
	return n
}
