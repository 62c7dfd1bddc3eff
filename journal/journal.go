package journal

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config.
const (
	DefaultPrefix = "opendo"
	DefaultStream = "OPENDO_JOURNAL"
)

// duplicateWindow is the stream's Nats-Msg-Id window, set at creation.
// Fencing, not deduplication, protects the journal (the server checks the
// expected sequence first), so the window is kept short to bound the
// server's memory.
const duplicateWindow = 30 * time.Second

// headerOverhead is the most bytes Append's headers add to a message:
// "NATS/1.0\r\n", Nats-Msg-Id (26-char ULID), the expected sequence (up to
// 20 digits), each as "Key: value\r\n", and the final "\r\n".
const headerOverhead = len("NATS/1.0\r\n") + len("\r\n") +
	len(jetstream.MsgIDHeader) + 26 + 4 +
	len(jetstream.ExpectedLastSubjSeqHeader) + 20 + 4

// defaultMaxPayload is the NATS server's default max_payload (1 MiB).
const defaultMaxPayload = 1 << 20

// Config configures a Journal. The zero value is usable.
type Config struct {
	// Prefix of every opendo subject (default "opendo"). Journal subjects
	// are <Prefix>.journal.<partition>.<ns>.<id>.
	Prefix string
	// Stream is the JetStream stream name (default "OPENDO_JOURNAL").
	Stream string
	// Replicas of the stream (default 1).
	Replicas int
	// MaxBytes caps the stream's size; 0 means unlimited. A full journal
	// rejects appends: it never discards entries.
	MaxBytes int64
	// Streams spreads the journal over this many streams (1 to 64), so that
	// on a cluster their leaders, and the writes, spread over the servers:
	// partition p's objects are journaled in stream p mod Streams, named
	// Stream for 0 and Stream_<i> for the others. The first Open records
	// the layout in the first stream's metadata; 0 means the recorded
	// layout (1 stream for a journal that has none, or a new one). A
	// journal laid out over some number of streams keeps it: opening it
	// with another number fails with ErrLayout, unless it holds no entry
	// yet.
	Streams int
	// Partitions is the deployment's number of partitions, recorded with
	// the layout when Streams > 1. 0 means the recorded number, else 64.
	Partitions int
}

// Metadata keys of the layout, on the first stream.
const (
	metaStreams    = "opendo_journal_streams"
	metaPartitions = "opendo_journal_partitions"
)

// maxStreams bounds Config.Streams.
const maxStreams = 64

func (c *Config) setDefaults() error {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Partitions == 0 {
		c.Partitions = 64
	}
	switch {
	case !validLiteral(c.Prefix):
		return fmt.Errorf("%w: prefix %q is not a literal subject", ErrInvalidArgument, c.Prefix)
	case c.Stream == "" || strings.ContainsAny(c.Stream, " \t\r\n.*>/\\"):
		return fmt.Errorf("%w: stream name %q", ErrInvalidArgument, c.Stream)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("%w: replicas %d (want 1 to 5)", ErrInvalidArgument, c.Replicas)
	case c.MaxBytes < 0:
		return fmt.Errorf("%w: negative max bytes %d", ErrInvalidArgument, c.MaxBytes)
	case c.Streams < 0 || c.Streams > maxStreams:
		return fmt.Errorf("%w: streams %d (want 1 to %d, or 0 for the recorded layout)", ErrInvalidArgument, c.Streams, maxStreams)
	case c.Partitions < 1:
		return fmt.Errorf("%w: partitions %d", ErrInvalidArgument, c.Partitions)
	case c.Streams > c.Partitions:
		return fmt.Errorf("%w: %d streams for %d partitions", ErrInvalidArgument, c.Streams, c.Partitions)
	}
	return nil
}

// streamName is the name of stream i of the journal.
func (c *Config) streamName(i int) string {
	if i == 0 {
		return c.Stream
	}
	return c.Stream + "_" + strconv.Itoa(i)
}

// subjects are the journal subjects of stream i when the journal is laid
// out over n streams: all of them for one stream, else those of the
// partitions p with p mod n = i.
func (c *Config) subjects(i, n int) []string {
	base := c.Prefix + ".journal."
	if n == 1 {
		return []string{base + ">"}
	}
	var subj []string
	for p := i; p < c.Partitions; p += n {
		subj = append(subj, base+strconv.Itoa(p)+".>")
	}
	return subj
}

