//! Unauthenticated input never changes authenticated state (issue 13, finding 6): a message
//! that does not decrypt or whose HASH does not verify is counted and dropped, and the
//! exchange goes on until the peer's retransmission repairs it; an error notify in clear does
//! not end a phase 1 that is going well, but names the cause when it fails.

use std::time::Duration;

use isakmp::{Cookie, Doi, ExchangeType, Message, Notification, NotifyType, Payload, ProtocolId};

use super::util::{cause, failures, Gateway, Pair};
use super::{established, tunnel_up};
use crate::{Command, FailureReason, TimeoutFailure, Transmit};

/// True for a datagram of `exchange` with the encryption flag set.
fn encrypted(t: &Transmit, exchange: ExchangeType) -> bool {
    Message::parse(&t.payload)
        .is_ok_and(|m| m.header.exchange_type == exchange && m.encrypted_body().is_some())
}

/// A pair where the `nth` (from 0) encrypted datagram of `exchange` sent towards B
/// (`to_b`) or A has its first ciphertext byte flipped on the way (its first plaintext block,
/// where the ID or HASH payload starts, decrypts to garbage), or every one from the `nth` on
/// once; with `every`, all of them from the `nth` on.
fn corrupt(exchange: ExchangeType, to_b: bool, nth: usize, every: bool, seed: u64) -> Pair {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, seed);
    let mut seen = 0;
    pair.alter = Some(Box::new(move |towards_b, t| {
        if towards_b == to_b && encrypted(t, exchange) {
            if seen == nth || (every && seen > nth) {
                if let Some(first) = t.payload.get_mut(isakmp::HEADER_LEN) {
                    *first ^= 0x5a;
                }
            }
            seen += 1;
        }
        true
    }));
    pair.acquire_on_a(a.selector());
    pair
}

/// A corrupted MM5, MM6, QM1, QM2 or QM3 is dropped; the retransmission brings the tunnel up
/// with no failure on either side. Before the fix, each of them ended its exchange (phase 1
/// with AUTHENTICATION-FAILED, the quick mode with INVALID-HASH-INFORMATION) and left a
/// failure in both error histories.
#[test]
fn a_corrupted_protected_message_is_dropped_and_the_retransmission_completes() {
    let cases = [
        ("MM5", ExchangeType::IdentityProtection, true, 0),
        ("MM6", ExchangeType::IdentityProtection, false, 0),
        ("QM1", ExchangeType::QuickMode, true, 0),
        ("QM2", ExchangeType::QuickMode, false, 0),
        ("QM3", ExchangeType::QuickMode, true, 1),
    ];
    for (seed, (name, exchange, to_b, nth)) in (60..).zip(cases) {
        let mut pair = corrupt(exchange, to_b, nth, false, seed);
        assert!(
            pair.drive_until(400, tunnel_up),
            "{name}: tunnel not up: A {:?} B {:?} {:?} {:?}",
            super::failure_reasons(&pair.a),
            super::failure_reasons(&pair.b),
            pair.a.engine.statistics(),
            pair.b.engine.statistics()
        );
        pair.drive_for(Duration::from_secs(5));
        assert!(failures(&pair.a).is_empty(), "{name}: A failed: {:?}", super::failure_reasons(&pair.a));
        assert!(failures(&pair.b).is_empty(), "{name}: B failed: {:?}", super::failure_reasons(&pair.b));
        let receiver = if to_b { &pair.b } else { &pair.a };
        assert_eq!(receiver.engine.statistics().unauthenticated_dropped, 1, "{name}: counted");
        assert_eq!(pair.a.engine.error_history().count(), 0, "{name}");
    }
}

/// A Delete that does not decrypt or whose HASH(1) does not verify deletes nothing and is
/// counted.
#[test]
fn a_corrupted_delete_deletes_nothing() {
    let mut pair = corrupt(ExchangeType::Informational, true, 0, true, 66);
    assert!(pair.drive_until(400, tunnel_up));
    let now = pair.now;
    pair.a.engine.handle_command(now, Command::ResetIkeSa { connection: None });
    pair.drive_for(Duration::from_secs(5));
    assert!(pair.b.engine.statistics().unauthenticated_dropped >= 1);
    assert!(pair.b.engine.ike_sas().any(|sa| sa.state == "established"), "B keeps its IKE SA");
}

