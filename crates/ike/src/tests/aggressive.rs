//! Aggressive mode (RFC 2409 §5.4): both roles between two engines, the responder's refusal,
//! failures, faults, and a known-answer test against strongSwan's `vectors/am-psk-fqdn`.

use std::collections::BTreeMap;
use std::time::Duration;

use crypto::key_schedule::MessageId;
use crypto::{DhGroup, HashAlgorithm, Phase1Cipher};
use isakmp::{Cookie, ExchangeType, Message, NotifyType, Payload, PayloadType};

use super::util::{failures, ike, installed, Faults, Gateway, Pair, FW_A, FW_B};
use super::{assert_keys_agree, established, failure_reasons, tunnel_up};
use crate::aggressive_mode::{am2_hash_r, am3_hash_i, open_am3, seal_am3};
use crate::sa::keys::{phase1_material, Phase1Exchange};
use crate::{AuthenticationFailure, MalformedFailure, PolicyFailure, TimeoutFailure};
use crate::{Event, Exchange, ExchangeMode, FailureReason, IdentityConfig, IkeProposal};

/// A pair where A initiates aggressive mode and B answers it, with FQDN identities.
fn fqdn_gateways() -> (Gateway, Gateway) {
    let a = Gateway {
        mode: ExchangeMode::Aggressive,
        local_id: Some(IdentityConfig::Fqdn("fwa.example.net".into())),
        remote_id: Some(IdentityConfig::Fqdn("fwb.example.net".into())),
        ..Gateway::fw_a()
    };
    let b = Gateway {
        accept_aggressive_from_peer: true,
        local_id: Some(IdentityConfig::Fqdn("fwb.example.net".into())),
        remote_id: Some(IdentityConfig::Fqdn("FWA.Example.net".into())),
        ..Gateway::fw_b()
    };
    (a, b)
}

fn exchange_types(sent: &[Vec<u8>]) -> Vec<ExchangeType> {
    sent.iter().filter_map(|m| Message::parse(m).ok()).map(|m| m.header.exchange_type).collect()
}

#[test]
fn aggressive_mode_and_quick_mode_establish_with_fqdn_identities() {
    let (a, b) = fqdn_gateways();
    let mut pair = Pair::new(&a, &b, 21);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "a: {:?}\nb: {:?}", pair.a.events, pair.b.events);
    assert!(established(&pair));
    assert_keys_agree(&pair);
    assert!(failures(&pair.a).is_empty() && failures(&pair.b).is_empty());
    // AM1, AM3, QM1, QM3 from A; AM2, QM2 from B; nothing retransmitted.
    assert_eq!(
        exchange_types(&pair.a.sent),
        [
            ExchangeType::Aggressive,
            ExchangeType::Aggressive,
            ExchangeType::QuickMode,
            ExchangeType::QuickMode
        ]
    );
    assert_eq!(exchange_types(&pair.b.sent), [ExchangeType::Aggressive, ExchangeType::QuickMode]);
    // AM1 and AM2 travel in clear, AM3 encrypted.
    let am3 = Message::parse(&pair.a.sent[1]).expect("AM3 parses");
    assert!(am3.encrypted_body().is_some(), "AM3 is sent encrypted");
    assert!(Message::parse(&pair.b.sent[0]).expect("AM2").encrypted_body().is_none());
    for side in [&pair.a, &pair.b] {
        let views: Vec<_> = side.engine.ike_sas().collect();
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].state, "established");
        assert_eq!(views[0].suite, Some(IkeProposal::recommended()));
        assert_eq!(views[0].exchange_mode, ExchangeMode::Aggressive);
    }
    // The views carry what `display ike sa verbose` shows: the same cookies on both sides and
    // the identity each peer presented (as sent, not as configured on the other side).
    let (view_a, view_b) = (pair.a.engine.ike_sas().next().unwrap(), pair.b.engine.ike_sas().next().unwrap());
    assert_eq!((view_a.cookies.0 .0, view_a.cookies.1 .0), (view_b.cookies.0 .0, view_b.cookies.1 .0));
    assert_ne!(view_a.cookies.1 .0, [0; 8]);
    let identity =
        |kind: &str, value: &str| Some(crate::PeerIdentity { kind: kind.into(), value: value.into() });
    assert_eq!(view_a.remote_identity, identity("FQDN", "fwb.example.net"));
    assert_eq!(view_b.remote_identity, identity("FQDN", "fwa.example.net"));
}

#[test]
fn aggressive_mode_establishes_with_ipv4_identities() {
    let a = Gateway {
        mode: ExchangeMode::Aggressive,
        remote_id: Some(IdentityConfig::Address(FW_B)),
        ..Gateway::fw_a()
    };
    let b = Gateway {
        accept_aggressive_from_peer: true,
        remote_id: Some(IdentityConfig::Address(FW_A)),
        ..Gateway::fw_b()
    };
    let mut pair = Pair::new(&a, &b, 22);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "a: {:?}\nb: {:?}", pair.a.events, pair.b.events);
    assert_keys_agree(&pair);
    // The default identity is ID_IPV4_ADDR of our address, in clear in AM1.
    let am1 = Message::parse(&pair.a.sent[0]).expect("AM1");
    let id = am1.payloads().iter().find_map(|p| match p {
        Payload::Identification(id) => Some(id.identity.clone()),
        _ => None,
    });
    assert_eq!(id, Some(isakmp::Identity::Ipv4Addr(FW_A)));
}

