//go:build linux

package bus

import "golang.org/x/sys/unix"

// fsync flushes one file's data to stable storage (fdatasync(2)).
func fsync(fd int) error { return unix.Fdatasync(fd) }
