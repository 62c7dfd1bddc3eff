package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/internal/natstest"
)

// The linearizability harness (docs/cluster.md, "Linearizability, checked").
//
// A 3-server JetStream cluster runs in the test process (embedded servers on
// loopback, streams R3, the journal spread over 3 streams); three linnode
// processes (e2e/testdata/linnode) serve namespace "lin" on it. Clients call a few objects concurrently, each
// holding a register (put, get, cas) and a counter (incr, read), while the
// test injects faults one after another: SIGKILL and restart of a node,
// SIGSTOP of a node for twice its lease and SIGCONT, shutdown and restart of
// the NATS server leading the journal stream, SIGTERM (graceful handoff) and
// restart of a node, and a node killed together with a NATS server. Each
// fault gets fresh objects (an "epoch"), so that the requests whose outcome
// is unknown stay within a few histories.
//
// Every call is recorded with its start and end. A call that got no answer
// (timeout, error) may still have run, perhaps much later (a paused node
// runs what it had queued when it resumes): a write of unknown outcome is
// kept with no end, so the checker may place it anywhere after its start or
// leave it out; a read of unknown outcome changes nothing and is dropped.
// After the faults every process runs again, and a final read of each object
// joins its history. Porcupine then checks every history (one per object and
// per register or counter) against the sequential model, and each counter's
// final value is compared with its acknowledged increments: none may be
// lost.
//
// The default run takes about a minute. A soak repeats random faults:
//
//	OPENDO_LIN_SOAK=10m go test -run TestLinearizability -timeout 30m -v ./e2e/

const (
	linNamespace   = "lin"
	linNodes       = 3
	linClients     = 8
	linObjects     = 3               // objects per epoch
	linLeaseTTL    = 2 * time.Second // linnode -lease-ttl
	linCallTimeout = 5 * time.Second // one client call
	linSettle      = 3 * time.Second // load between faults
	linCheckLimit  = 2 * time.Minute // porcupine's budget for all histories
)

// linJournalStreams is the number of streams the journal is spread over,
// as on a production cluster (docs/cluster.md).
const linJournalStreams = 3

// linStreams are the streams of the runtime, waited for after NATS restarts.
var linStreams = []string{"OPENDO_JOURNAL", "OPENDO_JOURNAL_1", "OPENDO_JOURNAL_2", "OPENDO_ALARMS", "KV_OPENDO_OWNERS"}

func TestLinearizability(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: 3 NATS servers, 3 runtime nodes and faults; skipped with -short")
	}
	var soak time.Duration
	if v := os.Getenv("OPENDO_LIN_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("OPENDO_LIN_SOAK=%q: %v", v, err)
		}
		soak = d
	}
	bin := linnodeBin.get(t, "./e2e/testdata/linnode", "linnode")

	cl := natstest.StartCluster(t, 3)
	cl.WaitJetStream(t)
	nodes := make([]*linNode, linNodes)
	for i := range nodes {
		nodes[i] = &linNode{t: t, bin: bin, id: "n" + strconv.Itoa(i+1), dir: t.TempDir(), urls: cl.URLs(), stderr: &lockedBuffer{}}
		t.Cleanup(nodes[i].cleanup)
		nodes[i].start()
	}
	cl.WaitJetStream(t, linStreams...)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range nodes {
			t.Logf("%s stderr (last lines):\n%s", n.id, lastLines(n.stderr.String(), 150))
		}
		t.Logf("ownership bucket:\n%s", dumpOwners(cl))
	})

	h := &linHistory{start: time.Now()}
	var epoch atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for c := range linClients {
		client := newClient(t, cl.Conn(t))
		wg.Go(func() { runLinClient(ctx, client.Namespace(linNamespace), c, &epoch, h) })
	}

	f := &linFaults{t: t, cl: cl, nodes: nodes, h: h}
	settle := func() { time.Sleep(linSettle) } // load runs meanwhile; nothing waits on it
	settle()
	faults := []func(rng *rand.Rand){f.kill, f.pause, f.restartServer, f.handoff, f.killWithServer}
	if soak == 0 {
		for i, fault := range faults {
			epoch.Store(int64(i + 1))
			fault(rand.New(rand.NewPCG(uint64(i), 0)))
			settle()
		}
	} else {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
		for e := 1; time.Since(h.start) < soak; e++ {
			epoch.Store(int64(e))
			faults[rng.IntN(len(faults))](rng)
			settle()
		}
	}
	stop()
	wg.Wait()

	// Every process runs; read each object once more.
	cl.WaitJetStream(t, linStreams...)
	for e := range int(epoch.Load()) + 1 {
		for i := range linObjects {
			finalRead(t, newClient(t, cl.Conn(t)).Namespace(linNamespace), linObj{epoch: e, i: i}, h)
		}
	}

	ops := h.operations()
	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(linModel, ops, linCheckLimit)
	t.Logf("linearizability: %s; faults: %s; result: %s (checked in %v)", h.summary(), strings.Join(f.done, "; "), res, time.Since(checkStart).Round(time.Millisecond))
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		path := filepath.Join(os.TempDir(), "opendo-linearizability-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".html")
		if err := porcupine.VisualizePath(linModel, info, path); err != nil {
			t.Logf("visualization: %v", err)
		}
		t.Errorf("a history is not linearizable; see %s", path)
	default:
		t.Errorf("the checker could not decide within %v", linCheckLimit)
	}
	if lost := h.lostIncrements(); len(lost) > 0 {
		t.Errorf("acknowledged increments lost: %s", strings.Join(lost, "; "))
	}
	if h.badReplies.Load() > 0 {
		t.Errorf("%d replies with an unexpected status", h.badReplies.Load())
	}
}

