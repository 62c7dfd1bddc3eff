// Package storagetest is the conformance suite for storage.Storage
// implementations.
//
// RunConformance runs the language-neutral cases of opendo's conformance
// folder (shared/conformance: cases/*.json and expected/*.json, ground truth
// from Cloudflare's workerd) against fresh objects and compares the results
// by the rules of the folder's check.py, which stays the reference: numbers
// as IEEE doubles, object member order ignored, predicate objects
// ({"$gt": n, ...}) for values that may vary.
//
// Each case runs as one request: the Session's Storage is inside an open
// request transaction, ops run in order, and an op's error is that op's
// result ({"error": category}) without stopping the case. KV values are the
// compact JSON encoding of the case's value. A case whose ops reach a
// feature that is not built yet (storage.ErrNotImplemented) is skipped with
// the feature's name once its other ops have been compared; it never
// passes silently.
package storagetest
