//! Lifetimes, rekeying, IKE SA renewal, reset commands and the error history.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::util::{failures, installed, Gateway, Pair, Side, TestRng};
use crate::{
    Acquire, Command, ConnectionId, Engine, Event, Exchange, FailureReason, IkeProposal, IkeSaEnd,
    IpsecSaEnd, IpsecSaPair, IpsecSaState, SaUsage, ERROR_HISTORY_LEN, SEQUENCE_HARD_LIMIT,
    SEQUENCE_SOFT_LIMIT,
};
use crate::{PolicyFailure, ProposalFailure, TimeoutFailure};

fn tunnel_up(pair: &Pair) -> bool {
    !installed(&pair.a).is_empty() && !installed(&pair.b).is_empty()
}

fn with_ike_lifetime(mut gateway: Gateway, lifetime: Duration) -> Gateway {
    gateway.ike = vec![IkeProposal { lifetime, ..IkeProposal::recommended() }];
    gateway
}

/// The data plane's view of one side, rebuilt from the events: inbound SPI → (outbound SPI,
/// hard deadline).
#[derive(Default)]
struct DataPlane {
    seen: usize,
    live: HashMap<u32, (u32, Instant)>,
}

impl DataPlane {
    fn update(&mut self, side: &Side, now: Instant) {
        for event in &side.events[self.seen..] {
            match event {
                Event::IpsecSaInstalled(p) => {
                    self.live.insert(p.inbound.spi().0, (p.outbound.spi().0, now + p.suite.lifetime));
                }
                Event::IpsecSaExpired { inbound_spi, .. } => {
                    self.live.remove(inbound_spi);
                }
                Event::IpsecSaDeleted { spis, .. } => {
                    self.live.retain(|_, (outbound, _)| !spis.contains(outbound))
                }
                _ => {}
            }
        }
        self.seen = side.events.len();
    }

    /// True when some pair here sends with an SPI the other side receives with, and neither
    /// has passed its hard lifetime.
    fn can_send_to(&self, other: &DataPlane, now: Instant) -> bool {
        self.live.values().any(|(outbound, deadline)| {
            *deadline > now && other.live.get(outbound).is_some_and(|(_, theirs)| *theirs > now)
        })
    }
}

fn assert_crosswise(a: &IpsecSaPair, b: &IpsecSaPair) {
    assert_eq!(a.outbound.spi(), b.inbound.spi());
    assert_eq!(a.inbound.spi(), b.outbound.spi());
    assert_eq!(a.outbound.encryption_key_with_salt(), b.inbound.encryption_key_with_salt());
    assert_eq!(a.outbound.integrity_key(), b.inbound.integrity_key());
    assert_eq!(a.inbound.encryption_key_with_salt(), b.outbound.encryption_key_with_salt());
    assert_eq!(a.inbound.integrity_key(), b.outbound.integrity_key());
}

fn count(side: &Side, f: impl Fn(&Event) -> bool) -> usize {
    side.events.iter().filter(|e| f(e)).count()
}

