package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/bus"
	"github.com/opendo/opendo/journal"
)

const journalUsage = `usage: opendo journal <subcommand> [flags] [args]

subcommands:
  ls      [NS [NAME]]                     objects with their entry count, first and last sequence, latest snapshot, last write
  show    NS NAME                         an object's entries (-from SEQ, -to SEQ|BOOKMARK, -json; -restores: its restorations only)
  replay  NS NAME -out FILE.db            materialize the object as of -to SEQ|BOOKMARK or -at TIME into a SQLite file
  fork    NS NAME NEWNAME                 a new object with the object's state as of -to SEQ|BOOKMARK or -at TIME
  verify  [NS [NAME]]                     rebuild objects from their snapshot and journal, compare with their live files
  tail    [NS [NAME]]                     follow new entries until Ctrl-C

An object is NS NAME (by name) or NS -id ID. Flags may follow the arguments.
Sequences are the journal stream's, shared by every object. A BOOKMARK
(SEQ-COMMITID, as a handler's Storage().Bookmark and 'show -restores' print
it) names an object's state after one of its entries: -to takes one of the
object's own bookmarks, and refuses another object's.

A restore entry (a handler's Storage().RestoreBookmark) makes an object's
state its state as of an earlier entry: show prints it as "restore to seq N",
replay, fork and verify build the state it names.

With -nats URL the commands use a running NATS server. Without it they open
the JetStream store of -data (default ./.opendo) in this process, which only
works while 'opendo dev' is stopped; while it runs, pass
-nats nats://127.0.0.1:4222.

Run 'opendo journal <subcommand> -h' for its flags.
`

func runJournal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, journalUsage)
		return usageError{"journal needs a subcommand"}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "ls", "list":
		return runJournalLs(ctx, rest, stdout, stderr)
	case "show":
		return runJournalShow(ctx, rest, stdout, stderr)
	case "replay":
		return runJournalReplay(ctx, rest, stdout, stderr)
	case "fork":
		return runJournalFork(ctx, rest, stdout, stderr)
	case "verify":
		return runJournalVerify(ctx, rest, stdout, stderr)
	case "tail":
		return runJournalTail(ctx, rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, journalUsage)
		return nil
	}
	fmt.Fprint(stderr, journalUsage)
	return usageError{fmt.Sprintf("unknown journal subcommand %q", sub)}
}

// journalFlags are the flags every journal subcommand takes.
type journalFlags struct {
	nf         natsFlags
	data       string
	dataSet    bool // -data was given: it wins over $NATS_URL
	prefix     string
	partitions int
	stream     string
	id         string // -id: the object is given by ID
}

