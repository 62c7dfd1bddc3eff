package sqlite

import (
	"testing"
	"time"
	"path/filepath"

	"github.com/opendo/opendo/storage"
)

func TestScratch(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "a b?#%.db"), Options{})
	if err != nil { t.Fatal(err) }
	defer db.Close()
	if err := db.Begin(ctx, storage.TxContext{Time: time.Now()}, false); err != nil { t.Fatal(err) }
	st := db.Storage()
	for _, k := range []string{"", "a", "\x00", "b"} {
		if err := st.Put(ctx, k, []byte(nil)); err != nil { t.Fatal(err) }
	}
	e, err := st.GetMulti(ctx, []string{"", "b", "zz", "a", "a"})
	t.Logf("%q %v", e, err)
	n, err := st.DeleteMulti(ctx, []string{"", "b", "zz", "a", "a"})
	t.Logf("%d %v", n, err)
	l, err := st.List(ctx, storage.ListOptions{})
	t.Logf("%q %v", l, err)
	m, err := db.Commit(ctx)
	t.Logf("%+v %v", m, err)
	t.Log(db.Seq())
}