#[test]
fn aggressive_mode_establishes_with_user_fqdn_and_several_algorithms() {
    let cases = [
        ike(Phase1Cipher::Aes128, HashAlgorithm::Sha1, DhGroup::Modp1024),
        ike(Phase1Cipher::TripleDes, HashAlgorithm::Sha512, DhGroup::Ecp256),
        ike(Phase1Cipher::Aes256, HashAlgorithm::Sha256, DhGroup::Curve25519),
    ];
    for (i, suite) in cases.into_iter().enumerate() {
        let a = Gateway {
            mode: ExchangeMode::Aggressive,
            ike: vec![suite],
            local_id: Some(IdentityConfig::UserFqdn("Alice@Example.net".into())),
            ..Gateway::fw_a()
        };
        let b = Gateway {
            accept_aggressive_from_peer: true,
            ike: vec![suite],
            remote_id: Some(IdentityConfig::UserFqdn("alice@example.NET".into())),
            ..Gateway::fw_b()
        };
        let mut pair = Pair::new(&a, &b, 30 + i as u64);
        pair.acquire_on_a(a.selector());
        assert!(pair.drive_until(100, tunnel_up), "{suite:?}: {:?} {:?}", pair.a.events, pair.b.events);
        assert_keys_agree(&pair);
    }
}

#[test]
fn aggressive_mode_responder_finds_the_key_by_identity() {
    let (a, b) = fqdn_gateways();
    let mut pair = Pair::new(&a, &b, 23);
    // B: a decoy peer first (another key and identity), then the real one as a template
    // without an address, so only the identity in AM1 can select it.
    let mut config = b.config();
    let mut decoy = config.peers[0].clone();
    decoy.name = "decoy".into();
    decoy.pre_shared_key = crypto::SecretBytes::from_slice(b"decoy-key");
    decoy.remote_id = Some(IdentityConfig::Fqdn("someone.example.net".into()));
    decoy.remote_address = None;
    config.peers[0].name = "road-warrior".into();
    config.peers[0].remote_address = None;
    config.peers.insert(0, decoy);
    config.policies[0].peer = 1;
    pair.b.engine = crate::Engine::new(config, Box::new(super::util::TestRng(77)));
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "{:?}", failure_reasons(&pair.b));
    assert_keys_agree(&pair);
    let peer = pair.b.events.iter().find_map(|e| match e {
        Event::IkeSaEstablished { peer, .. } => Some(peer.clone()),
        _ => None,
    });
    assert_eq!(peer.as_deref(), Some("road-warrior"));
}

#[test]
fn aggressive_mode_responder_refuses_pre_shared_keys_unless_allowed() {
    let (a, mut b) = fqdn_gateways();
    b.accept_aggressive_from_peer = false;
    let mut pair = Pair::new(&a, &b, 24);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(600));
    assert!(pair.b.sent.is_empty(), "a refused AM1 gets no reply at all");
    assert_eq!(pair.b.engine.ike_sas().count(), 0, "and leaves no state");
    let on_b = failures(&pair.b);
    assert!(!on_b.is_empty());
    assert!(on_b
        .iter()
        .all(|f| matches!(f.reason, FailureReason::Policy(PolicyFailure::AggressiveModePskRefused))));
    let text = on_b[0].to_string();
    assert!(text.starts_with("aggressive mode with 192.0.2.1 (peer peer) failed waiting for AM1"), "{text}");
    assert!(text.contains("refused as responder, no reply sent"), "{text}");
    assert!(text.contains("allowed neither for this peer"), "{text}");
    assert!(text.contains("offline") && text.contains("brute force"), "{text}");
    assert_eq!(on_b[0].exchange, Exchange::AggressiveMode);
    // The initiator gives up after its retransmissions, and nothing is left on either side.
    let on_a = failures(&pair.a);
    assert_eq!(on_a.len(), 1, "{:?}", failure_reasons(&pair.a));
    assert!(matches!(on_a[0].reason, FailureReason::Timeout(TimeoutFailure::NoAnswer { .. })));
    assert_eq!(on_a[0].state, "waiting for AM2");
    assert_eq!(pair.a.engine.ike_sas().count(), 0);
}

#[test]
fn aggressive_mode_fails_on_both_sides_with_wrong_pre_shared_key() {
    let (a, b) = fqdn_gateways();
    let b = Gateway { psk: "not-tiandihui2", ..b };
    let mut pair = Pair::new(&a, &b, 25);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    assert!(installed(&pair.a).is_empty() && installed(&pair.b).is_empty());
    let on_a = failures(&pair.a);
    assert_eq!(on_a.len(), 1, "{:?}", failure_reasons(&pair.a));
    assert!(
        matches!(
            on_a[0].reason,
            FailureReason::Authentication(AuthenticationFailure::HashMismatch { hash: "HASH_R" })
        ),
        "{}",
        on_a[0]
    );
    assert_eq!(on_a[0].state, "waiting for AM2");
    assert_eq!(on_a[0].exchange, Exchange::AggressiveMode);
    assert!(on_a[0].to_string().contains("HASH_R did not verify: the pre-shared keys probably differ"));
    let on_b = failures(&pair.b);
    assert_eq!(on_b.len(), 1, "{:?}", failure_reasons(&pair.b));
    // A's notify is in clear: B keeps waiting for AM3 and, when none comes, names it.
    assert!(
        matches!(on_b[0].reason, FailureReason::Timeout(_))
            && matches!(
                super::util::cause(&on_b[0].reason),
                FailureReason::PeerNotified(NotifyType::AuthenticationFailed)
            ),
        "{}",
        on_b[0]
    );
    assert_eq!(on_b[0].state, "waiting for AM3");
    assert_eq!(pair.a.engine.ike_sas().count(), 0);
    assert_eq!(pair.b.engine.ike_sas().count(), 0);
}

/// Runs AM1 and AM2 by hand and returns the pair with AM2 (not delivered to A).
fn up_to_am2(seed: u64) -> (Pair, Vec<u8>) {
    let (a, b) = fqdn_gateways();
    let mut pair = Pair::new(&a, &b, seed);
    pair.acquire_on_a(a.selector());
    let am1 = pair.a.engine.poll_transmit().expect("AM1");
    pair.b.engine.handle_datagram(pair.now, am1.remote, am1.local, &am1.payload);
    let am2 = pair.b.engine.poll_transmit().expect("AM2");
    (pair, am2.payload)
}

