//! Quick mode beyond ESP between prefixes: AH and AH+ESP (RFC 2407 §4.4.3, RFC 2408 §4.2,
//! RFC 2409 §5.5), and proxy identities with address ranges, protocols and ports
//! (RFC 2407 §4.6.2).

use std::net::Ipv4Addr;
use std::time::Duration;

use crypto::{DhGroup, EspCipher, Integrity};
use isakmp::{NotifyType, ProtocolId};

use super::util::{esp, failures, installed, Gateway, Pair, NET_A, NET_B};
use super::{failure_reasons, tunnel_up};
use crate::proposal::{choose_ipsec, quick_mode_offer, IpsecSuite, OurSpis};
use crate::{
    Addresses, EncapsulationMode, Event, FailureReason, IpsecProposal, IpsecProtocols, Subnet,
    TrafficSelector,
};

fn ah(integrity: Integrity) -> IpsecProposal {
    IpsecProposal { protocols: IpsecProtocols::Ah { integrity }, mode: EncapsulationMode::Tunnel }
}

fn ah_esp(
    ah_integrity: Integrity,
    esp_encryption: EspCipher,
    esp_integrity: Option<Integrity>,
) -> IpsecProposal {
    IpsecProposal {
        protocols: IpsecProtocols::AhEsp { ah_integrity, esp_encryption, esp_integrity },
        mode: EncapsulationMode::Tunnel,
    }
}

fn suite(proposal: IpsecProposal) -> IpsecSuite {
    IpsecSuite { proposal, pfs: None, lifetime: Duration::from_secs(3600), lifetime_kilobytes: None }
}

/// Both sides hold the same AH keys, crosswise, and the pair is named by the expected SAs.
fn assert_ah_keys_agree(pair: &Pair) {
    let (a, b) = (installed(&pair.a)[0], installed(&pair.b)[0]);
    let (a_ah, b_ah) = (a.ah.as_ref().expect("AH keys on A"), b.ah.as_ref().expect("AH keys on B"));
    assert_eq!(a_ah.outbound.spi(), b_ah.inbound.spi());
    assert_eq!(a_ah.inbound.spi(), b_ah.outbound.spi());
    assert_ne!(a_ah.inbound.spi(), a_ah.outbound.spi());
    assert_eq!(a_ah.outbound.integrity_key(), b_ah.inbound.integrity_key());
    assert_eq!(a_ah.inbound.integrity_key(), b_ah.outbound.integrity_key());
    assert_ne!(a_ah.inbound.integrity_key(), a_ah.outbound.integrity_key());
    assert!(a_ah.inbound.encryption_key_with_salt().is_empty(), "AH has no encryption key");
    assert_eq!(a_ah.integrity, b_ah.integrity);
    assert_eq!(a_ah.inbound.integrity_key().len(), a_ah.integrity.key_len());
    assert_eq!(a.suite, b.suite);
}

