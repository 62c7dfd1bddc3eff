package bus

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnectConfig tells how to reach an external NATS server or cluster.
type ConnectConfig struct {
	// URL is one or more comma-separated server URLs. Empty: $NATS_URL, then
	// nats://127.0.0.1:4222 (as natscli does).
	URL string
	// Name is the connection name shown by the server.
	Name string
	// CredsFile is a NATS credentials file (JWT + nkey seed).
	CredsFile string
	// NKeyFile is an nkey seed file.
	NKeyFile string
	// User, Password or Token authenticate with the server's simple auth.
	User, Password, Token string
	// TLS: CA bundle to trust, and a client certificate and key for mutual TLS.
	TLSCA, TLSCert, TLSKey string
	// Logger, when set, receives the connection's events: disconnects,
	// reconnects (with the server's URL), the connection closing, and
	// asynchronous errors such as permission violations and slow consumers.
	Logger *slog.Logger
}

// DefaultURL is used when neither ConnectConfig.URL nor $NATS_URL is set.
const DefaultURL = "nats://127.0.0.1:4222"

// ResolveURL returns url, else $NATS_URL, else DefaultURL.
func ResolveURL(url string) string {
	if url != "" {
		return url
	}
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Connect dials NATS with cfg. The connection reconnects forever.
func Connect(cfg ConnectConfig) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("bus: nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	if log := cfg.Logger; log != nil {
		opts = append(opts,
			nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
				log.Warn("nats disconnected", "conn", cfg.Name, "err", err)
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				log.Info("nats reconnected", "conn", cfg.Name, "url", nc.ConnectedUrlRedacted())
			}),
			nats.ClosedHandler(func(nc *nats.Conn) {
				log.Info("nats connection closed", "conn", cfg.Name)
			}),
			nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
				args := []any{"conn", cfg.Name, "err", err}
				if sub != nil {
					args = append(args, "subject", sub.Subject)
				}
				log.Error("nats error", args...)
			}),
		)
	}
	url := ResolveURL(cfg.URL)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect %s: %w", url, err)
	}
	return nc, nil
}
