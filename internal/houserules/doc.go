// Package houserules holds a test that enforces the house style where a
// machine can check it cheaply: no panic for control flow and no log.Print
// in production code, no package-level init registries.
package houserules
