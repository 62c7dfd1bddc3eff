// Package syncbuf is a bytes.Buffer safe for concurrent writers, for tests
// that collect a child process's or a command's output while reading it.
package syncbuf