#[test]
fn ipsec_rekey_and_ike_renewal_leave_no_gap() {
    let a = Gateway {
        lifetime: Duration::from_secs(30),
        ..with_ike_lifetime(Gateway::fw_a(), Duration::from_secs(60))
    };
    let b = Gateway {
        lifetime: Duration::from_secs(30),
        ..with_ike_lifetime(Gateway::fw_b(), Duration::from_secs(60))
    };
    let mut pair = Pair::new(&a, &b, 21);
    let start = pair.now;
    let end = start + Duration::from_secs(180);
    let (mut plane_a, mut plane_b) = (DataPlane::default(), DataPlane::default());
    let mut next_acquire = start;
    let mut up = false;
    while pair.now < end {
        if pair.now >= next_acquire {
            // Traffic keeps asking, as a data plane without an SA would; once the tunnel is up
            // the traffic from B's side asks too.
            pair.acquire_on_a(a.selector());
            if up {
                pair.b.engine.handle_acquire(pair.now, Acquire { policy: 0, selector: b.selector() });
            }
            next_acquire += Duration::from_secs(1);
        }
        assert!(pair.step(), "timers keep running");
        plane_a.update(&pair.a, pair.now);
        plane_b.update(&pair.b, pair.now);
        up = up || tunnel_up(&pair);
        if up {
            let now = pair.now;
            assert!(plane_a.can_send_to(&plane_b, now), "A has no usable pair at {:?}", now - start);
            assert!(plane_b.can_send_to(&plane_a, now), "B has no usable pair at {:?}", now - start);
        }
    }
    assert!(failures(&pair.a).is_empty(), "{:?}", failures(&pair.a));
    assert!(failures(&pair.b).is_empty(), "{:?}", failures(&pair.b));

    // About one rekey every 26-27 s, each with keys that agree crosswise.
    let (on_a, on_b) = (installed(&pair.a), installed(&pair.b));
    assert!(on_a.len() >= 6, "{} pairs on A", on_a.len());
    assert_eq!(on_a.len(), on_b.len());
    for p in &on_a {
        let q = on_b.iter().find(|q| q.inbound.spi() == p.outbound.spi()).expect("B has the partner");
        assert_crosswise(p, q);
    }
    // Old pairs expired with Deletes (A rekeys first, so its pairs expire first and B learns
    // by the Delete).
    let expired_a =
        count(&pair.a, |e| matches!(e, Event::IpsecSaExpired { reason: IpsecSaEnd::Lifetime, .. }));
    let deleted_b = count(&pair.b, |e| matches!(e, Event::IpsecSaDeleted { .. }));
    assert!(expired_a >= 5 && deleted_b >= 5, "expired on A {expired_a}, deleted on B {deleted_b}");

    // Phase 1 was renewed by new main modes (every 51-54 s), and old IKE SAs were deleted.
    let established = count(&pair.a, |e| matches!(e, Event::IkeSaEstablished { initiator: true, .. }));
    assert!(established >= 3, "{established} IKE SAs");
    let ended = count(&pair.a, |e| matches!(e, Event::IkeSaExpired { reason: IkeSaEnd::Lifetime, .. }))
        + count(&pair.a, |e| matches!(e, Event::IkeSaDeleted { .. }));
    assert!(ended >= 2, "{ended} old IKE SAs ended");
    assert!(pair.a.engine.ike_sas().count() <= 2 && pair.b.engine.ike_sas().count() <= 2);
    let views: Vec<_> = pair.a.engine.ike_sas().collect();
    assert!(views.iter().all(|v| v.expires_at.is_some_and(|at| at > pair.now)));
    assert!(views.iter().filter(|v| !v.replaced).count() == 1, "one current IKE SA, the other replaced");
    assert!(pair.a.engine.ipsec_sas(pair.now).count() <= 2, "old pairs do not pile up");
    // Nothing but rekeys and renewals went over the wire: no retransmissions of first
    // messages, no stray quick modes from the repeated acquires.
    let quick_modes = on_a.len() * 3;
    let main_modes = established * 6;
    assert!(pair.a.sent.len() + pair.b.sent.len() < quick_modes + main_modes + 3 * (expired_a + ended) + 10);
}

#[test]
fn ipsec_sa_view_shows_spis_policy_and_remaining_lifetime() {
    let a = Gateway { lifetime: Duration::from_secs(600), ..Gateway::fw_a() };
    let b = Gateway::fw_b();
    let mut pair = Pair::new(&a, &b, 22);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let views: Vec<_> = pair.a.engine.ipsec_sas(pair.now + Duration::from_secs(100)).collect();
    assert_eq!(views.len(), 1);
    let (view, p) = (&views[0], installed(&pair.a)[0]);
    assert_eq!(view.inbound_spi, p.inbound.spi().0);
    assert_eq!(view.outbound_spi, p.outbound.spi().0);
    assert_eq!(view.policy.to_string(), "policy1-1");
    assert_eq!(view.peer, "peer");
    assert_eq!(view.remote.ip(), IpAddr::V4(b.local));
    assert!(view.remaining <= Duration::from_secs(500) && view.remaining > Duration::from_secs(499));
    assert_eq!(view.state, IpsecSaState::Ready);
    assert!(view.initiator);
}

