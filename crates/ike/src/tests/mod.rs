//! Engine tests: two engines over an in-memory network, deterministic (virtual time, seeded
//! randomness). Names follow `<exchange>_<side>_<what>`.

mod aggressive;
mod aggressive_admission;
mod certs;
mod dpd;
mod fragmentation;
mod half_open;
mod hub;
mod inbound_first;
mod initial_contact;
mod key_log;
mod legacy_sha2;
mod lifetime;
mod nat_t;
mod quick_mode;
mod recovery;
mod replay;
mod site_keys;
mod tally;
#[path = "../../../crypto/tests/support/test_pki.rs"]
mod test_pki;
mod trace;
mod unauthenticated;
mod untrusted;
pub(crate) mod util;

use std::time::Duration;

use crypto::{DhGroup, EspCipher, HashAlgorithm, Integrity, Phase1Cipher};
use isakmp::NotifyType;

use self::util::{esp, failures, ike, installed, Faults, Gateway, Pair};
use crate::{AuthenticationFailure, PolicyFailure, TimeoutFailure};
use crate::{Event, FailureReason, IdentityConfig};

fn tunnel_up(pair: &Pair) -> bool {
    !installed(&pair.a).is_empty() && !installed(&pair.b).is_empty()
}

/// Both sides hold the same keys, crosswise: what A sends with, B receives with.
fn assert_keys_agree(pair: &Pair) {
    let (a, b) = (installed(&pair.a)[0], installed(&pair.b)[0]);
    assert_eq!(a.outbound.spi(), b.inbound.spi());
    assert_eq!(a.inbound.spi(), b.outbound.spi());
    assert_ne!(a.inbound.spi(), a.outbound.spi());
    assert_eq!(a.outbound.encryption_key_with_salt(), b.inbound.encryption_key_with_salt());
    assert_eq!(a.outbound.integrity_key(), b.inbound.integrity_key());
    assert_eq!(a.inbound.encryption_key_with_salt(), b.outbound.encryption_key_with_salt());
    assert_eq!(a.inbound.integrity_key(), b.outbound.integrity_key());
    assert_ne!(a.outbound.encryption_key_with_salt(), a.inbound.encryption_key_with_salt());
    assert_eq!(a.suite, b.suite);
    assert!(a.initiator && !b.initiator);
}

fn established(pair: &Pair) -> bool {
    let up = |s: &util::Side| s.events.iter().any(|e| matches!(e, Event::IkeSaEstablished { .. }));
    up(&pair.a) && up(&pair.b)
}

#[test]
fn main_mode_and_quick_mode_reference_scenario_establish() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 1);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "a: {:?}\nb: {:?}", pair.a.events, pair.b.events);
    assert!(established(&pair));
    assert_keys_agree(&pair);
    let (on_a, on_b) = (installed(&pair.a)[0], installed(&pair.b)[0]);
    assert_eq!(on_a.selector, a.selector());
    assert_eq!(on_b.selector, b.selector(), "the responder sees the flow mirrored");
    assert_eq!(on_a.inbound.encryption_key().len(), 8, "DES key");
    assert_eq!(on_a.inbound.integrity_key().len(), 16, "HMAC-MD5 key");
    assert!(failures(&pair.a).is_empty() && failures(&pair.b).is_empty());
    // Exactly six main-mode and three quick-mode messages, no retransmissions.
    assert_eq!(pair.a.sent.len() + pair.b.sent.len(), 9);
    let views: Vec<_> = pair.a.engine.ike_sas().collect();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].state, "established");
    assert_eq!(views[0].suite, Some(crate::IkeProposal::recommended()));
    // One SA's view by its connection id (what the daemon asks after each establishment)
    // is the one the walk gives; an id the engine never gave has none.
    let one = pair.a.engine.ike_sa(views[0].connection).expect("the view of the SA by its id");
    assert_eq!((one.connection, one.state, one.peer.as_str()), (views[0].connection, "established", "peer"));
    assert_eq!((one.remote, one.cookies, one.suite), (views[0].remote, views[0].cookies, views[0].suite));
    assert!(pair.a.engine.ike_sa(crate::ConnectionId(views[0].connection.0 + 1000)).is_none());
}

