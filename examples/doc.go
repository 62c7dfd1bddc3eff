// Package examples registers opendo's example namespaces on a runtime; the
// `opendo dev` and `opendo serve` commands host them.
package examples
