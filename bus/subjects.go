package bus

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
)

// DefaultPrefix is the first token of every opendo subject.
const DefaultPrefix = "opendo"

// DefaultPartitions is the number of partitions when none is configured.
const DefaultPartitions = 64

// ErrInvalidToken: a namespace, prefix or ID is not a safe NATS subject token.
var ErrInvalidToken = errors.New("bus: invalid subject token")

// Subjects names the subjects of one deployment.
type Subjects struct {
	Prefix     string
	Partitions int
}

// NewSubjects validates prefix and partitions (defaults for zero values).
func NewSubjects(prefix string, partitions int) (Subjects, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if partitions == 0 {
		partitions = DefaultPartitions
	}
	if err := ValidToken(prefix); err != nil {
		return Subjects{}, fmt.Errorf("prefix: %w", err)
	}
	if partitions < 1 || partitions > 1<<16 {
		return Subjects{}, fmt.Errorf("bus: partitions %d out of range 1..65536", partitions)
	}
	return Subjects{Prefix: prefix, Partitions: partitions}, nil
}

// Partition returns the partition of the object (ns, id).
func (s Subjects) Partition(ns, id string) int {
	h := fnv.New32a()
	h.Write([]byte(ns))
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(s.Partitions))
}

// Request is the subject of requests to the object (ns, id).
func (s Subjects) Request(ns, id string) string { return s.Prefix + ".req." + ns + "." + id }

// RequestNS matches the request subjects of namespace ns.
func (s Subjects) RequestNS(ns string) string { return s.Prefix + ".req." + ns + ".*" }

// RequestAll matches every request subject.
func (s Subjects) RequestAll() string { return s.Prefix + ".req.*.*" }

// Name is the subject of requests by name to namespace ns.
func (s Subjects) Name(ns string) string { return s.Prefix + ".name." + ns }

// NameAll matches every by-name subject.
func (s Subjects) NameAll() string { return s.Prefix + ".name.*" }

// Own is the subject on which node receives the requests to (ns, id)
// forwarded by the other nodes of the deployment (the node owns the
// object's partition).
func (s Subjects) Own(node, ns, id string) string {
	return s.Prefix + ".own." + node + "." + ns + "." + id
}

// OwnNode matches every forwarded request to node.
func (s Subjects) OwnNode(node string) string { return s.Prefix + ".own." + node + ".*.*" }

// Journal is the journal subject of the object (ns, id).
func (s Subjects) Journal(ns, id string) string {
	return s.Prefix + ".journal." + strconv.Itoa(s.Partition(ns, id)) + "." + ns + "." + id
}

// AlarmSchedule is the alarm schedule subject of the object (ns, id).
func (s Subjects) AlarmSchedule(ns, id string) string {
	return s.Prefix + ".alarm.sched." + strconv.Itoa(s.Partition(ns, id)) + "." + ns + "." + id
}

// AlarmFire is the subject an alarm schedule of (ns, id) fires into.
func (s Subjects) AlarmFire(ns, id string) string {
	return s.Prefix + ".alarm.fire." + strconv.Itoa(s.Partition(ns, id)) + "." + ns + "." + id
}

// ValidToken reports whether tok is a safe subject token for opendo: 1 to 64
// characters of [A-Za-z0-9_-]. Everything else (dots, wildcards, spaces,
// '>' and non-ASCII) is rejected.
func ValidToken(tok string) error {
	if len(tok) == 0 || len(tok) > 64 {
		return fmt.Errorf("%w: %q must have 1 to 64 characters", ErrInvalidToken, tok)
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q may only hold letters, digits, '_' and '-'", ErrInvalidToken, tok)
		}
	}
	return nil
}