#[test]
fn algorithm_matrix_establishes_with_equal_keys() {
    let groups =
        [DhGroup::Modp1024, DhGroup::Modp2048, DhGroup::Ecp256, DhGroup::Ecp384, DhGroup::Curve25519];
    let ciphers = [Phase1Cipher::TripleDes, Phase1Cipher::Aes128, Phase1Cipher::Aes256];
    let hashes = [HashAlgorithm::Sha1, HashAlgorithm::Sha256, HashAlgorithm::Sha512];
    let esps = [
        esp(EspCipher::AesCbc128, Some(Integrity::HmacSha256_128)),
        esp(EspCipher::AesGcm256, None),
        esp(EspCipher::TripleDes, Some(Integrity::HmacSha1_96)),
    ];
    let mut seed = 100;
    for mode in [crate::ExchangeMode::Main, crate::ExchangeMode::Aggressive] {
        for (i, group) in groups.into_iter().enumerate() {
            for (j, cipher) in ciphers.into_iter().enumerate() {
                for (k, hash) in hashes.into_iter().enumerate() {
                    seed += 1;
                    let pfs = ((i + j + k) % 2 == 0).then_some(group);
                    let mut a = Gateway::fw_a();
                    a.mode = mode;
                    a.ike = vec![ike(cipher, hash, group)];
                    a.ipsec = vec![esps[(i + k) % esps.len()]];
                    a.pfs = pfs;
                    let b = Gateway {
                        ike: a.ike.clone(),
                        ipsec: a.ipsec.clone(),
                        pfs,
                        accept_aggressive_from_peer: true,
                        ..Gateway::fw_b()
                    };
                    let mut pair = Pair::new(&a, &b, seed);
                    pair.acquire_on_a(a.selector());
                    let label = format!("{mode:?}/{cipher}/{hash}/{group}/pfs {pfs:?}");
                    assert!(
                        pair.drive_until(100, tunnel_up),
                        "{label}: {:?} {:?}",
                        pair.a.events,
                        pair.b.events
                    );
                    assert_keys_agree(&pair);
                    assert_eq!(installed(&pair.a)[0].suite.pfs, pfs, "{label}");
                    let sent_mode = pair.a.sent[0].get(18).copied();
                    let expected = if mode == crate::ExchangeMode::Main { 2 } else { 4 };
                    assert_eq!(sent_mode, Some(expected), "{label}: the first message's exchange type");
                }
            }
        }
    }
}

/// An offer whose only transform uses an authentication method we do not implement (DSS
/// signatures, value 2) is refused with NO_PROPOSAL_CHOSEN, and the reason names it.
#[test]
fn main_mode_responder_rejects_an_unsupported_authentication_method() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 31);
    pair.acquire_on_a(a.selector());
    let mm1 = pair.a.engine.poll_transmit().expect("MM1");
    // The phase-1 transform's AUTHENTICATION_METHOD attribute: TV 0x8003, value 1 (PSK).
    let mut bytes = mm1.payload.clone();
    let at = bytes.windows(4).position(|w| w == [0x80, 0x03, 0x00, 0x01]).expect("auth method attribute");
    bytes[at + 3] = 2;
    let now = pair.now;
    pair.b.engine.handle_datagram(now, mm1.remote, mm1.local, &bytes);
    let reply = pair.b.engine.poll_transmit().expect("a notify");
    let notify = isakmp::Message::parse(&reply.payload).expect("parses");
    assert!(matches!(
        notify.payloads().first(),
        Some(isakmp::Payload::Notification(n)) if n.notify_type == NotifyType::NoProposalChosen
    ));
    let failure = std::iter::from_fn(|| pair.b.engine.poll_event())
        .find_map(|e| match e {
            Event::Failed(f) => Some(f),
            _ => None,
        })
        .expect("a failure event");
    let text = failure.to_string();
    assert!(text.contains("IKE proposal mismatch: peer offers"), "{text}");
    assert!(text.contains("auth 2"), "the unsupported method is named: {text}");
    assert_eq!(pair.b.engine.ike_sas().count(), 0);
}

