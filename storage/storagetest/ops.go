package storagetest

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/opendo/opendo/storage"
)

// op is one operation of a case file (see the conformance README).
type op struct {
	Op      string                `json:"op"`
	Key     *string               `json:"key"`
	Keys    *[]string             `json:"keys"`
	Value   json.RawMessage       `json:"value"`
	Entries *[][2]json.RawMessage `json:"entries"`
	Options *listOptions          `json:"options"`
	InMS    *float64              `json:"in_ms"`
	Query   *string               `json:"query"`
	Params  []json.RawMessage     `json:"params"`
	Mode    string                `json:"mode"`
	Ops     []op                  `json:"ops"`
	Throw   bool                  `json:"throw"`
}

type listOptions struct {
	Start      *string  `json:"start"`
	StartAfter *string  `json:"startAfter"`
	End        *string  `json:"end"`
	Prefix     *string  `json:"prefix"`
	Reverse    bool     `json:"reverse"`
	Limit      *float64 `json:"limit"`
}

// runner runs the ops of one case.
type runner struct {
	t       *testing.T
	now     time.Time
	missing []string // features that returned storage.ErrNotImplemented
}

// errThrow is returned from a txn's function to roll it back ("throw").
var errThrow = errors.New("storagetest: txn throws")

func okResult(v any) any { return map[string]any{"ok": v} }

// errResult maps an error to its category; an error wrapping no sentinel
// becomes a category of its own, which never matches.
func (r *runner) errResult(o *op, err error) any {
	if errors.Is(err, storage.ErrNotImplemented) {
		feature := o.Op
		if !slices.Contains(r.missing, feature) {
			r.missing = append(r.missing, feature)
		}
		return map[string]any{notImplemented: feature}
	}
	return map[string]any{"error": category(err)}
}

// category returns the conformance error category of err ("" for nil).
func category(err error) string {
	for _, c := range []struct {
		err error
		cat string
	}{
		{storage.ErrKeyTooLarge, "limit_exceeded"},
		{storage.ErrValueTooLarge, "limit_exceeded"},
		{storage.ErrTooManyKeys, "limit_exceeded"},
		{storage.ErrLimitExceeded, "limit_exceeded"},
		{storage.ErrInvalidArgument, "invalid_argument"},
		{storage.ErrInvalidState, "invalid_state"},
		{storage.ErrSQL, "sql_error"},
		{storage.ErrForbiddenSQL, "forbidden_sql"},
		{storage.ErrReservedName, "reserved_name"},
		{storage.ErrNotFound, "not_found"},
		{storage.ErrMultipleRows, "multiple_rows"},
	} {
		if errors.Is(err, c.err) {
			return c.cat
		}
	}
	if err == nil {
		return ""
	}
	return "unexpected error: " + err.Error()
}

// bad reports a malformed op: the case file, not the implementation, is wrong.
func (r *runner) bad(o *op, format string, args ...any) any {
	msg := fmt.Sprintf(format, args...)
	r.t.Errorf("bad %q op: %s", o.Op, msg)
	return map[string]any{"error": "bad case: " + msg}
}

