//! Replays the cargo-fuzz corpus of the `ike_engine` target (`fuzz/corpus/ike_engine/` at the
//! repository root) through the same harness the target runs (`support/engine_fuzz.rs`): two
//! engines talking through a network the input controls, with the SA-count and
//! buffered-bytes bounds checked after every step. CI does not run the fuzzer; this keeps the
//! harness and its seeds working on every `cargo test`.
//!
//! The seeds are made here, from readable recipes ([`recipes`]): the committed files must be
//! exactly what the recipes give (so the opcodes and the files cannot drift apart), and each
//! recipe must still reach the state its name promises (established SAs, rekey, DPD, …), so
//! the fuzzer keeps starting from deep states. To rewrite the files after changing a recipe
//! or the input format:
//!
//! ```sh
//! KEYSTEWARD_WRITE_SEEDS=1 cargo test -p keysteward-ike --test engine_fuzz_replay
//! ```
//!
//! The corpus directory must exist: a missing corpus is a broken checkout, not a pass.

#[path = "support/engine_fuzz.rs"]
mod engine_fuzz;

use std::path::PathBuf;

use engine_fuzz::{Action, Reached};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/ike_engine")
}

/// One seed: a name (its file name), the input, and what a run of it must reach.
struct Recipe {
    name: &'static str,
    input: Vec<u8>,
    reaches: fn(&Reached) -> bool,
}

/// An input: the scenario byte, then actions with their operands.
fn input(scenario: u8, steps: &[(Action, &[u8])]) -> Vec<u8> {
    let mut bytes = vec![scenario];
    for (action, operands) in steps {
        bytes.push(*action as u8);
        bytes.extend_from_slice(operands);
    }
    bytes
}

