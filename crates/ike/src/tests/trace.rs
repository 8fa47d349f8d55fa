//! Message traces (`trace`): each side records every message of main, aggressive and quick
//! mode it sends or accepts, labelled with its step and payloads, and the two sides' records
//! of one message agree (what the sender put inside an encrypted message is what the
//! receiver found there).

use std::net::Ipv4Addr;

use crypto::DhGroup;
use isakmp::{Identification, Identity, Payload};

use super::tunnel_up;
use super::util::{Gateway, Pair};
use crate::trace::{summarize, Direction, MessageTrace, Step};
use crate::{ExchangeMode, IdentityConfig};

fn traces(side: &mut super::util::Side) -> Vec<MessageTrace> {
    std::iter::from_fn(|| side.engine.poll_message_trace()).collect()
}

/// Brings the tunnel up from A with traces on; returns (A's records, B's records).
fn traced_run(a: &Gateway, b: &Gateway, seed: u64) -> (Vec<MessageTrace>, Vec<MessageTrace>) {
    let mut pair = Pair::new(a, b, seed);
    pair.a.engine.set_message_trace(true);
    pair.b.engine.set_message_trace(true);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "a: {:?}\nb: {:?}", pair.a.events, pair.b.events);
    (traces(&mut pair.a), traces(&mut pair.b))
}

fn steps(records: &[MessageTrace], direction: Direction) -> Vec<String> {
    records.iter().filter(|t| t.direction == direction).map(|t| t.step.to_string()).collect()
}

fn summary_of(records: &[MessageTrace], direction: Direction, step: &str) -> String {
    let found = records.iter().find(|t| t.direction == direction && t.step.to_string() == step);
    found.unwrap_or_else(|| panic!("no {direction} {step} in {records:#?}")).summary.clone()
}

/// Every message one side sent, the other accepted with the same step, cookie, message ID
/// and payloads.
fn assert_both_sides_agree(a: &[MessageTrace], b: &[MessageTrace]) {
    for (from, to) in [(a, b), (b, a)] {
        for sent in from.iter().filter(|t| t.direction == Direction::Sent) {
            let received = to.iter().find(|t| {
                t.direction == Direction::Received
                    && t.step == sent.step
                    && t.initiator_cookie == sent.initiator_cookie
                    && t.message_id == sent.message_id
            });
            let received = received.unwrap_or_else(|| panic!("{sent} not accepted: {to:#?}"));
            assert_eq!(received.summary, sent.summary, "{sent}");
            assert_eq!((received.local, received.remote), (sent.remote, sent.local));
        }
    }
}

#[test]
fn trace_main_mode_and_quick_mode_label_every_message_with_its_step_and_payloads() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let (on_a, on_b) = traced_run(&a, &b, 1);
    assert_eq!(steps(&on_a, Direction::Sent), ["MM1", "MM3", "MM5", "QM1", "QM3"]);
    assert_eq!(steps(&on_a, Direction::Received), ["MM2", "MM4", "MM6", "QM2"]);
    assert_eq!(steps(&on_b, Direction::Sent), ["MM2", "MM4", "MM6", "QM2"]);
    assert_eq!(steps(&on_b, Direction::Received), ["MM1", "MM3", "MM5", "QM1", "QM3"]);
    // In order on each side: received before the answer it caused.
    let order: Vec<String> = on_b.iter().map(|t| format!("{} {}", t.direction, t.step)).collect();
    assert_eq!(
        order,
        [
            "received MM1",
            "sent MM2",
            "received MM3",
            "sent MM4",
            "received MM5",
            "sent MM6",
            "received QM1",
            "sent QM2",
            "received QM3"
        ]
    );
    let sent = |step| summary_of(&on_a, Direction::Sent, step);
    let from_b = |step| summary_of(&on_b, Direction::Sent, step);
    // DPD, four NAT-T dialects and FRAGMENTATION from the initiator; DPD, the chosen
    // dialect and FRAGMENTATION back.
    assert_eq!(sent("MM1"), "HDR, SA(1 proposal), VID×6");
    assert_eq!(from_b("MM2"), "HDR, SA(1 proposal), VID×3");
    assert_eq!(sent("MM3"), "HDR, KE, NONCE, NAT-D, NAT-D");
    assert_eq!(from_b("MM4"), "HDR, KE, NONCE, NAT-D, NAT-D");
    // Encrypted: listed by what was inside.
    assert_eq!(sent("MM5"), "HDR*, ID(IPV4 192.0.2.1), HASH_I, N(INITIAL-CONTACT)");
    assert_eq!(from_b("MM6"), "HDR*, ID(IPV4 192.0.2.2), HASH_R");
    assert_eq!(
        sent("QM1"),
        "HDR*, HASH(1), SA(1 proposal), NONCE, ID(IPV4_SUBNET 10.1.1.0/24), ID(IPV4_SUBNET 10.2.2.0/24)"
    );
    assert_eq!(
        from_b("QM2"),
        "HDR*, HASH(2), SA(1 proposal), NONCE, ID(IPV4_SUBNET 10.1.1.0/24), ID(IPV4_SUBNET 10.2.2.0/24)"
    );
    assert_eq!(sent("QM3"), "HDR*, HASH(3)");
    assert_both_sides_agree(&on_a, &on_b);
    let quick: Vec<_> = on_a.iter().filter(|t| matches!(t.step, Step::Quick(_))).collect();
    assert!(quick.iter().all(|t| t.message_id != 0 && t.message_id == quick[0].message_id));
    assert!(on_a.iter().all(|t| t.peer == "peer" && t.remote.ip() == std::net::IpAddr::V4(b.local)));
}

