//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// dataDirLockName is the lock file of a data directory: whoever runs a NATS
// server on <data>/nats holds an exclusive flock on <data>/opendo.lock.
const dataDirLockName = "opendo.lock"

// errDataDirLocked: another process holds the data directory's lock.
var errDataDirLocked = errors.New("data directory is locked by another process")

// lockDataDir takes the exclusive lock of data directory dir without
// waiting. It fails with errDataDirLocked if another process holds it. The
// lock ends with unlock or with the process.
func lockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, dataDirLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", errDataDirLocked, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