// linObj names one object of one epoch.
type linObj struct{ epoch, i int }

func (o linObj) name() string { return fmt.Sprintf("e%d-o%d", o.epoch, o.i) }

// linInput is one call: kind is put, get, cas (arg → arg2), incr or read.
type linInput struct {
	obj       linObj
	kind      string
	arg, arg2 string
}

func (in linInput) counter() bool { return in.kind == "incr" || in.kind == "read" }

// linOutput is a call's answer; unknown when none came.
type linOutput struct {
	val     string
	unknown bool
}

// linModel is the sequential specification of one object's register or
// counter. A write of unknown outcome takes effect where the checker places
// it; placed last, it has none.
var linModel = porcupine.Model{
	Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
		type part struct {
			obj     linObj
			counter bool
		}
		byPart := map[part][]porcupine.Operation{}
		var order []part
		for _, op := range ops {
			in := op.Input.(linInput)
			p := part{in.obj, in.counter()}
			if _, ok := byPart[p]; !ok {
				order = append(order, p)
			}
			byPart[p] = append(byPart[p], op)
		}
		parts := make([][]porcupine.Operation, 0, len(order))
		for _, p := range order {
			parts = append(parts, byPart[p])
		}
		return parts
	},
	Init: func() any { return linState{} },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(linState), input.(linInput), output.(linOutput)
		ok := func(want string) bool { return out.unknown || out.val == want }
		switch in.kind {
		case "put":
			return ok("ok"), linState{v: in.arg, n: st.n}
		case "get":
			return ok(st.v), st
		case "cas":
			if st.v == in.arg {
				return ok("ok"), linState{v: in.arg2, n: st.n}
			}
			return ok("fail"), st
		case "incr":
			return ok(strconv.FormatInt(st.n+1, 10)), linState{v: st.v, n: st.n + 1}
		case "read":
			return ok(strconv.FormatInt(st.n, 10)), st
		}
		return false, st
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		val := strconv.Quote(out.val)
		if out.unknown {
			val = "?"
		}
		switch in.kind {
		case "put":
			return fmt.Sprintf("%s put %q → %s", in.obj.name(), in.arg, val)
		case "cas":
			return fmt.Sprintf("%s cas %q→%q → %s", in.obj.name(), in.arg, in.arg2, val)
		}
		return fmt.Sprintf("%s %s → %s", in.obj.name(), in.kind, val)
	},
	DescribeState: func(state any) string {
		st := state.(linState)
		return fmt.Sprintf("v=%q n=%d", st.v, st.n)
	},
}

// linState is an object's register v and counter n.
type linState struct {
	v string
	n int64
}

// linHistory records the calls of every client.
type linHistory struct {
	start      time.Time
	badReplies atomic.Int64

	mu      sync.Mutex
	ops     []porcupine.Operation
	calls   map[string]int // by kind
	unknown map[string]int // by kind, writes only
	failed  map[string]int // by error code
}

func (h *linHistory) now() int64 { return int64(time.Since(h.start)) }

