package journal

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults and limits of SnapshotConfig.
const (
	DefaultSnapshotBucket = "OPENDO_SNAPSHOTS"
	DefaultSnapshotKeep   = 2
	// MaxSnapshotKeep bounds SnapshotConfig.Keep, and so the slots
	// probed by Latest and List.
	MaxSnapshotKeep = 16
)

// ErrSnapshotNotFound: Fetch was given a snapshot that is no longer stored
// (Put has since pruned it or replaced its slot): ask Latest again.
//
// It lives here rather than in errors.go only until the integrator moves it.
var ErrSnapshotNotFound = errors.New("journal: snapshot not found")

// Metadata of a snapshot object.
const (
	metaSubjectKey = "opendo-subject"
	metaSeqKey     = "opendo-seq"
)

// fetchRate is the transfer rate Fetch assumes when its ctx has no
// deadline: it allows the JetStream default timeout plus one second per
// fetchRate bytes.
const fetchRate = 10 << 20

// SnapshotConfig configures Snapshots. The zero value is usable.
type SnapshotConfig struct {
	// Bucket is the Object Store bucket (default "OPENDO_SNAPSHOTS";
	// letters, digits, '-' and '_').
	Bucket string
	// Replicas of the bucket when OpenSnapshots creates it (default 1).
	// An existing bucket is used as it is.
	Replicas int
	// Keep is how many snapshots of each subject Put keeps, newest first
	// (default 2, at most MaxSnapshotKeep).
	Keep int
}

func (c *SnapshotConfig) setDefaults() error {
	if c.Bucket == "" {
		c.Bucket = DefaultSnapshotBucket
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Keep == 0 {
		c.Keep = DefaultSnapshotKeep
	}
	switch {
	case !validBucket(c.Bucket):
		return fmt.Errorf("%w: snapshot bucket %q (want letters, digits, - and _)", ErrInvalidArgument, c.Bucket)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("%w: snapshot replicas %d (want 1 to 5)", ErrInvalidArgument, c.Replicas)
	case c.Keep < 1 || c.Keep > MaxSnapshotKeep:
		return fmt.Errorf("%w: snapshots kept %d (want 1 to %d)", ErrInvalidArgument, c.Keep, MaxSnapshotKeep)
	}
	return nil
}

// Snapshots stores consistent copies of object files in a JetStream Object
// Store, tagged with the journal sequence they include.
//
// The snapshots of a subject live in slots, objects named
// "<subject>/<slot>" (slot 0 to Keep-1), each carrying its subject and
// sequence as object metadata. Put writes the new snapshot into a free
// slot or over the oldest one, so that Latest and List cost one direct get
// per slot (plus one for the first free slot) whatever the bucket holds,
// and replacing a snapshot leaves no tombstone behind (only lowering Keep
// deletes objects). An object store switches an object to its new content
// atomically, when its metadata is published, so a failed Put leaves the
// slot's previous snapshot in place.
//
// Snapshots is safe for concurrent use, but the snapshots of one subject
// should be Put by one writer (the object's owner), not concurrently:
// concurrent Puts on a subject may pick the same slot, and the last one
// wins. On a replicated bucket, direct gets may be answered by a follower
// that lags by a few milliseconds, so Latest may briefly miss the newest
// snapshot.
type Snapshots struct {
	js  jetstream.JetStream
	obs jetstream.ObjectStore
	cfg SnapshotConfig
}

// SnapshotInfo describes a stored snapshot.
type SnapshotInfo struct {
	Subject string    // the journal subject
	Seq     uint64    // the last journal sequence the snapshot includes
	Time    time.Time // when it was stored: server time, client time as Put returns it
	Size    int64     // bytes
	Name    string    // object name, "<subject>/<slot>"
	Digest  string    // "SHA-256=<base64url>" of the content, checked by Fetch
}

// OpenSnapshots binds to the snapshot bucket, creating it (file storage,
// cfg.Replicas) if it does not exist.
func OpenSnapshots(ctx context.Context, js jetstream.JetStream, cfg SnapshotConfig) (*Snapshots, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	obs, err := js.ObjectStore(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      cfg.Bucket,
			Description: "opendo object snapshots",
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // created concurrently
			obs, err = js.ObjectStore(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("journal: snapshot bucket %s: %w", cfg.Bucket, err)
	}
	return &Snapshots{js: js, obs: obs, cfg: cfg}, nil
}

// ObjectStore returns the bucket.
func (s *Snapshots) ObjectStore() jetstream.ObjectStore { return s.obs }

// Put uploads the file at path as the snapshot of journal subject subject
// at sequence seq (the last entry the file includes), and keeps only the
// newest Keep snapshots of subject. The caller guarantees that the file is
// a consistent copy that nothing writes while Put reads it.
//
// Putting a sequence that is already stored replaces that snapshot (a
// retry). A snapshot older than all Keep stored ones is refused with
// ErrInvalidArgument: it would be pruned at once.
func (s *Snapshots) Put(ctx context.Context, subject string, seq uint64, path string) (SnapshotInfo, error) {
	if err := checkSnapshotSubject(subject); err != nil {
		return SnapshotInfo{}, err
	}
	if seq == 0 {
		return SnapshotInfo{}, fmt.Errorf("%w: snapshot of %s at sequence 0", ErrInvalidArgument, subject)
	}
	f, err := os.Open(path)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("journal: snapshot %s: %w", subject, err)
	}
	defer f.Close()

	slots, err := s.slots(ctx, subject)
	if err != nil {
		return SnapshotInfo{}, err
	}
	var slot int
	kept := slots[:min(len(slots), s.cfg.Keep)]
	switch i := slices.IndexFunc(kept, func(si SnapshotInfo) bool { return si.Seq == seq }); {
	case i >= 0:
		slot = i
	case len(kept) < s.cfg.Keep:
		slot = len(kept)
	default:
		oldest := slices.MinFunc(kept, func(a, b SnapshotInfo) int { return cmp.Compare(a.Seq, b.Seq) })
		if seq < oldest.Seq {
			return SnapshotInfo{}, fmt.Errorf("%w: snapshot of %s at %d is older than the %d kept (oldest %d)",
				ErrInvalidArgument, subject, seq, len(kept), oldest.Seq)
		}
		slot = slices.IndexFunc(kept, func(si SnapshotInfo) bool { return si.Seq == oldest.Seq })
	}

	name := slotName(subject, slot)
	oi, err := s.obs.Put(ctx, jetstream.ObjectMeta{
		Name:        name,
		Description: "opendo snapshot",
		Metadata:    map[string]string{metaSubjectKey: subject, metaSeqKey: strconv.FormatUint(seq, 10)},
		// The default 128 KiB chunks: 256 KiB to 1 MiB chunks measured
		// no faster (BenchmarkSnapshotPutFetch), and 128 KiB fits any
		// server's max_payload.
	}, f)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("journal: put snapshot %s: %w", name, err)
	}
	// Slots beyond Keep (Keep was lowered), highest first so that the
	// slots stay contiguous from 0 even if this stops half way.
	for i := len(slots) - 1; i >= s.cfg.Keep; i-- {
		if err := s.obs.Delete(ctx, slots[i].Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return SnapshotInfo{}, fmt.Errorf("journal: prune snapshot %s: %w", slots[i].Name, err)
		}
	}
	return snapshotInfo(oi)
}