// apply sets the stream settings the journal owns on sc, for stream i of
// n, keeping the others (e.g. alarm schedules sharing the stream).
func (c *Config) apply(sc *jetstream.StreamConfig, i, n int) {
	base := c.Prefix + ".journal."
	want := c.subjects(i, n)
	subj := slices.DeleteFunc(slices.Clone(sc.Subjects), func(p string) bool {
		return strings.HasPrefix(p, base) && !slices.Contains(want, p)
	})
	for _, w := range want {
		if !slices.ContainsFunc(subj, func(p string) bool { return Covers(p, w) }) {
			subj = append(subj, w)
		}
	}
	sc.Subjects = subj
	sc.Retention = jetstream.LimitsPolicy
	sc.Storage = jetstream.FileStorage
	sc.Replicas = c.Replicas
	sc.MaxBytes = c.MaxBytes
	if sc.MaxBytes == 0 {
		sc.MaxBytes = -1
	}
	sc.MaxMsgs = -1
	sc.MaxMsgsPerSubject = -1
	sc.MaxAge = 0
	sc.Discard = jetstream.DiscardNew
	sc.DenyDelete = true
	sc.AllowDirect = true
	if i == 0 && n > 1 {
		md := maps.Clone(sc.Metadata)
		if md == nil {
			md = map[string]string{}
		}
		md[metaStreams] = strconv.Itoa(n)
		md[metaPartitions] = strconv.Itoa(c.Partitions)
		sc.Metadata = md
	}
}

// Journal appends and reads the entries of objects, one subject per object,
// in one JetStream stream or spread over several (Config.Streams). It is
// safe for concurrent use; fencing (not the Journal) keeps one writer per
// subject.
type Journal struct {
	js      jetstream.JetStream
	shards  []shard // stream i holds the partitions p with p mod len(shards) = i
	cfg     Config
	base    string // "<Prefix>.journal."
	api     string // JetStream API prefix, "$JS.API." unless a domain or prefix is set
	timeout time.Duration
}

// shard is one stream of the journal.
type shard struct {
	stream jetstream.Stream
	name   string
	direct string // direct get API subject of the stream
}

// Open creates the journal's streams, or updates existing ones to the
// journal's settings (file storage, limits retention, the journal's
// subjects, no message/age/per-subject limits, discard new, deny delete,
// direct gets), leaving unrelated settings alone. The layout (how many
// streams) is the recorded one; see Config.Streams.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Journal, error) {
	anyParts := cfg.Partitions == 0
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	n, err := layout(ctx, js, &cfg, anyParts)
	if err != nil {
		return nil, err
	}
	api := apiPrefix(js)
	j := &Journal{
		js:      js,
		cfg:     cfg,
		base:    cfg.Prefix + ".journal.",
		api:     api,
		timeout: js.Options().DefaultTimeout,
	}
	for i := range n {
		s, err := ensureStream(ctx, js, &cfg, i, n)
		if err != nil {
			return nil, err
		}
		name := cfg.streamName(i)
		j.shards = append(j.shards, shard{stream: s, name: name, direct: api + "DIRECT.GET." + name})
	}
	return j, nil
}

