//go:build !unix

package main

import "errors"

// dataDirLockName is the lock file of a data directory (not used here).
const dataDirLockName = "opendo.lock"

// errDataDirLocked: another process holds the data directory's lock.
var errDataDirLocked = errors.New("data directory is locked by another process")

// lockDataDir is a no-op where flock is not available; the running-dev
// probe (devServesStore) still applies.
func lockDataDir(dir string) (unlock func(), err error) { return func() {}, nil }
