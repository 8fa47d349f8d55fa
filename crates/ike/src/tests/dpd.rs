//! Dead peer detection (RFC 3706) and INITIAL-CONTACT (RFC 2407 §4.6.3.3) between two engines.

use std::time::Duration;

use isakmp::{ExchangeType, Message};

use super::util::{cleared, installed, tunnel_up, Gateway, Pair, TestRng};
use crate::{Acquire, ClearReason, ConnectionId, DpdConfig, Engine};

fn informationals(sent: &[Vec<u8>]) -> usize {
    sent.iter()
        .filter(|m| Message::parse(m).is_ok_and(|m| m.header.exchange_type == ExchangeType::Informational))
        .count()
}

const DPD: DpdConfig = DpdConfig {
    idle_time: Duration::from_secs(10),
    retransmit_interval: Duration::from_secs(5),
    retry_limit: 3,
};

fn dpd_pair(seed: u64) -> (Gateway, Pair) {
    let a = Gateway { dpd: Some(DPD), ..Gateway::fw_a() };
    let b = Gateway::fw_b(); // DPD off: B never asks, but answers.
    let mut pair = Pair::new(&a, &b, seed);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "a: {:?}\nb: {:?}", pair.a.events, pair.b.events);
    (a, pair)
}

#[test]
fn dpd_idle_tunnel_sends_r_u_there_and_peer_acks() {
    let (_, mut pair) = dpd_pair(31);
    let (a_before, b_before) = (informationals(&pair.a.sent), informationals(&pair.b.sent));
    assert_eq!((a_before, b_before), (0, 0));
    pair.advance(Duration::from_secs(35));
    let (a_sent, b_sent) = (informationals(&pair.a.sent), informationals(&pair.b.sent));
    // Idle 10 s, then an R-U-THERE; each ACK makes the peer "heard" and restarts the idle time.
    assert!((3..=4).contains(&a_sent), "R-U-THEREs sent: {a_sent}");
    assert_eq!(b_sent, a_sent, "every R-U-THERE is acknowledged");
    assert!(cleared(&pair.a.events).is_empty());
    assert_eq!(pair.a.engine.ike_sas().count(), 1);
}

#[test]
fn dpd_traffic_suppresses_r_u_there() {
    let (_, mut pair) = dpd_pair(32);
    let connection = installed(&pair.a)[0].connection;
    for _ in 0..12 {
        pair.advance(Duration::from_secs(5));
        pair.a.engine.handle_traffic(pair.now, connection);
    }
    assert_eq!(informationals(&pair.a.sent), 0, "a busy tunnel needs no DPD");
    pair.advance(Duration::from_secs(11));
    assert_eq!(informationals(&pair.a.sent), 1, "idle again: one R-U-THERE");
}

#[test]
fn dpd_vanished_peer_is_declared_dead_and_its_sas_cleared() {
    let (_, mut pair) = dpd_pair(33);
    let connection = installed(&pair.a)[0].connection;
    pair.b_alive = false;
    // 10 s idle, then R-U-THERE at 10, 15, 20, 25 s; dead at 30 s.
    pair.advance(Duration::from_secs(29));
    assert!(cleared(&pair.a.events).is_empty());
    pair.advance(Duration::from_secs(2));
    assert_eq!(informationals(&pair.a.sent), 4);
    let reasons = cleared(&pair.a.events);
    assert_eq!(
        reasons,
        [(connection, ClearReason::PeerDead { unanswered: 4, silent_for: Duration::from_secs(30) })]
    );
    assert_eq!(pair.a.engine.ike_sas().count(), 0, "the IKE SA is gone");
    let text = reasons[0].1.to_string();
    assert!(text.contains("peer dead") && text.contains("4 R-U-THERE"), "{text}");
}

#[test]
fn dpd_off_sends_nothing_but_answers() {
    let a = Gateway::fw_a();
    let b = Gateway { dpd: Some(DPD), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 34);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    pair.advance(Duration::from_secs(25));
    assert!(informationals(&pair.b.sent) >= 1, "the responder probes too");
    assert_eq!(informationals(&pair.a.sent), informationals(&pair.b.sent), "A only answers");
}

#[test]
fn initial_contact_from_restarted_peer_replaces_old_sas() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 35);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let old = installed(&pair.a)[0].connection;
    assert!(cleared(&pair.a.events).is_empty() && cleared(&pair.b.events).is_empty());
    // B restarts: a fresh engine that knows nothing, and that brings the tunnel up itself.
    pair.b.engine = Engine::new(b.config(), Box::new(TestRng(99)));
    pair.b.events.clear();
    pair.b.engine.handle_acquire(pair.now, Acquire { policy: 0, selector: b.selector() });
    let installed_before = installed(&pair.a).len();
    assert!(
        pair.drive_until(100, |p| installed(&p.a).len() > installed_before && !installed(&p.b).is_empty())
    );
    let new = installed(&pair.a)[installed_before].connection;
    assert_ne!(new, old);
    assert_eq!(cleared(&pair.a.events), [(old, ClearReason::InitialContact { replaced_by: new })]);
    let remaining: Vec<ConnectionId> = pair.a.engine.ike_sas().map(|v| v.connection).collect();
    assert_eq!(remaining, [new], "only the restarted peer's new IKE SA is left");
}

#[test]
fn initial_contact_of_simultaneous_negotiations_clears_nothing() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 36);
    // Both gateways see traffic at once: two main modes cross, each with INITIAL-CONTACT. A's
    // first MM5 is lost, so B's own SA is established before A's INITIAL-CONTACT reaches B; it
    // must survive, since it was not established when A's SA began.
    let mut dropped = false;
    pair.alter = Some(Box::new(move |to_b, t| {
        let encrypted_main_mode = Message::parse(&t.payload).is_ok_and(|m| {
            m.header.exchange_type == ExchangeType::IdentityProtection && m.encrypted_body().is_some()
        });
        if to_b && encrypted_main_mode && !dropped {
            dropped = true;
            return false;
        }
        true
    }));
    pair.acquire_on_a(a.selector());
    pair.advance(Duration::from_millis(5));
    pair.b.engine.handle_acquire(pair.now, Acquire { policy: 0, selector: b.selector() });
    assert!(pair.drive_until(200, |p| installed(&p.a).len() >= 2 && installed(&p.b).len() >= 2));
    assert!(cleared(&pair.a.events).is_empty() && cleared(&pair.b.events).is_empty());
    assert_eq!(pair.a.engine.ike_sas().count(), 2);
    assert_eq!(pair.b.engine.ike_sas().count(), 2);
}