#[test]
fn aggressive_mode_responder_rejects_wrong_hash_i() {
    let (mut pair, am2) = up_to_am2(26);
    let header = Message::parse(&am2).expect("AM2").header;
    let forged = crate::wire::cleartext(
        crate::wire::header(header.initiator_cookie, header.responder_cookie, ExchangeType::Aggressive, 0),
        vec![Payload::Hash(&[0x5a; 32])],
    );
    let (from, to) = (pair.a.address, pair.b.address);
    // A forged (or corrupted) AM3 is dropped and the exchange waits on; the same failure
    // repeated ends it (a real initiator with another key repeats its AM3).
    for _ in 1..crate::sa::unauthenticated::REPEATS_TO_FAIL {
        pair.b.engine.handle_datagram(pair.now, to, from, &forged);
        assert!(std::iter::from_fn(|| pair.b.engine.poll_event()).all(|e| !matches!(e, Event::Failed(_))));
        assert!(pair.b.engine.poll_transmit().is_none(), "nothing answered");
        assert_eq!(pair.b.engine.ike_sas().count(), 1, "the exchange goes on");
    }
    pair.b.engine.handle_datagram(pair.now, to, from, &forged);
    let events: Vec<Event> = std::iter::from_fn(|| pair.b.engine.poll_event()).collect();
    let reason = events.iter().find_map(|e| match e {
        Event::Failed(f) => Some(f.clone()),
        _ => None,
    });
    let failure = reason.expect("a failure");
    assert!(
        matches!(
            failure.reason,
            FailureReason::Authentication(AuthenticationFailure::HashMismatch { hash: "HASH_I" })
        ),
        "{failure}"
    );
    assert_eq!(failure.state, "waiting for AM3");
    assert!(failure.to_string().contains("HASH_I did not verify: the pre-shared keys probably differ"));
    assert_eq!(pair.b.engine.ike_sas().count(), 0);
    // The initiator is told, in clear (no keys are agreed yet).
    let notify = pair.b.engine.poll_transmit().map(|t| t.payload).expect("AUTHENTICATION-FAILED");
    let notify = Message::parse(&notify).expect("notify parses");
    assert_eq!(notify.header.exchange_type, ExchangeType::Informational);
    assert!(notify.payloads().iter().any(|p| matches!(
        p,
        Payload::Notification(n) if n.notify_type == NotifyType::AuthenticationFailed
    )));
}

#[test]
fn aggressive_mode_responder_answers_repeated_am1_but_never_retransmits_am2_on_a_timer() {
    let (mut pair, am2) = up_to_am2(27);
    // A repeat of AM1 (A's retransmission) draws the stored AM2, not new work.
    pair.a.engine.handle_timeout(pair.now + Duration::from_secs(1));
    let a_sent: Vec<_> = std::iter::from_fn(|| pair.a.engine.poll_transmit()).collect();
    assert_eq!(a_sent.len(), 1, "A retransmitted AM1");
    pair.b.engine.handle_datagram(pair.now, a_sent[0].remote, a_sent[0].local, &a_sent[0].payload);
    let repeat = pair.b.engine.poll_transmit().expect("stored AM2");
    assert_eq!(repeat.payload, am2);
    assert_eq!(pair.b.engine.ike_sas().count(), 1);
    // B never sends AM2 on its own: a spoofed AM1 must not make it a traffic source
    // (CVE-2016-5361). It gives up at the exchange deadline.
    pair.b.engine.handle_timeout(pair.now + Duration::from_secs(30));
    assert!(pair.b.engine.poll_transmit().is_none());
    pair.b.engine.handle_timeout(pair.now + Duration::from_secs(61));
    assert!(pair.b.engine.poll_transmit().is_none());
    assert_eq!(pair.b.engine.ike_sas().count(), 0);
}

#[test]
fn aggressive_mode_recovers_from_a_lost_am3_through_quick_mode() {
    let (mut pair, am2) = up_to_am2(36);
    let (a_addr, b_addr) = (pair.a.address, pair.b.address);
    pair.a.engine.handle_datagram(pair.now, a_addr, b_addr, &am2);
    let sent: Vec<Vec<u8>> =
        std::iter::from_fn(|| pair.a.engine.poll_transmit()).map(|t| t.payload).collect();
    assert_eq!(exchange_types(&sent), [ExchangeType::Aggressive, ExchangeType::QuickMode], "AM3 and QM1");
    // AM3 is lost. QM1 reaches B, which cannot decrypt it before AM3 and answers with AM2.
    pair.b.engine.handle_datagram(pair.now, b_addr, a_addr, &sent[1]);
    let reply = pair.b.engine.poll_transmit().expect("AM2 again");
    assert_eq!(reply.payload, am2);
    // A answers the repeated AM2 with its AM3.
    pair.a.engine.handle_datagram(pair.now, a_addr, b_addr, &reply.payload);
    let am3 = pair.a.engine.poll_transmit().expect("AM3 again");
    assert_eq!(am3.payload, sent[0]);
    pair.b.engine.handle_datagram(pair.now, b_addr, a_addr, &am3.payload);
    // A's quick-mode retransmission does the rest.
    assert!(pair.drive_until(100, tunnel_up), "{:?} {:?}", pair.a.events, pair.b.events);
    assert_keys_agree(&pair);
}

#[test]
fn aggressive_mode_responder_rejects_proposal_mismatch() {
    let (mut a, b) = fqdn_gateways();
    a.ike = vec![ike(Phase1Cipher::Aes128, HashAlgorithm::Sha1, DhGroup::Modp1024)];
    let mut pair = Pair::new(&a, &b, 28);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    let text = failure_reasons(&pair.b).join("\n");
    assert!(
        text.contains("aggressive mode with 192.0.2.1 (peer peer) failed waiting for AM1: IKE proposal mismatch: peer offers aes-128/sha1/group2/pre-share, we accept aes-256/sha2-256/group14/pre-share"),
        "{text}"
    );
    assert!(matches!(failures(&pair.a)[0].reason, FailureReason::PeerNotified(NotifyType::NoProposalChosen)));
    assert_eq!(failures(&pair.a).len(), 1, "{:?}", failure_reasons(&pair.a));
    assert_eq!(pair.a.engine.ike_sas().count(), 0);
    assert_eq!(pair.b.engine.ike_sas().count(), 0);
}