#[test]
fn main_mode_responder_picks_first_acceptable_transform_and_shorter_lifetime() {
    let mut a = Gateway::fw_a();
    let weak = ike(Phase1Cipher::TripleDes, HashAlgorithm::Sha1, DhGroup::Modp1024);
    let strong =
        crate::IkeProposal { lifetime: Duration::from_secs(600), ..crate::IkeProposal::recommended() };
    a.ike = vec![weak, strong];
    let b = Gateway::fw_b(); // accepts only the recommended suite, lifetime 86400 s
    let mut pair = Pair::new(&a, &b, 7);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    for side in [&pair.a, &pair.b] {
        let suite = side.events.iter().find_map(|e| match e {
            Event::IkeSaEstablished { suite, .. } => Some(*suite),
            _ => None,
        });
        assert_eq!(suite, Some(strong), "600 s is shorter than 86400 s and wins on both sides");
    }
}

fn failure_reasons(side: &util::Side) -> Vec<String> {
    failures(side).iter().map(|f| f.to_string()).collect()
}

#[test]
fn main_mode_responder_rejects_wrong_pre_shared_key() {
    let a = Gateway::fw_a();
    let b = Gateway { psk: "not-tiandihui2", ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 2);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    assert!(installed(&pair.a).is_empty() && installed(&pair.b).is_empty());
    let on_b = failures(&pair.b);
    assert!(
        matches!(
            on_b[0].reason,
            FailureReason::Authentication(AuthenticationFailure::HashMismatch { hash: "HASH_I" })
                | FailureReason::Authentication(AuthenticationFailure::KeysDiffer { message: "MM5" })
        ),
        "{:?}",
        failure_reasons(&pair.b)
    );
    assert_eq!(on_b[0].state, "waiting for MM5");
    assert!(on_b[0].to_string().contains("pre-shared keys probably differ"), "{}", on_b[0]);
    let on_a = failures(&pair.a);
    // B's notify travels in clear: anyone could have sent it, so A does not end phase 1 on
    // it alone; it gives up when B stops answering, naming the notify as the likely cause.
    assert!(
        matches!(
            &on_a[0].reason,
            FailureReason::Timeout(TimeoutFailure::OnlyUnauthenticated { last, .. })
                if matches!(**last, FailureReason::PeerNotified(NotifyType::AuthenticationFailed))
        ),
        "{:?}",
        failure_reasons(&pair.a)
    );
    assert!(on_a[0].to_string().contains("peer sent notify AUTHENTICATION-FAILED"), "{}", on_a[0]);
    assert_eq!(on_a.len(), 1, "one failure per exchange");
    assert_eq!(pair.a.engine.ike_sas().count(), 0, "no half-made SA left on A");
    assert_eq!(pair.b.engine.ike_sas().count(), 0, "no half-made SA left on B");
}

#[test]
fn main_mode_responder_rejects_proposal_mismatch_naming_both_sides() {
    let mut a = Gateway::fw_a();
    a.ike = vec![ike(Phase1Cipher::Aes128, HashAlgorithm::Sha1, DhGroup::Modp1024)];
    let b = Gateway::fw_b();
    let mut pair = Pair::new(&a, &b, 3);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    let text = failure_reasons(&pair.b).join("\n");
    assert!(
        text.contains("IKE proposal mismatch: peer offers aes-128/sha1/group2/pre-share, we accept aes-256/sha2-256/group14/pre-share"),
        "{text}"
    );
    assert!(text.contains("192.0.2.1"), "{text}");
    assert!(matches!(failures(&pair.a)[0].reason, FailureReason::PeerNotified(NotifyType::NoProposalChosen)));
    assert_eq!(pair.b.engine.ike_sas().count(), 0);
    assert_eq!(pair.a.engine.ike_sas().count(), 0);
}

