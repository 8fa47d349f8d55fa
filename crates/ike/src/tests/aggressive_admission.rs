//! Aggressive mode only where configured, and rate-limited (issue 13, finding 7): the
//! responder answers an AM1 only for a peer that accepts aggressive mode (`exchange-mode
//! aggressive` or `auto`), with pre-shared keys and signatures alike, and no more AM1s per
//! second than its limits allow, in total and per address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::certs::gateways;
use super::test_pki::{Ca, KeyKind};
use super::util::{failures, Gateway, Pair, TestRng};
use super::{established, tunnel_up};
use crate::{Engine, Event, ExchangeMode, FailureReason, Limits, PolicyFailure};

/// An AM1 from A's configuration, made by a fresh engine seeded with `seed`.
fn am1(a: &Gateway, seed: u64) -> Vec<u8> {
    let mut engine = Engine::new(a.config(), Box::new(TestRng(seed)));
    engine.handle_acquire(super::util::epoch(), crate::Acquire { policy: 0, selector: a.selector() });
    engine.poll_transmit().expect("AM1").payload
}

fn refusals(engine: &mut Engine) -> Vec<PolicyFailure> {
    std::iter::from_fn(|| engine.poll_event())
        .filter_map(|e| match e {
            Event::Failed(f) => match f.reason {
                FailureReason::Policy(p) => Some(p),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Before the fix, every peer that authenticates by signatures had the aggressive-mode
/// responder on: B computed a DH and a signature and sent its certificate for any AM1.
#[test]
fn a_signature_peer_in_main_mode_refuses_aggressive_mode_without_reply() {
    for kind in [KeyKind::Rsa2048, KeyKind::P256] {
        let ca = Ca::new("keysteward CA", kind);
        let (a, mut b, _, _) = gateways(&ca, kind, ExchangeMode::Aggressive);
        b.mode = ExchangeMode::Main;
        b.accept_aggressive_from_peer = false;
        let mut pair = Pair::new(&a, &b, 80);
        pair.acquire_on_a(a.selector());
        pair.drive_for(Duration::from_secs(30));
        assert!(pair.b.sent.is_empty(), "{kind:?}: no AM2, no certificate reflected");
        assert_eq!(pair.b.engine.ike_sas().count(), 0, "{kind:?}: no state");
        let on_b = failures(&pair.b);
        assert!(!on_b.is_empty(), "{kind:?}");
        assert!(
            on_b.iter().all(|f| matches!(
                f.reason,
                FailureReason::Policy(PolicyFailure::AggressiveModeNotConfigured)
            )),
            "{kind:?}: {}",
            on_b[0]
        );
        assert!(on_b[0].to_string().contains("exchange-mode is main (aggressive or auto accepts it)"));
    }
}

/// With the peer configured for it (`exchange-mode aggressive` on B's side), signatures work
/// in aggressive mode as before.
#[test]
fn a_signature_peer_configured_for_aggressive_mode_answers_it() {
    let ca = Ca::new("keysteward CA", KeyKind::Rsa2048);
    let (a, b, _, _) = gateways(&ca, KeyKind::Rsa2048, ExchangeMode::Aggressive);
    let mut pair = Pair::new(&a, &b, 81);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(1000, tunnel_up), "{:?}", super::failure_reasons(&pair.b));
}

/// `exchange-mode auto`: B initiates main mode and answers both main and aggressive mode
/// (the VRP layer sets `exchange_mode: Main, accept_aggressive_mode: true` for it). Before
/// the fix `auto` was main mode only, and B refused A's AM1.
#[test]
fn an_auto_peer_answers_aggressive_mode_and_initiates_main_mode() {
    let a = Gateway { mode: ExchangeMode::Aggressive, ..Gateway::fw_a() };
    let b = Gateway { mode: ExchangeMode::Main, accept_aggressive_from_peer: true, ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 82);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(200, tunnel_up), "{:?}", super::failure_reasons(&pair.b));
    assert!(established(&pair));
    // And B, as initiator, uses main mode with an A that accepts both.
    let a = Gateway { mode: ExchangeMode::Main, accept_aggressive_from_peer: true, ..Gateway::fw_a() };
    let mut pair = Pair::new(&b, &a, 83);
    pair.acquire_on_a(b.selector());
    assert!(pair.drive_until(200, tunnel_up));
    let first = isakmp::Message::parse(&pair.a.sent[0]).expect("MM1");
    assert_eq!(first.header.exchange_type, isakmp::ExchangeType::IdentityProtection);
}

/// A main-mode peer with a pre-shared key refuses AM1 too (as before), naming the risk.
#[test]
fn a_pre_shared_key_peer_in_main_mode_refuses_aggressive_mode() {
    let a = Gateway { mode: ExchangeMode::Aggressive, ..Gateway::fw_a() };
    let b = Gateway::fw_b();
    let mut pair = Pair::new(&a, &b, 84);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(30));
    assert!(pair.b.sent.is_empty());
    let on_b = failures(&pair.b);
    assert!(on_b
        .iter()
        .all(|f| matches!(f.reason, FailureReason::Policy(PolicyFailure::AggressiveModePskRefused))));
    assert!(on_b[0].to_string().contains("exchange-mode aggressive or auto"), "{}", on_b[0]);
}

/// The responder answers at most `aggressive_mode_responses_per_address` AM1s per second
/// from one address and `aggressive_mode_responses_per_second` from all together; the rest
/// are refused before any work, counted, and get no reply. Before the fix every AM1 was
/// answered (up to the half-open limit).
#[test]
fn the_aggressive_mode_responder_is_rate_limited() {
    let a = Gateway { mode: ExchangeMode::Aggressive, ..Gateway::fw_a() };
    let limits = Limits {
        aggressive_mode_responses_per_second: 6,
        aggressive_mode_responses_per_address: 2,
        ..Limits::default()
    };
    let b = Gateway { accept_aggressive_from_peer: true, limits, ..Gateway::fw_b() };
    // A peer for any address (as a template peer is), so that spoofed sources select it.
    let mut config = b.config();
    config.peers[0].remote_address = None;
    let mut engine = Engine::new(config, Box::new(TestRng(85)));
    let now = super::util::epoch();
    let local = SocketAddr::new(IpAddr::V4(b.local), 500);
    let from = |ip: Ipv4Addr, port: u16| SocketAddr::new(IpAddr::V4(ip), port);
    // Ten AM1s from A's own address (distinct initiators, distinct ports).
    for i in 0..10 {
        engine.handle_datagram(now, local, from(a.local, 1000 + i), &am1(&a, 100 + u64::from(i)));
    }
    let answered = std::iter::from_fn(|| engine.poll_transmit()).count();
    assert_eq!(answered, 2, "per address");
    let refused = refusals(&mut engine);
    assert_eq!(refused.len(), 8);
    assert!(refused.iter().all(|r| matches!(r, PolicyFailure::AggressiveModeRateLimited)));
    assert_eq!(engine.statistics().aggressive_mode_rate_limited, 8);
    // From many addresses (A's identity selects the peer): the global bucket has 4 left.
    for i in 0..20u8 {
        let spoofed = Ipv4Addr::new(198, 51, 100, i);
        engine.handle_datagram(now, local, from(spoofed, 500), &am1(&a, 200 + u64::from(i)));
    }
    let answered = std::iter::from_fn(|| engine.poll_transmit()).count();
    assert_eq!(answered, 4, "global");
    assert_eq!(engine.statistics().aggressive_mode_rate_limited, 8 + 20 - answered as u64);
    // A second later the buckets have refilled: A's address is answered again.
    let later = now + Duration::from_secs(1);
    engine.handle_datagram(later, local, from(a.local, 2000), &am1(&a, 300));
    assert_eq!(std::iter::from_fn(|| engine.poll_transmit()).count(), 1);
}
