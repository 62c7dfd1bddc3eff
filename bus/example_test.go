package bus_test

import (
	"fmt"

	"github.com/opendo/opendo/bus"
)

// Every client computes the same subjects and partition for an object.
func ExampleSubjects() {
	s, err := bus.NewSubjects("opendo", 64)
	if err != nil {
		panic(err)
	}
	id := "6de1a1491c5b0fab20594b167787364f" // actor.NameID("counter", "my-counter")
	fmt.Println(s.Request("counter", id))
	fmt.Println(s.Name("counter"))
	fmt.Println(s.Journal("counter", id))
	// Output:
	// opendo.req.counter.6de1a1491c5b0fab20594b167787364f
	// opendo.name.counter
	// opendo.journal.17.counter.6de1a1491c5b0fab20594b167787364f
}