#[test]
fn quick_mode_initiator_adopts_responder_lifetime() {
    let a = Gateway { lifetime: Duration::from_secs(3600), ..Gateway::fw_a() };
    let b =
        Gateway { lifetime: Duration::from_secs(600), lifetime_kilobytes: Some(50_000), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 23);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    for side in [&pair.a, &pair.b] {
        let suite = installed(side)[0].suite;
        assert_eq!(suite.lifetime, Duration::from_secs(600), "the shorter lifetime wins on both sides");
        assert_eq!(suite.lifetime_kilobytes, Some(50_000));
    }
    let view = pair.a.engine.ipsec_sas(pair.now).next().expect("a pair");
    assert!(view.remaining <= Duration::from_secs(600));
    assert_eq!(view.remaining_kilobytes, Some(50_000));

    // Without a shorter lifetime on B there is no notification and A keeps its own.
    let b = Gateway { lifetime: Duration::from_secs(7200), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 24);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    assert_eq!(installed(&pair.a)[0].suite.lifetime, Duration::from_secs(3600));
    assert_eq!(installed(&pair.b)[0].suite.lifetime, Duration::from_secs(3600));
}

#[test]
fn reset_ipsec_sa_deletes_on_both_sides_and_next_acquire_renegotiates() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 25);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let first = installed(&pair.a)[0].inbound.spi().0;

    // Filters that match nothing leave everything alone.
    let elsewhere = Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)));
    pair.a.engine.handle_command(pair.now, Command::ResetIpsecSa { remote: elsewhere, policy: None });
    let other_policy = Some(crate::PolicyId { name: "other".into(), sequence: 1 });
    pair.a.engine.handle_command(pair.now, Command::ResetIpsecSa { remote: None, policy: other_policy });
    assert_eq!(pair.a.engine.ipsec_sas(pair.now).count(), 1);
    assert!(pair.a.engine.poll_transmit().is_none());

    let policy = Some(crate::PolicyId { name: "policy1".into(), sequence: 1 });
    let remote = Some(IpAddr::V4(b.local));
    pair.a.engine.handle_command(pair.now, Command::ResetIpsecSa { remote, policy });
    pair.drive_for(Duration::from_secs(1));
    assert!(pair.a.events.iter().any(|e| matches!(
        e,
        Event::IpsecSaExpired { inbound_spi, reason: IpsecSaEnd::Reset, .. } if *inbound_spi == first
    )));
    assert!(pair
        .b
        .events
        .iter()
        .any(|e| matches!(e, Event::IpsecSaDeleted { spis, .. } if spis == &[first])));
    assert_eq!(pair.a.engine.ipsec_sas(pair.now).count(), 0);
    assert_eq!(pair.b.engine.ipsec_sas(pair.now).count(), 0, "the Delete emptied B's table");
    assert_eq!(pair.a.engine.ike_sas().count(), 1, "phase 1 stays");

    // Traffic asks again: a new quick mode under the same IKE SA.
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, |p| installed(&p.a).len() == 2 && installed(&p.b).len() == 2));
    assert_eq!(count(&pair.a, |e| matches!(e, Event::IkeSaEstablished { .. })), 1);
    assert_crosswise(installed(&pair.a)[1], installed(&pair.b)[1]);
    assert!(failures(&pair.a).is_empty() && failures(&pair.b).is_empty());
}