// layout returns the number of streams of the journal: the one recorded on
// its first stream (1 if none is), else cfg.Streams (1 if 0) for a new
// journal. A journal with entries keeps its layout. With anyParts, the
// recorded number of partitions replaces cfg.Partitions.
func layout(ctx context.Context, js jetstream.JetStream, cfg *Config, anyParts bool) (int, error) {
	want := cfg.Streams
	s, err := js.Stream(ctx, cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return max(want, 1), nil
	}
	if err != nil {
		return 0, fmt.Errorf("journal: stream %s: %w", cfg.Stream, err)
	}
	info := s.CachedInfo()
	have, parts := 1, cfg.Partitions
	if v, ok := info.Config.Metadata[metaStreams]; ok {
		if have, err = strconv.Atoi(v); err != nil || have < 1 || have > maxStreams {
			return 0, fmt.Errorf("%w: stream %s records a layout of %q streams", ErrLayout, cfg.Stream, v)
		}
		if parts, err = strconv.Atoi(info.Config.Metadata[metaPartitions]); err != nil {
			return 0, fmt.Errorf("%w: stream %s records %q partitions", ErrLayout, cfg.Stream, info.Config.Metadata[metaPartitions])
		}
	}
	if anyParts {
		cfg.Partitions = parts
	}
	switch {
	case (want == 0 || want == have) && (have == 1 || parts == cfg.Partitions):
		return have, nil
	case info.State.Msgs == 0 && have == 1:
		// An empty journal of one stream (a new deployment whose first
		// node ran with the default) may be laid out again.
		return want, nil
	}
	return 0, fmt.Errorf("%w: the journal in %s is laid out over %d streams for %d partitions, not %d streams for %d; a journal keeps the layout it was created with (docs/cluster.md)",
		ErrLayout, cfg.Stream, have, parts, want, cfg.Partitions)
}

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg *Config, i, n int) (jetstream.Stream, error) {
	name := cfg.streamName(i)
	for attempt := 0; ; attempt++ {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			sc := jetstream.StreamConfig{
				Name:        name,
				Description: "opendo write-ahead journal",
				Duplicates:  duplicateWindow,
			}
			if n > 1 {
				sc.Description = fmt.Sprintf("opendo write-ahead journal, stream %d of %d", i+1, n)
			}
			cfg.apply(&sc, i, n)
			s, err = js.CreateStream(ctx, sc)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && attempt == 0 {
				continue // created concurrently: update it
			}
		}
		if err != nil {
			return nil, fmt.Errorf("journal: stream %s: %w", name, err)
		}
		have := s.CachedInfo().Config
		if have.Storage != jetstream.FileStorage || have.Retention != jetstream.LimitsPolicy {
			return nil, fmt.Errorf("%w: stream %s has %v storage and %v retention, want file and limits",
				ErrInvalidArgument, name, have.Storage, have.Retention)
		}
		want := have
		cfg.apply(&want, i, n)
		if reflect.DeepEqual(want, have) {
			return s, nil
		}
		if s, err = js.UpdateStream(ctx, want); err != nil {
			return nil, fmt.Errorf("journal: update stream %s: %w", name, err)
		}
		return s, nil
	}
}

// shardOf returns the stream of a journal subject (checked by the caller).
func (j *Journal) shardOf(subject string) *shard {
	if len(j.shards) == 1 {
		return &j.shards[0]
	}
	tok, _, _ := strings.Cut(subject[len(j.base):], ".")
	p, err := strconv.Atoi(tok)
	if err != nil || p < 0 {
		return &j.shards[0] // not a partition: no stream holds it, the request fails there
	}
	return &j.shards[p%len(j.shards)]
}

// Stream returns the journal's first stream (its only one, unless
// Config.Streams spread it).
func (j *Journal) Stream() jetstream.Stream { return j.shards[0].stream }

// Streams returns the journal's streams, in order.
func (j *Journal) Streams() []jetstream.Stream {
	s := make([]jetstream.Stream, len(j.shards))
	for i := range j.shards {
		s[i] = j.shards[i].stream
	}
	return s
}

// StreamNames returns the names of the journal's streams, in order.
func (j *Journal) StreamNames() []string {
	names := make([]string, len(j.shards))
	for i := range j.shards {
		names[i] = j.shards[i].name
	}
	return names
}

// Partitions returns the number of partitions the journal is laid out for
// (Config.Partitions, or the recorded number).
func (j *Journal) Partitions() int { return j.cfg.Partitions }

// StreamOf returns the stream holding the journal subject.
func (j *Journal) StreamOf(subject string) jetstream.Stream { return j.shardOf(subject).stream }

// Subject returns the journal subject of an object:
// <Prefix>.journal.<partition>.<ns>.<id>. ns and id must be subject tokens
// (no dots, spaces or wildcards), as opendo's namespaces and IDs are.
func (j *Journal) Subject(partition int, ns, id string) string {
	return j.base + strconv.Itoa(partition) + "." + ns + "." + id
}

// MaxEntrySize returns the largest encoded entry (len of MarshalBinary)
// that Append accepts: the connection's max_payload, or the stream's
// max_msg_size if smaller, minus room for the headers Append adds.
func (j *Journal) MaxEntrySize() int {
	n := j.js.Conn().MaxPayload()
	if n <= 0 { // never connected: assume the server default
		n = defaultMaxPayload
	}
	for _, sh := range j.shards {
		if m := int64(sh.stream.CachedInfo().Config.MaxMsgSize); m > 0 && m < n {
			n = m
		}
	}
	return int(n) - headerOverhead
}

