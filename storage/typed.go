package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// GetJSON reads key and decodes its JSON value into v. It reports whether
// the key exists.
func GetJSON(ctx context.Context, kv KV, key string, v any) (bool, error) {
	b, ok, err := kv.Get(ctx, key)
	if err != nil || !ok {
		return ok, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("storage: decode %q: %w", key, err)
	}
	return true, nil
}

// PutJSON stores v encoded as JSON under key.
func PutJSON(ctx context.Context, kv KV, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("storage: encode %q: %w", key, err)
	}
	return kv.Put(ctx, key, b)
}

// GetInt reads an integer stored by PutInt (decimal text); a missing key
// reads as 0, false.
func GetInt(ctx context.Context, kv KV, key string) (int64, bool, error) {
	b, ok, err := kv.Get(ctx, key)
	if err != nil || !ok {
		return 0, ok, err
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, true, fmt.Errorf("storage: %q is not an integer: %w", key, err)
	}
	return n, true, nil
}

// PutInt stores n as decimal text under key.
func PutInt(ctx context.Context, kv KV, key string, n int64) error {
	return kv.Put(ctx, key, strconv.AppendInt(nil, n, 10))
}