/// A against B (the recommended aes-256/sha2-256/group14) with A's only IKE proposal
/// `offered`: phase 1 fails on both sides, B's reason lists both suites, A hears
/// NO_PROPOSAL_CHOSEN, and no SA is left.
fn assert_phase1_mismatch(offered: crate::IkeProposal, shown: &str, seed: u64) {
    let a = Gateway { ike: vec![offered], ..Gateway::fw_a() };
    let b = Gateway::fw_b();
    let mut pair = Pair::new(&a, &b, seed);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    let text = failure_reasons(&pair.b).join("\n");
    let expected =
        format!("IKE proposal mismatch: peer offers {shown}, we accept aes-256/sha2-256/group14/pre-share");
    assert!(text.contains(&expected), "{text}");
    let on_a = failures(&pair.a);
    assert_eq!(on_a.len(), 1, "{:?}", failure_reasons(&pair.a));
    assert!(
        matches!(on_a[0].reason, FailureReason::PeerNotified(NotifyType::NoProposalChosen)),
        "{}",
        on_a[0]
    );
    assert!(!established(&pair));
    assert_eq!(pair.b.engine.ike_sas().count(), 0);
    assert_eq!(pair.a.engine.ike_sas().count(), 0);
}

#[test]
fn main_mode_responder_rejects_encryption_mismatch() {
    assert_phase1_mismatch(
        ike(Phase1Cipher::Aes128, HashAlgorithm::Sha256, DhGroup::Modp2048),
        "aes-128/sha2-256/group14/pre-share",
        20,
    );
}

#[test]
fn main_mode_responder_rejects_hash_mismatch() {
    assert_phase1_mismatch(
        ike(Phase1Cipher::Aes256, HashAlgorithm::Sha1, DhGroup::Modp2048),
        "aes-256/sha1/group14/pre-share",
        21,
    );
}

#[test]
fn main_mode_responder_rejects_group_mismatch() {
    assert_phase1_mismatch(
        ike(Phase1Cipher::Aes256, HashAlgorithm::Sha256, DhGroup::Modp1024),
        "aes-256/sha2-256/group2/pre-share",
        22,
    );
}

#[test]
fn quick_mode_responder_rejects_pfs_mismatch() {
    let a = Gateway { pfs: Some(DhGroup::Modp2048), ..Gateway::fw_a() };
    let b = Gateway::fw_b();
    let mut pair = Pair::new(&a, &b, 4);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    assert!(established(&pair), "phase 1 is unaffected");
    assert!(installed(&pair.a).is_empty() && installed(&pair.b).is_empty());
    let text = failure_reasons(&pair.b).join("\n");
    assert!(text.contains("IPsec proposal mismatch"), "{text}");
    assert!(text.contains("pfs-group14") && text.contains("no-pfs"), "{text}");
    assert!(matches!(failures(&pair.a)[0].reason, FailureReason::PeerNotified(NotifyType::NoProposalChosen)));
}

#[test]
fn quick_mode_responder_rejects_ipsec_proposal_mismatch() {
    let a = Gateway::fw_a();
    let b = Gateway {
        ipsec: vec![esp(EspCipher::AesCbc256, Some(Integrity::HmacSha256_128))],
        ..Gateway::fw_b()
    };
    let mut pair = Pair::new(&a, &b, 5);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    let text = failure_reasons(&pair.b).join("\n");
    assert!(text.contains("peer offers esp-des-cbc/hmac-md5-96/tunnel/no-pfs"), "{text}");
    assert!(text.contains("we accept esp-aes-cbc-256/hmac-sha2-256-128/tunnel/no-pfs"), "{text}");
    assert!(matches!(failures(&pair.a)[0].reason, FailureReason::PeerNotified(NotifyType::NoProposalChosen)));
}

#[test]
fn quick_mode_responder_rejects_flow_outside_its_acl() {
    let a = Gateway::fw_a();
    // B protects 10.2.3.0/24 instead of 10.2.2.0/24: A's flow is not mirrored.
    let b = Gateway { inside: std::net::Ipv4Addr::new(10, 2, 3, 0), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 6);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    let text = failure_reasons(&pair.b).join("\n");
    assert!(text.contains("10.1.1.0/255.255.255.0 -> 10.2.2.0/255.255.255.0"), "{text}");
    assert!(text.contains("not covered by any ACL"), "{text}");
    assert!(matches!(
        failures(&pair.a)[0].reason,
        FailureReason::PeerNotified(NotifyType::InvalidIdInformation)
    ));
}

