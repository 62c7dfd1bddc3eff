// Package rebuild materializes an object's state as of a journal sequence
// into a SQLite file: from its newest usable snapshot, or its whole
// history, rolled forward with journal entries, resolving bookmark
// restores (a restore entry replaces the state by the state as of its
// target, which is built the same way, recursively). The runtime uses it on
// activation, the opendo journal commands for replay, fork and verify.
package rebuild
