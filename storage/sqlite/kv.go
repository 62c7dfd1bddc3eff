package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"slices"

	"github.com/opendo/opendo/storage"
)

func checkKey(key string) error {
	if n := len(key); n > storage.MaxKeySize {
		return fmt.Errorf("%w: key of %d bytes (max %d)", storage.ErrKeyTooLarge, n, storage.MaxKeySize)
	}
	return nil
}

func checkValue(key string, value []byte) error {
	if n := len(value); n > storage.MaxValueSize {
		return fmt.Errorf("%w: value of %d bytes for key %.40q (max %d)", storage.ErrValueTooLarge, n, key, storage.MaxValueSize)
	}
	return nil
}

func checkKeys(keys []string) error {
	if n := len(keys); n > storage.MaxBatch {
		return fmt.Errorf("%w: %d keys (max %d)", storage.ErrTooManyKeys, n, storage.MaxBatch)
	}
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
	}
	return nil
}

// Get returns the value of key and whether it exists. An empty value is
// returned as a non-nil empty slice.
func (s *store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	db := s.db
	if err := db.ready(ctx); err != nil {
		return nil, false, err
	}
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	v, ok, err := db.getRow(key)
	if err != nil {
		return nil, false, db.fail(err)
	}
	return v, ok, nil
}

func (db *DB) getRow(key string) ([]byte, bool, error) {
	s := db.st.get
	rows, err := db.query(s, db.args1(keyArg(key)))
	if err != nil {
		return nil, false, err
	}
	dest := db.dest[:1]
	ok, err := next(s, rows, dest)
	v, _ := dest[0].([]byte)
	dest[0] = nil
	if cerr := rows.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("sqlite: %s: %w", s.text, cerr)
	}
	if err != nil || !ok {
		return nil, false, err
	}
	// The driver returns an empty BLOB as nil; the row exists, so the value
	// is empty, not missing.
	return blob(v), true, nil
}

// GetMulti returns the existing keys among keys, sorted by key, each once.
func (s *store) GetMulti(ctx context.Context, keys []string) ([]storage.Entry, error) {
	db := s.db
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	if err := checkKeys(keys); err != nil {
		return nil, err
	}
	switch len(keys) {
	case 0:
		return nil, nil
	case 1:
		v, ok, err := db.getRow(keys[0])
		if err != nil || !ok {
			return nil, db.failIf(err)
		}
		return []storage.Entry{{Key: keys[0], Value: v}}, nil
	}
	st := db.st.getMulti
	rows, err := db.query(st, db.args1(db.hexKeys(keys)))
	if err != nil {
		return nil, db.fail(err)
	}
	out, err := db.readEntries(st, rows, len(keys))
	if err != nil {
		return nil, db.fail(err)
	}
	return out, nil
}

func (db *DB) failIf(err error) error {
	if err != nil {
		return db.fail(err)
	}
	return nil
}

// readEntries reads (key, value) rows and closes them.
func (db *DB) readEntries(s *stmt, rows driver.Rows, capHint int) ([]storage.Entry, error) {
	var out []storage.Entry
	dest := db.dest[:2]
	for {
		ok, err := next(s, rows, dest)
		if err != nil || !ok {
			clear(dest)
			if cerr := rows.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("sqlite: %s: %w", s.text, cerr)
			}
			return out, err
		}
		k, _ := dest[0].([]byte)
		v, _ := dest[1].([]byte)
		if out == nil {
			out = make([]storage.Entry, 0, min(capHint, 64))
		}
		out = append(out, storage.Entry{Key: string(k), Value: blob(v)})
	}
}

const hexDigits = "0123456789abcdef"

// hexKeys encodes keys as a JSON array of hex strings, the argument of the
// multi-key statements (json_each + unhex: one statement for any count).
func (db *DB) hexKeys(keys []string) string {
	b := append(db.buf[:0], '[')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(k); j++ {
			b = append(b, hexDigits[k[j]>>4], hexDigits[k[j]&15])
		}
		b = append(b, '"')
	}
	b = append(b, ']')
	if cap(b) <= 64<<10 {
		db.buf = b // keep small buffers only
	}
	return string(b)
}

// Put stores value under key.
func (s *store) Put(ctx context.Context, key string, value []byte) error {
	db := s.db
	if err := db.ready(ctx); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if err := checkValue(key, value); err != nil {
		return err
	}
	return db.put(key, value)
}

