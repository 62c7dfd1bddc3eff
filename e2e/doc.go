// Package e2e holds end-to-end tests that run the real opendo binary as a
// child process and treat it as a black box reached over NATS.
//
// The tests build ./cmd/opendo once per run, start `opendo dev` on a free
// port, drive it with the Go client, and kill or stop it:
//
//   - TestCrashLosesNoAcknowledgedWrite SIGKILLs the process under load,
//     round after round on the same data directory, and checks that no
//     acknowledged increment was lost and that no increment appeared that
//     was never sent (ack_total ≤ final ≤ sent_total, final ≥ the largest
//     acknowledged value, every acknowledged value distinct). It runs with
//     the default durability (survives a process kill) and with -sync always.
//   - TestGracefulShutdown checks that SIGTERM exits 0 and keeps every write.
//
// They are skipped with -short. OPENDO_E2E_ROUNDS sets the number of crash
// rounds (default 5; the -sync always variant runs fewer);
// OPENDO_E2E_RACE=1 builds the binary with -race.
package e2e