// Latest returns the newest snapshot of subject; ok is false if there is
// none. It costs a direct get per stored snapshot, plus one.
func (s *Snapshots) Latest(ctx context.Context, subject string) (info SnapshotInfo, ok bool, err error) {
	all, err := s.List(ctx, subject)
	if err != nil || len(all) == 0 {
		return SnapshotInfo{}, false, err
	}
	return all[len(all)-1], true, nil
}

// List returns the snapshots of subject, oldest first.
func (s *Snapshots) List(ctx context.Context, subject string) ([]SnapshotInfo, error) {
	if err := checkSnapshotSubject(subject); err != nil {
		return nil, err
	}
	all, err := s.slots(ctx, subject)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b SnapshotInfo) int { return cmp.Compare(a.Seq, b.Seq) })
	return all, nil
}

// Fetch writes the snapshot info (from Latest, List or Put) to path: it
// downloads to a temporary file in path's directory, checks the content's
// size and SHA-256 digest, syncs it and renames it over path. On error,
// path is left as it was.
//
// If the snapshot is no longer stored (pruned, or its slot now holds
// another sequence), the error matches ErrSnapshotNotFound; if the content
// does not match its digest, ErrCorrupt. When ctx has no deadline, Fetch
// allows the JetStream default timeout plus one second per 10 MiB.
func (s *Snapshots) Fetch(ctx context.Context, info SnapshotInfo, path string) (err error) {
	if info.Name == "" {
		return fmt.Errorf("%w: snapshot without a name", ErrInvalidArgument)
	}
	if _, ok := ctx.Deadline(); !ok {
		d := s.js.Options().DefaultTimeout + time.Duration(info.Size/fetchRate+1)*time.Second
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	res, err := s.obs.Get(ctx, info.Name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("%w: %s at %d", ErrSnapshotNotFound, info.Name, info.Seq)
	}
	if err != nil {
		return fmt.Errorf("journal: fetch snapshot %s: %w", info.Name, err)
	}
	defer res.Close()
	oi, err := res.Info()
	if err != nil {
		return fmt.Errorf("journal: fetch snapshot %s: %w", info.Name, err)
	}
	got, err := snapshotInfo(oi)
	if err != nil {
		return err
	}
	if got.Seq != info.Seq || got.Subject != info.Subject || (info.Digest != "" && got.Digest != info.Digest) {
		return fmt.Errorf("%w: %s at %d (the slot now holds %d)", ErrSnapshotNotFound, info.Name, info.Seq, got.Seq)
	}

	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".fetch-*")
	if err != nil {
		return fmt.Errorf("journal: fetch snapshot %s: %w", info.Name, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, res)
	switch {
	case errors.Is(err, jetstream.ErrDigestMismatch):
		return &snapshotCorruptError{info.Name, fmt.Errorf("seq %d: %w", info.Seq, err)}
	case err != nil:
		return fmt.Errorf("journal: fetch snapshot %s: %w", info.Name, err)
	case n != got.Size:
		return &snapshotCorruptError{info.Name, fmt.Errorf("seq %d: %d bytes, want %d", info.Seq, n, got.Size)}
	}
	if err = tmp.Sync(); err == nil {
		err = tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("journal: fetch snapshot %s: %w", info.Name, err)
	}
	return nil
}

// snapshotCorruptError reports a snapshot object whose content does not
// match its digest or size, or whose metadata is not a snapshot's. It
// matches ErrCorrupt and unwraps to the cause (jetstream.ErrDigestMismatch
// for a digest).
type snapshotCorruptError struct {
	name string
	err  error
}

func (e *snapshotCorruptError) Error() string {
	return "journal: corrupt snapshot " + e.name + ": " + e.err.Error()
}

func (e *snapshotCorruptError) Is(target error) bool { return target == ErrCorrupt }
func (e *snapshotCorruptError) Unwrap() error        { return e.err }

// slots returns the snapshots in subject's slots 0, 1, ... up to the first
// empty one: Put fills slots in order and prunes them from the top, so
// they are contiguous.
func (s *Snapshots) slots(ctx context.Context, subject string) ([]SnapshotInfo, error) {
	var all []SnapshotInfo
	for i := range MaxSnapshotKeep {
		info, ok, err := s.slot(ctx, subject, i)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		all = append(all, info)
	}
	return all, nil
}

// slot returns the snapshot in one slot; ok is false if it is empty.
func (s *Snapshots) slot(ctx context.Context, subject string, i int) (SnapshotInfo, bool, error) {
	name := slotName(subject, i)
	oi, err := s.obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return SnapshotInfo{}, false, nil
	}
	if err != nil {
		return SnapshotInfo{}, false, fmt.Errorf("journal: snapshot %s: %w", name, err)
	}
	info, err := snapshotInfo(oi)
	if err != nil {
		return SnapshotInfo{}, false, err
	}
	if info.Subject != subject {
		return SnapshotInfo{}, false, &snapshotCorruptError{name, fmt.Errorf("tagged with subject %q", info.Subject)}
	}
	return info, true, nil
}