#[test]
fn quick_mode_offer_for_ah_esp_is_two_proposals_with_one_number() {
    let suites = [
        suite(esp(EspCipher::AesCbc128, Some(Integrity::HmacSha1_96))),
        suite(ah_esp(Integrity::HmacSha256_128, EspCipher::AesCbc256, Some(Integrity::HmacSha1_96))),
        suite(ah(Integrity::HmacSha512_256)),
    ];
    let spis = OurSpis { esp: [0, 0, 1, 1], ah: [0, 0, 2, 2] };
    let offer = quick_mode_offer(&suites, &spis, None);
    let summary: Vec<(u8, ProtocolId, &[u8], u8)> =
        offer.proposals.iter().map(|p| (p.number, p.protocol, p.spi, p.transforms[0].transform_id)).collect();
    assert_eq!(
        summary,
        vec![
            (1, ProtocolId::Esp, &[0, 0, 1, 1][..], 12),
            // AH first, then ESP, under the same number: both are required (RFC 2408 §4.2).
            (2, ProtocolId::Ah, &[0, 0, 2, 2][..], 5),
            (2, ProtocolId::Esp, &[0, 0, 1, 1][..], 12),
            (3, ProtocolId::Ah, &[0, 0, 2, 2][..], 7),
        ]
    );

    // A responder that accepts only AH+ESP takes proposal 2 with both of its protocols.
    let choice = choose_ipsec(&offer, &suites[1..2]).expect("AH+ESP chosen");
    assert_eq!(choice.proposal_number, 2);
    let parts: Vec<(ProtocolId, [u8; 4])> = choice.parts.iter().map(|p| (p.protocol, p.peer_spi)).collect();
    assert_eq!(parts, vec![(ProtocolId::Ah, [0, 0, 2, 2]), (ProtocolId::Esp, [0, 0, 1, 1])]);
    assert_eq!(choice.suite, suites[1]);
    assert_eq!(choice.suite.to_string(), "ah-hmac-sha2-256-128+esp-aes-cbc-256/hmac-sha1-96/tunnel/no-pfs");
    assert_eq!(suites[2].to_string(), "ah-hmac-sha2-512-256/tunnel/no-pfs");

    // One that accepts only the ESP half of it does not take the AND-ed proposal apart.
    let esp_half = suite(esp(EspCipher::AesCbc256, Some(Integrity::HmacSha1_96)));
    let mismatch = choose_ipsec(&offer, &[esp_half]).expect_err("ESP alone is not AH+ESP");
    assert!(
        mismatch.to_string().contains("ah-hmac-sha2-256-128+esp-aes-cbc-256/hmac-sha1-96/tunnel/no-pfs"),
        "{mismatch}"
    );
}

#[test]
fn quick_mode_establishes_ah_alone_with_each_algorithm() {
    // Each negotiated algorithm (the legacy 96-bit SHA2-256 is a local setting, not an offer:
    // tests/legacy_sha2.rs).
    let negotiated = Integrity::ALL.into_iter().filter(|i| *i == i.negotiated());
    for (seed, integrity) in negotiated.enumerate() {
        let a = Gateway { ipsec: vec![ah(integrity)], ..Gateway::fw_a() };
        let b = Gateway { ipsec: vec![ah(integrity)], ..Gateway::fw_b() };
        let mut pair = Pair::new(&a, &b, 300 + seed as u64);
        pair.acquire_on_a(a.selector());
        assert!(pair.drive_until(100, tunnel_up), "{integrity:?}: b: {:?}", failure_reasons(&pair.b));
        assert_ah_keys_agree(&pair);
        let on_a = installed(&pair.a)[0];
        let ah_keys = on_a.ah.as_ref().expect("AH");
        // For AH alone the pair is known by its AH SAs.
        assert_eq!(on_a.inbound.spi(), ah_keys.inbound.spi());
        assert_eq!(on_a.outbound.spi(), ah_keys.outbound.spi());
        assert_eq!(on_a.inbound.integrity_key(), ah_keys.inbound.integrity_key());
        assert_eq!(on_a.suite.proposal.protocols, IpsecProtocols::Ah { integrity });
        assert!(failures(&pair.a).is_empty() && failures(&pair.b).is_empty());
    }
}