/// An error notify in clear with A's cookies, the way an off-path sender who learned them
/// (or an on-path one) would send it.
fn cleartext_notify(cookie_i: Cookie, notify_type: NotifyType) -> Vec<u8> {
    let mut spi = [0u8; 16];
    spi[..8].copy_from_slice(&cookie_i.0);
    let payload = Payload::Notification(Notification {
        doi: Doi::Ipsec,
        protocol: ProtocolId::Isakmp,
        spi: &spi,
        notify_type,
        data: &[],
    });
    crate::wire::cleartext(
        crate::wire::header(cookie_i, Cookie::default(), ExchangeType::Informational, 0),
        vec![payload],
    )
}

/// A's initiator cookie, from its MM1.
fn a_cookie(pair: &Pair) -> Cookie {
    Message::parse(&pair.a.sent[0]).expect("MM1").header.initiator_cookie
}

/// Before the fix, one spoofed NO-PROPOSAL-CHOSEN in clear ended A's phase 1 at once.
#[test]
fn an_unprotected_no_proposal_chosen_does_not_end_a_phase_1_going_well() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 67);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(10, |p| !p.a.sent.is_empty()), "MM1 sent");
    let forged = cleartext_notify(a_cookie(&pair), NotifyType::NoProposalChosen);
    let now = pair.now;
    pair.a.engine.handle_datagram(now, pair.a.address, pair.b.address, &forged);
    assert!(pair.drive_until(400, tunnel_up), "{:?}", super::failure_reasons(&pair.a));
    assert!(failures(&pair.a).is_empty(), "{:?}", super::failure_reasons(&pair.a));
    assert!(established(&pair));
    assert_eq!(pair.a.engine.statistics().unauthenticated_dropped, 1);
}

/// When the exchange then fails (the responder is gone), the notify is the reported cause,
/// marked as unauthenticated.
#[test]
fn an_unprotected_no_proposal_chosen_is_reported_when_the_exchange_times_out() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 68);
    pair.b_alive = false;
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(10, |p| !p.a.sent.is_empty()), "MM1 sent");
    let forged = cleartext_notify(a_cookie(&pair), NotifyType::NoProposalChosen);
    let now = pair.now;
    pair.a.engine.handle_datagram(now, pair.a.address, pair.b.address, &forged);
    assert!(failures(&pair.a).is_empty(), "not ended by one notify in clear");
    pair.drive_for(Duration::from_secs(120));
    let on_a = failures(&pair.a);
    assert_eq!(on_a.len(), 1, "{:?}", super::failure_reasons(&pair.a));
    assert!(
        matches!(on_a[0].reason, FailureReason::Timeout(TimeoutFailure::OnlyUnauthenticated { .. })),
        "{}",
        on_a[0]
    );
    assert!(matches!(cause(&on_a[0].reason), FailureReason::PeerNotified(NotifyType::NoProposalChosen)));
    let text = on_a[0].to_string();
    assert!(text.contains("dropped as unauthenticated: peer sent notify NO-PROPOSAL-CHOSEN"), "{text}");
    let history: Vec<_> = pair.a.engine.error_history().map(|r| r.reason.to_string()).collect();
    assert!(history.iter().any(|r| r.contains("NO-PROPOSAL-CHOSEN")), "{history:?}");
}

/// A responder whose pre-shared key differs repeats the same refused MM5 on each of our
/// retransmissions: phase 1 ends with the reason at the third, long before the timeout.
#[test]
fn a_wrong_pre_shared_key_still_fails_with_its_reason_after_three_repeats() {
    let a = Gateway::fw_a();
    let b = Gateway { psk: "not-tiandihui2", ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 69);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(20));
    let on_b = failures(&pair.b);
    assert_eq!(on_b.len(), 1, "{:?}", super::failure_reasons(&pair.b));
    assert_eq!(on_b[0].state, "waiting for MM5");
    assert!(on_b[0].to_string().contains("pre-shared keys probably differ"), "{}", on_b[0]);
    assert_eq!(pair.b.engine.statistics().unauthenticated_dropped, 3);
    let history: Vec<_> = pair.b.engine.error_history().map(|r| r.reason.to_string()).collect();
    assert!(history.iter().any(|r| r.contains("pre-shared keys probably differ")), "{history:?}");
}

