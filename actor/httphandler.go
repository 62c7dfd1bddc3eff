package actor

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// HTTPHandler adapts an http.Handler (an http.ServeMux, a router) to
// Handler, for objects written the net/http way. Each request becomes an
// *http.Request: the method, the path and query from Request.Path (a path
// without a leading "/" gets one), the headers, the body, Host from the
// Host header, and the call's context, so that the object's storage works
// inside the handler and the handler's deadline applies. What the handler
// writes becomes the Response; a Content-Type is sniffed as net/http does
// when none is set.
//
// Calls through the HTTP gateway (package gateway) arrive as they were
// sent; calls over NATS with a path such as "incr" arrive as "/incr".
func HTTPHandler(h http.Handler) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		path := req.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return nil, Errorf(http.StatusBadRequest, CodeBadRequest, "path %q: %v", req.Path, err)
		}
		method := req.Method
		if method == "" {
			method = http.MethodPost
		}
		hr := (&http.Request{
			Method:        method,
			URL:           u,
			RequestURI:    path,
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        http.Header(req.Header).Clone(),
			Body:          io.NopCloser(bytes.NewReader(req.Body)),
			ContentLength: int64(len(req.Body)),
			Host:          req.Header.Get("Host"),
		}).WithContext(ctx)
		if hr.Header == nil {
			hr.Header = http.Header{}
		}
		w := &responseRecorder{header: http.Header{}}
		h.ServeHTTP(w, hr)
		status := w.status
		if status == 0 {
			status = http.StatusOK
		}
		return &Response{Status: status, Header: Header(w.header), Body: w.body.Bytes()}, nil
	})
}

// responseRecorder is the http.ResponseWriter of HTTPHandler.
type responseRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *responseRecorder) Header() http.Header { return w.header }

func (w *responseRecorder) WriteHeader(status int) {
	if w.status == 0 && status >= 200 { // 1xx informational responses are not relayed
		w.status = status
	}
}

func (w *responseRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.body.Len() == 0 && w.header.Get("Content-Type") == "" && len(p) > 0 {
		w.header.Set("Content-Type", http.DetectContentType(p))
	}
	return w.body.Write(p)
}

// Flush does nothing: the response is sent whole once the handler returns.
func (w *responseRecorder) Flush() {}
