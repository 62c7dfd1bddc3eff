package journal

import (
	"context"
	"errors"
	"fmt"
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
}

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
	switch {
	case !validLiteral(c.Prefix):
		return fmt.Errorf("%w: prefix %q is not a literal subject", ErrInvalidArgument, c.Prefix)
	case c.Stream == "" || strings.ContainsAny(c.Stream, " \t\r\n.*>/\\"):
		return fmt.Errorf("%w: stream name %q", ErrInvalidArgument, c.Stream)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("%w: replicas %d (want 1 to 5)", ErrInvalidArgument, c.Replicas)
	case c.MaxBytes < 0:
		return fmt.Errorf("%w: negative max bytes %d", ErrInvalidArgument, c.MaxBytes)
	}
	return nil
}

// apply sets the stream settings the journal owns on sc, keeping the others
// (e.g. alarm schedules sharing the stream).
func (c *Config) apply(sc *jetstream.StreamConfig) {
	subj := c.Prefix + ".journal.>"
	if !slices.ContainsFunc(sc.Subjects, func(p string) bool { return Covers(p, subj) }) {
		sc.Subjects = append(slices.Clone(sc.Subjects), subj)
	}
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
}

// Journal appends and reads the entries of objects, one subject per object,
// in one JetStream stream. It is safe for concurrent use; fencing (not the
// Journal) keeps one writer per subject.
type Journal struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	cfg     Config
	base    string // "<Prefix>.journal."
	direct  string // direct get API subject of the stream
	timeout time.Duration
}

// Open creates the journal's stream, or updates an existing one to the
// journal's settings (file storage, limits retention, subjects
// <Prefix>.journal.>, no message/age/per-subject limits, discard new,
// deny delete, direct gets), leaving unrelated settings alone.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Journal, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s, err := ensureStream(ctx, js, &cfg)
	if err != nil {
		return nil, err
	}
	o := js.Options()
	api := jetstream.DefaultAPIPrefix
	switch {
	case o.Domain != "":
		api = "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		api = strings.TrimSuffix(o.APIPrefix, ".") + "."
	}
	return &Journal{
		js:      js,
		stream:  s,
		cfg:     cfg,
		base:    cfg.Prefix + ".journal.",
		direct:  api + "DIRECT.GET." + cfg.Stream,
		timeout: o.DefaultTimeout,
	}, nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg *Config) (jetstream.Stream, error) {
	for attempt := 0; ; attempt++ {
		s, err := js.Stream(ctx, cfg.Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			sc := jetstream.StreamConfig{
				Name:        cfg.Stream,
				Description: "opendo write-ahead journal",
				Duplicates:  duplicateWindow,
			}
			cfg.apply(&sc)
			s, err = js.CreateStream(ctx, sc)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && attempt == 0 {
				continue // created concurrently: update it
			}
		}
		if err != nil {
			return nil, fmt.Errorf("journal: stream %s: %w", cfg.Stream, err)
		}
		have := s.CachedInfo().Config
		if have.Storage != jetstream.FileStorage || have.Retention != jetstream.LimitsPolicy {
			return nil, fmt.Errorf("%w: stream %s has %v storage and %v retention, want file and limits",
				ErrInvalidArgument, cfg.Stream, have.Storage, have.Retention)
		}
		want := have
		cfg.apply(&want)
		if reflect.DeepEqual(want, have) {
			return s, nil
		}
		if s, err = js.UpdateStream(ctx, want); err != nil {
			return nil, fmt.Errorf("journal: update stream %s: %w", cfg.Stream, err)
		}
		return s, nil
	}
}

// Stream returns the journal's stream.
func (j *Journal) Stream() jetstream.Stream { return j.stream }

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
	if m := int64(j.stream.CachedInfo().Config.MaxMsgSize); m > 0 && m < n {
		n = m
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
	if ack.Stream != j.cfg.Stream {
		return 0, fmt.Errorf("journal: append %s: stored in stream %s, not %s", subject, ack.Stream, j.cfg.Stream)
	}
	return ack.Sequence, nil
}

// conflict resolves a fenced append: if the subject's last entry is the one
// being appended (a retry of an append that succeeded), it returns its
// sequence; otherwise a *ConflictError.
func (j *Journal) conflict(ctx context.Context, subject string, expected uint64, id string) (uint64, error) {
	cerr := &ConflictError{Subject: subject, Expected: expected}
	m, err := j.stream.GetLastMsgForSubject(ctx, subject)
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
	m, err := j.stream.GetLastMsgForSubject(ctx, subject)
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
	info, err := j.stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("journal: subjects %s: %w", filter, err)
	}
	if info.State.Subjects == nil {
		return map[string]uint64{}, nil
	}
	return info.State.Subjects, nil
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
