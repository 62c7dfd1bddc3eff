// Package bus connects opendo to NATS: it starts an embedded nats-server for
// development and tests (Embedded), dials an external server or cluster with
// credentials and TLS (Connect), and names every subject opendo uses
// (Subjects), including the partition of an object.
//
// # Subjects
//
// With the default prefix "opendo":
//
//	opendo.req.<ns>.<id>              request to an object by ID
//	opendo.name.<ns>                  request to an object by name (header Opendo-Name)
//	opendo.journal.<p>.<ns>.<id>      the object's journal (stream OPENDO_JOURNAL)
//	opendo.alarm.sched.<p>.<ns>.<id>  the object's alarm schedule
//	opendo.alarm.fire.<p>.<ns>.<id>   where the schedule fires
//
// <p> is the object's partition: FNV-1a 32 of namespace+ID (concatenated),
// modulo the number of partitions — the same hash as nats-server's
// partition() subject-mapping function, so a server mapping can route by
// partition too. Namespaces are validated tokens; IDs are hex or ULIDs; names
// never appear in subjects.
package bus