// record adds a call that started at call (h.now) and ended with resp or err.
func (h *linHistory) record(client int, in linInput, call int64, resp *actor.Response, err error) {
	ret := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.calls == nil {
		h.calls, h.unknown, h.failed = map[string]int{}, map[string]int{}, map[string]int{}
	}
	h.calls[in.kind]++
	op := porcupine.Operation{ClientId: client, Input: in, Call: call, Return: ret}
	switch {
	case err == nil && (resp.Status == 0 || resp.Status == 200):
		op.Output = linOutput{val: string(resp.Body)}
	case err == nil:
		h.badReplies.Add(1)
		h.failed[fmt.Sprintf("status %d", resp.Status)]++
		return
	default:
		h.failed[errorClass(err)]++
		if in.kind == "get" || in.kind == "read" {
			return // a read that did not answer changed nothing
		}
		h.unknown[in.kind]++
		op.Output = linOutput{unknown: true}
		op.Return = math.MaxInt64 // it may have run at any time after its call
	}
	h.ops = append(h.ops, op)
}

func errorClass(err error) string {
	var ae *actor.Error
	switch {
	case errors.As(err, &ae):
		return ae.Code
	case errors.Is(err, context.DeadlineExceeded):
		return "client timeout"
	}
	return err.Error()
}

func (h *linHistory) operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// summary tells how many calls of each kind were made, how many writes
// have no known outcome and how calls failed.
func (h *linHistory) summary() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	total := 0
	for _, n := range h.calls {
		total += n
	}
	objs := map[linObj]bool{}
	for _, op := range h.ops {
		objs[op.Input.(linInput).obj] = true
	}
	return fmt.Sprintf("%d calls on %d objects (%s), %d operations checked, writes of unknown outcome %s, failures %s",
		total, len(objs), countList(h.calls), len(h.ops), countList(h.unknown), countList(h.failed))
}

func countList(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// lostIncrements compares each counter's last read (the final one) with
// its increments: at least every acknowledged one, at most those plus the
// ones of unknown outcome.
func (h *linHistory) lostIncrements() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	type tally struct {
		acked, unknown int64
		final          int64
		finalAt        int64
		read           bool
	}
	by := map[linObj]*tally{}
	for _, op := range h.ops {
		in, out := op.Input.(linInput), op.Output.(linOutput)
		if !in.counter() {
			continue
		}
		c := by[in.obj]
		if c == nil {
			c = &tally{}
			by[in.obj] = c
		}
		switch {
		case in.kind == "incr" && out.unknown:
			c.unknown++
		case in.kind == "incr":
			c.acked++
		case op.Return >= c.finalAt:
			n, _ := strconv.ParseInt(out.val, 10, 64)
			c.final, c.finalAt, c.read = n, op.Return, true
		}
	}
	var lost []string
	for obj, c := range by {
		if !c.read || c.final < c.acked || c.final > c.acked+c.unknown {
			lost = append(lost, fmt.Sprintf("%s: last read %d (read: %v), %d increments acknowledged, %d unknown", obj.name(), c.final, c.read, c.acked, c.unknown))
		}
	}
	return lost
}

// runLinClient calls random objects of the current epoch until ctx is done,
// one call at a time.
func runLinClient(ctx context.Context, ns *actor.NamespaceClient, client int, epoch *atomic.Int64, h *linHistory) {
	rng := rand.New(rand.NewPCG(uint64(client), 7))
	seq := 0
	last := map[linObj]string{} // register value this client saw last
	for ctx.Err() == nil {
		in := linInput{obj: linObj{epoch: int(epoch.Load()), i: rng.IntN(linObjects)}}
		var body []byte
		switch r := rng.IntN(100); {
		case r < 20:
			seq++
			in.kind, in.arg = "put", fmt.Sprintf("c%d.%d", client, seq)
			body = []byte(in.arg)
		case r < 40:
			in.kind = "get"
		case r < 55:
			seq++
			in.kind, in.arg, in.arg2 = "cas", last[in.obj], fmt.Sprintf("c%d.%d", client, seq)
			body = []byte(in.arg + "\n" + in.arg2)
		case r < 80:
			in.kind = "incr"
		default:
			in.kind = "read"
		}
		// Calls in flight when the load stops run to their end, so that
		// none is cut short by the test rather than by a fault.
		cctx, cancel := context.WithTimeout(context.Background(), linCallTimeout)
		call := h.now()
		resp, err := ns.Get(in.obj.name()).Do(cctx, in.kind, body)
		cancel()
		h.record(client, in, call, resp, err)
		if err != nil {
			continue
		}
		switch {
		case in.kind == "put", in.kind == "cas" && string(resp.Body) == "ok":
			last[in.obj] = in.arg
			if in.kind == "cas" {
				last[in.obj] = in.arg2
			}
		case in.kind == "get":
			last[in.obj] = string(resp.Body)
		}
	}
}