func (f *journalFlags) register(fs *flag.FlagSet, withID bool) {
	f.nf.register(fs, "nats")
	fs.Lookup("nats").Usage = "URL(s) of a running NATS server, comma-separated (default $NATS_URL; without either, open the store of -data in this process)"
	f.data = "./.opendo"
	fs.Func("data", "data directory of 'opendo dev' (JetStream store in DIR/nats), used without -nats and $NATS_URL (default \"./.opendo\")", func(v string) error {
		f.data, f.dataSet = v, true
		return nil
	})
	fs.StringVar(&f.prefix, "prefix", bus.DefaultPrefix, "subject prefix of the deployment")
	fs.IntVar(&f.partitions, "partitions", bus.DefaultPartitions, "partitions of the deployment")
	fs.StringVar(&f.stream, "stream", journal.DefaultStream, "journal stream")
	if withID {
		fs.StringVar(&f.id, "id", "", "the object's `ID` (instead of NAME)")
	}
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments, which it returns in order. Everything after
// "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// objRef names one object.
type objRef struct {
	ns   string
	id   actor.ID
	name string // "" when given by ID
}

func (r objRef) String() string {
	if r.name != "" {
		return fmt.Sprintf("%s/%s (id %s)", r.ns, r.name, r.id)
	}
	return r.ns + "/" + string(r.id)
}

// newObjRef checks ns and names the object by name or by id (one of them).
func newObjRef(ns, name, id string) (objRef, error) {
	if err := bus.ValidToken(ns); err != nil {
		return objRef{}, usageError{fmt.Sprintf("namespace: %v", err)}
	}
	switch {
	case name != "" && id != "":
		return objRef{}, usageError{"give NAME or -id ID, not both"}
	case id != "":
		pid, err := actor.ParseID(id)
		if err != nil {
			return objRef{}, usageError{err.Error()}
		}
		return objRef{ns: ns, id: pid}, nil
	case name != "":
		if err := actor.ValidName(name); err != nil {
			return objRef{}, usageError{err.Error()}
		}
		return objRef{ns: ns, id: actor.NameID(ns, name), name: name}, nil
	}
	return objRef{}, usageError{"name the object: NS NAME or NS -id ID"}
}

// objSelection is what ls, verify and tail act on: every object, a
// namespace, or one object.
type objSelection struct {
	ns  string  // "" = every namespace
	obj *objRef // nil = every object of ns
}

func parseObjSelection(pos []string, id string, cmd string) (objSelection, error) {
	switch {
	case len(pos) > 2:
		return objSelection{}, usageError{cmd + " takes [NS [NAME]]"}
	case len(pos) == 0 && id != "":
		return objSelection{}, usageError{"-id needs NS"}
	case len(pos) == 0:
		return objSelection{}, nil
	}
	ns := pos[0]
	if len(pos) == 1 && id == "" {
		if err := bus.ValidToken(ns); err != nil {
			return objSelection{}, usageError{fmt.Sprintf("namespace: %v", err)}
		}
		return objSelection{ns: ns}, nil
	}
	ref, err := objRefArgs(pos, id)
	if err != nil {
		return objSelection{}, err
	}
	return objSelection{ns: ns, obj: &ref}, nil
}

// objRefArgs names one object from the arguments NS NAME, or NS with -id.
func objRefArgs(pos []string, id string) (objRef, error) {
	var name string
	if len(pos) == 2 {
		name = pos[1]
	}
	return newObjRef(pos[0], name, id)
}

// journalConn is a connection to the journal, over NATS or through a
// JetStream store opened in this process.
type journalConn struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	jr      *journal.Journal
	subj    bus.Subjects
	stream  string
	base    string // "<prefix>.journal."
	stderr  io.Writer
	local   bool // the store of -data, opened in this process
	closers []func()

	snaps        *journal.Snapshots // the snapshot bucket, nil if none
	snapsChecked bool               // snaps was looked up
}

// errNoJournal: there is no journal stream at all.
var errNoJournal = errors.New("nothing has been journaled yet")

