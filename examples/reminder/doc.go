// Package reminder is an opendo object that uses its alarm: it keeps a
// queue of reminders and fires each one when it is due, recording what
// fired. One alarm per object is enough: it is always set to the earliest
// pending reminder.
//
// Paths (bodies are JSON):
//
//	add     {"in_ms": 1500, "text": "tea"} → {"id": 3, "due": <unix ms>}
//	cancel  {"id": 3}                      → {"cancelled": true}
//	pending                                → [{"id","due","text"}, ...]
//	fired                                  → [{"id","due","text","fired_at","retry"}, ...]
//	alarm                                  → {"alarm": <unix ms> | null}
package reminder
