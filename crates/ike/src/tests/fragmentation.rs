//! IKE fragmentation (Cisco/Microsoft format, payload 132): large phase-1 messages go out in
//! fragments when both sides announced it and come back together in any order, with
//! duplicates; and reassembly stays bounded against an oversize or endless fragment stream.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use isakmp::{Fragment, Message, Payload};

use super::certs::gateways;
use super::test_pki::{Ca, KeyKind};
use super::tunnel_up;
use super::util::{failures, Faults, Gateway, Pair};
use crate::{ExchangeMode, Limits, Transmit};
use isakmp::fragmentation::{split, FragmentLimits, Reassembled, Reassembly};

fn fragment_of(datagram: &[u8]) -> Option<(u16, u8, bool, usize)> {
    let message = Message::parse(datagram).ok()?;
    message.payloads().iter().find_map(|p| match p {
        Payload::Fragment(f) => Some((f.id, f.number, f.is_last(), f.data.len())),
        _ => None,
    })
}

/// Certificate gateways whose phase-1 messages with a certificate exceed `size`.
fn small_fragments(mode: ExchangeMode, size: usize) -> (Gateway, Gateway) {
    let ca = Ca::new("keysteward CA", KeyKind::P256);
    let (mut a, mut b, _, _) = gateways(&ca, KeyKind::Rsa2048, mode);
    for gw in [&mut a, &mut b] {
        gw.limits = Limits { fragment_size: size, ..gw.limits };
    }
    (a, b)
}

#[test]
fn fragmentation_large_messages_go_in_fragments_both_ways_in_both_modes() {
    for mode in [ExchangeMode::Main, ExchangeMode::Aggressive] {
        let (a, b) = small_fragments(mode, 400);
        let mut pair = Pair::new(&a, &b, 11);
        pair.acquire_on_a(a.selector());
        assert!(
            pair.drive_until(10_000, tunnel_up),
            "{mode:?}: a {:?} b {:?}",
            failures(&pair.a),
            failures(&pair.b)
        );
        for (side, sent) in [("A", &pair.a.sent), ("B", &pair.b.sent)] {
            let fragments: Vec<_> = sent.iter().filter_map(|d| fragment_of(d)).collect();
            assert!(
                fragments.len() >= 3,
                "{mode:?}: {side} fragmented its certificate message: {fragments:?}"
            );
            assert!(sent.iter().all(|d| d.len() <= 400 || fragment_of(d).is_none()));
            assert!(fragments.iter().any(|f| f.2), "a last fragment");
        }
        // The initiator's first message goes before the peer's VID is known: never fragmented.
        assert!(fragment_of(&pair.a.sent[0]).is_none());
    }
}

#[test]
fn fragmentation_survives_duplicates_and_reordering() {
    let (a, b) = small_fragments(ExchangeMode::Main, 300);
    let mut pair = Pair::new(&a, &b, 5);
    pair.faults = Faults { loss: 0, duplicate: 30, jitter: Duration::from_millis(40) };
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(20_000, tunnel_up), "a {:?} b {:?}", failures(&pair.a), failures(&pair.b));
}

#[test]
fn fragmentation_is_not_used_when_the_peer_did_not_announce_it() {
    let (a, mut b) = small_fragments(ExchangeMode::Main, 400);
    b.limits = Limits { fragmentation: false, ..b.limits };
    let mut pair = Pair::new(&a, &b, 11);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(10_000, tunnel_up));
    assert!(pair.a.sent.iter().chain(&pair.b.sent).all(|d| fragment_of(d).is_none()));
}

