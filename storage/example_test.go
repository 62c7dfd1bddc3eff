package storage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/opendo/opendo/storage"
	"github.com/opendo/opendo/storage/sqlite"
)

// Typed helpers store JSON and integers on top of the byte-valued KV API.
func ExampleGetJSON() {
	dir, _ := os.MkdirTemp("", "storage-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "obj.db"), sqlite.Options{})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	// The runtime opens a transaction around each request; here by hand.
	if err := db.Begin(ctx, storage.TxContext{Time: time.Now(), Seed: 1}, false); err != nil {
		panic(err)
	}
	st := db.Storage()
	type profile struct {
		Name string `json:"name"`
		Age  int    `json:"age"`
	}
	_ = storage.PutJSON(ctx, st, "user/ada", profile{Name: "Ada", Age: 36})
	_ = storage.PutInt(ctx, st, "visits", 41)

	var p profile
	ok, _ := storage.GetJSON(ctx, st, "user/ada", &p)
	n, _, _ := storage.GetInt(ctx, st, "visits")
	fmt.Println(ok, p.Name, p.Age, n+1)
	if _, err := db.Commit(ctx); err != nil {
		panic(err)
	}
	// Output: true Ada 36 42
}