#[test]
fn trace_aggressive_mode_labels_am1_to_am3() {
    let a = Gateway {
        mode: ExchangeMode::Aggressive,
        local_id: Some(IdentityConfig::Fqdn("fwa.example.net".into())),
        ..Gateway::fw_a()
    };
    let b = Gateway { accept_aggressive_from_peer: true, ..Gateway::fw_b() };
    let (on_a, on_b) = traced_run(&a, &b, 21);
    assert_eq!(steps(&on_a, Direction::Sent), ["AM1", "AM3", "QM1", "QM3"]);
    assert_eq!(steps(&on_b, Direction::Sent), ["AM2", "QM2"]);
    assert_eq!(steps(&on_b, Direction::Received), ["AM1", "AM3", "QM1", "QM3"]);
    let am1 = summary_of(&on_a, Direction::Sent, "AM1");
    assert!(am1.starts_with("HDR, SA(1 proposal), KE, NONCE, ID(FQDN fwa.example.net), VID"), "{am1}");
    let am2 = summary_of(&on_b, Direction::Sent, "AM2");
    assert!(am2.starts_with("HDR, SA(1 proposal), KE, NONCE, ID(IPV4 192.0.2.2), VID"), "{am2}");
    assert!(am2.ends_with("NAT-D, NAT-D, HASH_R"), "{am2}");
    assert!(summary_of(&on_a, Direction::Sent, "AM3").starts_with("HDR*, HASH_I"));
    assert_both_sides_agree(&on_a, &on_b);
}

#[test]
fn trace_quick_mode_with_pfs_shows_a_key_exchange_in_qm1_and_qm2() {
    let a = Gateway { pfs: Some(DhGroup::Modp2048), ..Gateway::fw_a() };
    let b = Gateway { pfs: Some(DhGroup::Modp2048), ..Gateway::fw_b() };
    let (on_a, on_b) = traced_run(&a, &b, 5);
    assert!(summary_of(&on_a, Direction::Sent, "QM1")
        .starts_with("HDR*, HASH(1), SA(1 proposal), NONCE, KE, ID("));
    assert!(summary_of(&on_b, Direction::Sent, "QM2")
        .starts_with("HDR*, HASH(2), SA(1 proposal), NONCE, KE, ID("));
    assert_eq!(summary_of(&on_a, Direction::Sent, "QM3"), "HDR*, HASH(3)");
    assert_both_sides_agree(&on_a, &on_b);
}

#[test]
fn trace_is_off_unless_the_driver_asks() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 1);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    assert!(pair.a.engine.poll_message_trace().is_none());
    assert!(pair.b.engine.poll_message_trace().is_none());
}

#[test]
fn trace_summary_collapses_long_runs_and_names_identities() {
    let id = |identity| Payload::Identification(Identification { protocol: 0, port: 0, identity });
    let vids = [Payload::VendorId(b"a"), Payload::VendorId(b"b"), Payload::VendorId(b"c")];
    assert_eq!(summarize(Step::MainMode(1), false, &vids), "HDR, VID×3");
    assert_eq!(summarize(Step::MainMode(1), false, &vids[..2]), "HDR, VID, VID");
    assert_eq!(summarize(Step::MainMode(1), false, &[]), "HDR");
    let odd_mask =
        Identity::Ipv4Subnet { address: Ipv4Addr::new(10, 0, 0, 0), mask: Ipv4Addr::new(255, 0, 255, 0) };
    assert_eq!(
        summarize(Step::Quick(1), true, &[id(odd_mask)]),
        "HDR*, ID(IPV4_SUBNET 10.0.0.0/255.0.255.0)"
    );
    let any = Identity::Ipv4Subnet { address: Ipv4Addr::UNSPECIFIED, mask: Ipv4Addr::UNSPECIFIED };
    assert_eq!(summarize(Step::Quick(1), true, &[id(any)]), "HDR*, ID(IPV4_SUBNET 0.0.0.0/0)");
    let v6 = |mask: &str| Identity::Ipv6Subnet {
        address: "2001:db8::".parse().unwrap(),
        mask: mask.parse().unwrap(),
    };
    assert_eq!(
        summarize(Step::Quick(1), true, &[id(v6("ffff:ffff:ffff::")), id(v6("ffff::ffff"))]),
        "HDR*, ID(IPV6_SUBNET 2001:db8::/48), ID(IPV6_SUBNET 2001:db8::/ffff::ffff)"
    );
    let port = Payload::Identification(Identification {
        protocol: 17,
        port: 500,
        identity: Identity::Ipv4Addr(Ipv4Addr::new(192, 0, 2, 1)),
    });
    assert_eq!(
        summarize(Step::MainMode(6), true, &[port, Payload::Hash(&[1])]),
        "HDR*, ID(IPV4 192.0.2.1 proto 17 port 500), HASH_R"
    );
    // A peer's long FQDN is cut, so a log line stays bounded.
    let long = [b'x'; 300];
    let text = summarize(Step::MainMode(5), true, &[id(Identity::Fqdn(&long))]);
    assert_eq!(text, format!("HDR*, ID(FQDN {}…)", "x".repeat(64)));
    // Nor can it start a log line of its own: control characters are escaped, unambiguously.
    let forged = summarize(Step::MainMode(5), true, &[id(Identity::Fqdn(b"a\nike message: sent MM1\\"))]);
    assert_eq!(forged, "HDR*, ID(FQDN a\\x0aike message: sent MM1\\\\)");
}