// do runs one op against tx; st is the request's Storage, for the ops that
// only Storage has (databaseSize).
func (r *runner) do(tx storage.Tx, st storage.Storage, o *op) any {
	ctx := r.t.Context()
	switch o.Op {
	case "put":
		return r.put(ctx, tx, o)
	case "get":
		return r.get(ctx, tx, o)
	case "delete":
		switch {
		case o.Keys != nil:
			n, err := tx.DeleteMulti(ctx, *o.Keys)
			if err != nil {
				return r.errResult(o, err)
			}
			return okResult(n)
		case o.Key != nil:
			existed, err := tx.Delete(ctx, *o.Key)
			if err != nil {
				return r.errResult(o, err)
			}
			return okResult(existed)
		}
		return r.bad(o, "neither key nor keys")
	case "list":
		opts, err := o.Options.toStorage()
		if err != nil {
			return r.bad(o, "%v", err)
		}
		entries, err := tx.List(ctx, opts)
		if err != nil {
			return r.errResult(o, err)
		}
		return r.entries(o, entries)
	case "deleteAll":
		if err := tx.DeleteAll(ctx); err != nil {
			return r.errResult(o, err)
		}
		return okResult(nil)
	case "setAlarm":
		if o.InMS == nil {
			return r.bad(o, "no in_ms")
		}
		if err := tx.SetAlarm(ctx, r.now.Add(time.Duration(*o.InMS)*time.Millisecond)); err != nil {
			return r.errResult(o, err)
		}
		return okResult(nil)
	case "getAlarm":
		t, ok, err := tx.Alarm(ctx)
		if err != nil {
			return r.errResult(o, err)
		}
		if !ok {
			return okResult(nil)
		}
		return okResult(map[string]any{"in_s": ceilDiv(t.UnixMilli()-r.now.UnixMilli(), 1000)})
	case "deleteAlarm":
		if err := tx.DeleteAlarm(ctx); err != nil {
			return r.errResult(o, err)
		}
		return okResult(nil)
	case "txn":
		return r.txn(ctx, tx, st, o)
	case "sql":
		return r.sql(ctx, tx, o)
	case "databaseSize":
		n, err := st.DatabaseSize(ctx)
		if err != nil {
			return r.errResult(o, err)
		}
		return okResult(n)
	}
	return r.bad(o, "unknown op")
}

func (r *runner) put(ctx context.Context, tx storage.Tx, o *op) any {
	if o.Entries != nil {
		entries := make([]storage.Entry, 0, len(*o.Entries))
		for _, kv := range *o.Entries {
			var key string
			if err := json.Unmarshal(kv[0], &key); err != nil {
				return r.bad(o, "entry key: %v", err)
			}
			v, err := encodeValue(kv[1])
			if err != nil {
				return r.bad(o, "entry value: %v", err)
			}
			entries = append(entries, storage.Entry{Key: key, Value: v})
		}
		if err := tx.PutMulti(ctx, entries); err != nil {
			return r.errResult(o, err)
		}
		return okResult(nil)
	}
	if o.Key == nil || o.Value == nil {
		return r.bad(o, "needs key and value, or entries")
	}
	v, err := encodeValue(o.Value)
	if err != nil {
		return r.bad(o, "value: %v", err)
	}
	if err := tx.Put(ctx, *o.Key, v); err != nil {
		return r.errResult(o, err)
	}
	return okResult(nil)
}

func (r *runner) get(ctx context.Context, tx storage.Tx, o *op) any {
	switch {
	case o.Keys != nil:
		entries, err := tx.GetMulti(ctx, *o.Keys)
		if err != nil {
			return r.errResult(o, err)
		}
		return r.entries(o, entries)
	case o.Key != nil:
		v, ok, err := tx.Get(ctx, *o.Key)
		if err != nil {
			return r.errResult(o, err)
		}
		if !ok {
			return okResult(nil)
		}
		d, err := decodeValue(v)
		if err != nil {
			return map[string]any{"error": "stored value is not JSON: " + err.Error()}
		}
		return okResult(d)
	}
	return r.bad(o, "neither key nor keys")
}

func (r *runner) entries(o *op, entries []storage.Entry) any {
	out := make([]any, 0, len(entries))
	for _, e := range entries {
		d, err := decodeValue(e.Value)
		if err != nil {
			return map[string]any{"error": fmt.Sprintf("stored value of %q is not JSON: %v", e.Key, err)}
		}
		out = append(out, []any{e.Key, d})
	}
	return okResult(out)
}

func (r *runner) txn(ctx context.Context, tx storage.Tx, st storage.Storage, o *op) any {
	results := []any{}
	err := tx.Transaction(ctx, func(inner storage.Tx) error {
		for i := range o.Ops {
			results = append(results, r.do(inner, st, &o.Ops[i]))
		}
		if o.Throw {
			return errThrow
		}
		return nil
	})
	switch {
	case err == nil:
		return okResult(map[string]any{"committed": results})
	case errors.Is(err, errThrow):
		return okResult(map[string]any{"rolledBack": results})
	}
	return r.errResult(o, err)
}

