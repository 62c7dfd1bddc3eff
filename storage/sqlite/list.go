package sqlite

import (
	"strings"

	"github.com/opendo/opendo/storage"
)

// Lower-bound kinds of a key range.
const (
	loNone = iota // no lower bound
	loGE          // key >= loKey
	loGT          // key > loKey
)

// listVariants counts the List statements: 3 lower-bound kinds × upper
// bound or not × ascending or descending.
const listVariants = 3 * 2 * 2

// keyRange is a List's selection on the primary key: a lower bound, an
// exclusive upper bound, both as bytes.
type keyRange struct {
	lo    int
	loKey string
	hiKey string
	hasHi bool
}

// rangeOf turns ListOptions into one key range: the prefix p becomes
// [p, successor(p)) intersected with start/startAfter/end. empty reports a
// range that cannot hold a key, answered without a query.
func rangeOf(o storage.ListOptions) (r keyRange, empty bool) {
	switch {
	case o.Start != "":
		r.lo, r.loKey = loGE, o.Start
	case o.HasStartAfter:
		r.lo, r.loKey = loGT, o.StartAfter
	}
	if o.HasEnd {
		r.hiKey, r.hasHi = o.End, true
	}
	if p := o.Prefix; p != "" {
		if r.lo == loNone || p > r.loKey {
			r.lo, r.loKey = loGE, p
		}
		if succ, ok := successor(p); ok && (!r.hasHi || succ < r.hiKey) {
			r.hiKey, r.hasHi = succ, true
		}
	}
	empty = r.hasHi && (r.hiKey == "" || (r.lo != loNone && r.loKey >= r.hiKey))
	return r, empty
}

// successor returns the smallest byte string greater than every string
// with prefix p; ok is false when there is none (p is all 0xFF bytes).
func successor(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// listStmt returns the statement for one shape of range, preparing it on
// first use. Its arguments are: lower bound (if any), upper bound (if any),
// limit (-1 for none).
func (db *DB) listStmt(lo int, hasHi, reverse bool) (*stmt, error) {
	i := lo * 4
	if hasHi {
		i += 2
	}
	if reverse {
		i++
	}
	if s := db.list[i]; s != nil {
		return s, nil
	}
	var q strings.Builder
	q.WriteString("SELECT key, value FROM _cf_KV")
	var conds []string
	switch lo {
	case loGE:
		conds = append(conds, "key >= ?")
	case loGT:
		conds = append(conds, "key > ?")
	}
	if hasHi {
		conds = append(conds, "key < ?")
	}
	if len(conds) > 0 {
		q.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	q.WriteString(" ORDER BY key")
	if reverse {
		q.WriteString(" DESC")
	}
	q.WriteString(" LIMIT ?")
	s, err := db.prepare(q.String())
	if err != nil {
		return nil, err
	}
	db.list[i] = s
	return s, nil
}