// connect reaches the journal as the flags say. Close the result.
func (f *journalFlags) connect(ctx context.Context, name string, stderr io.Writer) (_ *journalConn, err error) {
	subj, err := bus.NewSubjects(f.prefix, f.partitions)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	c := &journalConn{subj: subj, stream: f.stream, base: subj.Prefix + ".journal.", stderr: stderr}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	where := ""
	if f.nf.url == "" && !f.dataSet {
		f.nf.url = os.Getenv("NATS_URL") // as every other command does
	}
	if f.nf.url != "" {
		nc, err := bus.Connect(f.nf.config(name))
		if err != nil {
			return nil, err
		}
		c.closers = append(c.closers, nc.Close)
		c.nc = nc
		where = "on " + nc.ConnectedUrlRedacted()
	} else {
		if err := c.openLocal(ctx, f.data); err != nil {
			return nil, err
		}
		where = "in " + f.data
	}
	if c.js, err = jetstream.New(c.nc); err != nil {
		return nil, err
	}
	s, err := c.js.Stream(ctx, f.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("no journal stream %s %s: %w", f.stream, where, errNoJournal)
	}
	if err != nil {
		return nil, fmt.Errorf("journal stream %s: %w", f.stream, err)
	}
	// journal.Open updates the stream to the journal's settings: give it
	// the stream's own replicas and size limit, and never let a mistyped
	// -prefix add subjects to it.
	have := s.CachedInfo().Config
	if !slices.ContainsFunc(have.Subjects, func(p string) bool { return strings.HasPrefix(p, c.base) }) {
		return nil, fmt.Errorf("stream %s holds %v, not %s> (is -prefix right?)", f.stream, have.Subjects, c.base)
	}
	// The journal's recorded layout (Streams 0) finds each object's stream.
	cfg := journal.Config{Prefix: subj.Prefix, Stream: f.stream, Replicas: have.Replicas}
	if have.MaxBytes > 0 {
		cfg.MaxBytes = have.MaxBytes
	}
	if c.jr, err = journal.Open(ctx, c.js, cfg); err != nil {
		return nil, err
	}
	if n := c.jr.Partitions(); len(c.jr.Streams()) > 1 && n != subj.Partitions {
		// A spread journal records its partitions: they decide the subjects.
		if c.subj, err = bus.NewSubjects(subj.Prefix, n); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// openLocal starts a nats-server in this process on the JetStream store of
// data directory dir, unless opendo dev has it.
func (c *journalConn) openLocal(ctx context.Context, dir string) error {
	store := filepath.Join(dir, "nats")
	if _, err := os.Stat(filepath.Join(store, "jetstream")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no opendo data in %s (%w); pass -data DIR, or -nats URL to use a running server", dir, errNoJournal)
		}
		return err
	}
	// Two servers on one store would corrupt it. opendo dev does not take
	// the lock file (yet), so also look for a process holding the store
	// open, and for a server at dev's default address serving this store.
	unlock, err := lockDataDir(dir)
	if errors.Is(err, errDataDirLocked) {
		return devRunningError(bus.DefaultURL, "another process holds "+filepath.Join(dir, dataDirLockName)+": opendo dev, or another opendo journal command")
	}
	if err != nil {
		return err
	}
	c.closers = append(c.closers, unlock)
	if hs := storeHolders(store); len(hs) > 0 {
		return devRunningError(hs[0].url(), fmt.Sprintf("process %d has %s open", hs[0].pid, store))
	}
	if u, ok := devServesStore(ctx, store, c.stream); ok {
		return devRunningError(u, "")
	}
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: store, SyncAlways: true})
	if err != nil {
		return fmt.Errorf("open %s: %w", store, err)
	}
	c.closers = append(c.closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	nc, err := srv.Connect("opendo-journal")
	if err != nil {
		return err
	}
	c.closers = append(c.closers, nc.Close)
	c.nc, c.local = nc, true
	return nil
}

// devRunningError tells to use the running server at u ("" if unknown).
func devRunningError(u, why string) error {
	msg := "opendo dev is running on this data dir: pass -nats " + u
	if u == "" {
		msg = "opendo dev is running on this data dir: pass -nats with the URL it printed"
	}
	if why != "" {
		msg += " (" + why + ")"
	}
	return errors.New(msg)
}

// url returns the NATS URL of a holder started with -addr (opendo dev's
// default if none), or "" if it listens on a random port.
func (h storeHolder) url() string {
	if h.addr == "" {
		return bus.DefaultURL
	}
	host, port, err := net.SplitHostPort(h.addr)
	if err != nil || port == "0" || port == "-1" {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, port)
}

// devServesStore reports whether a server at opendo dev's default address
// serves the journal stream kept in store: the stream's creation time,
// which the server reports and keeps in the stream's meta.inf, matches.
func devServesStore(ctx context.Context, store, stream string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(store, "jetstream", "$G", "streams", stream, "meta.inf"))
	if err != nil {
		return "", false
	}
	var meta struct{ Created time.Time }
	if json.Unmarshal(b, &meta) != nil || meta.Created.IsZero() {
		return "", false
	}
	u := bus.DefaultURL
	pu, err := url.Parse(u)
	if err != nil {
		return "", false
	}
	conn, err := net.DialTimeout("tcp", pu.Host, 300*time.Millisecond)
	if err != nil {
		return "", false
	}
	conn.Close()
	nc, err := nats.Connect(u, nats.Name("opendo-journal-probe"), nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return "", false
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", false
	}
	return u, s.CachedInfo().Created.Equal(meta.Created)
}

