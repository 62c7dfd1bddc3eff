package counter

import (
	"context"
	"net/http"
	"strconv"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/storage"
)

// Namespace is the namespace the example is served under.
const Namespace = "counter"

// Counter is one counter object.
type Counter struct {
	state *actor.State
}

// New is the counter's actor.Factory.
func New(state *actor.State) actor.Handler { return &Counter{state: state} }

// Handle serves "incr" and "get", and "bookmark" and "restore" (point-in-time
// restore, see storage.Bookmarks).
func (c *Counter) Handle(ctx context.Context, req *actor.Request) (*actor.Response, error) {
	st := c.state.Storage()
	n, _, err := storage.GetInt(ctx, st, "n")
	if err != nil {
		return nil, err
	}
	switch req.Path {
	case "incr", "/incr":
		n++
		if err := storage.PutInt(ctx, st, "n", n); err != nil {
			return nil, err
		}
	case "get", "/get", "":
	case "bookmark", "/bookmark":
		b, err := st.Bookmark(ctx)
		if err != nil {
			return nil, err
		}
		return actor.Text(b), nil
	case "restore", "/restore":
		undo, err := st.RestoreBookmark(ctx, string(req.Body))
		if err != nil {
			return nil, err
		}
		return actor.Text(undo), nil
	default:
		return &actor.Response{Status: http.StatusNotFound, Body: []byte("unknown path " + strconv.Quote(req.Path))}, nil
	}
	return actor.Text(strconv.FormatInt(n, 10)), nil
}
