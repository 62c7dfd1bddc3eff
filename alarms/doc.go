// Package alarms keeps one durable alarm per object as a JetStream message
// schedule, and delivers its firings at least once.
//
// # Model
//
// An object (ns, id) has at most one schedule: a message on
// Subjects.AlarmSchedule(ns, id) with the headers
//
//	Nats-Schedule: @at <time, UTC, RFC 3339 with nanoseconds>
//	Nats-Schedule-Target: <Subjects.AlarmFire(ns, id)>
//
// and a Firing as payload. When the time comes, the server stores a copy of
// the payload on the fire subject (that is the firing) and purges the
// schedule subject. Schedule replaces the object's schedule (the server
// rolls the subject up to the newest message); Cancel purges it. Consume
// reads firings with a durable pull consumer and hands each to the runtime,
// which acknowledges it once handled.
//
// A Firing names its object, the alarm (its scheduled time in Unix ms) and
// the attempt (Retry). The runtime compares it with the object's own
// durable state; this package knows nothing of that state.
//
// # What the runtime must do
//
//   - Drop stale firings: a firing whose (Alarm, Retry) is not what the object
//     is waiting for. Firings are at-least-once (redelivery after AckWait, a
//     lost ack, a firing stored just before Cancel or a re-schedule) and
//     several nodes may consume the same durable.
//   - On a stale firing, Schedule the object's current alarm again if it has
//     one. A firing purges the whole schedule subject when it is stored, so
//     a Schedule that lands between the server picking the old schedule and
//     storing its firing is lost, and that old firing is the only trace of
//     it. This is not rare under load: re-scheduling 2000 objects just as
//     their 2000 alarms fell due lost 567 of the new schedules, each with a
//     stale firing delivered. Re-scheduling is idempotent.
//   - Keep a local timer (Clock) for active objects, to fire on time: the
//     server's scheduler timer waits at least 250 ms each time it is armed,
//     so an alarm due sooner than that after Schedule fires late (50 ms
//     ahead fired 200 ms late). The durable schedule is the backstop.
//   - Retry a failing alarm handler itself: acknowledge the firing and
//     Schedule Retry+1 at now+RetryDelay(Retry+1), up to MaxRetries.
//
// # Timing (nats-server 2.15, 2 busy cores, loopback TCP)
//
//   - An isolated schedule 300 ms or more ahead fires 1–5 ms late.
//   - A time in the past fires ~250 ms after Schedule (the floor above).
//     The server accepts any past time, but it keeps times as int64 Unix
//     nanoseconds: a time before 1678 (such as time.Time{}) overflows and
//     never fired in our tests, so Schedule clamps times before 1970 to the
//     Unix epoch; a time after 2262 fired at once, so Schedule rejects it
//     with ErrTimeRange.
//   - The time is sent with nanoseconds: jetstream.WithScheduleAt drops the
//     fraction of a second and would fire up to 1 s early.
//   - 2000 alarms due at the same instant all fired within 40–50 ms (p50
//     ~30 ms) without -race; 10k within 0.2–0.35 s.
//   - Schedules survive a server restart; one that fell due while the
//     server was down fired 12–60 ms after the server was back. A purge
//     (Cancel) is durable; overwriting a schedule with a plain message is
//     not (it cancels in memory only and the schedule comes back after a
//     crash).
//
// # The stream
//
// Open creates or updates the stream Config.Stream (default "OPENDO_ALARMS")
// capturing <prefix>.alarm.> with:
//
//   - AllowMsgSchedules. It cannot be turned off again, and implies
//     AllowRollup and DenyPurge=false (Open sets both explicitly). The target
//     of a schedule must be a subject of the same stream, hence one stream for
//     schedules and firings.
//   - Retention WorkQueue: a firing leaves the stream when it is acknowledged
//     or terminated, so firings do not pile up. Schedules stay (no consumer
//     reads the schedule subjects) until they fire or are cancelled. The
//     server allows only consumers with non-overlapping filters on such a
//     stream, and never lets a stream change to or from WorkQueue retention:
//     Open fails on an existing stream of that name with another retention.
//   - MaxMsgsPerSubject 1 (discard old): at most one schedule and one
//     unacknowledged firing per object. Should firings of an object pile up
//     while nothing consumes, a newer one replaces the older, which would be
//     stale anyway. The server accepts this limit with schedules.
//   - File storage, Config.Replicas, no age limit (alarms may be far ahead).
//
// # Consuming
//
// Consume uses the durable pull consumer Config.Consumer (default
// "opendo-alarms") filtered on <prefix>.alarm.fire.>, explicit acks,
// AckWait Config.AckWait (default 60 s), unlimited deliveries. Every process
// consuming the same durable shares the firings: route each to the node
// that hosts its object. An unacknowledged firing is delivered again after
// AckWait (measured: after 1.000 s with AckWait 1 s). A payload that does
// not parse is logged and terminated (Term), so it is never redelivered.
// Across a disconnection or server restart, the NATS client reconnects and
// the consumer pulls again by itself; the consumer logs the interruption
// at warn level.
//
// # Concurrency
//
// Alarms is safe for concurrent use and owns no goroutine; the consumption
// started by Consume belongs to its stop function, which waits for it.
package alarms