/// A failure that anyone could cause with a spoofed source (a refused MM1 from the peer's
/// address, a responder's phase 1 that never authenticated its peer) is marked
/// `unauthenticated`, so that the driver keeps the packets queued for the peer (the gateway's
/// `bridge::events::abandons_queue`); our own initiator's failure is not. Before the fix a
/// spoofed MM1's refusal made the gateway drop the queue of the peer whose address it bore.
#[test]
fn failures_caused_only_by_unauthenticated_messages_are_marked_so() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 70);
    pair.b_alive = false;
    pair.acquire_on_a(a.selector());
    // A stranger at B's address (another port) offers a suite A does not accept.
    let stranger = Gateway {
        ike: vec![super::util::ike(
            crypto::Phase1Cipher::Aes128,
            crypto::HashAlgorithm::Sha1,
            crypto::DhGroup::Modp1024,
        )],
        ..Gateway::fw_b()
    };
    let mut spoofer = crate::Engine::new(stranger.config(), Box::new(super::util::TestRng(71)));
    spoofer.handle_acquire(pair.now, crate::Acquire { policy: 0, selector: stranger.selector() });
    let mm1 = spoofer.poll_transmit().expect("MM1").payload;
    let spoofed = std::net::SocketAddr::new(pair.b.address.ip(), 40_000);
    let now = pair.now;
    pair.a.engine.handle_datagram(now, pair.a.address, spoofed, &mm1);
    let refused: Vec<_> = std::iter::from_fn(|| pair.a.engine.poll_event()).collect();
    let refused: Vec<_> = refused
        .iter()
        .filter_map(|e| match e {
            crate::Event::Failed(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 1);
    assert!(matches!(refused[0].reason, FailureReason::Proposal(_)), "{}", refused[0]);
    assert!(refused[0].unauthenticated, "a spoofed MM1's refusal");
    // A's own exchange gives up later: that failure is A's, and releases the queue.
    pair.drive_for(Duration::from_secs(120));
    let on_a = failures(&pair.a);
    assert_eq!(on_a.len(), 1, "{:?}", super::failure_reasons(&pair.a));
    assert!(matches!(on_a[0].reason, FailureReason::Timeout(_)));
    assert!(!on_a[0].unauthenticated);
    // A responder whose phase 1 never authenticated the initiator: unauthenticated.
    let b = Gateway { psk: "not-tiandihui2", ..Gateway::fw_b() };
    let mut pair = Pair::new(&Gateway::fw_a(), &b, 72);
    pair.acquire_on_a(Gateway::fw_a().selector());
    pair.drive_for(Duration::from_secs(20));
    let on_b = failures(&pair.b);
    assert_eq!(on_b.len(), 1);
    assert!(on_b[0].unauthenticated, "{}", on_b[0]);
}

/// Aggressive mode: an AM2 whose HASH_R does not verify (its nonce altered on the way) and an
/// AM3 that does not decrypt are dropped; A's AM1 retransmission draws the stored AM2, and
/// the AM2 that B sends again when A's quick mode arrives before AM3 draws A's stored AM3.
/// Before the fix each ended phase 1 at once.
#[test]
fn a_corrupted_am2_or_am3_is_dropped_and_the_exchange_completes() {
    let a = Gateway { mode: crate::ExchangeMode::Aggressive, ..Gateway::fw_a() };
    let b = Gateway { accept_aggressive_from_peer: true, ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 73);
    let (mut am2_seen, mut am3_seen) = (false, false);
    pair.alter = Some(Box::new(move |to_b, t| {
        let Ok(message) = Message::parse(&t.payload) else { return true };
        if message.header.exchange_type != ExchangeType::Aggressive {
            return true;
        }
        if !to_b && !am2_seen {
            am2_seen = true;
            super::util::replace_cleartext_nonce(t, &[0x5a; 32]);
        } else if to_b && message.encrypted_body().is_some() && !am3_seen {
            am3_seen = true;
            if let Some(first) = t.payload.get_mut(isakmp::HEADER_LEN) {
                *first ^= 0x5a;
            }
        }
        true
    }));
    pair.acquire_on_a(a.selector());
    assert!(
        pair.drive_until(400, tunnel_up),
        "A {:?} B {:?}",
        super::failure_reasons(&pair.a),
        super::failure_reasons(&pair.b)
    );
    assert!(failures(&pair.a).is_empty(), "{:?}", super::failure_reasons(&pair.a));
    assert!(failures(&pair.b).is_empty(), "{:?}", super::failure_reasons(&pair.b));
    assert_eq!(pair.a.engine.statistics().unauthenticated_dropped, 1, "AM2");
    assert_eq!(pair.b.engine.statistics().unauthenticated_dropped, 1, "AM3");
}
