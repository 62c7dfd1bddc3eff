package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/opendo/opendo/bus"
)

// natsFlags are the flags that say how to reach NATS.
type natsFlags struct {
	url, creds, nkey, user, password, token, tlsCA, tlsCert, tlsKey string
}

func (f *natsFlags) register(fs *flag.FlagSet, urlFlag string) {
	fs.StringVar(&f.url, urlFlag, "", "NATS server URL(s), comma-separated (default $NATS_URL, then "+bus.DefaultURL+")")
	fs.StringVar(&f.creds, "creds", "", "NATS credentials file")
	fs.StringVar(&f.nkey, "nkey", "", "NATS nkey seed file")
	fs.StringVar(&f.user, "user", "", "NATS user")
	fs.StringVar(&f.password, "password", "", "NATS password")
	fs.StringVar(&f.token, "token", "", "NATS token")
	fs.StringVar(&f.tlsCA, "tlsca", "", "CA certificates to trust (PEM)")
	fs.StringVar(&f.tlsCert, "tlscert", "", "client certificate for mutual TLS (PEM)")
	fs.StringVar(&f.tlsKey, "tlskey", "", "client key for mutual TLS (PEM)")
}

func (f *natsFlags) config(name string) bus.ConnectConfig {
	return bus.ConnectConfig{URL: f.url, Name: name, CredsFile: f.creds, NKeyFile: f.nkey, User: f.user,
		Password: f.password, Token: f.token, TLSCA: f.tlsCA, TLSCert: f.tlsCert, TLSKey: f.tlsKey}
}

func newFlagSet(name string, stderr io.Writer, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: opendo %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("bad -log-level %q", level)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