// PutMulti stores all entries; a later entry for the same key wins.
func (s *store) PutMulti(ctx context.Context, entries []storage.Entry) error {
	db := s.db
	if err := db.ready(ctx); err != nil {
		return err
	}
	if n := len(entries); n > storage.MaxBatch {
		return fmt.Errorf("%w: %d entries (max %d)", storage.ErrTooManyKeys, n, storage.MaxBatch)
	}
	for _, e := range entries {
		if err := checkKey(e.Key); err != nil {
			return err
		}
		if err := checkValue(e.Key, e.Value); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if err := db.put(e.Key, e.Value); err != nil {
			return err
		}
	}
	return nil
}

// put writes and records one checked entry. The value is copied: the
// mutation outlives the caller's slice.
func (db *DB) put(key string, value []byte) error {
	v := make([]byte, len(value))
	copy(v, value)
	if err := db.putRow(key, v); err != nil {
		return db.fail(err)
	}
	db.record(storage.Mutation{Op: storage.OpPut, Key: key, Value: v})
	return nil
}

func (db *DB) putRow(key string, value []byte) error {
	_, err := db.exec(db.st.put, db.args2(keyArg(key), blob(value)))
	return err
}

// Delete removes key and reports whether it existed.
func (s *store) Delete(ctx context.Context, key string) (bool, error) {
	db := s.db
	if err := db.ready(ctx); err != nil {
		return false, err
	}
	if err := checkKey(key); err != nil {
		return false, err
	}
	return db.delete(key)
}

func (db *DB) delete(key string) (bool, error) {
	existed, err := db.deleteRow(key)
	if err != nil {
		return false, db.fail(err)
	}
	if existed {
		db.record(storage.Mutation{Op: storage.OpDelete, Key: key})
	}
	return existed, nil
}

func (db *DB) deleteRow(key string) (bool, error) {
	n, err := db.exec(db.st.del, db.args1(keyArg(key)))
	return n > 0, err
}

// DeleteMulti removes keys and returns how many distinct keys existed. The
// deletions are recorded in key order.
func (s *store) DeleteMulti(ctx context.Context, keys []string) (int, error) {
	db := s.db
	if err := db.ready(ctx); err != nil {
		return 0, err
	}
	if err := checkKeys(keys); err != nil {
		return 0, err
	}
	switch len(keys) {
	case 0:
		return 0, nil
	case 1:
		existed, err := db.delete(keys[0])
		if existed {
			return 1, err
		}
		return 0, err
	}
	st := db.st.delMulti
	rows, err := db.query(st, db.args1(db.hexKeys(keys)))
	if err != nil {
		return 0, db.fail(err)
	}
	var deleted []string
	dest := db.dest[:1]
	for {
		ok, err := next(st, rows, dest)
		if err != nil || !ok {
			dest[0] = nil
			if cerr := rows.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("sqlite: %s: %w", st.text, cerr)
			}
			if err != nil {
				return 0, db.fail(err)
			}
			break
		}
		k, _ := dest[0].([]byte)
		deleted = append(deleted, string(k))
	}
	slices.Sort(deleted)
	for _, k := range deleted {
		db.record(storage.Mutation{Op: storage.OpDelete, Key: k})
	}
	return len(deleted), nil
}

// List returns entries in key order, filtered by opts.
func (s *store) List(ctx context.Context, opts storage.ListOptions) ([]storage.Entry, error) {
	db := s.db
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	if opts.Start != "" && opts.HasStartAfter {
		return nil, fmt.Errorf("%w: list with both Start and StartAfter", storage.ErrInvalidArgument)
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("%w: list limit %d", storage.ErrInvalidArgument, opts.Limit)
	}
	r, empty := rangeOf(opts)
	if empty {
		return nil, nil
	}
	st, err := db.listStmt(r.lo, r.hasHi, opts.Reverse)
	if err != nil {
		return nil, db.fail(err)
	}
	args := db.argv[:0]
	if r.lo != loNone {
		args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: keyArg(r.loKey)})
	}
	if r.hasHi {
		args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: keyArg(r.hiKey)})
	}
	limit := int64(-1)
	if opts.Limit > 0 {
		limit = int64(opts.Limit)
	}
	args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: limit})
	rows, err := db.query(st, args)
	if err != nil {
		return nil, db.fail(err)
	}
	capHint := 64
	if opts.Limit > 0 {
		capHint = opts.Limit
	}
	out, err := db.readEntries(st, rows, capHint)
	if err != nil {
		return nil, db.fail(err)
	}
	return out, nil
}