// Close releases the connection, the in-process server and the lock.
func (c *journalConn) Close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
	c.closers = nil
}

// filter returns the subject filter of a selection, in any partition.
func (c *journalConn) filter(sel objSelection) string {
	switch {
	case sel.obj != nil:
		return c.base + "*." + sel.obj.ns + "." + string(sel.obj.id)
	case sel.ns != "":
		return c.base + "*." + sel.ns + ".*"
	}
	return c.base + ">"
}

// parseSubject splits <prefix>.journal.<partition>.<ns>.<id>.
func (c *journalConn) parseSubject(s string) (partition int, ns, id string, ok bool) {
	rest, found := strings.CutPrefix(s, c.base)
	if !found {
		return 0, "", "", false
	}
	toks := strings.Split(rest, ".")
	if len(toks) != 3 {
		return 0, "", "", false
	}
	p, err := strconv.Atoi(toks[0])
	if err != nil {
		return 0, "", "", false
	}
	return p, toks[1], toks[2], true
}

// objectSubject finds ref's journal subject and its number of entries. The
// subject is normally the one -prefix and -partitions give; if the journal
// is in another partition (a wrong -partitions), that one is returned with
// wrongPartition set. A missing journal is the computed subject with 0
// entries.
func (c *journalConn) objectSubject(ctx context.Context, ref objRef) (subject string, entries uint64, wrongPartition bool, err error) {
	want := c.subj.Journal(ref.ns, string(ref.id))
	m, err := c.jr.Subjects(ctx, want)
	if err != nil {
		return "", 0, false, err
	}
	if n := m[want]; n > 0 {
		return want, n, false, nil
	}
	// Not there: look in every partition (a scan of the stream's subjects).
	m, err = c.jr.Subjects(ctx, c.filter(objSelection{ns: ref.ns, obj: &ref}))
	if err != nil {
		return "", 0, false, err
	}
	others := make([]string, 0, len(m))
	for s := range m {
		others = append(others, s)
	}
	if len(others) == 0 {
		return want, 0, false, nil
	}
	sort.Strings(others)
	return others[0], m[others[0]], true, nil
}

// readableSubject is objectSubject for commands that only read: a journal
// in another partition is used with a warning, a missing one is an error.
func (c *journalConn) readableSubject(ctx context.Context, ref objRef) (string, uint64, error) {
	s, n, wrong, err := c.objectSubject(ctx, ref)
	if err != nil {
		return "", 0, err
	}
	if n == 0 {
		return "", 0, fmt.Errorf("%s has no journal (subject %s)", ref, s)
	}
	if wrong {
		p, _, _, _ := c.parseSubject(s)
		fmt.Fprintf(c.stderr, "opendo: warning: %s is journaled in partition %d, not %d: is -partitions %d the deployment's?\n",
			ref, p, c.subj.Partition(ref.ns, string(ref.id)), c.subj.Partitions)
	}
	return s, n, nil
}

// parseJournalAt parses -at: RFC 3339, with or without fractional seconds.
func parseJournalAt(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usageError{fmt.Sprintf("bad -at %q: want an RFC 3339 time such as 2006-01-02T15:04:05Z", s)}
	}
	return t, nil
}

// journalPoint is where replay and fork stop: the last entry with sequence at
// most to (0: no bound) and, if at is set, entry time at most at.
type journalPoint struct {
	to seqFlag
	at time.Time
}

func (p journalPoint) String() string {
	switch {
	case !p.at.IsZero():
		return "at " + fmtEntryTime(p.at)
	case p.to.bm != nil:
		return "at seq " + strconv.FormatUint(p.to.seq, 10) + " (bookmark " + p.to.bm.String() + ")"
	case p.to.seq != 0:
		return "at seq " + strconv.FormatUint(p.to.seq, 10)
	}
	return "at its last entry"
}

