// Command opendo runs, calls and inspects opendo objects.
//
//	opendo dev      embedded NATS + runtime + examples, for development
//	opendo serve    the runtime against an external NATS server
//	opendo call     call an object and print its reply
//	opendo journal  list, show, replay, fork, verify and tail object journals
//	opendo bench    measure the runtime against raw NATS baselines
//	opendo version  print the version
package main
