package sqlite

import (
	"context"
	"time"

	"github.com/opendo/opendo/storage"
)

// Alarm returns the scheduled alarm. In an alarm request (Begin with
// inAlarm) the alarm that was due when the request began is hidden, as
// Cloudflare's getAlarm returns null inside alarm(); an alarm set by the
// handler at another time is shown.
func (s *store) Alarm(ctx context.Context) (time.Time, bool, error) {
	db := s.db
	if err := db.ready(ctx); err != nil {
		return time.Time{}, false, err
	}
	ms, ok, err := db.queryInt64(db.st.metaGet, db.args1(metaAlarm))
	if err != nil {
		return time.Time{}, false, db.fail(err)
	}
	if !ok || (db.inAlarm && db.hasFiring && ms == db.firing) {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(ms), true, nil
}

// SetAlarm schedules the alarm at t, in whole milliseconds, replacing any
// other. A time at or before the transaction's now is stored as now.
func (s *store) SetAlarm(ctx context.Context, t time.Time) error {
	db := s.db
	if err := db.ready(ctx); err != nil {
		return err
	}
	ms := t.UnixMilli()
	if now := db.tc.Time.UnixMilli(); ms < now {
		ms = now
	}
	if _, err := db.exec(db.st.metaSet, db.args2(metaAlarm, ms)); err != nil {
		return db.fail(err)
	}
	db.record(storage.Mutation{Op: storage.OpSetAlarm, Alarm: ms})
	return nil
}

// DeleteAlarm removes the alarm; it records a mutation only if there was one.
func (s *store) DeleteAlarm(ctx context.Context) error {
	db := s.db
	if err := db.ready(ctx); err != nil {
		return err
	}
	n, err := db.exec(db.st.metaDel, db.args1(metaAlarm))
	if err != nil {
		return db.fail(err)
	}
	if n > 0 {
		db.record(storage.Mutation{Op: storage.OpDeleteAlarm})
	}
	return nil
}
