// Package gateway serves objects over HTTP: an http.Handler that turns each
// request into a call over NATS and the object's reply into the response
// (docs/http.md).
//
// URLs name the object:
//
//	/<namespace>/<name>/<path…>   the object called name (percent-encoded: %2F for "/")
//	/<namespace>/@<id>/<path…>    the object with that ID
//
// The object receives the method, "/<path…>" with the query
// ("/rooms/1?since=5"), the headers (without hop-by-hop ones and opendo's
// own Opendo-… headers, with Host) and the body; its status, headers and
// body come back. An error reply keeps its status and carries its code in
// the Opendo-Error header and its message as text. Limits: headers up to
// Config.MaxHeaderBytes (431 beyond), bodies up to the NATS server's
// max_payload less the headers (413 beyond); a call without a reply within
// Config.Timeout is 504 with code gateway_timeout.
//
// `opendo dev` serves it on 127.0.0.1:8787 (-http); `opendo gateway` runs
// it alone.
package gateway