// finalRead reads obj's register and counter once the faults are over,
// retrying until each answers.
func finalRead(t *testing.T, ns *actor.NamespaceClient, obj linObj, h *linHistory) {
	t.Helper()
	for _, kind := range []string{"get", "read"} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), linCallTimeout)
			call := h.now()
			resp, err := ns.Get(obj.name()).Do(ctx, kind, nil)
			cancel()
			h.record(linClients, linInput{obj: obj, kind: kind}, call, resp, err)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("final %s of %s: %v", kind, obj.name(), err)
			}
		}
	}
}

// linFaults injects the faults, from the test goroutine.
type linFaults struct {
	t     *testing.T
	cl    *natstest.Cluster
	nodes []*linNode
	h     *linHistory
	done  []string // what was injected, for the report
}

func (f *linFaults) log(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	f.done = append(f.done, s)
	f.t.Logf("%6.1fs fault: %s", time.Since(f.h.start).Seconds(), s)
}

// kill sends SIGKILL to a node and restarts it on its data 2 s later.
func (f *linFaults) kill(rng *rand.Rand) {
	n := f.nodes[rng.IntN(len(f.nodes))]
	f.log("SIGKILL %s, restart after 2s", n.id)
	n.signal(syscall.SIGKILL)
	n.wait()
	time.Sleep(2 * time.Second)
	n.start()
}

// pause stops a node with SIGSTOP for twice its lease, then resumes it:
// the others take its objects over meanwhile, and it must not serve them
// when it wakes.
func (f *linFaults) pause(rng *rand.Rand) {
	n := f.nodes[rng.IntN(len(f.nodes))]
	f.log("SIGSTOP %s for %v, SIGCONT", n.id, 2*linLeaseTTL)
	n.signal(syscall.SIGSTOP)
	time.Sleep(2 * linLeaseTTL)
	n.signal(syscall.SIGCONT)
}

// restartServer shuts down the NATS server leading the journal stream (a
// random one when no leader is known) and starts it again 2 s later.
func (f *linFaults) restartServer(rng *rand.Rand) {
	i := f.journalLeader(rng)
	f.log("shutdown of NATS server S-%d (journal leader), restart after 2s", i+1)
	f.cl.Shutdown(i)
	time.Sleep(2 * time.Second)
	f.cl.Restart(f.t, i)
	f.cl.WaitJetStream(f.t, linStreams...)
}

// handoff stops a node with SIGTERM (it hands its objects over) and
// starts it again.
func (f *linFaults) handoff(rng *rand.Rand) {
	n := f.nodes[rng.IntN(len(f.nodes))]
	f.log("SIGTERM %s (handoff), restart", n.id)
	n.signal(syscall.SIGTERM)
	if code := n.wait(); code != 0 {
		f.t.Errorf("%s exited %d after SIGTERM", n.id, code)
	}
	n.start()
}

// killWithServer kills a node and shuts a NATS server down at once, and
// restarts both 2 s later.
func (f *linFaults) killWithServer(rng *rand.Rand) {
	n := f.nodes[rng.IntN(len(f.nodes))]
	i := rng.IntN(f.cl.Size())
	f.log("SIGKILL %s and shutdown of NATS server S-%d, restart both after 2s", n.id, i+1)
	n.signal(syscall.SIGKILL)
	f.cl.Shutdown(i)
	n.wait()
	time.Sleep(2 * time.Second)
	f.cl.Restart(f.t, i)
	f.cl.WaitJetStream(f.t, linStreams...)
	n.start()
}

func (f *linFaults) journalLeader(rng *rand.Rand) int {
	for i := range f.cl.Size() {
		if srv := f.cl.Server(i).NATS(); srv != nil && srv.JetStreamIsStreamLeader(srv.GlobalAccount().GetName(), linStreams[0]) {
			return i
		}
	}
	return rng.IntN(f.cl.Size())
}

// dumpOwners lists the ownership bucket's keys and values.
func dumpOwners(cl *natstest.Cluster) string {
	nc, err := nats.Connect(cl.URLs(), nats.Timeout(5*time.Second))
	if err != nil {
		return err.Error()
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "OPENDO_OWNERS")
	if err != nil {
		return err.Error()
	}
	keys, err := kv.Keys(ctx)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, k := range keys {
		if e, err := kv.Get(ctx, k); err == nil {
			fmt.Fprintf(&b, "%s = %s (rev %d, %s)\n", k, e.Value(), e.Revision(), e.Created().Format(time.StampMilli))
		}
	}
	return b.String()
}

