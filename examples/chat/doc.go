// Package chat is an opendo object that keeps a chat room's messages in SQL:
// one object per room, one row per message in its own SQLite table.
//
// Paths (bodies are JSON):
//
//	post      {"user": "ann", "text": "hi"}  → {"id": 1, "user": "ann", "text": "hi", "time": "2030-01-02T03:04:05.678Z"}
//	messages  {"before": 40, "limit": 20}    → {"messages": [newest first ...], "next": 21 | null}
//	count                                    → {"count": 42}
//
// "messages" pages backwards: both fields are optional (default: the newest
// 50); pass the returned "next" as "before" to get the next, older page;
// "next" is null on the last page.
//
// The message's id (AUTOINCREMENT) and time (strftime(..., 'now')) are
// chosen by SQLite inside the request's transaction. Both are journaled
// deterministically: a room rebuilt from its journal has the same ids and
// times.
package chat
