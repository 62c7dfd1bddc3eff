package alarms

import (
	"encoding/json"
	"fmt"

	"github.com/opendo/opendo/bus"
)

// FiringVersion is the version of the Firing wire format written by Marshal.
const FiringVersion = 1

// maxFiringSize bounds the payload ParseFiring accepts; a valid firing is
// under 200 bytes.
const maxFiringSize = 1024

// Firing is the payload of a schedule: which alarm of which object, and
// which attempt.
type Firing struct {
	NS, ID string
	// Alarm is the alarm's scheduled time in Unix milliseconds. It
	// identifies the alarm: a firing whose Alarm differs from the object's
	// current alarm is stale.
	Alarm int64
	// Retry is 0 for the first attempt, n for the n-th retry.
	Retry int
}

// wireFiring is the JSON form of a Firing, e.g.
//
//	{"v":1,"ns":"chat","id":"room-7","alarm":1767225600000,"retry":2}
//
// "retry" is omitted when 0. Readers ignore unknown fields, so later
// versions of format 1 may add optional fields; anything else needs a new
// "v".
type wireFiring struct {
	V     int    `json:"v"`
	NS    string `json:"ns"`
	ID    string `json:"id"`
	Alarm int64  `json:"alarm"`
	Retry int    `json:"retry,omitempty"`
}

// Marshal encodes f as compact JSON (see ParseFiring).
func (f Firing) Marshal() []byte {
	// Encoding a struct of strings and integers cannot fail.
	b, _ := json.Marshal(wireFiring{V: FiringVersion, NS: f.NS, ID: f.ID, Alarm: f.Alarm, Retry: f.Retry})
	return b
}

// ParseFiring decodes a payload written by Firing.Marshal. It fails with
// ErrInvalidFiring on anything else: malformed JSON, a version other than
// FiringVersion, a namespace or ID that is not a valid subject token
// (bus.ValidToken), or a negative retry.
func ParseFiring(b []byte) (Firing, error) {
	if len(b) > maxFiringSize {
		return Firing{}, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidFiring, len(b), maxFiringSize)
	}
	var w wireFiring
	if err := json.Unmarshal(b, &w); err != nil {
		return Firing{}, fmt.Errorf("%w: %v", ErrInvalidFiring, err)
	}
	if w.V != FiringVersion {
		return Firing{}, fmt.Errorf("%w: version %d, want %d", ErrInvalidFiring, w.V, FiringVersion)
	}
	f := Firing{NS: w.NS, ID: w.ID, Alarm: w.Alarm, Retry: w.Retry}
	if err := f.validate(); err != nil {
		return Firing{}, err
	}
	return f, nil
}

// validate checks what Schedule and ParseFiring require of a Firing.
func (f Firing) validate() error {
	if err := bus.ValidToken(f.NS); err != nil {
		return fmt.Errorf("%w: namespace: %v", ErrInvalidFiring, err)
	}
	if err := bus.ValidToken(f.ID); err != nil {
		return fmt.Errorf("%w: id: %v", ErrInvalidFiring, err)
	}
	if f.Retry < 0 {
		return fmt.Errorf("%w: negative retry %d", ErrInvalidFiring, f.Retry)
	}
	return nil
}

// String formats f for logs, e.g. "chat/room-7@1767225600000#2".
func (f Firing) String() string {
	return fmt.Sprintf("%s/%s@%d#%d", f.NS, f.ID, f.Alarm, f.Retry)
}
