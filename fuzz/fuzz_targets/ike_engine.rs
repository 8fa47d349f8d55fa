//! Two IKE engines (`ike::Engine`) configured as each other's peer, talking through a network
//! the input controls: deliver, drop, duplicate, reorder, mutate, truncate or replace the next
//! datagram, inject or replay datagrams from any address, advance time, trigger acquires and
//! traffic, put a NAT in between; and as an attacker, forge messages aimed at existing SAs,
//! replay the first datagrams of the run much later, send oversized messages. After every
//! step: no panic, the IKE SA count, quick modes, IPsec SA pairs and
//! `Engine::buffered_bytes()` stay within bounds derived from `ike::Limits`; on every
//! delivery, no forged datagram and no replay changes the established SAs. The harness, its input format and the bounds are in
//! `crates/ike/tests/support/engine_fuzz.rs`, shared with the replay test
//! `crates/ike/tests/engine_fuzz_replay.rs`, which also makes the seeds in
//! `corpus/ike_engine/`.
#![no_main]

// What the run reached and the bound constants serve the replay test only.
#[allow(dead_code)]
#[path = "../../crates/ike/tests/support/engine_fuzz.rs"]
mod engine_fuzz;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    engine_fuzz::run(data);
});
