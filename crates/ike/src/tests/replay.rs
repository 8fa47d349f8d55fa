//! Replays (issue 13, finding 9): quick-mode and informational message IDs are remembered for
//! the IKE SA's lifetime (up to a cap), so a copy of an old authenticated message is dropped
//! and counted, never processed again, and never moves a NAT-T peer.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use isakmp::{ExchangeType, Message};

use super::util::{installed, Gateway, Nat, Pair};
use crate::{DpdConfig, Event};

fn tunnel_up(pair: &Pair) -> bool {
    !installed(&pair.a).is_empty() && !installed(&pair.b).is_empty()
}

/// The datagrams A sent of one exchange type, in order (as A's engine emitted them).
fn sent_by_a(pair: &Pair, exchange: ExchangeType) -> Vec<Vec<u8>> {
    pair.a
        .transmits
        .iter()
        .filter(|t| Message::parse(&t.payload).is_ok_and(|m| m.header.exchange_type == exchange))
        .map(|t| t.payload.clone())
        .collect()
}

fn peer_moves(events: &[Event]) -> usize {
    events.iter().filter(|e| matches!(e, Event::PeerMoved { .. })).count()
}

#[test]
fn replayed_quick_mode_after_it_was_forgotten_is_dropped_and_counted() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 41);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let quick = sent_by_a(&pair, ExchangeType::QuickMode);
    assert_eq!(quick.len(), 2, "QM1 and QM3");
    // Long after the finished quick mode stopped answering repeats (60 s).
    pair.advance(Duration::from_secs(61));
    let (b_sent, b_events) = (pair.b.transmits.len(), pair.b.events.len());
    let (b_addr, a_addr) = (pair.b.address, pair.a.address);
    for replay in &quick {
        pair.b.engine.handle_datagram(pair.now, b_addr, a_addr, replay);
    }
    pair.advance(Duration::from_secs(5));
    assert_eq!(pair.b.transmits.len(), b_sent, "no QM2 for a replayed QM1, no notify");
    assert_eq!(pair.b.events.len(), b_events, "{:?}", &pair.b.events[b_events..]);
    assert_eq!((installed(&pair.a).len(), installed(&pair.b).len()), (1, 1), "no second IPsec SA pair");
    let view = pair.b.engine.ike_sas().next().expect("the IKE SA");
    assert_eq!((view.quick_modes_in_progress, view.replays_dropped), (0, 2));
    assert_eq!(pair.b.engine.statistics().replays_dropped, 2);
    assert_eq!(pair.b.engine.statistics().message_ids_forgotten, 0);
}

#[test]
fn replayed_informational_after_more_than_64_others_is_dropped() {
    let dpd = DpdConfig {
        idle_time: Duration::from_secs(2),
        retransmit_interval: Duration::from_secs(2),
        retry_limit: 3,
    };
    let a = Gateway { dpd: Some(dpd), ..Gateway::fw_a() };
    let mut pair = Pair::new(&a, &Gateway::fw_b(), 42);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    pair.advance(Duration::from_secs(3));
    let first = sent_by_a(&pair, ExchangeType::Informational);
    assert_eq!(first.len(), 1, "one R-U-THERE");
    // Enough idle time for more than 64 further R-U-THEREs, each answered.
    pair.advance(Duration::from_secs(200));
    assert!(sent_by_a(&pair, ExchangeType::Informational).len() > 65);
    let acks_before = pair.b.transmits.len();
    let (b_addr, a_addr) = (pair.b.address, pair.a.address);
    pair.b.engine.handle_datagram(pair.now, b_addr, a_addr, &first[0]);
    assert!(pair.b.engine.poll_transmit().is_none(), "no R-U-THERE-ACK for a replay");
    assert_eq!(pair.b.transmits.len(), acks_before);
    assert_eq!(pair.b.engine.statistics().replays_dropped, 1);
    assert_eq!(pair.b.engine.ike_sas().next().map(|v| v.replays_dropped), Some(1));
}

#[test]
fn replayed_quick_mode_from_another_port_does_not_move_the_peer() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 43);
    pair.nat = Some(Nat { offset: 30_000 });
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let qm1 = sent_by_a(&pair, ExchangeType::QuickMode).swap_remove(0);
    pair.advance(Duration::from_secs(61));
    let b_events = pair.b.events.len();
    // An attacker replays the authenticated QM1 from its own port.
    let b_local = SocketAddr::new(IpAddr::V4(b.local), 4500);
    let attacker = SocketAddr::new(IpAddr::V4(a.local), 40_000);
    pair.b.engine.handle_datagram(pair.now, b_local, attacker, &qm1);
    pair.advance(Duration::from_secs(1));
    assert_eq!(peer_moves(&pair.b.events[b_events..]), 0, "no PeerMoved");
    assert_eq!(pair.b.engine.ike_sas().map(|v| v.remote.port()).collect::<Vec<_>>(), [34_500]);
    assert_eq!(installed(&pair.b)[0].udp_encapsulation.map(|u| u.remote_port), Some(34_500));
    assert_eq!(pair.b.engine.statistics().replays_dropped, 1);
}
