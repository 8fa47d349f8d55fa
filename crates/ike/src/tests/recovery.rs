//! Recovery after a restart (issue 13): a peer that keeps using SAs we lost gets INVALID-SPI /
//! INVALID-COOKIE answers, bounded, and a new IKE SA with INITIAL-CONTACT when we may initiate
//! to it (`engine::recovery`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use isakmp::{Body, Cookie, ExchangeType, Message, NotifyType, Payload};

use super::util::{cleared, installed, tunnel_up, Gateway, Pair, TestRng, FW_A};
use crate::{ClearReason, ConnectionId, Engine, Event, Transmit};

/// The tunnel is up (A initiated); then B restarts: a fresh engine with no SA, as after
/// kill -9 and a start with the same configuration. Returns the pair and A's old SA and the
/// SPI A still sends on.
fn restarted_b(seed: u64) -> (Pair, ConnectionId, u32) {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, seed);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let on_a = installed(&pair.a)[0];
    let (old, stale_spi) = (on_a.connection, on_a.outbound.spi().0);
    pair.b.engine = Engine::new(b.config(), Box::new(TestRng(seed + 1000)));
    pair.b.events.clear();
    (pair, old, stale_spi)
}

#[test]
fn recovery_esp_on_an_unknown_spi_from_a_peer_brings_the_tunnel_back_with_initial_contact() {
    let (mut pair, old, stale_spi) = restarted_b(41);
    let installed_before = installed(&pair.a).len();
    // A's traffic keeps arriving on the old SPI; B's data plane reports it.
    let from_a = SocketAddr::new(IpAddr::V4(FW_A), 4500);
    pair.b.engine.handle_unknown_spi(pair.now, from_a, stale_spi);
    let back = |p: &Pair| installed(&p.a).len() > installed_before && !installed(&p.b).is_empty();
    assert!(pair.drive_until(200, back), "b: {:?}", pair.b.events);
    // B initiated (it had no SA), its MM5 carried INITIAL-CONTACT, and A dropped the SAs B lost.
    let new = installed(&pair.a)[installed_before].connection;
    assert_eq!(cleared(&pair.a.events), [(old, ClearReason::InitialContact { replaced_by: new })]);
    assert!(pair.b.engine.ike_sas().all(|sa| sa.initiator));
    let stats = pair.b.engine.statistics();
    assert_eq!((stats.unknown_spi_reported, stats.recoveries_started), (1, 1));
}

#[test]
fn recovery_reports_of_unknown_spis_are_bounded_per_peer_and_for_everyone() {
    let (mut pair, _, stale_spi) = restarted_b(42);
    let now = pair.now;
    let from_a = SocketAddr::new(IpAddr::V4(FW_A), 4500);
    // A flood within one second: from the peer's own address and from 10,000 others.
    for i in 0..10_000u32 {
        pair.b.engine.handle_unknown_spi(now, from_a, stale_spi.wrapping_add(i));
        let spoofed = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 4500);
        pair.b.engine.handle_unknown_spi(now, spoofed, i);
    }
    let mut sent: Vec<Transmit> = std::iter::from_fn(|| pair.b.engine.poll_transmit()).collect();
    // One new IKE SA, one MM1, to the configured peer only; nothing to the spoofed sources.
    assert_eq!(pair.b.engine.ike_sas().count(), 1);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let mm1 = sent.pop().unwrap();
    assert_eq!(mm1.remote, SocketAddr::new(IpAddr::V4(FW_A), 500));
    let stats = pair.b.engine.statistics();
    assert_eq!(stats.unknown_spi_reported, 20_000);
    assert_eq!(stats.recoveries_started, 1);
    assert_eq!(stats.answers_rate_limited, 9_999, "the peer's repeats; the others are no peer of ours");
}

#[test]
fn recovery_with_an_established_ike_sa_answers_invalid_spi_under_it() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 43);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let sent_before = pair.b.sent.len();
    let from_a = SocketAddr::new(IpAddr::V4(FW_A), 4500);
    pair.b.engine.handle_unknown_spi(pair.now, from_a, 0x1234_5678);
    pair.b.engine.handle_unknown_spi(pair.now + Duration::from_millis(100), from_a, 0x1234_5678);
    pair.advance(Duration::from_secs(1));
    // One protected informational (rate-limited: the second report within a second is not
    // answered), no new IKE SA, and A's tunnel is untouched.
    let informationals = pair.b.sent[sent_before..]
        .iter()
        .filter(|m| Message::parse(m).is_ok_and(|m| m.header.exchange_type == ExchangeType::Informational))
        .filter(|m| Message::parse(m).is_ok_and(|m| m.encrypted_body().is_some()))
        .count();
    assert_eq!(informationals, 1);
    let stats = pair.b.engine.statistics();
    assert_eq!((stats.invalid_spi_sent, stats.recoveries_started, stats.answers_rate_limited), (1, 0, 1));
    assert_eq!(pair.b.engine.ike_sas().count(), 1);
    assert!(pair.a.events.iter().all(|e| !matches!(e, Event::Failed(_) | Event::SasCleared { .. })));
}

