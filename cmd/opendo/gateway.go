package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/opendo/opendo/actor/gateway"
	"github.com/opendo/opendo/bus"
)

// defaultHTTPAddr is where dev and gateway serve HTTP, as wrangler dev does.
const defaultHTTPAddr = "127.0.0.1:8787"

// httpFlags configure the HTTP gateway of dev and gateway.
type httpFlags struct {
	addr            string
	tlsCert, tlsKey string
	timeout         time.Duration
	maxHeaderBytes  int
	prefix          string // the runtimes' subject prefix and partitions
	partitions      int
}

func (f *httpFlags) register(fs *flag.FlagSet, offOK bool) {
	usage := "address of the HTTP gateway: /<namespace>/<name>/<path> calls an object (docs/http.md)"
	if offOK {
		usage += "; off: none"
	}
	fs.StringVar(&f.addr, "http", defaultHTTPAddr, usage)
	fs.StringVar(&f.tlsCert, "http-tls-cert", "", "serve HTTPS with this certificate (PEM; with -http-tls-key)")
	fs.StringVar(&f.tlsKey, "http-tls-key", "", "key of -http-tls-cert (PEM)")
	fs.DurationVar(&f.timeout, "http-timeout", gateway.DefaultTimeout, "how long a call over HTTP waits for the object's reply (504 beyond)")
	fs.IntVar(&f.maxHeaderBytes, "http-max-header-bytes", gateway.DefaultMaxHeaderBytes, "largest request headers (431 beyond)")
}

// startHTTP serves the gateway on f.addr over nc until stop is called. It
// returns the URL it listens on.
func startHTTP(nc *nats.Conn, f httpFlags, log *slog.Logger) (url string, stop func(), err error) {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return "", nil, usageError{"-http-tls-cert and -http-tls-key go together"}
	}
	gw, err := gateway.New(nc, gateway.Config{Prefix: f.prefix, Partitions: f.partitions, Timeout: f.timeout, MaxHeaderBytes: f.maxHeaderBytes, Logger: log})
	if err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		return "", nil, fmt.Errorf("HTTP gateway: %w (pass -http ADDR to use another address)", err)
	}
	srv := &http.Server{
		Handler:           gw,
		MaxHeaderBytes:    f.maxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var err error
		if f.tlsCert != "" {
			err = srv.ServeTLS(l, f.tlsCert, f.tlsKey)
		} else {
			err = srv.Serve(l)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP gateway stopped", "err", err)
		}
	}()
	return scheme + "://" + l.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// runGateway runs the HTTP gateway alone, in front of runtimes on NATS.
func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gateway", stderr, "gateway -nats URL [-http ADDR] [flags]")
	var nf natsFlags
	nf.register(fs, "nats")
	var hf httpFlags
	hf.register(fs, false)
	fs.StringVar(&hf.prefix, "prefix", "opendo", "first token of every subject (as the runtimes')")
	fs.IntVar(&hf.partitions, "partitions", 64, "number of partitions (as the runtimes')")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"gateway takes no arguments"}
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	cc := nf.config("opendo-gateway")
	cc.Logger = log
	nc, err := bus.Connect(cc)
	if err != nil {
		return err
	}
	defer nc.Close()
	url, stop, err := startHTTP(nc, hf, log)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(stdout, "opendo gateway: HTTP listening on %s, calling objects on %s\n", url, nc.ConnectedUrlRedacted())
	fmt.Fprintf(stdout, "try:\n  curl -X POST %s/counter/my-counter/incr\nready\n", url)
	<-ctx.Done()
	log.Info("shutting down")
	return nil
}