#[test]
fn aggressive_mode_initiator_offers_only_the_first_proposals_group() {
    let (mut a, b) = fqdn_gateways();
    let group2 = ike(Phase1Cipher::Aes128, HashAlgorithm::Sha1, DhGroup::Modp1024);
    let other14 = ike(Phase1Cipher::Aes128, HashAlgorithm::Sha256, DhGroup::Modp2048);
    a.ike = vec![IkeProposal::recommended(), group2, other14];
    // B accepts only the group-2 suite, which A must not offer: its KE is of group 14.
    let b = Gateway { ike: vec![group2], ..b };
    let mut pair = Pair::new(&a, &b, 29);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    let am1 = Message::parse(&pair.a.sent[0]).expect("AM1");
    let transforms: usize = am1
        .payloads()
        .iter()
        .filter_map(|p| match p {
            Payload::SecurityAssociation(sa) => {
                Some(sa.proposals.iter().map(|p| p.transforms.len()).sum::<usize>())
            }
            _ => None,
        })
        .sum();
    assert_eq!(transforms, 2, "the two group-14 suites, not the group-2 one");
    let text = failure_reasons(&pair.b).join("\n");
    assert!(
        text.contains("peer offers aes-256/sha2-256/group14/pre-share, aes-128/sha2-256/group14/pre-share"),
        "{text}"
    );
}

#[test]
fn aggressive_mode_responder_rejects_ke_of_another_group() {
    let (a, b) = fqdn_gateways();
    let mut pair = Pair::new(&a, &b, 33);
    pair.acquire_on_a(a.selector());
    let am1 = pair.a.engine.poll_transmit().expect("AM1");
    // The same AM1 with a KE of the wrong length for group 14 (as from a group-19 peer).
    let mut message = Message::parse(&am1.payload).expect("AM1 parses");
    let short_ke = [7u8; 64];
    if let isakmp::Body::Cleartext { payloads, .. } = &mut message.body {
        for p in payloads.iter_mut() {
            if let Payload::KeyExchange(ke) = p {
                *ke = &short_ke;
            }
        }
    }
    let altered = message.to_vec();
    pair.b.engine.handle_datagram(pair.now, am1.remote, am1.local, &altered);
    let failure = std::iter::from_fn(|| pair.b.engine.poll_event())
        .find_map(|e| match e {
            Event::Failed(f) => Some(f),
            _ => None,
        })
        .expect("a failure");
    assert!(
        matches!(
            failure.reason,
            FailureReason::Malformed(MalformedFailure::KeyExchange(crypto::DhError::WrongLength {
                expected: 256,
                actual: 64,
                ..
            }))
        ),
        "{failure}"
    );
    let reply = pair.b.engine.poll_transmit().expect("INVALID-KEY-INFORMATION");
    let reply = Message::parse(&reply.payload).expect("parses");
    assert_eq!(reply.header.exchange_type, ExchangeType::Informational, "a notify, not an AM2");
    assert_eq!(pair.b.engine.ike_sas().count(), 0);
}

#[test]
fn aggressive_mode_engines_survive_mutated_messages() {
    use proptest::prelude::*;
    let (a, b) = fqdn_gateways();
    let mut pair = Pair::new(&a, &b, 34);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let captured: Vec<Vec<u8>> = pair.a.sent.iter().chain(pair.b.sent.iter()).cloned().collect();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(200));
    let strategy =
        (0..captured.len(), proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), any::<bool>());
    runner
        .run(&strategy, |(which, flips, midway)| {
            let mut pair = Pair::new(&a, &b, 35);
            pair.acquire_on_a(a.selector());
            // Feed the mutation either mid-exchange or once everything is up.
            if midway {
                pair.step();
            } else {
                pair.drive_until(100, tunnel_up);
            }
            let mut bytes = captured[which].clone();
            for (at, value) in flips {
                let len = bytes.len();
                bytes[at % len] ^= value | 1;
            }
            let now = pair.now;
            let (from_a, from_b) = (pair.a.address, pair.b.address);
            pair.b.engine.handle_datagram(now, from_b, from_a, &bytes);
            pair.a.engine.handle_datagram(now, from_a, from_b, &bytes);
            pair.drive_for(Duration::from_secs(5));
            Ok(())
        })
        .unwrap();
}

#[test]
fn aggressive_mode_responder_rejects_unexpected_identity() {
    let (a, b) = fqdn_gateways();
    let b = Gateway { remote_id: Some(IdentityConfig::Fqdn("other.example.net".into())), ..b };
    let mut pair = Pair::new(&a, &b, 31);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    let text = failure_reasons(&pair.b).join("\n");
    assert!(
        text.contains(
            "peer identity fqdn fwa.example.net is not the configured remote-id fqdn other.example.net"
        ),
        "{text}"
    );
    assert!(
        pair.b.sent.iter().all(|m| {
            Message::parse(m).is_ok_and(|m| m.header.exchange_type == ExchangeType::Informational)
        }),
        "no AM2 (and no HASH_R) for an identity we do not expect"
    );
    assert!(matches!(
        failures(&pair.a)[0].reason,
        FailureReason::PeerNotified(NotifyType::InvalidIdInformation)
    ));
}

#[test]
fn aggressive_mode_initiator_rejects_unexpected_responder_identity() {
    let (a, b) = fqdn_gateways();
    let a = Gateway { remote_id: Some(IdentityConfig::Fqdn("other.example.net".into())), ..a };
    let mut pair = Pair::new(&a, &b, 32);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    let text = failure_reasons(&pair.a).join("\n");
    assert!(text.contains("failed waiting for AM2: peer identity fqdn fwb.example.net"), "{text}");
    assert!(matches!(
        super::util::cause(&failures(&pair.b)[0].reason),
        FailureReason::PeerNotified(NotifyType::InvalidIdInformation)
    ));
    assert_eq!(pair.b.engine.ike_sas().count(), 0);
}

