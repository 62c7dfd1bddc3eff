package alarms

import "errors"

// Sentinel errors. Compare with errors.Is: the errors returned by this
// package wrap them with context.
var (
	// ErrInvalidFiring: a Firing payload does not parse (not JSON, unknown
	// version, a namespace or ID that is not a valid subject token, a
	// negative retry), or a Firing passed to Schedule is invalid.
	ErrInvalidFiring = errors.New("alarms: invalid firing")
	// ErrInvalidConfig: Open was given a Config it cannot use.
	ErrInvalidConfig = errors.New("alarms: invalid config")
	// ErrTimeRange: a schedule time after the year 2262 (the server keeps
	// schedule times as int64 Unix nanoseconds).
	ErrTimeRange = errors.New("alarms: time out of range")
)