#[test]
fn reset_ike_sa_deletes_everything_and_next_acquire_renegotiates() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 26);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let connection = pair.a.engine.ike_sas().next().expect("an IKE SA").connection;

    pair.a.engine.handle_command(pair.now, Command::ResetIkeSa { connection: Some(ConnectionId(9999)) });
    assert_eq!(pair.a.engine.ike_sas().count(), 1, "no such connection: nothing happens");

    pair.a.engine.handle_command(pair.now, Command::ResetIkeSa { connection: Some(connection) });
    pair.drive_for(Duration::from_secs(1));
    assert!(pair
        .a
        .events
        .iter()
        .any(|e| matches!(e, Event::IpsecSaExpired { reason: IpsecSaEnd::Reset, .. })));
    assert!(pair.a.events.iter().any(|e| matches!(e, Event::IkeSaExpired { reason: IkeSaEnd::Reset, .. })));
    assert!(pair.b.events.iter().any(|e| matches!(e, Event::IpsecSaDeleted { .. })));
    assert!(pair.b.events.iter().any(|e| matches!(e, Event::IkeSaDeleted { .. })));
    for side in [&pair.a, &pair.b] {
        assert_eq!(side.engine.ike_sas().count(), 0);
        assert_eq!(side.engine.ipsec_sas(pair.now).count(), 0);
    }

    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(200, |p| installed(&p.a).len() == 2 && installed(&p.b).len() == 2));
    assert_eq!(count(&pair.a, |e| matches!(e, Event::IkeSaEstablished { .. })), 2, "a new main mode");
    assert_crosswise(installed(&pair.a)[1], installed(&pair.b)[1]);

    // Resetting everything on B, the responder, works the same way.
    pair.b.engine.handle_command(pair.now, Command::ResetIkeSa { connection: None });
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(pair.a.engine.ike_sas().count(), 0);
    assert_eq!(pair.a.engine.ipsec_sas(pair.now).count(), 0);
}

/// The threshold the installed pair advertises (what the data plane uses for its soft-limit
/// notice) is exactly where the engine rekeys: one byte less does nothing, that count does.
#[test]
fn ipsec_sa_traffic_soft_threshold_is_where_the_engine_rekeys() {
    let a = Gateway { lifetime_kilobytes: Some(1000), ..Gateway::fw_a() };
    let b = Gateway { lifetime_kilobytes: Some(1000), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 28);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let first = installed(&pair.a)[0];
    let (old, soft) = (first.outbound.spi().0, first.traffic_soft_bytes().expect("a traffic lifetime"));
    assert_eq!(soft, 1000 * 1024 / 100 * 90, "the initiator rekeys at 90 %");
    assert_eq!(
        installed(&pair.b)[0].traffic_soft_bytes(),
        Some(1000 * 1024 / 100 * 95),
        "the responder at 95 %"
    );

    let now = pair.now;
    pair.a.engine.handle_sa_usage(now, &[(old, SaUsage { bytes: soft - 1, packets: 10 })]);
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(installed(&pair.a).len(), 1, "one byte below the threshold");
    let now = pair.now;
    pair.a.engine.handle_sa_usage(now, &[(old, SaUsage { bytes: soft, packets: 11 })]);
    assert!(pair.drive_until(100, |p| installed(&p.a).len() == 2), "rekeyed at the threshold");
}

#[test]
fn ipsec_sa_traffic_lifetime_rekeys_then_expires() {
    let a = Gateway { lifetime_kilobytes: Some(1000), ..Gateway::fw_a() };
    let b = Gateway { lifetime_kilobytes: Some(1000), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 27);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let old = installed(&pair.a)[0].outbound.spi().0;
    let old_inbound = installed(&pair.a)[0].inbound.spi().0;

    let now = pair.now;
    pair.a.engine.handle_sa_usage(now, &[(old, SaUsage { bytes: 800 * 1024, packets: 1000 })]);
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(installed(&pair.a).len(), 1, "below the soft limit");

    let now = pair.now;
    pair.a.engine.handle_sa_usage(now, &[(old, SaUsage { bytes: 950 * 1024, packets: 1200 })]);
    assert!(pair.drive_until(100, |p| installed(&p.a).len() == 2 && installed(&p.b).len() == 2));
    assert_crosswise(installed(&pair.a)[1], installed(&pair.b)[1]);
    assert_eq!(pair.a.engine.ipsec_sas(pair.now).count(), 2, "the old pair stays until it is used up");

    let now = pair.now;
    pair.a.engine.handle_sa_usage(now, &[(old, SaUsage { bytes: 1000 * 1024, packets: 1300 })]);
    pair.drive_for(Duration::from_secs(1));
    assert!(pair.a.events.iter().any(|e| matches!(
        e,
        Event::IpsecSaExpired { inbound_spi, reason: IpsecSaEnd::Traffic, .. } if *inbound_spi == old_inbound
    )));
    assert!(pair
        .b
        .events
        .iter()
        .any(|e| matches!(e, Event::IpsecSaDeleted { spis, .. } if spis == &[old_inbound])));
    assert_eq!(pair.a.engine.ipsec_sas(pair.now).count(), 1);
    assert_eq!(pair.b.engine.ipsec_sas(pair.now).count(), 1);
    assert_eq!(count(&pair.a, |e| matches!(e, Event::IkeSaEstablished { .. })), 1);
}