/// `steps` `times` times over.
fn repeat(steps: &[(Action, &'static [u8])], times: usize) -> Vec<(Action, &'static [u8])> {
    steps.iter().copied().cycle().take(steps.len() * times).collect()
}

// Scenario bits (`Scenario::from_byte`).
const A_AGGRESSIVE: u8 = 0x01;
const B_AGGRESSIVE: u8 = 0x02;
const PFS: u8 = 0x04;
const AH_ESP: u8 = 0x08;
const SMALL_FRAGMENTS: u8 = 0x10;
const DPD: u8 = 0x20;

/// Acquire operands: bit 0 picks the engine, the rest the rule.
const A_RULE_0: &[u8] = &[0];
const B_RULE_1: &[u8] = &[3];

/// Forge operands: route, message ID (4 bytes), exchange, next payload, body length (2
/// bytes), then the body. Route bit 0: to B; bits 1-2: source (0 the SA's peer, 1 its address
/// with another port, 2 a random address, 3 port 4500); bit 3: encrypted garbage; bits 4-7:
/// which SA.
fn forge(route: u8, message_id: u32, exchange: u8, next_payload: u8, body: &[u8]) -> Vec<u8> {
    let mut operands = vec![route];
    operands.extend_from_slice(&message_id.to_be_bytes());
    operands.extend_from_slice(&[exchange, next_payload]);
    operands.extend_from_slice(&(body.len() as u16).to_be_bytes());
    operands.extend_from_slice(body);
    operands
}

/// Cleartext payloads an attacker sends to an established SA without the keys: a
/// Notification INITIAL-CONTACT (ISAKMP, no SPI), and a Delete of ESP SPI 0x00000100.
const UNPROTECTED_INITIAL_CONTACT: &[u8] = &[0, 0, 0, 12, 0, 0, 0, 1, 1, 0, 0x60, 0x02];
const UNPROTECTED_DELETE: &[u8] = &[0, 0, 0, 16, 0, 0, 0, 1, 3, 4, 0, 1, 0, 0, 1, 0];

/// The attacker's seeds (issue 13): forged, late-replayed and oversized messages, checked by
/// the harness against the authenticated state of both engines.
fn attacker_recipes() -> Vec<Recipe> {
    use Action::{Acquire, Advance, Flush, Forge, Nat, NextTimer, Oversize, ReplayOld};
    // Established, and the authenticated state the invariant watches did change (MM5, MM6,
    // QM2, QM3 at least), so the forged and replayed messages are compared against real SAs.
    let established =
        |r: &Reached| r.ike_established >= 2 && r.ipsec_installed >= 2 && r.authenticated_changes >= 4;
    let forged: Vec<Vec<u8>> = vec![
        // Encrypted garbage as a quick mode and as an informational, to A and to B, from the
        // peer's own address and port, from its address with another port, from anywhere.
        forge(0x08, 0x0102_0304, 3, 8, &[0x42; 48]),
        forge(0x0b, 0x0a0b_0c0d, 2, 8, &[0x17; 32]),
        forge(0x0d, 0x7fff_0001, 3, 8, &[0x99; 80]),
        forge(0x0e, 0, 0, 5, &[0x33; 64]),
        // Unprotected INITIAL-CONTACT and Delete on the established SA, from the peer.
        forge(0x00, 0x1111_2222, 2, 11, UNPROTECTED_INITIAL_CONTACT),
        forge(0x01, 0x3333_4444, 2, 12, UNPROTECTED_DELETE),
        // The same from the peer's address with another port (a NAT-T port move).
        forge(0x02, 0x5555_6666, 2, 11, UNPROTECTED_INITIAL_CONTACT),
    ];
    // Operands: archive index, source port change (0: the same port, 9: another).
    let late_replays: Vec<[u8; 2]> = (0..10u8).flat_map(|index| [[index, 0], [index, 9]]).collect();
    vec![
        Recipe {
            name: "seed-forged-on-established-sas",
            input: input(0, &{
                let mut steps: Vec<(Action, &[u8])> = vec![(Acquire, A_RULE_0), (Flush, &[])];
                steps.extend(forged.iter().map(|operands| (Forge, &operands[..])));
                steps.push((Flush, &[]));
                steps
            }),
            reaches: established,
        },
        Recipe {
            // Through a NAT (so the SAs float to UDP 4500 and follow the peer's port), every
            // datagram of the handshakes, replayed from the same port and from
            // another, three minutes later: no replay may move the peer's port or touch the SAs.
            name: "seed-late-replay",
            input: input(PFS, &{
                let mut steps: Vec<(Action, &[u8])> =
                    vec![(Nat, &[7]), (Acquire, A_RULE_0), (Flush, &[]), (Advance, &[3, 3])];
                steps.extend(late_replays.iter().map(|operands| (ReplayOld, &operands[..])));
                steps.push((Flush, &[]));
                steps
            }),
            reaches: established,
        },
        Recipe {
            // A main-mode first message with a 64 KiB SA payload from the peer's address and
            // from a random one; then A's own MM1 with 4 KiB appended (B refuses or ignores
            // it) and the retransmission that repairs the exchange.
            name: "seed-oversized",
            input: input(
                0,
                &[
                    (Oversize, &[2, 0xff, 0xff]),
                    (Oversize, &[6, 0xff, 0xff]),
                    (Oversize, &[10, 0x10, 0x00]),
                    (Acquire, A_RULE_0),
                    (Oversize, &[0, 0x10, 0x00]),
                    (NextTimer, &[]),
                    (Flush, &[]),
                ],
            ),
            reaches: established,
        },
    ]
}

fn recipes() -> Vec<Recipe> {
    use Action::{Acquire, Advance, Drop, Flush, Nat, NextTimer, Replay, Traffic};
    let established = |r: &Reached| r.ike_established >= 2 && r.ipsec_installed >= 2;
    let mut recipes = vec![
        Recipe {
            name: "seed-main-mode-quick-mode",
            input: input(0, &[(Acquire, A_RULE_0), (Flush, &[])]),
            reaches: established,
        },
        Recipe {
            name: "seed-aggressive-mode-pfs-ah-esp",
            input: input(A_AGGRESSIVE | PFS | AH_ESP, &[(Acquire, A_RULE_0), (Flush, &[])]),
            reaches: established,
        },
        Recipe {
            // B starts aggressive mode through a NAT in front of A, with fragmented phase-1
            // messages; A asks for the second flow on the SA B made.
            name: "seed-aggressive-mode-nat-fragments-two-flows",
            input: input(
                B_AGGRESSIVE | SMALL_FRAGMENTS,
                &[(Nat, &[7]), (Acquire, B_RULE_1), (Flush, &[]), (Acquire, A_RULE_0), (Flush, &[])],
            ),
            reaches: |r| r.ike_established >= 2 && r.ipsec_installed >= 4,
        },
        Recipe {
            // Timers one after the other, with traffic reported, until IPsec SAs are rekeyed
            // and the old ones expire.
            name: "seed-main-mode-rekey",
            input: input(PFS, &{
                let mut steps = vec![(Acquire, A_RULE_0), (Flush, &[][..])];
                steps.extend(repeat(&[(Traffic, &[0]), (NextTimer, &[]), (Flush, &[])], 8));
                steps
            }),
            reaches: |r| r.ipsec_installed >= 4 && r.ipsec_expired >= 2,
        },
        Recipe {
            // DPD on, every R-U-THERE lost: both sides declare the other dead and clear.
            name: "seed-dpd-peer-dead",
            input: input(DPD, &{
                let mut steps = vec![(Acquire, A_RULE_0), (Flush, &[][..])];
                steps.extend(repeat(&[(Advance, &[2, 4]), (Drop, &[]), (Drop, &[])], 12));
                steps
            }),
            reaches: |r| r.ike_established >= 2 && r.cleared >= 1,
        },
        Recipe {
            // A's MM1, delivered, then replayed from other source ports: B answers each as a
            // new half-open SA, evicting the oldest once its memory budget is full.
            name: "seed-half-open-limit",
            input: input(0, &{
                let mut steps = vec![(Acquire, A_RULE_0), (Action::Deliver, &[][..])];
                // Operands: history index 0 (the MM1), source port 500 + 1 … 5.
                steps.extend([[0u8, 1], [0, 2], [0, 3], [0, 4], [0, 5]].iter().map(|o| (Replay, &o[..])));
                steps
            }),
            reaches: |r| r.most_ike_sas >= 3 && r.half_open_evicted >= 1,
        },
    ];
    recipes.extend(attacker_recipes());
    recipes
}

#[test]
fn every_recipe_reaches_its_state_within_the_bounds() {
    for recipe in recipes() {
        let reached = engine_fuzz::run(&recipe.input);
        assert!((recipe.reaches)(&reached), "{} reached only {reached:?}", recipe.name);
    }
}

#[test]
fn the_committed_seeds_are_the_recipes() {
    let write = std::env::var_os("KEYSTEWARD_WRITE_SEEDS").is_some();
    for recipe in recipes() {
        let path = corpus().join(recipe.name);
        if write {
            std::fs::create_dir_all(corpus()).unwrap();
            std::fs::write(&path, &recipe.input).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(committed, recipe.input, "{} differs from its recipe (see the module docs)", recipe.name);
    }
}

#[test]
fn every_corpus_file_replays_within_the_bounds() {
    let mut files: Vec<_> = std::fs::read_dir(corpus())
        .unwrap_or_else(|e| panic!("{}: {e}", corpus().display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= recipes().len(), "the corpus lost seeds: {files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        // The harness's own assertion message comes first in the output; this names the file.
        if std::panic::catch_unwind(|| engine_fuzz::run(&bytes)).is_err() {
            panic!("{} broke an invariant", file.display());
        }
    }
}
