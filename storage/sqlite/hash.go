package sqlite

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// ContentHash returns a SHA-256 (hex) of the object's content: the schema
// and rows of every table (the user's, the key-value table, AUTOINCREMENT
// counters and ANALYZE statistics, with rowids), the definitions of
// indexes, views and triggers, user_version and the alarm. It leaves out
// what replay does not reproduce and nobody reads: the runtime's
// bookkeeping (journal sequence, dirty flag) and the file's layout (page
// numbers, free pages). A file rebuilt from the journal must have the same
// hash as the file that made the journal.
//
// Between requests it reads a snapshot in its own transaction; inside a
// request it hashes what the request sees.
func (db *DB) ContentHash(ctx context.Context) (sum string, err error) {
	if db.closed {
		return "", errClosed
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if !db.inTx {
		if _, err := db.exec(db.st.begin, nil); err != nil {
			return "", err
		}
		defer func() {
			if _, rerr := db.exec(db.st.rollback, nil); err == nil && rerr != nil {
				sum, err = "", rerr
			}
		}()
	}
	h := sha256.New()
	if err := db.hashContent(ctx, h); err != nil {
		return "", fmt.Errorf("sqlite: content hash of %s: %w", db.path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (db *DB) hashContent(ctx context.Context, h io.Writer) error {
	w := hashWriter{h: h}
	w.section("user_version")
	if err := db.eachRow("PRAGMA user_version", nil, w.row); err != nil {
		return err
	}
	w.section("alarm")
	if err := db.eachRow("SELECT value FROM _cf_META WHERE name = ?", []any{metaAlarm}, w.row); err != nil {
		return err
	}
	w.section("schema")
	var tables []string
	err := db.eachRow(`SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name <> '_cf_META' ORDER BY type, name`, nil, func(r []any) error {
		sql, _ := r[3].(string)
		if r[0] == "table" && !strings.HasPrefix(strings.ToUpper(sql), "CREATE VIRTUAL TABLE") {
			tables = append(tables, r[1].(string))
		}
		return w.row(r)
	})
	if err != nil {
		return err
	}
	for _, t := range tables {
		if err := ctx.Err(); err != nil {
			return err
		}
		q, err := db.tableQuery(t)
		if err != nil {
			return err
		}
		w.section("table " + t)
		if err := db.eachRow(q, nil, w.row); err != nil {
			return err
		}
	}
	return nil
}

// tableQuery returns a query of all rows of table t in a deterministic
// order: with the rowid first, by rowid; without rowid, by primary key.
func (db *DB) tableQuery(t string) (string, error) {
	var cols []string
	var pk []string
	err := db.eachRow("SELECT name, pk FROM pragma_table_xinfo(?) ORDER BY pk, cid", []any{t}, func(r []any) error {
		name, _ := r[0].(string)
		cols = append(cols, name)
		if n, _ := r[1].(int64); n > 0 {
			pk = append(pk, quoteIdent(name))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	withoutRowid := false
	err = db.eachRow("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?", []any{t}, func(r []any) error {
		n, _ := r[0].(int64)
		withoutRowid = n != 0
		return nil
	})
	if err != nil {
		return "", err
	}
	from := " FROM " + quoteIdent(t)
	if withoutRowid {
		return "SELECT *" + from + " ORDER BY " + strings.Join(pk, ", "), nil
	}
	for _, alias := range []string{"rowid", "_rowid_", "oid"} {
		if !slices.ContainsFunc(cols, func(c string) bool { return strings.EqualFold(c, alias) }) {
			return "SELECT " + alias + ", *" + from + " ORDER BY " + alias, nil
		}
	}
	order := make([]string, len(cols))
	for i := range cols {
		order[i] = fmt.Sprint(i + 1)
	}
	return "SELECT *" + from + " ORDER BY " + strings.Join(order, ", "), nil
}

// hashWriter feeds sections and rows to a hash in an unambiguous encoding.
type hashWriter struct {
	h   io.Writer
	buf []byte
}

func (w *hashWriter) section(name string) {
	w.buf = append(w.buf[:0], 'S')
	w.buf = appendLen(w.buf, name)
	w.h.Write(w.buf)
}

func (w *hashWriter) row(r []any) error {
	b := binary.BigEndian.AppendUint64(append(w.buf[:0], 'R'), uint64(len(r)))
	for _, v := range r {
		switch x := v.(type) {
		case nil:
			b = append(b, 'n')
		case int64:
			b = binary.BigEndian.AppendUint64(append(b, 'i'), uint64(x))
		case float64:
			b = binary.BigEndian.AppendUint64(append(b, 'f'), math.Float64bits(x))
		case string:
			b = appendLen(append(b, 't'), x)
		case []byte:
			b = appendLen(append(b, 'b'), string(x))
		default:
			return fmt.Errorf("unexpected value %T", v)
		}
	}
	w.h.Write(b)
	w.buf = b[:0]
	return nil
}

func appendLen(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint64(b, uint64(len(s))), s...)
}