#[test]
fn ipsec_sa_sequence_number_exhaustion_rekeys_then_expires() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 28);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let old = installed(&pair.a)[0].outbound.spi().0;
    let old_inbound = installed(&pair.a)[0].inbound.spi().0;

    // Inbound packet counts say nothing about our sequence numbers.
    let now = pair.now;
    pair.a.engine.handle_sa_usage(now, &[(old_inbound, SaUsage { bytes: 0, packets: SEQUENCE_HARD_LIMIT })]);
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(installed(&pair.a).len(), 1);

    let now = pair.now;
    pair.a.engine.handle_sa_usage(now, &[(old, SaUsage { bytes: 0, packets: SEQUENCE_SOFT_LIMIT })]);
    assert!(pair.drive_until(100, |p| installed(&p.a).len() == 2 && installed(&p.b).len() == 2));
    let now = pair.now;
    pair.a.engine.handle_sa_usage(now, &[(old, SaUsage { bytes: 0, packets: SEQUENCE_HARD_LIMIT })]);
    pair.drive_for(Duration::from_secs(1));
    assert!(pair
        .a
        .events
        .iter()
        .any(|e| matches!(e, Event::IpsecSaExpired { reason: IpsecSaEnd::SequenceNumbers, .. })));
    assert_eq!(pair.b.engine.ipsec_sas(pair.now).count(), 1);

    // A report for an SPI nobody knows is ignored.
    pair.a.engine.handle_sa_usage(pair.now, &[(0xdead_beef, SaUsage { bytes: u64::MAX, packets: u64::MAX })]);
    assert_eq!(pair.a.engine.ipsec_sas(pair.now).count(), 1);
}

#[test]
fn error_history_records_failures_and_stays_bounded() {
    let mut a = Gateway::fw_a();
    a.ike = vec![super::util::ike(
        crypto::Phase1Cipher::Aes128,
        crypto::HashAlgorithm::Sha1,
        crypto::DhGroup::Modp1024,
    )];
    let b = Gateway::fw_b();
    let mut pair = Pair::new(&a, &b, 29);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(10));
    let on_b: Vec<_> = pair.b.engine.error_history().collect();
    // B keeps no state for a refused MM1 and refuses each of A's: A retransmits MM1 until
    // the unauthenticated NO-PROPOSAL-CHOSEN came back three times (`sa::unauthenticated`).
    assert_eq!(on_b.len(), crate::sa::unauthenticated::REPEATS_TO_FAIL as usize);
    assert_eq!(on_b[0].peer.as_deref(), Some("peer"));
    assert_eq!(on_b[0].remote.ip(), IpAddr::V4(a.local));
    assert_eq!(on_b[0].exchange, Exchange::MainMode);
    assert_eq!(on_b[0].state, "waiting for MM1");
    assert!(matches!(on_b[0].reason, FailureReason::Proposal(ProposalFailure::Phase1(_))));
    let on_a: Vec<_> = pair.a.engine.error_history().collect();
    assert!(matches!(on_a[0].reason, FailureReason::PeerNotified(isakmp::NotifyType::NoProposalChosen)));
    assert_eq!(on_a[0].state, "waiting for MM2");

    // A flood of first messages from unknown addresses: only the last ones are kept.
    for i in 0..100u8 {
        let mut stranger = Engine::new(Gateway::fw_a().config(), Box::new(TestRng(7000 + u64::from(i))));
        stranger.handle_acquire(pair.now, Acquire { policy: 0, selector: a.selector() });
        let mm1 = stranger.poll_transmit().expect("MM1");
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)), 500);
        pair.b.engine.handle_datagram(pair.now, pair.b.address, from, &mm1.payload);
    }
    let history: Vec<_> = pair.b.engine.error_history().collect();
    assert_eq!(history.len(), ERROR_HISTORY_LEN);
    assert!(
        history.iter().all(|r| matches!(r.reason, FailureReason::Policy(PolicyFailure::UnknownPeer))),
        "the oldest went first"
    );
    assert_eq!(history[ERROR_HISTORY_LEN - 1].remote.ip(), IpAddr::V4(Ipv4Addr::new(198, 51, 100, 99)));
}