// Append writes e as the next entry of subject, provided the subject's last
// sequence is still expectedLast (0: the subject must be empty), and
// returns the entry's sequence once the stream has stored it.
//
// If another writer appended since, nothing is written and the error is a
// *ConflictError (errors.Is ErrConflict). An entry whose encoding is larger
// than MaxEntrySize fails with ErrTooLarge before anything is sent.
//
// Append is idempotent per entry: after an ambiguous failure (a timeout or
// a lost connection), calling it again with the same entry and expectedLast
// returns the entry's sequence if the first call did store it (the stored
// message carries the CommitID as Nats-Msg-Id).
func (j *Journal) Append(ctx context.Context, subject string, expectedLast uint64, e *Entry) (uint64, error) {
	if err := j.checkSubject(subject); err != nil {
		return 0, err
	}
	data, err := e.MarshalBinary()
	if err != nil {
		return 0, err
	}
	if max := j.MaxEntrySize(); len(data) > max {
		return 0, fmt.Errorf("%w: %d bytes, max %d", ErrTooLarge, len(data), max)
	}
	id := e.CommitID.String()
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{
		jetstream.MsgIDHeader:               {id},
		jetstream.ExpectedLastSubjSeqHeader: {strconv.FormatUint(expectedLast, 10)},
	}}
	ack, err := j.js.PublishMsg(ctx, msg)
	if err != nil {
		var apiErr *jetstream.APIError
		switch {
		case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
			return j.conflict(ctx, subject, expectedLast, id)
		case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum,
			errors.Is(err, nats.ErrMaxPayload):
			return 0, fmt.Errorf("%w: %d bytes: %w", ErrTooLarge, len(data), err)
		}
		return 0, fmt.Errorf("journal: append %s: %w", subject, err)
	}
	if want := j.shardOf(subject).name; ack.Stream != want {
		return 0, fmt.Errorf("journal: append %s: stored in stream %s, not %s", subject, ack.Stream, want)
	}
	return ack.Sequence, nil
}

// conflict resolves a fenced append: if the subject's last entry is the one
// being appended (a retry of an append that succeeded), it returns its
// sequence; otherwise a *ConflictError.
func (j *Journal) conflict(ctx context.Context, subject string, expected uint64, id string) (uint64, error) {
	cerr := &ConflictError{Subject: subject, Expected: expected}
	m, err := j.shardOf(subject).stream.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return 0, cerr
	}
	if m.Header.Get(jetstream.MsgIDHeader) == id && m.Sequence > expected {
		return m.Sequence, nil
	}
	cerr.Actual = m.Sequence
	return 0, cerr
}

// LastSeq returns the sequence of subject's last entry, 0 if it has none.
func (j *Journal) LastSeq(ctx context.Context, subject string) (uint64, error) {
	if err := j.checkSubject(subject); err != nil {
		return 0, err
	}
	m, err := j.shardOf(subject).stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("journal: last sequence of %s: %w", subject, err)
	}
	return m.Sequence, nil
}

// Subjects returns the number of entries of every journal subject matching
// filter, a NATS subject filter ("" means every journal subject,
// <Prefix>.journal.>).
func (j *Journal) Subjects(ctx context.Context, filter string) (map[string]uint64, error) {
	if filter == "" {
		filter = j.base + ">"
	}
	all := map[string]uint64{}
	for _, sh := range j.shards {
		info, err := sh.stream.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return nil, fmt.Errorf("journal: subjects %s in %s: %w", filter, sh.name, err)
		}
		maps.Copy(all, info.State.Subjects)
	}
	return all, nil
}

// checkSubject accepts literal subjects under <Prefix>.journal.
func (j *Journal) checkSubject(subject string) error {
	if !strings.HasPrefix(subject, j.base) || !validLiteral(subject) {
		return fmt.Errorf("%w: %q is not a literal subject under %s", ErrInvalidArgument, subject, j.base)
	}
	return nil
}

// validLiteral reports whether s is a subject without wildcards, empty
// tokens or whitespace.
func validLiteral(s string) bool {
	if s == "" || strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return false
		}
	}
	return true
}

// Covers reports whether the subject filter pattern matches every subject
// that filter matches (e.g. "a.>" covers "a.b.*").
func Covers(pattern, filter string) bool {
	p, f := strings.Split(pattern, "."), strings.Split(filter, ".")
	for i, tok := range p {
		switch {
		case tok == ">":
			return i < len(f)
		case i >= len(f):
			return false
		case tok == "*" && f[i] != ">":
		case tok != f[i]:
			return false
		}
	}
	return len(p) == len(f)
}