#[test]
fn fragmentation_reassembly_in_any_order_with_duplicates() {
    let limits = Limits::default().fragments();
    let now = crate::tests::util::epoch();
    let cookies = (isakmp::Cookie([1; 8]), isakmp::Cookie([2; 8]));
    let frag =
        |number, last: bool, data: &'static [u8]| Fragment { id: 7, number, flags: u8::from(last), data };
    let mut r = Reassembly::default();
    assert_eq!(r.add(&frag(3, true, b"ef"), cookies, now, &limits), Reassembled::Pending);
    assert_eq!(r.add(&frag(1, false, b"ab"), cookies, now, &limits), Reassembled::Pending);
    assert_eq!(
        r.add(&frag(1, false, b"XX"), cookies, now, &limits),
        Reassembled::Pending,
        "duplicate ignored"
    );
    assert_eq!(
        r.add(&frag(2, false, b"cd"), cookies, now, &limits),
        Reassembled::Complete(b"abcdef".to_vec())
    );
    assert_eq!(r.buffered(), 0);
    // Inconsistent streams are discarded, with the reason.
    assert_eq!(r.add(&frag(2, true, b"x"), cookies, now, &limits), Reassembled::Pending);
    assert_eq!(
        r.add(&frag(3, false, b"x"), cookies, now, &limits),
        Reassembled::Discarded("fragment numbered after the last one")
    );
    assert_eq!(
        r.add(&frag(0, false, b"x"), cookies, now, &limits),
        Reassembled::Discarded("fragment number 0")
    );
    // A partial message times out.
    assert_eq!(r.add(&frag(1, false, b"abc"), cookies, now, &limits), Reassembled::Pending);
    assert_eq!(r.buffered(), 3);
    assert!(r.expire(now + limits.fragment_timeout));
    assert_eq!(r.buffered(), 0);
    // Splitting and reassembling give back the message.
    let message = {
        let header = crate::wire::header(cookies.0, cookies.1, isakmp::ExchangeType::IdentityProtection, 0);
        crate::wire::cleartext(header, vec![Payload::VendorId(&[0x42; 3000])])
    };
    let pieces = split(&message, 9, &FragmentLimits { fragment_size: 500, ..limits }).expect("fragments");
    assert_eq!(pieces.len(), 7);
    let mut r = Reassembly::default();
    let mut outcome = Reassembled::Pending;
    for piece in pieces.iter().rev() {
        let parsed = Message::parse(piece).unwrap();
        let fragment = isakmp::fragmentation::fragment_of(&parsed).unwrap();
        outcome = r.add(fragment, cookies, now, &limits);
    }
    assert_eq!(outcome, Reassembled::Complete(message.clone()));
    // Too many pieces for the limit: sent whole rather than cut beyond what a peer accepts.
    assert!(split(&message, 9, &FragmentLimits { fragment_size: 100, max_fragments: 16, ..limits }).is_none());
}

/// A pair held with B waiting for MM5 (A's MM5 fragments captured, not delivered), and the
/// cookies of the SA.
fn held_before_mm5() -> (Pair, Rc<RefCell<Vec<Transmit>>>, (isakmp::Cookie, isakmp::Cookie)) {
    let (a, b) = small_fragments(ExchangeMode::Main, 400);
    let mut pair = Pair::new(&a, &b, 3);
    let held = Rc::new(RefCell::new(Vec::new()));
    let sink = held.clone();
    pair.alter = Some(Box::new(move |to_b, t: &mut Transmit| {
        if to_b && fragment_of(&t.payload).is_some() {
            sink.borrow_mut().push(t.clone());
            return false;
        }
        true
    }));
    pair.acquire_on_a(a.selector());
    pair.drive_until(1_000, |_| !held.borrow().is_empty());
    assert!(!held.borrow().is_empty(), "A fragmented MM5");
    let header = Message::parse(&held.borrow()[0].payload).unwrap().header;
    pair.alter = None;
    (pair, held, (header.initiator_cookie, header.responder_cookie))
}

fn forged(
    cookies: (isakmp::Cookie, isakmp::Cookie),
    id: u16,
    number: u8,
    last: bool,
    data: &[u8],
) -> Vec<u8> {
    let header = crate::wire::header(cookies.0, cookies.1, isakmp::ExchangeType::IdentityProtection, 0);
    crate::wire::cleartext(
        header,
        vec![Payload::Fragment(Fragment { id, number, flags: u8::from(last), data })],
    )
}

fn buffered(pair: &Pair) -> usize {
    pair.b.engine.slots.iter().flatten().map(|sa| sa.reassembly.buffered()).max().unwrap_or(0)
}