#[test]
fn aggressive_mode_converges_despite_loss_duplication_and_reordering() {
    let mut bad = Vec::new();
    for seed in 0..30 {
        let (a, b) = fqdn_gateways();
        // Twelve retransmissions, and time for them: with back-off from 0.5 s, a 60 s
        // deadline cuts a responder's QM2 retransmissions to six, which 30 % loss each way
        // defeats in about one run of fifty. What remains by design: B answers AM1 at most
        // four times and never retransmits AM2 (no amplification), so at 30 % loss each way
        // about one seed in sixty loses all four AM2s and A gives up; these seeds do not.
        let limits =
            crate::Limits { retransmit_count: 12, exchange_timeout: Duration::from_secs(240), ..a.limits };
        let (a, b) = (Gateway { limits, ..a }, Gateway { limits, ..b });
        let mut pair = Pair::new(&a, &b, 2000 + seed);
        pair.faults = Faults { loss: 30, duplicate: 20, jitter: Duration::from_millis(300) };
        pair.acquire_on_a(a.selector());
        if !pair.drive_until(5000, tunnel_up) {
            bad.push((seed, failure_reasons(&pair.a), failure_reasons(&pair.b)));
            continue;
        }
        assert_keys_agree(&pair);
        assert_eq!(installed(&pair.a).len(), 1, "seed {seed}");
        assert_eq!(installed(&pair.b).len(), 1, "seed {seed}");
        let established_on_b = pair.b.engine.ike_sas().filter(|v| v.state == "established").count();
        assert_eq!(established_on_b, 1, "seed {seed}: duplicates of AM1 made no second SA");
        // Late duplicates (of AM1 above all) end nothing and start nothing.
        pair.drive_for(Duration::from_secs(300));
        assert!(failures(&pair.a).is_empty(), "seed {seed}: {:?}", failure_reasons(&pair.a));
        assert!(failures(&pair.b).is_empty(), "seed {seed}: {:?}", failure_reasons(&pair.b));
        assert_eq!(pair.b.engine.ike_sas().count(), 1, "seed {seed}");
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

// ------------------------------------------------------------ known answers from strongSwan

/// `[section] key = value` from a vectors file (format: vectors/README.md); values raw.
fn parse_vectors(text: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        } else if let Some((key, value)) = line.split_once('=') {
            out.insert((section.clone(), key.trim().to_string()), value.trim().to_string());
        }
    }
    out
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit")).collect()
}

struct AmVectors(BTreeMap<(String, String), String>);

impl AmVectors {
    fn load() -> Self {
        Self(parse_vectors(include_str!("../../../../vectors/am-psk-fqdn.vectors.txt")))
    }
    fn text(&self, section: &str, key: &str) -> &str {
        self.0.get(&(section.to_string(), key.to_string())).unwrap_or_else(|| panic!("[{section}] {key}"))
    }
    fn bytes(&self, key: &str) -> Vec<u8> {
        unhex(self.text("phase1", key))
    }
    fn cookie(&self, key: &str) -> Cookie {
        Cookie(self.bytes(key).try_into().expect("8-byte cookie"))
    }
}

#[test]
fn aggressive_mode_known_answers_from_strongswan() {
    let v = AmVectors::load();
    assert_eq!(v.text("phase1", "exchange_type_num"), "4");
    // aes128-sha256-modp2048, pre-shared key.
    assert_eq!(v.text("phase1", "encryption_algorithm_num"), "7");
    assert_eq!(v.text("phase1", "key_length_num"), "128");
    assert_eq!(v.text("phase1", "hash_algorithm_num"), "4");
    assert_eq!(v.text("phase1", "group_description_num"), "14");
    assert_eq!(v.text("phase1", "auth_method_num"), "1");
    let suite = ike(Phase1Cipher::Aes128, HashAlgorithm::Sha256, DhGroup::Modp2048);
    let (cky_i, cky_r) = (v.cookie("cky_i"), v.cookie("cky_r"));
    let (ni, nr, g_xi, g_xr) = (v.bytes("ni_b"), v.bytes("nr_b"), v.bytes("g_xi"), v.bytes("g_xr"));
    let (sai_b, idii_b, idir_b) = (v.bytes("sai_b"), v.bytes("idii_b"), v.bytes("idir_b"));
    let exchange =
        Phase1Exchange { cookie_i: cky_i, cookie_r: cky_r, ni: &ni, nr: &nr, g_xi: &g_xi, g_xr: &g_xr };
    let derive = || phase1_material(&suite, &v.bytes("psk"), &exchange, &v.bytes("g_xy"));

    // The key schedule the exchanges use.
    let mut responder = derive();
    assert_eq!(responder.skeyid.expose(), v.bytes("skeyid"));
    assert_eq!(responder.skeyid_d.expose(), v.bytes("skeyid_d"));
    assert_eq!(responder.skeyid_a.expose(), v.bytes("skeyid_a"));
    assert_eq!(responder.key.expose(), v.bytes("ka"));
    assert_eq!(responder.iv.iv().as_bytes(), v.bytes("initial_iv"));
    assert_eq!(v.bytes("am3_iv"), v.bytes("initial_iv"), "AM3 is encrypted under the initial IV");

    // HASH_R as our responder puts it in AM2, HASH_I as our initiator puts it in AM3.
    assert_eq!(am2_hash_r(&responder, cky_i, cky_r, &sai_b, &idir_b)[..], v.bytes("hash_r")[..]);
    let hash_i = am3_hash_i(&responder, cky_i, cky_r, &sai_b, &idii_b);
    assert_eq!(hash_i[..], v.bytes("hash_i")[..]);

    // Our responder opens strongSwan's AM3, checks its HASH_I, and its IV chain moves to the
    // last block of AM3, from which the quick-mode IV follows.
    let am3 = v.bytes("am3_message");
    let message = Message::parse(&am3).expect("AM3 parses");
    let ciphertext = message.encrypted_body().expect("strongSwan encrypts AM3");
    let plaintext =
        crate::wire::decrypt(ciphertext, &responder.key, &responder.iv).expect("decrypts").plaintext;
    assert_eq!(plaintext, v.bytes("am3_plaintext"));
    let opened = open_am3(&message, &responder, cky_i, cky_r, &sai_b, &idii_b).expect("HASH_I verifies");
    // strongSwan's AM3 carries two NAT-D (RFC 3947 §3) and no INITIAL-CONTACT.
    assert_eq!(opened.nat_d.len(), 2);
    assert!(!opened.initial_contact);
    let next_iv = opened.next_iv.expect("an encrypted AM3 moves the chain");
    assert_eq!(next_iv.as_bytes(), v.bytes("phase1_last_block"));
    responder.iv.advance(next_iv);
    let message_id =
        u32::from_be_bytes(unhex(v.text("quickmode", "message_id")).try_into().expect("4 bytes"));
    let qm_iv = responder.iv.exchange_chain(responder.hash, MessageId(message_id));
    assert_eq!(qm_iv.iv().as_bytes(), unhex(v.text("quickmode", "qm_iv")));

    // Our initiator seals the same AM3 byte for byte (given strongSwan's NAT-D payloads after
    // HASH_I), and its chain ends on the same block.
    let payload_len: usize = v.text("phase1", "am3_payload_bytes_num").parse().expect("number");
    let chain = &plaintext[..payload_len];
    let parsed = isakmp::parse_payload_chain(PayloadType::Hash, chain).expect("AM3 chain parses");
    assert!(matches!(parsed.first(), Some(Payload::Hash(h)) if h[..] == hash_i[..]));
    let mut initiator = derive();
    let sealed = seal_am3(cky_i, cky_r, &hash_i, &parsed[1..], &mut initiator);
    assert_eq!(sealed, am3);
    assert_eq!(initiator.iv.iv().as_bytes(), v.bytes("phase1_last_block"));

    // The same AM3 against a wrong identity or a wrong key fails, naming the likely cause.
    let wrong_id = open_am3(&message, &derive(), cky_i, cky_r, &sai_b, &idir_b);
    assert!(matches!(
        wrong_id,
        Err(FailureReason::Authentication(AuthenticationFailure::HashMismatch { hash: "HASH_I" }))
    ));
    let wrong_key = phase1_material(&suite, b"not-the-key", &exchange, &v.bytes("g_xy"));
    let wrong_key = open_am3(&message, &wrong_key, cky_i, cky_r, &sai_b, &idii_b);
    assert!(
        matches!(
            wrong_key,
            Err(FailureReason::Authentication(AuthenticationFailure::KeysDiffer { message: "AM3" })
                | FailureReason::Authentication(AuthenticationFailure::HashMismatch { .. }))
        ),
        "{wrong_key:?}"
    );
}