// linNode is one linnode process, restarted on the same data directory.
type linNode struct {
	t       *testing.T
	bin, id string
	dir     string
	urls    string
	stderr  *lockedBuffer // of every run, in order

	cmd    *exec.Cmd
	exited chan struct{}
}

// start runs the node and waits until it serves.
func (n *linNode) start() {
	n.t.Helper()
	n.cmd = exec.Command(n.bin, "-nats", n.urls, "-data", n.dir, "-node-id", n.id, "-lease-ttl", linLeaseTTL.String(),
		"-journal-streams", strconv.Itoa(linJournalStreams))
	out := newStdoutWatcher()
	n.cmd.Stdout, n.cmd.Stderr = out, n.stderr
	n.cmd.WaitDelay = 5 * time.Second
	fmt.Fprintf(n.stderr, "--- start %s\n", time.Now().Format(time.StampMilli))
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("%s: %v", n.id, err)
	}
	exited := make(chan struct{})
	n.exited = exited
	cmd := n.cmd
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case <-out.ready:
	case <-exited:
		n.t.Fatalf("%s exited before ready:\n%s", n.id, lastLines(n.stderr.String(), 40))
	case <-time.After(readyTimeout):
		n.t.Fatalf("%s not ready after %v:\n%s", n.id, readyTimeout, lastLines(n.stderr.String(), 40))
	}
}

func (n *linNode) signal(sig syscall.Signal) {
	n.t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		n.t.Fatalf("%s: %v: %v", n.id, sig, err)
	}
}

// wait waits until the process has exited and returns its exit code (-1
// when a signal killed it).
func (n *linNode) wait() int {
	n.t.Helper()
	select {
	case <-n.exited:
		return n.cmd.ProcessState.ExitCode()
	case <-time.After(exitTimeout):
		n.t.Fatalf("%s (pid %d) did not exit within %v", n.id, n.cmd.Process.Pid, exitTimeout)
		return 0
	}
}

// cleanup kills the process if it still runs (a stopped one too).
func (n *linNode) cleanup() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.exited:
	default:
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestLinModel: the harness's model and checker accept a linearizable
// history and reject the failures the harness looks for: a stale read, a
// lost increment, an increment counted twice, a cas that ignored a write.
func TestLinModel(t *testing.T) {
	o := linObj{}
	op := func(call, ret int64, kind, arg, arg2, out string) porcupine.Operation {
		output := linOutput{val: out}
		if out == "?" {
			output, ret = linOutput{unknown: true}, math.MaxInt64
		}
		return porcupine.Operation{Input: linInput{obj: o, kind: kind, arg: arg, arg2: arg2}, Call: call, Output: output, Return: ret}
	}
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"concurrent", []porcupine.Operation{
			op(0, 10, "put", "a", "", "ok"), op(5, 15, "get", "", "", ""), op(12, 20, "get", "", "", "a"),
			op(0, 3, "incr", "", "", "2"), op(1, 4, "incr", "", "", "1"), op(5, 6, "read", "", "", "2"),
		}, porcupine.Ok},
		{"unknown write seen later", []porcupine.Operation{
			op(0, 0, "put", "a", "", "?"), op(50, 60, "get", "", "", "a"),
			op(0, 0, "incr", "", "", "?"), op(1, 2, "incr", "", "", "1"), op(70, 80, "read", "", "", "2"),
		}, porcupine.Ok},
		{"unknown write never seen", []porcupine.Operation{
			op(0, 0, "put", "a", "", "?"), op(50, 60, "get", "", "", ""),
		}, porcupine.Ok},
		{"stale read", []porcupine.Operation{
			op(0, 10, "put", "a", "", "ok"), op(20, 30, "put", "b", "", "ok"), op(40, 50, "get", "", "", "a"),
		}, porcupine.Illegal},
		{"lost increment", []porcupine.Operation{
			op(0, 10, "incr", "", "", "1"), op(20, 30, "incr", "", "", "2"), op(40, 50, "read", "", "", "1"),
		}, porcupine.Illegal},
		{"increment counted twice", []porcupine.Operation{
			op(0, 10, "incr", "", "", "1"), op(20, 30, "incr", "", "", "1"),
		}, porcupine.Illegal},
		{"cas missed a write", []porcupine.Operation{
			op(0, 10, "put", "a", "", "ok"), op(20, 30, "cas", "", "b", "ok"),
		}, porcupine.Illegal},
	} {
		if got := porcupine.CheckOperationsTimeout(linModel, tc.ops, 10*time.Second); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