#[test]
fn quick_mode_responder_accepts_flow_inside_its_acl() {
    let a = Gateway::fw_a();
    // B's rule covers 10.2.0.0/16 <-> 10.1.0.0/16; A proposes the narrower /24 flow.
    let mut b = Gateway::fw_b();
    b.inside = std::net::Ipv4Addr::new(10, 2, 0, 0);
    b.far = std::net::Ipv4Addr::new(10, 1, 0, 0);
    let mut config_b = b.clone();
    config_b.limits = b.limits;
    let mut pair = Pair::new(&a, &b, 8);
    // Widen B's selector to /16 by rebuilding its engine.
    let mut config = b.config();
    config.policies[0].selectors[0].local = crate::Subnet::new(b.inside, 16).into();
    config.policies[0].selectors[0].remote = crate::Subnet::new(b.far, 16).into();
    pair.b.engine = crate::Engine::new(config, Box::new(util::TestRng(99)));
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "{:?}", pair.b.events);
    assert_eq!(installed(&pair.b)[0].selector, b_selector_narrow());
}

/// A hub with a template peer (no remote address) and an ACL covering every branch answers a
/// branch whose address it does not know, and installs the branch's narrower flow.
#[test]
fn main_mode_responder_answers_an_unknown_address_through_the_template_peer() {
    let a = Gateway { local: std::net::Ipv4Addr::new(192, 0, 2, 11), ..Gateway::fw_a() };
    let b = Gateway { remote: std::net::Ipv4Addr::new(192, 0, 2, 99), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 12);
    let mut config = b.config();
    config.peers[0].remote_address = None;
    config.policies[0].selectors[0].remote =
        crate::Subnet::new(std::net::Ipv4Addr::new(10, 1, 0, 0), 16).into();
    pair.b.engine = crate::Engine::new(config, Box::new(util::TestRng(7)));
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "{:?}", pair.b.events);
    let on_b = installed(&pair.b)[0];
    assert_eq!(on_b.selector, b.selector(), "the branch's flow, not the whole ACL");
    assert_eq!(on_b.remote.ip(), std::net::IpAddr::V4(a.local));
    // Without the template peer the same branch is refused as unknown.
    let mut pair = Pair::new(&a, &b, 13);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(60));
    assert!(!tunnel_up(&pair));
    assert!(failures(&pair.b)
        .iter()
        .any(|f| matches!(f.reason, FailureReason::Policy(PolicyFailure::UnknownPeer))));
}

fn b_selector_narrow() -> crate::TrafficSelector {
    Gateway::fw_b().selector()
}

#[test]
fn main_mode_checks_configured_remote_identity() {
    let a = Gateway { local_id: Some(IdentityConfig::Fqdn("fwa.example.net".into())), ..Gateway::fw_a() };
    let b = Gateway { remote_id: Some(IdentityConfig::Fqdn("other.example.net".into())), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 9);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    let text = failure_reasons(&pair.b).join("\n");
    assert!(
        text.contains(
            "peer identity fqdn fwa.example.net is not the configured remote-id fqdn other.example.net"
        ),
        "{text}"
    );
    assert!(matches!(
        util::cause(&failures(&pair.a)[0].reason),
        FailureReason::PeerNotified(NotifyType::InvalidIdInformation)
    ));

    // With the right name it works, case-insensitively.
    let b = Gateway { remote_id: Some(IdentityConfig::Fqdn("FWA.example.NET".into())), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 10);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
}

#[test]
fn exchanges_converge_despite_loss_duplication_and_reordering() {
    for seed in 0..20 {
        let a = Gateway {
            limits: crate::Limits { retransmit_count: 12, ..Gateway::fw_a().limits },
            ..Gateway::fw_a()
        };
        let b = Gateway { limits: a.limits, ..Gateway::fw_b() };
        let mut pair = Pair::new(&a, &b, 1000 + seed);
        pair.faults = Faults { loss: 30, duplicate: 20, jitter: Duration::from_millis(300) };
        pair.acquire_on_a(a.selector());
        assert!(
            pair.drive_until(5000, tunnel_up),
            "seed {seed}: a: {:?}\nb: {:?}",
            failure_reasons(&pair.a),
            failure_reasons(&pair.b)
        );
        assert_keys_agree(&pair);
        assert_eq!(installed(&pair.a).len(), 1, "seed {seed}: one pair of SAs, not one per duplicate");
        assert_eq!(installed(&pair.b).len(), 1, "seed {seed}");
        assert_eq!(pair.b.engine.ike_sas().count(), 1, "seed {seed}: duplicates of MM1 made no second SA");
    }
}

