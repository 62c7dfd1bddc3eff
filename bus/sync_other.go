//go:build !linux

package bus

import "syscall"

// fsync flushes one file to stable storage.
func fsync(fd int) error { return syscall.Fsync(fd) }