// validBucket reports whether name is a valid bucket name, as nats.go
// checks it: letters, digits, '-' and '_'.
func validBucket(name string) bool {
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return name != ""
}

// snapshotInfo reads a snapshot object's metadata.
func snapshotInfo(oi *jetstream.ObjectInfo) (SnapshotInfo, error) {
	seq, err := strconv.ParseUint(oi.Metadata[metaSeqKey], 10, 64)
	if err != nil || seq == 0 || oi.Size > 1<<62 {
		return SnapshotInfo{}, &snapshotCorruptError{oi.Name, fmt.Errorf("not an opendo snapshot (metadata %v)", oi.Metadata)}
	}
	return SnapshotInfo{
		Subject: oi.Metadata[metaSubjectKey],
		Seq:     seq,
		Time:    oi.ModTime,
		Size:    int64(oi.Size),
		Name:    oi.Name,
		Digest:  oi.Digest,
	}, nil
}

// slotName is the object name of one of subject's slots.
func slotName(subject string, slot int) string { return subject + "/" + strconv.Itoa(slot) }

// checkSnapshotSubject accepts literal subjects (Snapshots does not know
// the journal's prefix).
func checkSnapshotSubject(subject string) error {
	if !validLiteral(subject) {
		return fmt.Errorf("%w: %q is not a literal subject", ErrInvalidArgument, subject)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