/// A message of `exchange` for cookies nobody knows, `len` bytes long (at least 40).
fn stray_quick_mode(cookie: u8, exchange: ExchangeType, len: usize) -> Vec<u8> {
    let header = crate::wire::header(Cookie([cookie; 8]), Cookie([cookie ^ 0xff; 8]), exchange, 7);
    let mut bytes = crate::wire::cleartext(header, vec![Payload::Nonce(&[0x55; 8])]);
    bytes.resize(len.max(bytes.len()), 0);
    let length = u32::try_from(bytes.len()).unwrap().to_be_bytes();
    bytes[24..28].copy_from_slice(&length);
    bytes
}

#[test]
fn recovery_ike_for_unknown_cookies_gets_a_bounded_invalid_cookie() {
    let b = Gateway::fw_b();
    let mut engine = Engine::new(b.config(), Box::new(TestRng(44)));
    let now = super::util::epoch();
    let local = SocketAddr::new(IpAddr::V4(b.local), 500);
    let stranger = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), 500);
    let message = stray_quick_mode(1, ExchangeType::QuickMode, 120);
    engine.handle_datagram(now, local, stranger, &message);
    let reply = engine.poll_transmit().expect("an INVALID-COOKIE");
    assert_eq!((reply.local, reply.remote), (local, stranger));
    assert!(reply.payload.len() <= message.len(), "no amplification");
    let parsed = Message::parse(&reply.payload).unwrap();
    assert_eq!(parsed.header.exchange_type, ExchangeType::Informational);
    assert_eq!(
        (parsed.header.initiator_cookie, parsed.header.responder_cookie),
        (Cookie([1; 8]), Cookie([0xfe; 8]))
    );
    let Body::Cleartext { payloads, .. } = &parsed.body else { panic!("in clear") };
    assert!(matches!(&payloads[0], Payload::Notification(n) if n.notify_type == NotifyType::InvalidCookie
        && n.spi == [[1u8; 8], [0xfe; 8]].concat()));
    // Again within the second: no answer. Informationals are never answered (no notify
    // ping-pong between two gateways), nor anything shorter than the answer.
    engine.handle_datagram(now, local, stranger, &message);
    let other = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)), 500);
    engine.handle_datagram(now, local, other, &stray_quick_mode(2, ExchangeType::Informational, 120));
    engine.handle_datagram(now, local, other, &stray_quick_mode(3, ExchangeType::QuickMode, 40));
    // Nor a phase-1 message of an exchange we dropped: the initiator takes no notify in clear
    // then, and ours would hide its real reason (e.g. our MM5 answer to a wrong key).
    engine.handle_datagram(now, local, other, &stray_quick_mode(4, ExchangeType::IdentityProtection, 120));
    assert!(engine.poll_transmit().is_none());
    // A spray from 10,000 addresses gets at most 20 answers a second.
    for i in 0..10_000u32 {
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0xc633_0000 + i)), 500);
        engine.handle_datagram(now + Duration::from_secs(1), local, from, &message);
    }
    assert_eq!(std::iter::from_fn(|| engine.poll_transmit()).count(), 20);
    let stats = engine.statistics();
    assert_eq!(stats.invalid_cookie_sent, 21);
    assert_eq!(stats.answers_rate_limited, 1 + 9_980);
    assert_eq!(engine.ike_sas().count(), 0, "no state for strangers");
}

#[test]
fn recovery_ike_for_unknown_cookies_from_a_peer_starts_a_new_ike_sa() {
    let (mut pair, old, _) = restarted_b(45);
    // A's DPD or a rekey on the IKE SA B lost: IKE for cookies B does not know.
    let mut message = stray_quick_mode(9, ExchangeType::Informational, 100);
    message[19] |= 1; // encrypted, as every informational on an established SA is
    let (to_b, from_a) = (pair.b.address, SocketAddr::new(IpAddr::V4(FW_A), 500));
    pair.b.engine.handle_datagram(pair.now, to_b, from_a, &message);
    let installed_before = installed(&pair.a).len();
    let back = |p: &Pair| installed(&p.a).len() > installed_before && !installed(&p.b).is_empty();
    assert!(pair.drive_until(200, back), "b: {:?}", pair.b.events);
    let new = installed(&pair.a)[installed_before].connection;
    assert_eq!(cleared(&pair.a.events), [(old, ClearReason::InitialContact { replaced_by: new })]);
}

#[test]
fn recovery_esp_on_the_spi_of_a_quick_mode_in_flight_gets_no_invalid_spi() {
    // A installs its pair when it sends QM3 and sends at once; that ESP may reach B before
    // QM3 does (here QM3 is lost). B must not call the SPI invalid: it is about to be.
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 46);
    let mut quick_modes_to_b = 0;
    pair.alter = Some(Box::new(move |to_b, t| {
        let quick =
            Message::parse(&t.payload).is_ok_and(|m| m.header.exchange_type == ExchangeType::QuickMode);
        if to_b && quick {
            quick_modes_to_b += 1;
            return quick_modes_to_b != 2; // QM3
        }
        true
    }));
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, |p| !installed(&p.a).is_empty()));
    let spi = installed(&pair.a)[0].outbound.spi().0;
    let sent_before = pair.b.sent.len();
    pair.b.engine.handle_unknown_spi(pair.now, SocketAddr::new(IpAddr::V4(FW_A), 4500), spi);
    pair.b.engine.handle_timeout(pair.now);
    assert!(pair.b.engine.poll_transmit().is_none());
    assert_eq!(pair.b.sent.len(), sent_before);
    let stats = pair.b.engine.statistics();
    assert_eq!((stats.invalid_spi_sent, stats.recoveries_started, stats.answers_rate_limited), (0, 0, 0));
}
