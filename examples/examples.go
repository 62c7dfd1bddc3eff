package examples

import (
	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/examples/chat"
	"github.com/opendo/opendo/examples/counter"
	"github.com/opendo/opendo/examples/reminder"
)

// Register registers every example namespace on rt.
func Register(rt *actor.Runtime) error {
	for ns, f := range map[string]actor.Factory{
		counter.Namespace:  counter.New,
		chat.Namespace:     chat.New,
		reminder.Namespace: reminder.New,
	} {
		if err := rt.Register(ns, f); err != nil {
			return err
		}
	}
	return nil
}

// Namespaces lists the example namespaces.
func Namespaces() []string { return []string{counter.Namespace, chat.Namespace, reminder.Namespace} }
