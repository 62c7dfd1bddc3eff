// Package examples registers opendo's example namespaces on a runtime; the
// `opendo dev` and `opendo serve` commands host them.
package examples

import (
	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/examples/counter"
)

// Register registers every example namespace on rt.
func Register(rt *actor.Runtime) error {
	return rt.Register(counter.Namespace, counter.New)
}

// Namespaces lists the example namespaces.
func Namespaces() []string { return []string{counter.Namespace} }