#[test]
fn aggressive_mode_responder_accepts_am3_in_clear() {
    // RFC 2409 §5.4 draws AM3 without encryption; some peers send it so. Build one from the
    // responder's own keys: the test plays the initiator with the keys it would derive.
    let v = AmVectors::load();
    let suite = ike(Phase1Cipher::Aes128, HashAlgorithm::Sha256, DhGroup::Modp2048);
    let (cky_i, cky_r) = (v.cookie("cky_i"), v.cookie("cky_r"));
    let (ni, nr, g_xi, g_xr) = (v.bytes("ni_b"), v.bytes("nr_b"), v.bytes("g_xi"), v.bytes("g_xr"));
    let exchange =
        Phase1Exchange { cookie_i: cky_i, cookie_r: cky_r, ni: &ni, nr: &nr, g_xi: &g_xi, g_xr: &g_xr };
    let material = phase1_material(&suite, &v.bytes("psk"), &exchange, &v.bytes("g_xy"));
    let hash_i = v.bytes("hash_i");
    let clear = crate::wire::cleartext(
        crate::wire::header(cky_i, cky_r, ExchangeType::Aggressive, 0),
        vec![Payload::Hash(&hash_i)],
    );
    let message = Message::parse(&clear).expect("parses");
    let opened =
        open_am3(&message, &material, cky_i, cky_r, &v.bytes("sai_b"), &v.bytes("idii_b")).expect("verifies");
    assert!(opened.next_iv.is_none(), "a cleartext AM3 leaves the chain at the initial IV");
}

#[test]
fn aggressive_mode_responder_drops_a_late_duplicate_am1() {
    let (a, b) = fqdn_gateways();
    let mut pair = Pair::new(&a, &b, 37);
    pair.acquire_on_a(a.selector());
    let am1 = pair.a.engine.poll_transmit().expect("AM1");
    pair.b.engine.handle_datagram(pair.now, am1.remote, am1.local, &am1.payload);
    let am2 = pair.b.engine.poll_transmit().expect("AM2");
    pair.a.engine.handle_datagram(pair.now, am2.remote, am2.local, &am2.payload);
    let am3 = pair.a.engine.poll_transmit().expect("AM3");
    pair.b.engine.handle_datagram(pair.now, am3.remote, am3.local, &am3.payload);
    assert_eq!(pair.b.engine.ike_sas().map(|v| v.state).collect::<Vec<_>>(), ["established"]);
    // The network delivers AM1 once more: it reaches the established SA, which drops it.
    pair.b.engine.handle_datagram(pair.now, am1.remote, am1.local, &am1.payload);
    assert!(pair.b.engine.poll_transmit().is_none(), "no second AM2, no DH work");
    assert_eq!(pair.b.engine.ike_sas().count(), 1);
    // And a repeat of AM3 draws nothing either (AM3 needs no answer).
    pair.b.engine.handle_datagram(pair.now, am3.remote, am3.local, &am3.payload);
    assert!(pair.b.engine.poll_transmit().is_none());
}