// toStorage converts list options. A present limit <= 0 is an error in the
// JS API, but the Go API's Limit 0 means "no limit": it is passed as a
// negative Limit, so that the implementation's own check reports it.
func (l *listOptions) toStorage() (storage.ListOptions, error) {
	var o storage.ListOptions
	if l == nil {
		return o, nil
	}
	if l.Start != nil {
		o.Start = *l.Start
	}
	if l.StartAfter != nil {
		o.StartAfter, o.HasStartAfter = *l.StartAfter, true
	}
	if l.End != nil {
		o.End, o.HasEnd = *l.End, true
	}
	if l.Prefix != nil {
		o.Prefix = *l.Prefix
	}
	o.Reverse = l.Reverse
	if l.Limit != nil {
		n := *l.Limit
		switch {
		case n != math.Trunc(n) || n > math.MaxInt32:
			return o, fmt.Errorf("limit %v", n)
		case n <= 0:
			o.Limit = min(int(n), -1)
		default:
			o.Limit = int(n)
		}
	}
	return o, nil
}

// encodeValue turns a case value into the stored bytes: its compact JSON
// encoding, with numbers as float64.
func encodeValue(raw json.RawMessage) ([]byte, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func decodeValue(b []byte) (any, error) {
	var v any
	err := json.Unmarshal(b, &v)
	return v, err
}

// ceilDiv is ceil(a/b) for b > 0; it never yields -0.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a > 0 {
		q++
	}
	return q
}

// sql runs a sql op; the result shape follows the conformance README.
func (r *runner) sql(ctx context.Context, tx storage.Tx, o *op) any {
	if o.Query == nil {
		return r.bad(o, "no query")
	}
	args := make([]any, 0, len(o.Params))
	for _, p := range o.Params {
		a, err := sqlParam(p)
		if err != nil {
			return r.bad(o, "param %s: %v", p, err)
		}
		args = append(args, a)
	}
	cur, err := tx.SQL().Exec(ctx, *o.Query, args...)
	if err != nil {
		return r.errResult(o, err)
	}
	cols := cur.ColumnNames()
	if cols == nil {
		cols = []string{}
	}
	res := map[string]any{"columnNames": cols, "rowsRead": cur.RowsRead(), "rowsWritten": cur.RowsWritten()}
	switch o.Mode {
	case "", "rows":
		rows := []any{}
		for _, m := range cur.All() {
			rows = append(rows, sqlRow(m))
		}
		res["rows"] = rows
	case "raw":
		raw := []any{}
		for _, row := range cur.Raw() {
			cells := make([]any, len(row))
			for i, v := range row {
				cells[i] = sqlCell(v)
			}
			raw = append(raw, cells)
		}
		res["raw"] = raw
	case "one":
		m, err := cur.One()
		if err != nil {
			return r.errResult(o, err)
		}
		res["one"] = sqlRow(m)
	default:
		return r.bad(o, "mode %q", o.Mode)
	}
	return okResult(res)
}

// sqlParam binds a case parameter as Cloudflare does: numbers as REAL,
// booleans as the TEXT 'true'/'false', {"$blob": hex} as a BLOB.
func sqlParam(raw json.RawMessage) (any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case nil, float64, string:
		return x, nil
	case bool:
		if x {
			return "true", nil
		}
		return "false", nil
	case map[string]any:
		if h, ok := x["$blob"].(string); ok && len(x) == 1 {
			b, err := hex.DecodeString(h)
			if err != nil {
				return nil, err
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("unsupported parameter")
}

func sqlRow(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = sqlCell(v)
	}
	return out
}

// sqlCell maps a SQLite value to JSON: BLOB as {"$blob": lowercase hex}.
func sqlCell(v any) any {
	switch x := v.(type) {
	case []byte:
		return map[string]any{"$blob": hex.EncodeToString(x)}
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return fmt.Sprintf("non-JSON number %v", x)
		}
	}
	return v
}
