package actor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
)

// ID identifies an object within its namespace. It is always a safe NATS
// subject token: either 32 lowercase hex digits (derived from a name by
// NameID) or a 26-character ULID (made by NewUniqueID).
type ID string

// MaxNameLen is the longest object name, in bytes.
const MaxNameLen = 1024

// NameID derives the ID of the object called name in namespace ns. The same
// (ns, name) always gives the same ID, on every node and in every client:
// the first 16 bytes of SHA-256("opendo\x00" + ns + "\x00" + name), in hex.
func NameID(ns, name string) ID {
	h := sha256.New()
	h.Write([]byte("opendo\x00"))
	h.Write([]byte(ns))
	h.Write([]byte{0})
	h.Write([]byte(name))
	var sum [sha256.Size]byte
	return ID(hex.EncodeToString(h.Sum(sum[:0])[:16]))
}

// NewUniqueID returns a fresh unique ID (a ULID).
func NewUniqueID() ID { return ID(ulid.Make().String()) }

// ParseID validates s as an object ID.
func ParseID(s string) (ID, error) {
	switch len(s) {
	case 32:
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return "", fmt.Errorf("%w: %q is not lowercase hex", ErrInvalidID, s)
			}
		}
		return ID(s), nil
	case ulid.EncodedSize:
		u, err := ulid.ParseStrict(s)
		if err != nil || u.String() != s {
			return "", fmt.Errorf("%w: %q is not a canonical ULID", ErrInvalidID, s)
		}
		return ID(s), nil
	}
	return "", fmt.Errorf("%w: %q must be 32 hex digits or a 26-character ULID", ErrInvalidID, s)
}

// ValidName reports whether name can name an object: 1 to MaxNameLen bytes
// of valid UTF-8 with no Unicode control character (category Cc: U+0000–U+001F,
// U+007F–U+009F) and no bidirectional formatting character (U+202A–U+202E,
// U+2066–U+2069), which could make a name print as another one, and that
// neither begins nor ends with a space (NATS headers trim them). Names
// travel in NATS headers and are printed by tools, never used in subjects.
func ValidName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: name must have 1 to %d bytes", ErrInvalidName, MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: name is not valid UTF-8", ErrInvalidName)
	}
	if name[0] == ' ' || name[len(name)-1] == ' ' {
		return fmt.Errorf("%w: name begins or ends with a space (NATS headers do not keep them)", ErrInvalidName)
	}
	for _, r := range name {
		switch {
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			return fmt.Errorf("%w: name holds control character %U", ErrInvalidName, r)
		case r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069:
			return fmt.Errorf("%w: name holds bidirectional formatting character %U", ErrInvalidName, r)
		}
	}
	return nil
}

// MaxRequestIDLen is the longest request ID, in bytes.
const MaxRequestIDLen = 256

// ValidRequestID reports whether id can be a request ID: 1 to
// MaxRequestIDLen printable ASCII characters (0x21–0x7E: no space, no
// control). Request IDs are journaled and printed by the journal tools.
func ValidRequestID(id string) error {
	if id == "" || len(id) > MaxRequestIDLen {
		return fmt.Errorf("request id must have 1 to %d bytes", MaxRequestIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("request id holds byte 0x%02x; only printable ASCII (0x21-0x7e) is allowed", c)
		}
	}
	return nil
}

// String returns the ID as text.
func (id ID) String() string { return string(id) }