#[test]
fn fragmentation_endless_and_oversize_streams_stay_bounded_and_the_real_message_still_works() {
    let (mut pair, held, cookies) = held_before_mm5();
    let limits = Limits::default();
    let (to, from) = (pair.b.address, pair.a.address);
    let now = pair.now;
    let data = vec![0xEE; 1000];
    // Endless: one ID, numbers 1, 2, 3, … with no last fragment.
    let before = pair.b.engine.statistics().fragments_discarded;
    for number in 1..=255u8 {
        pair.b.engine.handle_datagram(now, from, to, &forged(cookies, 100, number, false, &data));
        assert!(buffered(&pair) <= usize::from(limits.max_fragments) * data.len());
    }
    let discarded = pair.b.engine.statistics().fragments_discarded - before;
    assert_eq!(discarded, 255 - u64::from(limits.max_fragments), "every piece past the limit is refused");
    assert_eq!(buffered(&pair), 0, "the over-long message was dropped");
    // Endless with a new ID each time: one partial message per SA, so one piece held.
    for id in 0..2000u16 {
        pair.b.engine.handle_datagram(now, from, to, &forged(cookies, id, 1, false, &data));
        assert_eq!(buffered(&pair), data.len());
    }
    // Oversize: pieces within the count limit but beyond the byte limit.
    let big = vec![0xDD; limits.max_reassembly_bytes / 4 + 1];
    let before = pair.b.engine.statistics().fragments_discarded;
    for number in 1..=4u8 {
        pair.b.engine.handle_datagram(now, from, to, &forged(cookies, 500, number, false, &big));
    }
    assert_eq!(pair.b.engine.statistics().fragments_discarded - before, 1);
    assert!(buffered(&pair) <= limits.max_reassembly_bytes);
    // A partial message is freed by the timer.
    pair.b.engine.handle_datagram(now, from, to, &forged(cookies, 600, 1, false, &data));
    assert_eq!(buffered(&pair), data.len());
    let later = now + limits.fragment_timeout + Duration::from_millis(1);
    pair.b.engine.handle_timeout(later);
    assert_eq!(buffered(&pair), 0);
    // Fragments for an SA that does not exist leave no state at all.
    let stranger = (isakmp::Cookie([9; 8]), isakmp::Cookie([8; 8]));
    let before = pair.b.engine.statistics().fragments_discarded;
    pair.b.engine.handle_datagram(later, from, to, &forged(stranger, 1, 1, false, &data));
    assert_eq!(pair.b.engine.statistics().fragments_discarded - before, 1);
    // B is still in the exchange: A's real MM5 fragments, delivered now (in reverse order),
    // complete phase 1 and the tunnel comes up.
    for t in held.borrow().iter().rev() {
        pair.b.engine.handle_datagram(later, t.remote, t.local, &t.payload);
    }
    pair.now = later;
    assert!(pair.drive_until(10_000, tunnel_up), "a {:?} b {:?}", failures(&pair.a), failures(&pair.b));
}

#[test]
fn buffered_bytes_counts_queued_datagrams_flights_pending_acquires_and_partial_messages() {
    let a = Gateway::fw_a();
    let mut engine = crate::Engine::new(a.config(), Box::new(super::util::TestRng(7)));
    assert_eq!(engine.buffered_bytes(), 0, "a new engine holds nothing");
    let now = super::util::epoch();
    engine.handle_acquire(now, crate::Acquire { policy: 0, selector: a.selector() });
    let mm1 = engine.poll_transmit().expect("MM1").payload;
    let acquire = std::mem::size_of::<crate::Acquire>();
    assert_eq!(engine.buffered_bytes(), mm1.len() + acquire, "MM1 kept to retransmit, the acquire waits");
    engine.handle_timeout(now + a.limits.retransmit_initial);
    let again = engine.poll_transmit().expect("MM1 again").payload;
    assert_eq!(again, mm1);

    // B, waiting for MM5: a piece of a fragmented message is held until the message completes
    // or its time runs out.
    let (mut pair, _held, cookies) = held_before_mm5();
    while pair.b.engine.poll_transmit().is_some() {}
    let before = pair.b.engine.buffered_bytes();
    assert!(before > 0, "B keeps MM4 to answer a repeated MM3");
    let (to, from, now) = (pair.b.address, pair.a.address, pair.now);
    let data = vec![0xEE; 1000];
    pair.b.engine.handle_datagram(now, from, to, &forged(cookies, 77, 1, false, &data));
    assert_eq!(pair.b.engine.buffered_bytes(), before + data.len());
    pair.b.engine.handle_timeout(now + Limits::default().fragment_timeout);
    assert_eq!(pair.b.engine.buffered_bytes(), before, "the partial message timed out");
}