#[test]
fn main_mode_initiator_gives_up_on_a_vanished_peer() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 11);
    pair.b_alive = false;
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(600));
    let on_a = failures(&pair.a);
    assert_eq!(on_a.len(), 1, "{:?}", failure_reasons(&pair.a));
    assert!(
        matches!(on_a[0].reason, FailureReason::Timeout(TimeoutFailure::NoAnswer { retransmissions: 5, .. })),
        "{}",
        on_a[0]
    );
    assert_eq!(pair.a.sent.len(), 6, "MM1 and five retransmissions");
    assert_eq!(pair.a.engine.ike_sas().count(), 0);
    assert_eq!(pair.a.engine.poll_timeout(), None, "nothing left to wait for");
}

#[test]
fn main_mode_responder_answers_repeated_mm1_from_memory_a_few_times() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 12);
    pair.acquire_on_a(a.selector());
    let mm1 = pair.a.engine.poll_transmit().expect("MM1");
    let now = pair.now;
    for _ in 0..10 {
        pair.b.engine.handle_datagram(now, mm1.remote, mm1.local, &mm1.payload);
    }
    let mut replies = Vec::new();
    while let Some(t) = pair.b.engine.poll_transmit() {
        replies.push(t.payload);
    }
    assert_eq!(replies.len(), 4, "the first answer and three repeats, then silence");
    assert!(replies.windows(2).all(|w| w[0] == w[1]), "repeats are the stored MM2, not new work");
    assert_eq!(pair.b.engine.ike_sas().count(), 1);
}

#[test]
fn main_mode_responder_keeps_half_open_sas_within_its_memory_budget() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    // Room for about five minimal half-open SAs.
    let b = Gateway { limits: crate::Limits { half_open_memory_budget: 6_700, ..b.limits }, ..b };
    let mut pair = Pair::new(&a, &b, 13);
    let mut cookies = Vec::new();
    for i in 0..20 {
        let mut a_engine = crate::Engine::new(a.config(), Box::new(util::TestRng(500 + i as u64)));
        a_engine.handle_acquire(pair.now, crate::Acquire { policy: 0, selector: a.selector() });
        let mm1 = a_engine.poll_transmit().expect("MM1");
        cookies.push(isakmp::Message::parse(&mm1.payload).expect("MM1").header.initiator_cookie);
        pair.b.engine.handle_datagram(pair.now, mm1.remote, mm1.local, &mm1.payload);
        assert!(pair.b.engine.poll_transmit().is_some(), "MM1 {i} is answered: no newcomer is refused");
        let usage = pair.b.engine.half_open();
        assert!(usage.bytes <= usage.budget, "{usage:?}");
    }
    let usage = pair.b.engine.half_open();
    assert!((3..=usage.max_entries()).contains(&usage.entries), "{usage:?}");
    assert_eq!(pair.b.engine.statistics().half_open_evicted, 20 - usage.entries as u64);
    // The newest stayed, the oldest went.
    let mut kept: Vec<_> = pair.b.engine.ike_sas().map(|sa| sa.cookies.0).collect();
    kept.sort_unstable();
    let mut newest = cookies[20 - usage.entries..].to_vec();
    newest.sort_unstable();
    assert_eq!(kept, newest);
    assert!(failures(&pair.b).is_empty(), "evictions are counted, not reported one by one");
}