#[test]
fn ipsec_rekey_falls_back_to_the_responder_when_the_initiator_fails() {
    let a = Gateway {
        lifetime: Duration::from_secs(30),
        limits: crate::Limits { retransmit_count: 0, ..Gateway::fw_a().limits },
        ..Gateway::fw_a()
    };
    let b = Gateway { lifetime: Duration::from_secs(30), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 30);
    let start = pair.now;
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let (mut plane_a, mut plane_b) = (DataPlane::default(), DataPlane::default());
    // Everything is lost from the step in which A rekeys (its next timer is then the soft
    // lifetime, between 25.5 s and 27 s) until A gives up; B, the responder, rekeys between
    // 28.5 s and 29.1 s, before the old pair expires at 30 s.
    let mut phase = 0;
    while pair.next_event().is_some_and(|t| t <= start + Duration::from_secs(40)) {
        if phase == 0 && pair.a.engine.poll_timeout().is_some_and(|t| t >= start + Duration::from_secs(25)) {
            pair.faults.loss = 100;
            phase = 1;
        }
        if phase == 1 && !failures(&pair.a).is_empty() {
            pair.faults.loss = 0;
            phase = 2;
        }
        assert!(pair.step());
        plane_a.update(&pair.a, pair.now);
        plane_b.update(&pair.b, pair.now);
        assert!(plane_a.can_send_to(&plane_b, pair.now), "gap on A at {:?}", pair.now - start);
        assert!(plane_b.can_send_to(&plane_a, pair.now), "gap on B at {:?}", pair.now - start);
    }
    assert_eq!(phase, 2);
    let failed = failures(&pair.a);
    assert!(
        matches!(failed.as_slice(), [f] if f.exchange == Exchange::QuickMode && f.state == "waiting for QM2"),
        "{failed:?}"
    );
    let (on_a, on_b) = (installed(&pair.a), installed(&pair.b));
    assert_eq!((on_a.len(), on_b.len()), (2, 2));
    assert!(on_b[1].initiator && !on_a[1].initiator, "B initiated the rekey");
    assert_crosswise(on_a[1], on_b[1]);
    assert_eq!(pair.a.engine.ipsec_sas(pair.now).count(), 1, "the old pair expired");
    assert_eq!(pair.b.engine.ipsec_sas(pair.now).count(), 1);
}