#[test]
fn aggressive_mode_responder_counts_only_unfinished_sas_as_half_open() {
    let (a, b) = fqdn_gateways();
    // A budget of one byte: every new half-open SA evicts every other half-open one, so an
    // established SA still counted as half-open would be evicted by the next round's AM1.
    let b = Gateway { limits: crate::Limits { half_open_memory_budget: 1, ..b.limits }, ..b };
    let mut pair = Pair::new(&a, &b, 38);
    for round in 0..4u64 {
        // A restarted gateway each time: new cookies, a new IKE SA on B.
        pair.a.engine = crate::Engine::new(a.config(), Box::new(super::util::TestRng(900 + round)));
        pair.a.events.clear();
        pair.acquire_on_a(a.selector());
        assert!(
            pair.drive_until(100, |p| !installed(&p.a).is_empty()),
            "round {round}: {:?}",
            failure_reasons(&pair.b)
        );
    }
    // Each restarted A sent INITIAL-CONTACT in AM3, so B kept only the newest SA.
    assert_eq!(pair.b.engine.ike_sas().filter(|v| v.state == "established").count(), 1);
    let cleared = pair.b.events.iter().filter(|e| matches!(e, Event::SasCleared { .. })).count();
    assert_eq!(cleared, 3);
    assert_eq!(pair.b.engine.statistics().half_open_evicted, 0);
    assert_eq!(pair.b.engine.half_open().entries, 0);
}

// ------------------------------------------------------- vendor IDs, NAT-T, INITIAL-CONTACT

fn ports(transmits: &[crate::Transmit]) -> Vec<(u16, u16)> {
    transmits.iter().filter(|t| !t.nat_keepalive).map(|t| (t.local.port(), t.remote.port())).collect()
}

fn keepalives(transmits: &[crate::Transmit]) -> usize {
    transmits.iter().filter(|t| t.nat_keepalive).count()
}

fn nat_d_count(message: &[u8]) -> usize {
    Message::parse(message)
        .map_or(0, |m| m.payloads().iter().filter(|p| matches!(p, Payload::NatDiscovery(_))).count())
}

fn capabilities(message: &[u8]) -> Option<isakmp::capabilities::PeerCapabilities> {
    Message::parse(message).ok().map(|m| isakmp::capabilities::PeerCapabilities::recognise(m.payloads()))
}

#[test]
fn aggressive_mode_behind_nat_floats_before_am3_and_negotiates_udp_tunnel() {
    let (a, b) = fqdn_gateways();
    let mut pair = Pair::new(&a, &b, 41);
    pair.nat = Some(crate::tests::util::Nat { offset: 30_000 });
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "a: {:?}\nb: {:?}", pair.a.events, pair.b.events);
    assert_keys_agree(&pair);
    // AM1 and AM2 carry the Vendor IDs: DPD and NAT-T, and the one dialect B chose.
    let rfc = isakmp::capabilities::PeerCapabilities {
        dpd: true,
        nat_t: Some(isakmp::capabilities::NatTVersion::Rfc3947),
        fragmentation: true,
    };
    assert_eq!(capabilities(&pair.a.sent[0]), Some(rfc));
    assert_eq!(capabilities(&pair.b.sent[0]), Some(rfc));
    assert_eq!(nat_d_count(&pair.a.sent[0]), 0, "no NAT-D in AM1");
    assert_eq!(nat_d_count(&pair.b.sent[0]), 2, "AM2 carries two NAT-D");
    // A sees its own address rewritten in AM2's NAT-D and floats before AM3, as strongSwan
    // does (am-psk-fqdn.pcap): AM1 on 500, AM3, QM1 and QM3 on 4500.
    assert_eq!(ports(&pair.a.transmits), [(500, 500), (4500, 4500), (4500, 4500), (4500, 4500)]);
    // B answers AM1 where the NAT mapped port 500, and QM1 where it mapped 4500.
    assert_eq!(ports(&pair.b.transmits), [(500, 30_500), (4500, 34_500)]);
    let (on_a, on_b) = (installed(&pair.a)[0], installed(&pair.b)[0]);
    assert_eq!(on_a.suite.proposal.mode, crate::EncapsulationMode::Tunnel);
    assert_eq!(on_a.udp_encapsulation, Some(crate::UdpEncapsulation { local_port: 4500, remote_port: 4500 }));
    assert_eq!(
        on_b.udp_encapsulation,
        Some(crate::UdpEncapsulation { local_port: 4500, remote_port: 34_500 })
    );
    let view_a: Vec<_> = pair.a.engine.ike_sas().map(|v| (v.local_behind_nat, v.remote_behind_nat)).collect();
    let view_b: Vec<_> = pair.b.engine.ike_sas().map(|v| (v.local_behind_nat, v.remote_behind_nat)).collect();
    assert_eq!((view_a, view_b), (vec![(true, false)], vec![(false, true)]), "AM3's NAT-D read by B");
    // Only A, behind the NAT, keeps the mapping alive.
    pair.advance(Duration::from_secs(61));
    assert_eq!(keepalives(&pair.a.transmits), 3);
    assert_eq!(keepalives(&pair.b.transmits), 0);
}

#[test]
fn aggressive_mode_without_nat_stays_on_500_with_plain_tunnel() {
    let (a, b) = fqdn_gateways();
    let mut pair = Pair::new(&a, &b, 42);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    for side in [&pair.a, &pair.b] {
        assert!(side.transmits.iter().all(|t| (t.local.port(), t.remote.port()) == (500, 500)));
        assert!(side.transmits.iter().all(|t| !t.non_esp_marker));
        assert_eq!(installed(side)[0].udp_encapsulation, None);
        // NAT-T stays negotiated (B found NAT-D in the encrypted AM3), only nothing floated.
        let views: Vec<_> = side.engine.ike_sas().map(|v| (v.nat_traversal, v.local.port())).collect();
        assert_eq!(views, [(Some(isakmp::capabilities::NatTVersion::Rfc3947), 500)]);
    }
    assert_eq!(nat_d_count(&pair.b.sent[0]), 2, "NAT-D is exchanged even without a NAT");
}

/// Flips a byte of the last NAT-D payload of a cleartext aggressive-mode message (AM2): its
/// sender then looks as if it were behind a NAT, which strongSwan with userspace ESP fakes on
/// purpose.
fn fake_source_nat_d(t: &mut crate::Transmit) {
    let Ok(message) = Message::parse(&t.payload) else { return };
    if message.header.exchange_type != ExchangeType::Aggressive || message.encrypted_body().is_some() {
        return;
    }
    let first = message.first_payload();
    let Some(body) = t.payload.get(isakmp::HEADER_LEN..) else { return };
    let last = isakmp::RawPayloads::new(first, body, isakmp::HEADER_LEN)
        .map_while(Result::ok)
        .filter(|p| p.payload_type == PayloadType::NatDiscovery)
        .last()
        .map(|p| p.offset + 4);
    if let Some(offset) = last {
        t.payload[offset] ^= 0xff;
    }
}

