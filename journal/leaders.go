package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BalanceLeaders spreads the leaders of streams (in the JetStream of js)
// over the servers of a cluster: while a server leads more than one of them
// and a replica of one of those leads none, that stream's leadership moves
// to it (a leader step-down with a preferred server; nats-server 2.11 and
// later). It returns each stream's leader afterwards ("" where none is
// known). On a single server, every stream reports it as leader and nothing
// moves.
//
// A step-down makes the stream unavailable for the election, a fraction of
// a second: appends meanwhile wait or fail. Run it when the journal is new,
// or at a quiet time.
func BalanceLeaders(ctx context.Context, js jetstream.JetStream, streams []string) ([]string, error) {
	type state struct {
		leader   string
		replicas []string // current, online replicas other than the leader
	}
	sts := make([]state, len(streams))
	leads := map[string]int{}
	for i, name := range streams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("journal: leaders: stream %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("journal: leaders: stream %s: %w", name, err)
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			continue
		}
		sts[i].leader = info.Cluster.Leader
		leads[info.Cluster.Leader]++
		for _, p := range info.Cluster.Replicas {
			if p.Current && !p.Offline {
				sts[i].replicas = append(sts[i].replicas, p.Name)
			}
		}
	}
	api := apiPrefix(js)
	var errs []error
	for i, name := range streams {
		st := &sts[i]
		if st.leader == "" || leads[st.leader] < 2 {
			continue
		}
		to := ""
		for _, p := range st.replicas {
			if leads[p] == 0 {
				to = p
				break
			}
		}
		if to == "" {
			continue
		}
		if err := stepDown(ctx, js, api, name, to); err != nil {
			errs = append(errs, err)
			continue
		}
		leads[st.leader]--
		leads[to]++
		st.leader = to
	}
	leaders := make([]string, len(streams))
	for i := range sts {
		leaders[i] = sts[i].leader
	}
	return leaders, errors.Join(errs...)
}

// stepDown asks stream's leader to hand its leadership to server to, and
// waits until to leads it.
func stepDown(ctx context.Context, js jetstream.JetStream, api, stream, to string) error {
	body, err := json.Marshal(map[string]any{"placement": map[string]string{"preferred": to}})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := js.Conn().RequestWithContext(rctx, api+"STREAM.LEADER.STEPDOWN."+stream, body)
	if err != nil {
		return fmt.Errorf("journal: step down %s to %s: %w", stream, to, err)
	}
	var resp struct {
		Success bool `json:"success"`
		Error   *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return fmt.Errorf("journal: step down %s: %w", stream, err)
	}
	if !resp.Success {
		why := "refused"
		if resp.Error != nil {
			why = resp.Error.Description
		}
		return fmt.Errorf("journal: step down %s to %s: %s", stream, to, why)
	}
	s, err := js.Stream(rctx, stream)
	if err != nil {
		return err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if info, err := s.Info(rctx); err == nil && info.Cluster != nil && info.Cluster.Leader == to {
			return nil
		}
		select {
		case <-tick.C:
		case <-rctx.Done():
			return fmt.Errorf("journal: step down %s: %s not leader after 10 s", stream, to)
		}
	}
}

// apiPrefix is the JetStream API prefix of js, "$JS.API." unless a domain
// or prefix is set.
func apiPrefix(js jetstream.JetStream) string {
	o := js.Options()
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	}
	return jetstream.DefaultAPIPrefix
}