#[test]
fn ike_sa_renewal_is_retried_after_a_failed_main_mode() {
    let limits = crate::Limits {
        retransmit_count: 0,
        exchange_timeout: Duration::from_secs(10),
        ..Gateway::fw_a().limits
    };
    let a = Gateway { limits, ..with_ike_lifetime(Gateway::fw_a(), Duration::from_secs(200)) };
    let b = Gateway { limits, ..with_ike_lifetime(Gateway::fw_b(), Duration::from_secs(200)) };
    let mut pair = Pair::new(&a, &b, 31);
    let start = pair.now;
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    // A renews between 170 s and 180 s: everything is lost from that step until A gives up.
    let mut phase = 0;
    while pair.next_event().is_some_and(|t| t <= start + Duration::from_secs(230)) {
        if phase == 0 && pair.a.engine.poll_timeout().is_some_and(|t| t >= start + Duration::from_secs(160)) {
            pair.faults.loss = 100;
            phase = 1;
        }
        if phase == 1 && !failures(&pair.a).is_empty() {
            pair.faults.loss = 0;
            phase = 2;
        }
        assert!(pair.step());
    }
    assert_eq!(phase, 2);
    assert!(matches!(failures(&pair.a).as_slice(), [f] if f.exchange == Exchange::MainMode));
    // The retry, one exchange timeout later, made a new IKE SA that took over the IPsec SA;
    // the old IKE SA was deleted at 200 s and the IPsec SA lived on.
    assert_eq!(count(&pair.a, |e| matches!(e, Event::IkeSaEstablished { .. })), 2);
    assert_eq!(count(&pair.b, |e| matches!(e, Event::IkeSaEstablished { .. })), 2);
    let ended = |side: &Side| {
        count(side, |e| {
            matches!(e, Event::IkeSaExpired { reason: IkeSaEnd::Lifetime, .. } | Event::IkeSaDeleted { .. })
        })
    };
    assert_eq!((ended(&pair.a), ended(&pair.b)), (1, 1));
    assert_eq!(pair.a.engine.ike_sas().count(), 1);
    assert_eq!(pair.b.engine.ike_sas().count(), 1);
    let (views_a, views_b): (Vec<_>, Vec<_>) =
        (pair.a.engine.ipsec_sas(pair.now).collect(), pair.b.engine.ipsec_sas(pair.now).collect());
    assert_eq!((views_a.len(), views_b.len()), (1, 1));
    assert_eq!(views_a[0].inbound_spi, installed(&pair.a)[0].inbound.spi().0, "the first pair lives on");
    assert_eq!(Some(views_a[0].connection), pair.a.engine.ike_sas().next().map(|v| v.connection));
}

#[test]
fn ike_sa_expiry_without_successor_takes_its_ipsec_sas_along() {
    let a = with_ike_lifetime(Gateway::fw_a(), Duration::from_secs(200));
    let b = with_ike_lifetime(Gateway::fw_b(), Duration::from_secs(200));
    let mut pair = Pair::new(&a, &b, 32);
    let start = pair.now;
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    pair.b_alive = false;
    while pair.next_event().is_some_and(|t| t <= start + Duration::from_secs(205)) {
        assert!(pair.step());
    }
    assert!(pair
        .a
        .events
        .iter()
        .any(|e| matches!(e, Event::IkeSaExpired { reason: IkeSaEnd::Lifetime, .. })));
    assert!(pair
        .a
        .events
        .iter()
        .any(|e| matches!(e, Event::IpsecSaExpired { reason: IpsecSaEnd::IkeSaGone, .. })));
    // Only the renewal, still trying to reach the vanished peer, is left.
    assert!(pair.a.engine.ike_sas().all(|v| v.state != "established"));
    assert_eq!(pair.a.engine.ipsec_sas(pair.now).count(), 0);
    // A sent the Deletes (informational exchanges), one for ESP, one for ISAKMP.
    let informational = |bytes: &&Vec<u8>| bytes.get(18) == Some(&5);
    assert_eq!(pair.a.sent.iter().filter(informational).count(), 2);
}

