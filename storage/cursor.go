package storage

// Cursor holds the result of SQL.Exec: the rows of the last statement and
// Cloudflare's per-statement counters. Rows are read in full when Exec
// returns, so a Cursor stays valid after the request ends.
type Cursor struct {
	columns     []string
	rows        [][]any
	rowsRead    int64
	rowsWritten int64
	pos         int  // rows consumed; the current row is rows[pos-1]
	done        bool // Next returned false
}

// NewCursor builds a cursor; it is used by implementations of SQL.
func NewCursor(columns []string, rows [][]any, rowsRead, rowsWritten int64) *Cursor {
	return &Cursor{columns: columns, rows: rows, rowsRead: rowsRead, rowsWritten: rowsWritten}
}

// ColumnNames returns the result's column names ([] for statements
// without result columns).
func (c *Cursor) ColumnNames() []string { return c.columns }

// RowsRead returns how many rows the last statement read.
func (c *Cursor) RowsRead() int64 { return c.rowsRead }

// RowsWritten returns how many rows the last statement wrote.
func (c *Cursor) RowsWritten() int64 { return c.rowsWritten }

// Next advances to the next row; it returns false when there is none.
func (c *Cursor) Next() bool {
	if c.pos >= len(c.rows) {
		c.done = true
		return false
	}
	c.pos++
	return true
}

// Values returns the current row (after Next) in column order, or nil
// before the first Next and after the last. Values are nil, int64,
// float64, string or []byte (an empty BLOB is an empty, non-nil slice).
func (c *Cursor) Values() []any {
	if c.pos == 0 || c.done {
		return nil
	}
	return c.rows[c.pos-1]
}

// Raw returns all remaining rows as value slices in column order.
func (c *Cursor) Raw() [][]any {
	r := c.rows[c.pos:]
	c.pos, c.done = len(c.rows), true
	return r
}

// All returns all remaining rows as maps keyed by column name (with
// duplicate names, the last column wins).
func (c *Cursor) All() []map[string]any {
	raw := c.Raw()
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		out[i] = c.toMap(r)
	}
	return out
}

// One returns the only row; ErrNotFound if there are none, ErrMultipleRows
// if there are several.
func (c *Cursor) One() (map[string]any, error) {
	raw := c.Raw()
	switch len(raw) {
	case 0:
		return nil, ErrNotFound
	case 1:
		return c.toMap(raw[0]), nil
	}
	return nil, ErrMultipleRows
}

func (c *Cursor) toMap(r []any) map[string]any {
	m := make(map[string]any, len(r))
	for i, v := range r {
		if i < len(c.columns) {
			m[c.columns[i]] = v
		}
	}
	return m
}