// resolve returns the sequence of the last entry of subject at p. A
// bookmark given as -to must be one of subject's. With -at it reads the
// journal up to p.to and keeps the last entry whose time is at most p.at
// (entries are in sequence order; their times normally are too). Without
// -at it returns p.to unchanged, 0 meaning the last entry.
func (p journalPoint) resolve(ctx context.Context, c *journalConn, subject string) (uint64, error) {
	if err := p.to.check(ctx, c.jr, subject); err != nil {
		return 0, err
	}
	if p.at.IsZero() {
		return p.to.seq, nil
	}
	var (
		upto      uint64
		first     time.Time
		firstSeq  uint64
		firstFork bool // the first entry starts from a snapshot: a fork's
	)
	err := c.jr.Read(ctx, subject, 0, p.to.seq, func(seq uint64, e *journal.Entry) error {
		if firstSeq == 0 {
			first, firstSeq, firstFork = e.Time, seq, e.FromSnapshot
		}
		if !e.Time.After(p.at) {
			upto = seq
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if upto != 0 {
		return upto, nil
	}
	if firstSeq == 0 {
		return 0, fmt.Errorf("no entries up to seq %d", p.to.seq)
	}
	err = fmt.Errorf("no entry at or before %s: the first one, seq %d, was written at %s", fmtEntryTime(p.at), firstSeq, fmtEntryTime(first))
	if firstFork {
		return 0, fmt.Errorf("%w (it is a fork: its history starts there)", err)
	}
	// Entries before the first one left may have been purged.
	if _, fromStart, oerr := c.jr.Origin(ctx, subject); oerr == nil && !fromStart {
		err = fmt.Errorf("%w; history before seq %d was purged (retention)", err, firstSeq)
	}
	return 0, err
}

// seqFlag is the value of -to: a sequence, or a bookmark (which means its
// sequence, once check has made sure it is one of the object's).
type seqFlag struct {
	seq uint64
	bm  *journal.Bookmark
}

func (f *seqFlag) String() string {
	if f.bm != nil {
		return f.bm.String()
	}
	if f.seq == 0 {
		return ""
	}
	return strconv.FormatUint(f.seq, 10)
}

func (f *seqFlag) Set(s string) error {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		f.seq, f.bm = n, nil
		return nil
	}
	b, err := journal.ParseBookmark(s)
	if err != nil {
		return fmt.Errorf("want a sequence or a bookmark: %w", err)
	}
	if b.Seq == 0 {
		return fmt.Errorf("bookmark %s names the empty state before the first entry", s)
	}
	f.seq, f.bm = b.Seq, &b
	return nil
}

// set reports whether the flag was given (and not as 0).
func (f *seqFlag) set() bool { return f.seq != 0 }

// check returns an error unless the bookmark given, if any, is one of
// subject's: the entry at its sequence is subject's and has its commit ID.
func (f *seqFlag) check(ctx context.Context, jr *journal.Journal, subject string) error {
	if f.bm == nil {
		return nil
	}
	if err := jr.Check(ctx, subject, *f.bm); err != nil {
		return fmt.Errorf("-to: %w", err)
	}
	return nil
}

// journalPointFlags registers -to and -at.
func journalPointFlags(fs *flag.FlagSet) (to *seqFlag, at *string) {
	to = new(seqFlag)
	fs.Var(to, "to", "stop at the state as of `SEQ|BOOKMARK`: the last entry with seq <= SEQ (default: the last entry), "+
		"or the entry a bookmark of the object names (SEQ-COMMITID, as 'show -restores' and Storage().Bookmark print it; another object's is refused)")
	at = fs.String("at", "", "stop at the last entry written at or before `TIME` (RFC 3339)")
	return to, at
}

func parseJournalPoint(to *seqFlag, at string) (journalPoint, error) {
	p := journalPoint{to: *to}
	if at != "" {
		if to.set() {
			return journalPoint{}, usageError{"-to and -at are exclusive"}
		}
		t, err := parseJournalAt(at)
		if err != nil {
			return journalPoint{}, err
		}
		p.at = t
	}
	return p, nil
}

// fmtEntryTime formats t in UTC with milliseconds.
func fmtEntryTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// journalCount formats n with the singular or plural noun.
func journalCount[T ~int | ~int64 | ~uint64](n T, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatUint(uint64(n), 10) + " " + many
}