#[test]
fn quick_mode_initiator_drops_a_late_reply_to_a_rekey_it_gave_up() {
    let a = Gateway {
        lifetime: Duration::from_secs(30),
        limits: crate::Limits { retransmit_count: 0, ..Gateway::fw_a().limits },
        ..Gateway::fw_a()
    };
    let b = Gateway { lifetime: Duration::from_secs(30), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 33);
    let start = pair.now;
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let (mut plane_a, mut plane_b) = (DataPlane::default(), DataPlane::default());
    // A's rekey QM1 (already on the wire) reaches B, B's QM2 is lost until A has given up;
    // B's retransmissions of QM2 then arrive late. B's fallback rekey must still go through.
    let mut phase = 0;
    while pair.next_event().is_some_and(|t| t <= start + Duration::from_secs(40)) {
        let a_rekeying = pair.a.engine.ike_sas().any(|v| v.quick_modes_in_progress > 0);
        if phase == 0 && a_rekeying {
            pair.faults.loss = 100;
            phase = 1;
        }
        if phase == 1 && !failures(&pair.a).is_empty() {
            pair.faults.loss = 0;
            phase = 2;
        }
        assert!(pair.step());
        plane_a.update(&pair.a, pair.now);
        plane_b.update(&pair.b, pair.now);
        assert!(plane_a.can_send_to(&plane_b, pair.now), "gap on A at {:?}", pair.now - start);
        assert!(plane_b.can_send_to(&plane_a, pair.now), "gap on B at {:?}", pair.now - start);
    }
    assert_eq!(phase, 2);
    let failed = failures(&pair.a);
    assert!(
        matches!(failed.as_slice(), [f] if matches!(f.reason, FailureReason::Timeout(TimeoutFailure::NoAnswer { .. }))),
        "only A's own timeout, no error for the late QM2: {failed:?}"
    );
    let (on_a, on_b) = (installed(&pair.a), installed(&pair.b));
    assert_eq!((on_a.len(), on_b.len()), (2, 2));
    assert!(on_b[1].initiator, "B's fallback rekey made the new pair");
    assert_crosswise(on_a[1], on_b[1]);
}

/// Rewrites every life duration in the SA payload of a cleartext main-mode message to 0.
fn zero_phase1_lifetimes(t: &mut crate::Transmit) {
    use isakmp::attribute::{AttributeValue, IkeAttributeType};
    use isakmp::{Body, ExchangeType, Message, Payload};
    let Ok(mut message) = Message::parse(&t.payload) else { return };
    if message.header.exchange_type != ExchangeType::IdentityProtection {
        return;
    }
    let Body::Cleartext { payloads, .. } = &mut message.body else { return };
    for payload in payloads.iter_mut() {
        let Payload::SecurityAssociation(sa) = payload else { continue };
        for transform in sa.proposals.iter_mut().flat_map(|p| p.transforms.iter_mut()) {
            for attribute in &mut transform.attributes {
                if attribute.attribute_type == u16::from(IkeAttributeType::LifeDuration) {
                    attribute.value = AttributeValue::Basic(0);
                }
            }
        }
    }
    t.payload = message.to_vec();
}

#[test]
fn ike_sa_survives_a_peer_proposing_a_lifetime_of_zero() {
    let a = with_ike_lifetime(Gateway::fw_a(), Duration::from_secs(3600));
    let b = with_ike_lifetime(Gateway::fw_b(), Duration::from_secs(3600));
    let mut pair = Pair::new(&a, &b, 77);
    // B's MM2 answers with life duration 0 ("no limit proposed"). Only the responder's SA
    // payload is rewritten: the hashes cover the initiator's.
    pair.alter = Some(Box::new(|to_b, t| {
        if !to_b {
            zero_phase1_lifetimes(t);
        }
        true
    }));
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "a: {:?}\nb: {:?}", pair.a.events, pair.b.events);
    let established = pair.now;
    pair.advance(Duration::from_secs(10));
    let sas: Vec<_> = pair.a.engine.ike_sas().collect();
    assert_eq!(sas.len(), 1, "A's IKE SA is still there: {sas:?}");
    assert_eq!(sas[0].suite.map(|s| s.lifetime), Some(Duration::from_secs(3600)), "A's own lifetime applies");
    assert!(sas[0].expires_at.is_some_and(|at| at >= established + Duration::from_secs(3000)), "{sas:?}");
    assert_eq!(installed(&pair.a).len(), 1);
    assert!(
        !pair.a.events.iter().chain(&pair.b.events).any(|e| matches!(
            e,
            Event::IpsecSaDeleted { .. } | Event::IkeSaDeleted { .. } | Event::IkeSaExpired { .. }
        )),
        "no SA was deleted: {:?}",
        pair.a.events
    );
}