#[test]
fn quick_mode_establishes_ah_esp_with_separate_spis_and_keys_per_protocol() {
    let proposal = ah_esp(Integrity::HmacSha1_96, EspCipher::AesCbc128, Some(Integrity::HmacSha1_96));
    // A offers ESP alone first; B accepts only AH+ESP and so chooses A's second proposal.
    let a = Gateway {
        ipsec: vec![esp(EspCipher::AesCbc128, Some(Integrity::HmacSha1_96)), proposal],
        pfs: Some(DhGroup::Modp2048),
        ..Gateway::fw_a()
    };
    let b = Gateway { ipsec: vec![proposal], pfs: Some(DhGroup::Modp2048), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 310);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "b: {:?}", failure_reasons(&pair.b));
    super::assert_keys_agree(&pair);
    assert_ah_keys_agree(&pair);
    let on_a = installed(&pair.a)[0];
    assert_eq!(on_a.suite.proposal, proposal);
    assert_eq!(on_a.suite.to_string(), "ah-hmac-sha1-96+esp-aes-cbc-128/hmac-sha1-96/tunnel/pfs-group14");
    let ah_keys = on_a.ah.as_ref().expect("AH");
    // Each protocol has its own SPIs, and its KEYMAT is derived with its own protocol number
    // and SPI: the same algorithm gets different keys.
    assert_ne!(ah_keys.inbound.spi(), on_a.inbound.spi());
    assert_ne!(ah_keys.outbound.spi(), on_a.outbound.spi());
    assert_ne!(ah_keys.inbound.integrity_key(), on_a.inbound.integrity_key());
    assert_ne!(ah_keys.outbound.integrity_key(), on_a.outbound.integrity_key());
    assert_eq!(on_a.inbound.encryption_key().len(), 16);

    // The engine lists the AH SPIs beside the ESP ones.
    let view = pair.a.engine.ipsec_sas(pair.now).next().expect("one pair");
    assert_eq!(view.ah_spis, Some((ah_keys.inbound.spi().0, ah_keys.outbound.spi().0)));
    assert_eq!(view.inbound_spi, on_a.inbound.spi().0);

    // A reset deletes both protocols' SAs: B hears of both of its outbound SPIs.
    pair.a.engine.handle_command(pair.now, crate::Command::ResetIpsecSa { remote: None, policy: None });
    pair.drive_for(Duration::from_secs(5));
    let on_b = installed(&pair.b)[0];
    let deleted: Vec<u32> = pair
        .b
        .events
        .iter()
        .filter_map(|e| match e {
            Event::IpsecSaDeleted { spis, .. } => Some(spis.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let b_ah = on_b.ah.as_ref().expect("AH on B");
    assert!(deleted.contains(&on_b.outbound.spi().0), "{deleted:?}");
    assert!(deleted.contains(&b_ah.outbound.spi().0), "{deleted:?}");
    assert_eq!(pair.b.engine.ipsec_sas(pair.now).count(), 0);
}

#[test]
fn quick_mode_responder_rejects_ah_esp_when_it_accepts_only_esp() {
    let a = Gateway {
        ipsec: vec![ah_esp(Integrity::HmacSha256_128, EspCipher::Des, Some(Integrity::HmacMd5_96))],
        ..Gateway::fw_a()
    };
    let b = Gateway::fw_b(); // esp-des-cbc/hmac-md5-96 only: the ESP half alone
    let mut pair = Pair::new(&a, &b, 320);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    assert!(installed(&pair.a).is_empty() && installed(&pair.b).is_empty());
    let text = failure_reasons(&pair.b).join("\n");
    assert!(
        text.contains("peer offers ah-hmac-sha2-256-128+esp-des-cbc/hmac-md5-96/tunnel/no-pfs"),
        "{text}"
    );
    assert!(text.contains("we accept esp-des-cbc/hmac-md5-96/tunnel/no-pfs"), "{text}");
    assert!(matches!(failures(&pair.a)[0].reason, FailureReason::PeerNotified(NotifyType::NoProposalChosen)));

    // And AH with another algorithm than the responder's is refused the same way.
    let a = Gateway { ipsec: vec![ah(Integrity::HmacSha1_96)], ..Gateway::fw_a() };
    let b = Gateway { ipsec: vec![ah(Integrity::HmacMd5_96)], ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 321);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    let text = failure_reasons(&pair.b).join("\n");
    assert!(
        text.contains("peer offers ah-hmac-sha1-96/tunnel/no-pfs, we accept ah-hmac-md5-96/tunnel/no-pfs"),
        "{text}"
    );
    assert!(matches!(failures(&pair.a)[0].reason, FailureReason::PeerNotified(NotifyType::NoProposalChosen)));
}

#[test]
fn address_ranges_normalise_to_prefixes_when_they_are_one() {
    let r = |a: [u8; 4], b: [u8; 4]| Addresses::range(Ipv4Addr::from(a), Ipv4Addr::from(b));
    assert_eq!(r([10, 1, 1, 0], [10, 1, 1, 255]), Subnet::new(Ipv4Addr::new(10, 1, 1, 0), 24));
    assert_eq!(r([10, 1, 1, 7], [10, 1, 1, 7]), Subnet::new(Ipv4Addr::new(10, 1, 1, 7), 32));
    assert_eq!(r([0, 0, 0, 0], [255, 255, 255, 255]), Subnet::new(Ipv4Addr::UNSPECIFIED, 0));
    assert_eq!(
        r([10, 1, 1, 20], [10, 1, 1, 10]),
        Addresses::Range { start: Ipv4Addr::new(10, 1, 1, 10), end: Ipv4Addr::new(10, 1, 1, 20) },
        "bounds are put in order"
    );
    let net = Addresses::from(Subnet::new(NET_A, 24));
    assert!(net.contains(&r([10, 1, 1, 10], [10, 1, 1, 20])));
    assert!(!net.contains(&r([10, 1, 1, 200], [10, 1, 2, 5])));
    assert!(r([10, 1, 1, 0], [10, 1, 2, 255]).contains(&net));
    assert_eq!(r([10, 1, 1, 10], [10, 1, 1, 20]).to_string(), "10.1.1.10-10.1.1.20");
}

/// A's flow from a range of its hosts to B's network.
fn range_flow(start: Ipv4Addr, end: Ipv4Addr) -> TrafficSelector {
    TrafficSelector {
        local: Addresses::Range { start, end },
        ..TrafficSelector::between(Subnet::new(NET_A, 24), Subnet::new(NET_B, 24))
    }
}

#[test]
fn quick_mode_responder_accepts_an_address_range_inside_its_acl() {
    let flow = range_flow(Ipv4Addr::new(10, 1, 1, 10), Ipv4Addr::new(10, 1, 1, 20));
    let a = Gateway { rules: vec![flow], ..Gateway::fw_a() };
    let b = Gateway::fw_b();
    let mut pair = Pair::new(&a, &b, 330);
    pair.acquire_on_a(flow);
    assert!(pair.drive_until(100, tunnel_up), "b: {:?}", failure_reasons(&pair.b));
    super::assert_keys_agree(&pair);
    assert_eq!(installed(&pair.a)[0].selector, flow);
    assert_eq!(installed(&pair.b)[0].selector, flow.reversed(), "B sees the range on the peer's side");

    // A range that is exactly a prefix is the prefix, whoever sends it.
    let whole = range_flow(Ipv4Addr::new(10, 1, 1, 0), Ipv4Addr::new(10, 1, 1, 255));
    let a = Gateway { rules: vec![whole], ..Gateway::fw_a() };
    let mut pair = Pair::new(&a, &b, 331);
    pair.acquire_on_a(whole);
    assert!(pair.drive_until(100, tunnel_up), "b: {:?}", failure_reasons(&pair.b));
    assert_eq!(installed(&pair.b)[0].selector, b.selector());
}

#[test]
fn quick_mode_responder_rejects_an_address_range_outside_its_acl() {
    let flow = range_flow(Ipv4Addr::new(10, 1, 1, 200), Ipv4Addr::new(10, 1, 2, 5));
    let a = Gateway { rules: vec![flow], ..Gateway::fw_a() };
    let b = Gateway::fw_b();
    let mut pair = Pair::new(&a, &b, 332);
    pair.acquire_on_a(flow);
    pair.drive_for(Duration::from_secs(120));
    assert!(installed(&pair.a).is_empty() && installed(&pair.b).is_empty());
    let text = failure_reasons(&pair.b).join("\n");
    assert!(text.contains("10.1.1.200-10.1.2.5 -> 10.2.2.0/255.255.255.0"), "{text}");
    assert!(text.contains("not covered by any ACL"), "{text}");
    assert!(matches!(
        failures(&pair.a)[0].reason,
        FailureReason::PeerNotified(NotifyType::InvalidIdInformation)
    ));
}

/// TCP from A's network to port `port` on B's network (`None`: any port).
fn tcp_to(port: Option<u16>) -> TrafficSelector {
    TrafficSelector {
        protocol: 6,
        remote_port: port,
        ..TrafficSelector::between(Subnet::new(NET_A, 24), Subnet::new(NET_B, 24))
    }
}

/// Runs A proposing `proposed` against B whose only rule is `b_rule` (from B's side).
fn port_pair(proposed: TrafficSelector, b_rule: TrafficSelector, seed: u64) -> Pair {
    let a = Gateway { rules: vec![proposed], ..Gateway::fw_a() };
    let b = Gateway { rules: vec![b_rule], ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, seed);
    pair.acquire_on_a(proposed);
    pair
}

#[test]
fn quick_mode_negotiates_protocol_and_port_specific_flows() {
    // B's rule names the same port: mirrored.
    let https = tcp_to(Some(443));
    let mut pair = port_pair(https, https.reversed(), 340);
    assert!(pair.drive_until(100, tunnel_up), "b: {:?}", failure_reasons(&pair.b));
    super::assert_keys_agree(&pair);
    assert_eq!(installed(&pair.a)[0].selector, https);
    let on_b = installed(&pair.b)[0].selector;
    assert_eq!((on_b.protocol, on_b.local_port, on_b.remote_port), (6, Some(443), None));

    // B's rule allows any TCP port (or any protocol): port 443 lies inside.
    for (i, rule) in [tcp_to(None).reversed(), Gateway::fw_b().selector()].into_iter().enumerate() {
        let mut pair = port_pair(https, rule, 341 + i as u64);
        assert!(pair.drive_until(100, tunnel_up), "{rule}: b: {:?}", failure_reasons(&pair.b));
        assert_eq!(installed(&pair.b)[0].selector, https.reversed());
    }
}

/// Issue 15 (L2TP over IPsec as USG configures it): each ACL rule with a protocol and a port
/// is its own quick mode, whose IDci / IDcr carry the rule's protocol and ports
/// (RFC 2407 §4.6.2), and its own pair of SAs.
#[test]
fn each_port_specific_rule_gets_its_own_quick_mode_and_pair_with_its_ids() {
    let l2tp = TrafficSelector { protocol: 17, remote_port: Some(1701), ..tcp_to(None) };
    let https = TrafficSelector {
        local: Subnet::new(Ipv4Addr::new(10, 1, 1, 7), 32).into(),
        local_port: Some(443),
        ..tcp_to(None)
    };
    let a = Gateway { rules: vec![l2tp, https], ..Gateway::fw_a() };
    let b = Gateway { rules: vec![l2tp.reversed(), https.reversed()], ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 360);
    pair.a.engine.set_message_trace(true);
    pair.acquire_on_a(l2tp);
    pair.acquire_on_a(https);
    assert!(
        pair.drive_until(200, |p| installed(&p.a).len() == 2 && installed(&p.b).len() == 2),
        "a: {:?}\nb: {:?}",
        failure_reasons(&pair.a),
        failure_reasons(&pair.b)
    );
    let mut on_a: Vec<TrafficSelector> = installed(&pair.a).iter().map(|p| p.selector).collect();
    on_a.sort_by_key(|s| s.protocol);
    assert_eq!(on_a, [https, l2tp]);
    let mut on_b: Vec<TrafficSelector> = installed(&pair.b).iter().map(|p| p.selector).collect();
    on_b.sort_by_key(|s| s.protocol);
    assert_eq!(on_b, [https.reversed(), l2tp.reversed()]);
    // The proxy IDs A sent in its two QM1s, as B decrypted and checked them.
    let sent: Vec<String> = std::iter::from_fn(|| pair.a.engine.poll_message_trace())
        .filter(|t| t.direction == crate::trace::Direction::Sent && t.step.to_string() == "QM1")
        .map(|t| t.summary)
        .collect();
    let ids = |ci: &str, cr: &str| sent.iter().any(|s| s.contains(&format!("ID({ci}), ID({cr})")));
    assert!(
        ids("IPV4_SUBNET 10.1.1.0/24 proto 17 port 0", "IPV4_SUBNET 10.2.2.0/24 proto 17 port 1701"),
        "{sent:#?}"
    );
    assert!(ids("IPV4 10.1.1.7 proto 6 port 443", "IPV4_SUBNET 10.2.2.0/24 proto 6 port 0"), "{sent:#?}");
}

#[test]
fn quick_mode_responder_rejects_port_and_protocol_mismatches() {
    let cases = [
        // Another port than B's rule.
        (tcp_to(Some(80)), tcp_to(Some(443)).reversed(), "proto 6 port 80"),
        // Any port, where B allows only one.
        (tcp_to(None), tcp_to(Some(443)).reversed(), "proto 6 port 0"),
        // The right port of another protocol.
        (
            TrafficSelector { protocol: 17, ..tcp_to(Some(443)) },
            tcp_to(Some(443)).reversed(),
            "proto 17 port 443",
        ),
    ];
    for (i, (proposed, b_rule, shown)) in cases.into_iter().enumerate() {
        let mut pair = port_pair(proposed, b_rule, 350 + i as u64);
        pair.drive_for(Duration::from_secs(120));
        assert!(installed(&pair.a).is_empty() && installed(&pair.b).is_empty(), "{proposed}");
        let text = failure_reasons(&pair.b).join("\n");
        assert!(text.contains("not covered by any ACL") && text.contains(shown), "{proposed}: {text}");
        assert!(
            matches!(
                failures(&pair.a)[0].reason,
                FailureReason::PeerNotified(NotifyType::InvalidIdInformation)
            ),
            "{proposed}"
        );
    }
}

#[test]
fn behind_a_nat_ah_is_left_out_of_the_offer_and_refused_in_udp_modes() {
    let proposal = ah_esp(Integrity::HmacSha1_96, EspCipher::Des, Some(Integrity::HmacMd5_96));
    // A prefers AH+ESP but also has ESP: behind the NAT it offers ESP alone, which B takes.
    let a = Gateway {
        ipsec: vec![proposal, esp(EspCipher::Des, Some(Integrity::HmacMd5_96))],
        ..Gateway::fw_a()
    };
    let b = Gateway { ipsec: a.ipsec.clone(), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 360);
    pair.nat = Some(super::util::Nat { offset: 30_000 });
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "b: {:?}", failure_reasons(&pair.b));
    let on_b = installed(&pair.b)[0];
    assert!(on_b.ah.is_none() && on_b.udp_encapsulation.is_some());
    assert_eq!(on_b.suite.proposal, esp(EspCipher::Des, Some(Integrity::HmacMd5_96)));

    // With AH+ESP alone it still offers it, in a UDP mode, and B refuses it.
    let a = Gateway { ipsec: vec![proposal], ..Gateway::fw_a() };
    let b = Gateway { ipsec: vec![proposal], ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 361);
    pair.nat = Some(super::util::Nat { offset: 30_000 });
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    assert!(installed(&pair.a).is_empty() && installed(&pair.b).is_empty());
    let text = failure_reasons(&pair.b).join("\n");
    assert!(
        text.contains(
            "IPsec proposal mismatch: peer offers ah-hmac-sha1-96+esp-des-cbc/hmac-md5-96/udp-tunnel"
        ),
        "{text}"
    );
    assert!(matches!(failures(&pair.a)[0].reason, FailureReason::PeerNotified(NotifyType::NoProposalChosen)));
}