#[test]
fn aggressive_mode_follows_a_responder_that_fakes_nat_d() {
    let (a, b) = fqdn_gateways();
    let mut pair = Pair::new(&a, &b, 43);
    // B's AM2 claims B is behind a NAT (as strongSwan's does): A floats for AM3, B follows.
    pair.alter = Some(Box::new(|to_b, t| {
        if !to_b {
            fake_source_nat_d(t);
        }
        true
    }));
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "a: {:?}\nb: {:?}", pair.a.events, pair.b.events);
    assert_keys_agree(&pair);
    assert_eq!(ports(&pair.a.transmits), [(500, 500), (4500, 4500), (4500, 4500), (4500, 4500)]);
    assert_eq!(ports(&pair.b.transmits), [(500, 500), (4500, 4500)], "QM2 from 4500 to 4500");
    for side in [&pair.a, &pair.b] {
        let expected = Some(crate::UdpEncapsulation { local_port: 4500, remote_port: 4500 });
        assert_eq!(installed(side)[0].udp_encapsulation, expected);
    }
    // Neither believes itself behind a NAT: no keepalives.
    pair.advance(Duration::from_secs(61));
    assert_eq!(keepalives(&pair.a.transmits) + keepalives(&pair.b.transmits), 0);
}

#[test]
fn aggressive_mode_recovers_a_lost_floated_am3_through_quick_mode() {
    let (a, b) = fqdn_gateways();
    let mut pair = Pair::new(&a, &b, 44);
    pair.nat = Some(crate::tests::util::Nat { offset: 30_000 });
    // The first AM3 (the first encrypted aggressive-mode message from A) is lost.
    let mut dropped = false;
    pair.alter = Some(Box::new(move |to_b, t| {
        let am3 = Message::parse(&t.payload).is_ok_and(|m| {
            m.header.exchange_type == ExchangeType::Aggressive && m.encrypted_body().is_some()
        });
        if to_b && am3 && !dropped {
            dropped = true;
            return false;
        }
        true
    }));
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(200, tunnel_up), "a: {:?}\nb: {:?}", pair.a.events, pair.b.events);
    assert_keys_agree(&pair);
    assert_eq!(
        installed(&pair.b)[0].udp_encapsulation,
        Some(crate::UdpEncapsulation { local_port: 4500, remote_port: 34_500 })
    );
}

#[test]
fn aggressive_mode_initial_contact_replaces_the_sas_of_a_restarted_initiator() {
    let (a, b) = fqdn_gateways();
    let mut pair = Pair::new(&a, &b, 45);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let old = installed(&pair.b)[0].connection;
    // A restarts (new engine, no SA with B): its AM3 carries INITIAL-CONTACT.
    pair.a.engine = crate::Engine::new(a.config(), Box::new(super::util::TestRng(4545)));
    pair.a.events.clear();
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, |p| !installed(&p.a).is_empty()));
    let cleared: Vec<_> = pair
        .b
        .events
        .iter()
        .filter_map(|e| match e {
            Event::SasCleared { connection, .. } => Some(*connection),
            _ => None,
        })
        .collect();
    assert_eq!(cleared, [old]);
    assert_eq!(pair.b.engine.ike_sas().count(), 1);
}

#[test]
fn aggressive_mode_is_answered_for_a_peer_that_allows_it_and_only_for_it() {
    let (a, b) = fqdn_gateways();
    // B allows aggressive mode for its peer of A only (exchange-mode aggressive), not globally.
    let b = Gateway { accept_aggressive_from_peer: true, ..b };
    let mut pair = Pair::new(&a, &b, 46);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "{:?}", failure_reasons(&pair.b));
    // A second peer on B, selected by another identity, is left in main mode: refused,
    // without reply, although the first one allows aggressive mode.
    let mut config = b.config();
    let mut other = config.peers[0].clone();
    other.name = "main-only".into();
    other.remote_address = None;
    other.remote_id = Some(IdentityConfig::Fqdn("other.example.net".into()));
    other.accept_aggressive_mode = false;
    config.peers.insert(0, other);
    config.policies[0].peer = 1;
    let mut pair = Pair::new(&a, &b, 47);
    pair.b.engine = crate::Engine::new(config, Box::new(super::util::TestRng(47)));
    let a = Gateway { local_id: Some(IdentityConfig::Fqdn("other.example.net".into())), ..a };
    pair.a.engine = crate::Engine::new(a.config(), Box::new(super::util::TestRng(48)));
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(30));
    assert!(pair.b.sent.is_empty(), "no AM2 for a peer that does not allow aggressive mode");
    let on_b = failures(&pair.b);
    assert!(!on_b.is_empty());
    assert!(on_b
        .iter()
        .all(|f| matches!(f.reason, FailureReason::Policy(PolicyFailure::AggressiveModePskRefused))));
    assert_eq!(on_b[0].peer.as_deref(), Some("main-only"));
}

#[test]
fn aggressive_mode_refuses_nonces_outside_8_to_256_bytes() {
    let (a, b) = fqdn_gateways();
    // AM1 (A's Ni) and AM2 (B's Nr): dropped as malformed before any DH or signature.
    for (from_a, len) in [(true, 0), (true, 300), (false, 4), (false, 257)] {
        let pair = super::with_nonces_of(&a, &b, from_a, len, 5);
        let receiver = if from_a { &pair.b } else { &pair.a };
        assert!(receiver.engine.statistics().malformed >= 1, "from_a {from_a} len {len}");
        assert!(!established(&pair), "from_a {from_a} len {len}");
        if from_a {
            assert_eq!(pair.b.engine.ike_sas().count(), 0, "no state for a refused AM1");
            assert!(pair.b.sent.is_empty(), "no AM2 for a refused AM1");
        }
    }
}