#[test]
fn engine_survives_garbage_and_mutated_messages() {
    use proptest::prelude::*;
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    // A valid exchange to take messages from.
    let mut pair = Pair::new(&a, &b, 14);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let captured: Vec<Vec<u8>> = pair.a.sent.iter().chain(pair.b.sent.iter()).cloned().collect();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(300));
    let strategy = (0..captured.len(), proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8));
    runner
        .run(&strategy, |(which, flips)| {
            let mut pair = Pair::new(&a, &b, 15);
            pair.acquire_on_a(a.selector());
            pair.drive_until(100, tunnel_up);
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

/// strongSwan answers an MM5 it cannot decrypt with an encrypted PAYLOAD-MALFORMED under its
/// own keys, once for each of our retransmissions. One such answer could be anyone's (a forged
/// or corrupted datagram), so it does not end the exchange; the third does, and says the keys
/// differ instead of retransmitting until the timeout.
#[test]
fn main_mode_initiator_reads_an_unreadable_encrypted_reply_to_mm5_as_keys_differ() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 21);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(50, |p| p.a.sent.len() >= 3), "MM5 sent");
    pair.b_alive = false;
    let mm5 = pair.a.sent[2].clone();
    let mut reply = mm5[..28].to_vec();
    reply[16] = 8; // next payload: HASH
    reply[18] = 5; // informational
    reply[19] = 1; // encrypted
    reply[20..24].copy_from_slice(&[0x12, 0x34, 0x56, 0x78]);
    reply.extend_from_slice(&[0x5a; 48]);
    let len = u32::try_from(reply.len()).unwrap().to_be_bytes();
    reply[24..28].copy_from_slice(&len);
    for repeat in 1..=crate::sa::unauthenticated::REPEATS_TO_FAIL {
        assert!(failures(&pair.a).is_empty(), "ended after {} unreadable replies", repeat - 1);
        assert_eq!(pair.a.engine.ike_sas().count(), 1, "the exchange goes on");
        let now = pair.now;
        pair.a.engine.handle_datagram(now, pair.a.address, pair.b.address, &reply);
        pair.step();
    }
    assert_eq!(pair.a.engine.statistics().unauthenticated_dropped, 3);
    let on_a = failures(&pair.a);
    assert_eq!(on_a.len(), 1, "{:?}", failure_reasons(&pair.a));
    assert!(
        matches!(on_a[0].reason, FailureReason::Authentication(AuthenticationFailure::KeysDiffer { .. })),
        "{}",
        on_a[0]
    );
    assert!(on_a[0].to_string().contains("pre-shared keys probably differ"), "{}", on_a[0]);
    assert_eq!(on_a[0].state, "waiting for MM6");
}

/// A main- or aggressive-mode pair where every cleartext nonce sent by one side has `len`
/// bytes; returns the pair after `secs` of virtual time.
pub(super) fn with_nonces_of(a: &Gateway, b: &Gateway, from_a: bool, len: usize, secs: u64) -> Pair {
    let mut pair = Pair::new(a, b, 90 + len as u64);
    let nonce: &'static [u8] = vec![0x5a; len].leak();
    pair.alter = Some(Box::new(move |to_b, t| {
        if to_b == from_a {
            util::replace_cleartext_nonce(t, nonce);
        }
        true
    }));
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(secs));
    pair
}

#[test]
fn main_mode_refuses_nonces_outside_8_to_256_bytes() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    // MM3 (A's Ni) and MM4 (B's Nr) of 7 and 257 bytes: dropped as malformed, never keyed.
    for (from_a, len) in [(true, 7), (true, 257), (false, 7), (false, 257)] {
        let pair = with_nonces_of(&a, &b, from_a, len, 5);
        let receiver = if from_a { &pair.b } else { &pair.a };
        assert!(receiver.engine.statistics().malformed >= 1, "from_a {from_a} len {len}");
        assert!(!tunnel_up(&pair), "from_a {from_a} len {len}");
        assert!(!established(&pair), "from_a {from_a} len {len}");
    }
    // The bounds themselves parse (the rewritten nonce then fails later, as the keys differ).
    for (from_a, len) in [(true, 8), (false, 256)] {
        let pair = with_nonces_of(&a, &b, from_a, len, 5);
        assert_eq!(pair.a.engine.statistics().malformed + pair.b.engine.statistics().malformed, 0);
    }
}
