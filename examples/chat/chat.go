package chat

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/storage"
)

// Namespace is the namespace the example is served under.
const Namespace = "chat"

// Limits of the example's API.
const (
	DefaultLimit = 50   // messages per page when the request names none
	MaxLimit     = 200  // messages per page at most
	MaxUser      = 64   // bytes of a user name
	MaxText      = 4000 // bytes of a message
)

// Message is one chat message.
type Message struct {
	ID   int64  `json:"id"`
	User string `json:"user"`
	Text string `json:"text"`
	Time string `json:"time"` // UTC, RFC 3339 with milliseconds
}

// Page is the reply of "messages".
type Page struct {
	Messages []Message `json:"messages"`
	Next     *int64    `json:"next"` // "before" of the next, older page; nil on the last
}

// schema creates the room's table. Init runs it only when the table is
// missing: CREATE TABLE IF NOT EXISTS is a writing statement, and every
// activation that ran it would journal it again.
const schema = `CREATE TABLE IF NOT EXISTS messages (
	id   INTEGER PRIMARY KEY AUTOINCREMENT,
	user TEXT NOT NULL,
	text TEXT NOT NULL,
	time TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)`

// Room is one chat room object.
type Room struct {
	state *actor.State
}

// New is the room's actor.Factory.
func New(state *actor.State) actor.Handler { return &Room{state: state} }

// Init creates the room's table before its first request (actor.Initializer).
func (r *Room) Init(ctx context.Context) error {
	db := r.state.Storage().SQL()
	ok, err := hasTable(ctx, db)
	if err != nil || ok {
		return err
	}
	_, err = db.Exec(ctx, schema)
	return err
}

// Handle serves the paths listed in the package doc.
func (r *Room) Handle(ctx context.Context, req *actor.Request) (*actor.Response, error) {
	db := r.state.Storage().SQL()
	switch strings.TrimPrefix(req.Path, "/") {
	case "post":
		return post(ctx, db, req.Body)
	case "messages":
		return messages(ctx, db, req.Body)
	case "count":
		n, err := count(ctx, db)
		if err != nil {
			return nil, err
		}
		return actor.JSON(map[string]int64{"count": n})
	}
	return &actor.Response{Status: http.StatusNotFound, Body: []byte("unknown path " + req.Path)}, nil
}

func post(ctx context.Context, db storage.SQL, body []byte) (*actor.Response, error) {
	var in struct {
		User string `json:"user"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, badRequest("body: %v", err)
	}
	in.User = strings.TrimSpace(in.User)
	switch {
	case in.User == "" || len(in.User) > MaxUser || !utf8.ValidString(in.User):
		return nil, badRequest("user must be 1 to %d bytes of UTF-8", MaxUser)
	case strings.TrimSpace(in.Text) == "" || len(in.Text) > MaxText || !utf8.ValidString(in.Text):
		return nil, badRequest("text must be 1 to %d bytes of UTF-8", MaxText)
	}
	c, err := db.Exec(ctx, "INSERT INTO messages (user, text) VALUES (?, ?) RETURNING id, user, text, time", in.User, in.Text)
	if err != nil {
		return nil, err
	}
	row, err := c.One()
	if err != nil {
		return nil, err
	}
	return actor.JSON(toMessage(row))
}

func messages(ctx context.Context, db storage.SQL, body []byte) (*actor.Response, error) {
	var in struct {
		Before *int64 `json:"before"`
		Limit  *int   `json:"limit"`
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, badRequest("body: %v", err)
		}
	}
	limit := DefaultLimit
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > MaxLimit {
			return nil, badRequest("limit must be 1 to %d", MaxLimit)
		}
		limit = *in.Limit
	}
	page := Page{Messages: []Message{}}
	var before any // NULL: from the newest
	if in.Before != nil {
		before = *in.Before
	}
	// One row more than the page tells whether an older page exists. The
	// condition on the rowid is a range on the table's b-tree.
	c, err := db.Exec(ctx, `SELECT id, user, text, time FROM messages
		WHERE id < coalesce(?, 9223372036854775807) ORDER BY id DESC LIMIT ?`, before, limit+1)
	if err != nil {
		return nil, err
	}
	for _, row := range c.All() {
		page.Messages = append(page.Messages, toMessage(row))
	}
	if len(page.Messages) > limit {
		page.Messages = page.Messages[:limit]
		next := page.Messages[limit-1].ID
		page.Next = &next
	}
	return actor.JSON(page)
}

func count(ctx context.Context, db storage.SQL) (int64, error) {
	c, err := db.Exec(ctx, "SELECT count(*) AS n FROM messages")
	if err != nil {
		return 0, err
	}
	row, err := c.One()
	if err != nil {
		return 0, err
	}
	n, _ := row["n"].(int64)
	return n, nil
}

// hasTable reports whether the room's table exists (a read: not journaled).
func hasTable(ctx context.Context, db storage.SQL) (bool, error) {
	c, err := db.Exec(ctx, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'messages'")
	if err != nil {
		return false, err
	}
	_, err = c.One()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	}
	return false, err
}

func toMessage(row map[string]any) Message {
	m := Message{}
	m.ID, _ = row["id"].(int64)
	m.User, _ = row["user"].(string)
	m.Text, _ = row["text"].(string)
	m.Time, _ = row["time"].(string)
	return m
}

func badRequest(format string, args ...any) error {
	return actor.Errorf(http.StatusBadRequest, actor.CodeBadRequest, format, args...)
}
