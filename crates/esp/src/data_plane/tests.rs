//! Data-plane tests: two gateways A (10.1.1.0/24, 192.0.2.1) and B (10.2.2.0/24, 192.0.2.2)
//! exchanging packets through their `DataPlane`s, as in the reference topology.

use std::net::{Ipv4Addr, SocketAddr};

use crypto::{EspCipher, Integrity};

use super::*;
use crate::sa::esp::SaParams;
use crate::sa::{LifetimeCause, LifetimeNotice, Mode, OpenError, SaKeys, TrafficLimits};
use crate::tests::{ipv4_packet, udp};
use crate::tests::{key_bytes, SeededRandom};
use crate::wire::ah::PROTOCOL_AH;
use crate::wire::esp::PROTOCOL_ESP;
use crate::{MAX_HEADROOM, MAX_TAILROOM};
use spd::Action;
use spd::{PortRange, Prefix, Selector, PROTOCOL_TCP};

const SITE_A: [u8; 4] = [10, 1, 1, 0];
const SITE_B: [u8; 4] = [10, 2, 2, 0];

fn net(a: [u8; 4], len: u8) -> Prefix {
    Prefix::new(Ipv4Addr::from(a), len)
}

fn gateway(last: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, last], 4500))
}

/// The site-to-site selector from A's side.
fn a_selector() -> Selector {
    Selector::between(net(SITE_A, 24), net(SITE_B, 24))
}

fn mirror(s: Selector) -> Selector {
    Selector {
        protocol: s.protocol,
        local: s.remote,
        remote: s.local,
        local_ports: s.remote_ports,
        remote_ports: s.local_ports,
    }
}

fn spd_for(selector: Selector) -> Spd {
    Spd::new(vec![Rule { selector, action: Action::Protect(PolicyIndex(0)) }], Action::Bypass)
}

/// Key material for one SA pair, numbered so rekeys get different keys and SPIs.
struct PairKeys {
    a_to_b: (Spi, Vec<u8>, Vec<u8>),
    b_to_a: (Spi, Vec<u8>, Vec<u8>),
    params: SaParams,
}

fn pair_keys(generation: u8, params: SaParams) -> PairKeys {
    let (c1, i1) = key_bytes(params.cipher, params.integrity, generation * 2);
    let (c2, i2) = key_bytes(params.cipher, params.integrity, generation * 2 + 1);
    PairKeys {
        a_to_b: (Spi(0xB000 + u32::from(generation)), c1, i1),
        b_to_a: (Spi(0xA000 + u32::from(generation)), c2, i2),
        params,
    }
}

fn keys(k: &(Spi, Vec<u8>, Vec<u8>)) -> SaKeys<'_> {
    SaKeys { spi: k.0, cipher_key: &k.1, integrity_key: &k.2 }
}

/// Installs the pair on A with `selector` (A's view) and on B with its mirror.
fn install(a: &mut DataPlane, b: &mut DataPlane, k: &PairKeys, a_sel: Selector, b_sel: Selector) {
    a.install(
        SaPair {
            policy: PolicyIndex(0),
            selector: a_sel,
            params: k.params,
            local: gateway(1),
            remote: gateway(2),
            inbound: keys(&k.b_to_a),
            outbound: keys(&k.a_to_b),
            protocols: Protocols::Esp,
        },
        &mut SeededRandom(1),
    )
    .unwrap();
    b.install(
        SaPair {
            policy: PolicyIndex(0),
            selector: b_sel,
            params: k.params,
            local: gateway(2),
            remote: gateway(1),
            inbound: keys(&k.a_to_b),
            outbound: keys(&k.b_to_a),
            protocols: Protocols::Esp,
        },
        &mut SeededRandom(2),
    )
    .unwrap();
}

fn gcm() -> SaParams {
    SaParams { udp_encapsulated: true, ..SaParams::new(EspCipher::AesGcm128, None) }
}

fn planes() -> (DataPlane, DataPlane) {
    (
        DataPlane::new(spd_for(a_selector()), DataPlaneConfig::default()),
        DataPlane::new(spd_for(mirror(a_selector())), DataPlaneConfig::default()),
    )
}

fn ping(id: u8) -> Vec<u8> {
    ipv4_packet(1, [10, 1, 1, 2], [10, 2, 2, 2], &[8, 0, 0, 0, 0, id, 0, 1])
}

fn buffer() -> Vec<u8> {
    vec![0u8; 1500 + MAX_HEADROOM + MAX_TAILROOM]
}

/// Seals on `from` and expects a datagram; returns (SPI, bytes).
fn send(from: &mut DataPlane, packet: &[u8]) -> (Spi, Vec<u8>) {
    let mut out = buffer();
    match from.seal(packet, &mut out) {
        Outbound::Send(s) => {
            assert!(s.udp_encapsulated);
            (s.spi, s.datagram.to_vec())
        }
        other => panic!("expected Send, got {other:?}"),
    }
}

fn receive(to: &mut DataPlane, esp: &[u8]) -> Result<Vec<u8>, DropReason> {
    let mut out = vec![0u8; esp.len()];
    match to.open(esp, &mut out) {
        Inbound::Deliver { packet, next_header, mode, .. } => {
            assert_eq!((next_header, mode), (4, Mode::Tunnel));
            Ok(packet.to_vec())
        }
        Inbound::Drop(reason) => Err(reason),
    }
}

#[test]
fn tunnel_both_ways() {
    let (mut a, mut b) = planes();
    let k = pair_keys(1, gcm());
    install(&mut a, &mut b, &k, a_selector(), mirror(a_selector()));
    let (spi, esp) = send(&mut a, &ping(1));
    assert_eq!(spi, Spi(0xB001));
    assert_eq!(receive(&mut b, &esp), Ok(ping(1)));
    let reply = ipv4_packet(1, [10, 2, 2, 2], [10, 1, 1, 2], &[0, 0, 0, 0, 0, 1, 0, 1]);
    let (spi, esp) = send(&mut b, &reply);
    assert_eq!(spi, Spi(0xA001));
    // In place works the same.
    let mut in_place = esp.clone();
    match a.open_in_place(&mut in_place) {
        Inbound::Deliver { packet, spi, policy, .. } => {
            assert_eq!(packet, &reply[..]);
            assert_eq!((spi, policy), (Spi(0xA001), PolicyIndex(0)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        receive(&mut a, &esp),
        Err(DropReason::Open(OpenError::Replay(crate::ReplayError::Duplicate { sequence: 1 })))
    );
    assert_eq!(a.statistics().inbound.replayed, 1);
    assert_eq!((a.statistics().sealed, a.statistics().opened), (1, 1));
    assert_eq!(a.inbound_sa(Spi(0xA001)).unwrap().counters().packets, 1);
    // Bytes of the inner packets: the ping sealed, the reply opened once (the replay is not).
    let bytes = (a.statistics().sealed_bytes, a.statistics().opened_bytes);
    assert_eq!(bytes, (ping(1).len() as u64, reply.len() as u64));
    assert_eq!(a.outbound_sas(PolicyIndex(0)).count(), 1);
    assert!(a.poll_event().is_none());
}

/// Issue 16: a burst as a GRO read or a batch of reads may bring it, reordered and with
/// duplicates (a network that reorders, an attacker that replays inside the batch): each
/// packet opens at most once, and exactly when a plain model of RFC 4303's 64-packet window
/// says so (new, and not 64 or more behind the highest seen so far); every other is counted
/// as replayed.
#[test]
fn a_reordered_and_duplicated_burst_opens_each_packet_once() {
    let (mut a, mut b) = planes();
    let k = pair_keys(1, gcm());
    install(&mut a, &mut b, &k, a_selector(), mirror(a_selector()));
    let sealed: Vec<Vec<u8>> = (0..100u8).map(|id| send(&mut a, &ping(id)).1).collect();
    // 30..100 shuffled with every seventh twice, then the held-back 0..30 newest first.
    let mut burst: Vec<usize> = (30..100).collect();
    burst.sort_by_key(|&i| (i * 37) % 71);
    let duplicates: Vec<usize> = burst.iter().copied().filter(|i| i % 7 == 0).collect();
    for (n, &d) in duplicates.iter().enumerate() {
        burst.insert((n * 5 + 3) % burst.len(), d);
    }
    burst.extend((0..30).rev());
    let (mut highest, mut seen) = (0u32, std::collections::BTreeSet::new());
    let (mut opened, mut expected, mut replayed) = (Vec::new(), Vec::new(), 0u64);
    for &i in &burst {
        let sequence = i as u32 + 1; // the first packet of an SA is sequence 1
        if sequence + 64 > highest && seen.insert(sequence) {
            highest = highest.max(sequence);
            expected.push(i);
        }
        match receive(&mut b, &sealed[i]) {
            Ok(packet) => {
                assert_eq!(packet, ping(i as u8), "packet {i} opened into another");
                opened.push(i);
            }
            Err(DropReason::Open(OpenError::Replay(_))) => replayed += 1,
            Err(other) => panic!("packet {i}: {other:?}"),
        }
    }
    assert_eq!(opened, expected, "opened in burst order, each once");
    // The burst exercises all three: new packets, duplicates, and packets fallen behind.
    assert!(
        expected.len() > 50 && replayed > duplicates.len() as u64,
        "{} opened, {replayed} replayed",
        expected.len()
    );
    assert_eq!(replayed, (burst.len() - expected.len()) as u64);
    assert_eq!(b.statistics().inbound.replayed, replayed);
}

#[test]
fn acquire_queues_then_releases_when_the_sa_arrives() {
    let (mut a, mut b) = planes();
    let mut out = buffer();
    for id in 1..=10 {
        assert_eq!(a.seal(&ping(id), &mut out), Outbound::Queued);
    }
    // One acquire for the flow, not one per packet.
    let acquire = a.poll_event().unwrap();
    let Event::Acquire { policy, rule, selector, flow } = acquire else { panic!("{acquire:?}") };
    assert_eq!((policy, rule, selector), (PolicyIndex(0), Some(0), a_selector()));
    assert_eq!(flow.destination, Ipv4Addr::new(10, 2, 2, 2));
    assert_eq!(a.poll_event(), None);
    // Bounded: the 8 newest wait, the 2 oldest were dropped.
    assert_eq!(a.queued_packets(), 8);
    let stats = a.statistics();
    assert_eq!((stats.queued, stats.queue_dropped, stats.acquires), (10, 2, 1));
    assert!(a.poll_queued(&mut out).is_none(), "nothing is released before the SA exists");

    install(&mut a, &mut b, &pair_keys(1, gcm()), a_selector(), mirror(a_selector()));
    assert_eq!(a.queued_packets(), 0);
    let mut delivered = Vec::new();
    while let Some(outcome) = a.poll_queued(&mut out) {
        let Outbound::Send(s) = outcome else { panic!("{outcome:?}") };
        let esp = s.datagram.to_vec();
        delivered.push(receive(&mut b, &esp).unwrap());
    }
    assert_eq!(delivered, (3..=10).map(ping).collect::<Vec<_>>(), "in order, oldest dropped");
    assert_eq!(a.statistics().sealed, 8);
}

#[test]
fn abandoned_acquires_drop_the_queue_and_can_be_raised_again() {
    let (mut a, _) = planes();
    let mut out = buffer();
    assert_eq!(a.seal(&ping(1), &mut out), Outbound::Queued);
    assert_eq!(a.seal(&ping(2), &mut out), Outbound::Queued);
    assert!(matches!(a.poll_event(), Some(Event::Acquire { .. })));
    assert_eq!(a.abandon_acquire(PolicyIndex(0)), 2);
    assert_eq!(a.abandon_acquire(PolicyIndex(0)), 0);
    assert_eq!(a.queued_packets(), 0);
    assert_eq!(a.seal(&ping(3), &mut out), Outbound::Queued);
    assert!(matches!(a.poll_event(), Some(Event::Acquire { .. })), "a fresh acquire after giving up");
    assert_eq!(a.statistics().acquires, 2);
    // A reload drops queues too (rule indices change).
    a.replace_spd(spd_for(a_selector()));
    assert_eq!(a.queued_packets(), 0);
}

/// Two branches of one template that chose the same SPI: each pair's outbound traffic is
/// found by our (unique) inbound SPI, and each packet goes out on its own branch's SA, found
/// through the policy's selector table.
#[test]
fn pairs_of_one_policy_are_told_apart_by_flow_and_by_our_spi() {
    let branch = |third: u8| Selector::between(net(SITE_A, 24), net([10, 2, third, 0], 24));
    let mut hub = DataPlane::new(Spd::new(Vec::new(), Action::Bypass), DataPlaneConfig::default());
    let k = pair_keys(1, gcm());
    for (third, ours) in [(1u8, 0x1001u32), (2, 0x1002)] {
        hub.push_rule(Rule { selector: branch(third), action: Action::Protect(PolicyIndex(0)) });
        let pair = SaPair {
            policy: PolicyIndex(0),
            selector: branch(third),
            params: k.params,
            local: gateway(1),
            remote: gateway(10 + third),
            inbound: SaKeys { spi: Spi(ours), ..keys(&k.b_to_a) },
            outbound: keys(&k.a_to_b),
            protocols: Protocols::Esp,
        };
        hub.install(pair, &mut SeededRandom(1)).unwrap();
    }
    let to = |third: u8| ipv4_packet(1, [10, 1, 1, 2], [10, 2, third, 2], &[8, 0, 0, 0, 0, 1, 0, 1]);
    let mut out = buffer();
    for _ in 0..3 {
        let Outbound::Send(s) = hub.seal(&to(2), &mut out) else { panic!("sealed") };
        assert_eq!(s.remote, gateway(12), "branch 2's SA");
    }
    let Outbound::Send(s) = hub.seal(&to(1), &mut out) else { panic!("sealed") };
    assert_eq!(s.remote, gateway(11), "branch 1's SA");
    assert_eq!(hub.pair_outbound_usage(Spi(0x1001)).map(|(c, seq)| (c.packets, seq)), Some((1, 1)));
    assert_eq!(hub.pair_outbound_usage(Spi(0x1002)).map(|(c, seq)| (c.packets, seq)), Some((3, 3)));
    assert_eq!(hub.pair_outbound_usage(Spi(0x1003)), None);
    assert!(hub.remove_by_inbound_spi(Spi(0x1002)));
    assert_eq!(hub.pair_outbound_usage(Spi(0x1002)), None);
    assert!(matches!(hub.seal(&to(2), &mut out), Outbound::Queued), "branch 2's rule stays, its SA is gone");
    assert_eq!(hub.pair_outbound_usage(Spi(0x1001)).map(|(c, _)| c.packets), Some(1));
}

/// A hub's template flows: rules appended when a branch's pair is installed protect that
/// branch's traffic; removing one drops only its queue and keeps the queues of the rules
/// after it on their (renumbered) rules.
#[test]
fn template_rules_come_and_go_with_their_flows() {
    let mut hub = DataPlane::new(Spd::new(Vec::new(), Action::Bypass), DataPlaneConfig::default());
    let mut out = buffer();
    assert_eq!(hub.seal(&ping(1), &mut out), Outbound::Bypass, "no flow negotiated yet");
    let branch = |third: u8| Rule {
        selector: Selector::between(net(SITE_A, 24), net([10, 2, third, 0], 24)),
        action: Action::Protect(PolicyIndex(0)),
    };
    assert_eq!(hub.push_rule(branch(1)), 0);
    assert_eq!(hub.push_rule(branch(2)), 1);
    let to = |third: u8| ipv4_packet(1, [10, 1, 1, 2], [10, 2, third, 2], &[8, 0, 0, 0, 0, 1, 0, 1]);
    // No SA yet on either rule: each queues on its own rule.
    assert_eq!(hub.seal(&to(1), &mut out), Outbound::Queued);
    assert_eq!(hub.seal(&to(2), &mut out), Outbound::Queued);
    let rules: Vec<Option<usize>> = std::iter::from_fn(|| hub.poll_event())
        .filter_map(|e| match e {
            Event::Acquire { rule, .. } => Some(rule),
            Event::Lifetime { .. } => None,
        })
        .collect();
    assert_eq!(rules, [Some(0), Some(1)]);
    assert!(hub.remove_rule(&branch(1)));
    assert!(!hub.remove_rule(&branch(1)), "removed once");
    assert_eq!(hub.statistics().queue_dropped, 1, "the removed rule's packet is dropped");
    assert_eq!(hub.queued_packets(), 1, "the other branch's packet still waits");
    assert_eq!(hub.seal(&to(1), &mut out), Outbound::Bypass, "branch 1's flow is gone");
    // Branch 2's queue moved to its rule's new index: its SA releases it.
    let mut b = DataPlane::new(spd_for(mirror(branch(2).selector)), DataPlaneConfig::default());
    install(&mut hub, &mut b, &pair_keys(1, gcm()), branch(2).selector, mirror(branch(2).selector));
    assert_eq!(hub.queued_packets(), 0);
    let Some(Outbound::Send(s)) = hub.poll_queued(&mut out) else { panic!("released") };
    let esp = s.datagram.to_vec();
    assert_eq!(receive(&mut b, &esp).unwrap(), to(2));
}

#[test]
fn bypass_discard_and_malformed() {
    let mut dns = a_selector();
    dns.protocol = Some(17);
    dns.remote_ports = Some(PortRange::single(53));
    let mut telnet = a_selector();
    telnet.protocol = Some(PROTOCOL_TCP);
    telnet.remote_ports = Some(PortRange::single(23));
    let spd = Spd::new(
        vec![
            Rule { selector: dns, action: Action::Bypass },
            Rule { selector: telnet, action: Action::Discard },
            Rule { selector: a_selector(), action: Action::Protect(PolicyIndex(0)) },
        ],
        Action::Bypass,
    );
    let mut a = DataPlane::new(spd, DataPlaneConfig::default());
    let mut out = buffer();
    let query = ipv4_packet(17, [10, 1, 1, 2], [10, 2, 2, 2], &udp(4000, 53));
    assert_eq!(a.seal(&query, &mut out), Outbound::Bypass);
    let login = ipv4_packet(PROTOCOL_TCP, [10, 1, 1, 2], [10, 2, 2, 2], &udp(4000, 23));
    assert_eq!(a.seal(&login, &mut out), Outbound::Discard(DiscardReason::Policy));
    let elsewhere = ipv4_packet(1, [10, 1, 1, 2], [8, 8, 8, 8], &[8, 0, 0, 0]);
    assert_eq!(a.seal(&elsewhere, &mut out), Outbound::Bypass);
    assert_eq!(a.seal(&ping(1), &mut out), Outbound::Queued);
    assert!(matches!(a.seal(&[0x45, 0, 0], &mut out), Outbound::Discard(DiscardReason::Malformed(_))));
    let stats = a.statistics();
    assert_eq!(
        (stats.bypassed, stats.outbound_policy_discards, stats.outbound_malformed, stats.queued),
        (2, 1, 1, 1)
    );
}

#[test]
fn make_before_break() {
    let (mut a, mut b) = planes();
    install(&mut a, &mut b, &pair_keys(1, gcm()), a_selector(), mirror(a_selector()));
    let (old_spi, in_flight) = send(&mut a, &ping(1));
    // Rekey: the new pair is installed on both sides before the old one goes.
    install(&mut a, &mut b, &pair_keys(2, gcm()), a_selector(), mirror(a_selector()));
    let (new_spi, fresh) = send(&mut a, &ping(2));
    assert_eq!((old_spi, new_spi), (Spi(0xB001), Spi(0xB002)), "outbound switches to the newest");
    // B accepts both, whatever the order they arrive in.
    assert_eq!(receive(&mut b, &fresh), Ok(ping(2)));
    assert_eq!(receive(&mut b, &in_flight), Ok(ping(1)));
    // The old pair goes (B by its inbound SPI, A by the SPI a Delete would name).
    assert!(b.remove_by_inbound_spi(Spi(0xB001)));
    assert!(!b.remove_by_inbound_spi(Spi(0xB001)));
    assert!(a.remove_by_outbound_spi(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), Spi(0xB001)));
    assert!(!a.remove_by_outbound_spi(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), Spi(0xB002)), "other peer");
    assert_eq!(a.outbound_sas(PolicyIndex(0)).map(OutboundSa::spi).collect::<Vec<_>>(), [Spi(0xB002)]);
    assert!(a.inbound_sa(Spi(0xA001)).is_none());
    assert_eq!(receive(&mut b, &in_flight), Err(DropReason::UnknownSpi(Spi(0xB001))));
    assert_eq!(b.statistics().inbound.unknown_spi, 1);
    let (spi, esp) = send(&mut a, &ping(3));
    assert_eq!(spi, Spi(0xB002));
    assert_eq!(receive(&mut b, &esp), Ok(ping(3)));
    // Removing the last pair brings acquires back.
    assert!(a.remove_by_inbound_spi(Spi(0xA002)));
    assert_eq!(a.seal(&ping(4), &mut buffer()), Outbound::Queued);
}

/// A quick-mode responder's rekey (RFC 2409 §5.5): B installs the new pair inbound-first
/// when it sends QM2; A, which has QM2, seals on it at once and B opens it, while B itself
/// goes on sealing on the old pair until QM3 lets the new outbound seal.
#[test]
fn inbound_first_opens_at_once_and_seals_only_once_released() {
    let (mut a, mut b) = planes();
    install(&mut a, &mut b, &pair_keys(1, gcm()), a_selector(), mirror(a_selector()));
    let k = pair_keys(2, gcm());
    let held = SaPair {
        policy: PolicyIndex(0),
        selector: mirror(a_selector()),
        params: k.params,
        local: gateway(2),
        remote: gateway(1),
        inbound: keys(&k.a_to_b),
        outbound: keys(&k.b_to_a),
        protocols: Protocols::Esp,
    };
    b.install_inbound_first(held, &mut SeededRandom(2)).unwrap();
    let to_a = SaPair {
        local: gateway(1),
        remote: gateway(2),
        inbound: keys(&k.b_to_a),
        outbound: keys(&k.a_to_b),
        selector: a_selector(),
        ..held
    };
    a.install(to_a, &mut SeededRandom(1)).unwrap();
    let (spi, esp) = send(&mut a, &ping(1));
    assert_eq!(spi, Spi(0xB002));
    assert_eq!(receive(&mut b, &esp), Ok(ping(1)), "the new inbound SA opens before QM3");
    let reply = ipv4_packet(1, [10, 2, 2, 2], [10, 1, 1, 2], &[0, 0, 0, 0, 0, 1, 0, 1]);
    assert_eq!(send(&mut b, &reply).0, Spi(0xA001), "B seals on the old pair until QM3");
    assert!(b.release_outbound(Spi(0xB002)));
    assert!(!b.release_outbound(Spi(0xB002)), "released once");
    let (spi, esp) = send(&mut b, &reply);
    assert_eq!(spi, Spi(0xA002));
    assert_eq!(receive(&mut a, &esp), Ok(reply));
    // A pair held and never released goes whole with its inbound SPI.
    let k = pair_keys(3, gcm());
    let third = SaPair { inbound: keys(&k.a_to_b), outbound: keys(&k.b_to_a), ..held };
    b.install_inbound_first(third, &mut SeededRandom(3)).unwrap();
    assert!(b.remove_by_inbound_spi(Spi(0xB003)));
    assert!(!b.release_outbound(Spi(0xB003)));
    assert!(b.inbound_sa(Spi(0xB003)).is_none());
}

/// A quick-mode responder's first pair: the initiator's first packet opens on the inbound
/// half installed with QM2, and the answer to it, sealed before QM3 released the outbound
/// half, waits for that release instead of raising an acquire (which started a second quick
/// mode for the same flow, netns_demo under load).
#[test]
fn a_packet_for_a_held_pair_waits_for_its_release_without_an_acquire() {
    let (mut a, mut b) = planes();
    let k = pair_keys(1, gcm());
    let held = SaPair {
        policy: PolicyIndex(0),
        selector: mirror(a_selector()),
        params: k.params,
        local: gateway(2),
        remote: gateway(1),
        inbound: keys(&k.a_to_b),
        outbound: keys(&k.b_to_a),
        protocols: Protocols::Esp,
    };
    b.install_inbound_first(held, &mut SeededRandom(2)).unwrap();
    let to_a = SaPair {
        local: gateway(1),
        remote: gateway(2),
        inbound: keys(&k.b_to_a),
        outbound: keys(&k.a_to_b),
        selector: a_selector(),
        ..held
    };
    a.install(to_a, &mut SeededRandom(1)).unwrap();
    let (_, esp) = send(&mut a, &ping(1));
    assert_eq!(receive(&mut b, &esp), Ok(ping(1)));
    let reply = ipv4_packet(1, [10, 2, 2, 2], [10, 1, 1, 2], &[0, 0, 0, 0, 0, 1, 0, 1]);
    assert_eq!(b.seal(&reply, &mut buffer()), Outbound::Queued);
    assert_eq!(b.poll_event(), None, "no acquire while the pair waits for QM3");
    assert!(b.release_outbound(Spi(0xB001)));
    let mut out = buffer();
    let Some(Outbound::Send(sent)) = b.poll_queued(&mut out) else { panic!("the reply is released") };
    assert_eq!(sent.spi, Spi(0xA001));
    let datagram = sent.datagram.to_vec();
    assert_eq!(receive(&mut a, &datagram), Ok(reply.clone()));
    // A held pair whose QM3 never comes is taken back: what waited for it is dropped, and
    // the next packet raises an acquire.
    let k = pair_keys(2, gcm());
    let second = SaPair { inbound: keys(&k.a_to_b), outbound: keys(&k.b_to_a), ..held };
    assert!(b.remove_by_inbound_spi(Spi(0xB001)));
    b.install_inbound_first(second, &mut SeededRandom(3)).unwrap();
    assert_eq!(b.seal(&reply, &mut buffer()), Outbound::Queued);
    assert_eq!(b.poll_event(), None);
    assert!(b.remove_by_inbound_spi(Spi(0xB002)));
    assert_eq!(b.queued_packets(), 0);
    // Without a held pair the same packet raises an acquire, as before.
    assert_eq!(b.seal(&ping(2), &mut buffer()), Outbound::Bypass, "A's flow is not B's to protect");
    let reply2 = ipv4_packet(1, [10, 2, 2, 2], [10, 1, 1, 2], &[0, 0, 0, 0, 0, 1, 0, 2]);
    assert_eq!(b.seal(&reply2, &mut buffer()), Outbound::Queued);
    assert!(matches!(b.poll_event(), Some(Event::Acquire { .. })));
}

#[test]
fn what_a_narrowed_held_pair_leaves_queued_raises_its_acquire_on_release() {
    // Our rule is 10.2.2.0/24 <-> 10.1.1.0/24; the peer proposed (and we hold) a pair for
    // 10.1.1.2 only. Packets for 10.1.1.2 and 10.1.1.3 wait in the rule's one queue, neither
    // raising an acquire while the pair is held; QM3 releases the first, and the second,
    // which the pair does not cover, must raise its acquire then instead of waiting forever.
    let (_, mut b) = planes();
    let k = pair_keys(1, gcm());
    let held = SaPair {
        policy: PolicyIndex(0),
        selector: Selector::between(net(SITE_B, 24), net([10, 1, 1, 2], 32)),
        params: k.params,
        local: gateway(2),
        remote: gateway(1),
        inbound: keys(&k.a_to_b),
        outbound: keys(&k.b_to_a),
        protocols: Protocols::Esp,
    };
    b.install_inbound_first(held, &mut SeededRandom(2)).unwrap();
    let covered = ipv4_packet(1, [10, 2, 2, 2], [10, 1, 1, 2], &[0, 0, 0, 0, 0, 1, 0, 1]);
    let uncovered = ipv4_packet(1, [10, 2, 2, 2], [10, 1, 1, 3], &[0, 0, 0, 0, 0, 1, 0, 1]);
    assert_eq!(b.seal(&covered, &mut buffer()), Outbound::Queued);
    assert_eq!(b.seal(&uncovered, &mut buffer()), Outbound::Queued);
    assert_eq!(b.poll_event(), None, "no acquire while the pair waits for QM3");
    assert!(b.release_outbound(Spi(0xB001)));
    let Some(Event::Acquire { flow, .. }) = b.poll_event() else {
        panic!("the uncovered packet raises its acquire")
    };
    assert_eq!(flow.destination, Ipv4Addr::new(10, 1, 1, 3));
    let mut out = buffer();
    assert!(matches!(b.poll_queued(&mut out), Some(Outbound::Send(_))), "the covered packet leaves");
    assert_eq!(b.queued_packets(), 1, "the uncovered one waits for its own pair");
}

#[test]
fn duplicate_inbound_spi_is_refused() {
    let (mut a, mut b) = planes();
    let k = pair_keys(1, gcm());
    install(&mut a, &mut b, &k, a_selector(), mirror(a_selector()));
    let again = SaPair {
        policy: PolicyIndex(0),
        selector: a_selector(),
        params: k.params,
        local: gateway(1),
        remote: gateway(2),
        inbound: keys(&k.b_to_a),
        outbound: keys(&k.a_to_b),
        protocols: Protocols::Esp,
    };
    assert_eq!(a.install(again, &mut SeededRandom(1)), Err(SaError::DuplicateSpi(Spi(0xA001))));
    assert_eq!(a.outbound_sas(PolicyIndex(0)).count(), 1);
}

#[test]
fn inbound_policy_check_drops_packets_outside_the_selector() {
    let (mut a, mut b) = planes();
    // A (misconfigured or hostile, but holding the keys) believes the SA covers everything.
    let wide = Selector::between(Prefix::ANY, Prefix::ANY);
    a.replace_spd(spd_for(wide));
    install(&mut a, &mut b, &pair_keys(1, gcm()), wide, mirror(a_selector()));
    let spoofed = ipv4_packet(1, [10, 9, 9, 9], [10, 2, 2, 2], &[8, 0, 0, 0]);
    let (_, esp) = send(&mut a, &spoofed);
    assert_eq!(receive(&mut b, &esp), Err(DropReason::PolicyMismatch { spi: Spi(0xB001) }));
    let outside = ipv4_packet(1, [10, 1, 1, 2], [10, 2, 3, 2], &[8, 0, 0, 0]);
    let (_, esp) = send(&mut a, &outside);
    assert_eq!(receive(&mut b, &esp), Err(DropReason::PolicyMismatch { spi: Spi(0xB001) }));
    assert_eq!(b.statistics().inbound.policy_mismatch, 2);
    // Packets inside still pass; the window moved for the dropped ones (they were authentic).
    let (_, esp) = send(&mut a, &ping(1));
    assert_eq!(receive(&mut b, &esp), Ok(ping(1)));
    assert_eq!(b.statistics().opened, 1);
}

#[test]
fn transport_mode_between_the_gateways() {
    let a_gw = Selector::between(
        Prefix::host(Ipv4Addr::new(192, 0, 2, 1)),
        Prefix::host(Ipv4Addr::new(192, 0, 2, 2)),
    );
    let mut a = DataPlane::new(spd_for(a_gw), DataPlaneConfig::default());
    let mut b_sel = mirror(a_gw);
    b_sel.protocol = Some(17);
    let mut b = DataPlane::new(spd_for(b_sel), DataPlaneConfig::default());
    let params = SaParams {
        mode: Mode::Transport,
        udp_encapsulated: true,
        ..SaParams::new(EspCipher::AesCbc256, Some(Integrity::HmacSha384_192))
    };
    install(&mut a, &mut b, &pair_keys(1, params), a_gw, b_sel);
    let datagram = udp(500, 4500);
    let packet = ipv4_packet(17, [192, 0, 2, 1], [192, 0, 2, 2], &datagram);
    let mut out = buffer();
    let esp = match a.seal(&packet, &mut out) {
        Outbound::Send(s) => s.datagram.to_vec(),
        other => panic!("{other:?}"),
    };
    let mut buf = vec![0u8; esp.len()];
    match b.open(&esp, &mut buf) {
        Inbound::Deliver { mode, next_header, packet, .. } => {
            assert_eq!((mode, next_header), (Mode::Transport, 17));
            assert_eq!(packet, &datagram[..]);
        }
        other => panic!("{other:?}"),
    }
    // B's SA covers UDP only: TCP from A is authentic but outside it.
    let tcp = ipv4_packet(PROTOCOL_TCP, [192, 0, 2, 1], [192, 0, 2, 2], &udp(1, 2));
    let esp = match a.seal(&tcp, &mut out) {
        Outbound::Send(s) => s.datagram.to_vec(),
        other => panic!("{other:?}"),
    };
    assert!(matches!(b.open(&esp, &mut buf), Inbound::Drop(DropReason::PolicyMismatch { .. })));
}

#[test]
fn lifetime_notices_and_expiry() {
    let (mut a, mut b) = planes();
    let limits = TrafficLimits { soft_packets: Some(2), hard_packets: Some(3), ..TrafficLimits::default() };
    install(&mut a, &mut b, &pair_keys(1, SaParams { limits, ..gcm() }), a_selector(), mirror(a_selector()));
    let mut sent = Vec::new();
    for id in 1..=3 {
        sent.push(send(&mut a, &ping(id)).1);
    }
    let events: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
    let lifetime = |notice| Event::Lifetime {
        direction: Direction::Outbound,
        spi: Spi(0xB001),
        remote: gateway(2),
        notice,
    };
    assert_eq!(
        events,
        [
            lifetime(LifetimeNotice::Soft(LifetimeCause::Packets)),
            lifetime(LifetimeNotice::Hard(LifetimeCause::Packets))
        ]
    );
    // The expired SA is no longer chosen: the next packet asks for a new one.
    assert_eq!(a.seal(&ping(4), &mut buffer()), Outbound::Queued);
    assert!(matches!(a.poll_event(), Some(Event::Acquire { .. })));
    for esp in &sent {
        receive(&mut b, esp).unwrap();
    }
    assert!(matches!(
        std::iter::from_fn(|| b.poll_event()).last(),
        Some(Event::Lifetime { direction: Direction::Inbound, notice: LifetimeNotice::Hard(_), .. })
    ));
    let mut extra = sent[0].clone();
    extra[7] = 4;
    assert_eq!(receive(&mut b, &extra), Err(DropReason::Open(OpenError::Expired)));
    assert_eq!(b.statistics().inbound.expired, 1);
}

#[test]
fn unknown_truncated_and_forged_packets_are_counted() {
    let (mut a, mut b) = planes();
    install(&mut a, &mut b, &pair_keys(1, gcm()), a_selector(), mirror(a_selector()));
    assert_eq!(receive(&mut b, &[1, 2, 3]), Err(DropReason::Truncated));
    assert_eq!(
        receive(&mut b, &[0, 0, 0x99, 0x99, 0, 0, 0, 1, 0, 0]),
        Err(DropReason::UnknownSpi(Spi(0x9999)))
    );
    let (_, mut esp) = send(&mut a, &ping(1));
    let last = esp.len() - 1;
    esp[last] ^= 0x80;
    assert_eq!(receive(&mut b, &esp), Err(DropReason::Open(OpenError::AuthenticationFailed)));
    esp[last] ^= 0x80;
    assert_eq!(receive(&mut b, &esp), Ok(ping(1)), "the forgery did not move the window");
    let drops = b.statistics().inbound;
    assert_eq!((drops.unknown_spi, drops.authentication), (2, 1));
}

#[test]
fn decisions_change_no_state() {
    let (mut a, mut b) = planes();
    let flow = Flow::parse_ipv4(&ping(1)).unwrap().0;
    let acquire = Decision::Acquire { policy: PolicyIndex(0), rule: Some(0), selector: a_selector() };
    assert_eq!(a.decide(&flow), acquire);
    assert_eq!(a.decide(&flow), acquire);
    assert!(a.poll_event().is_none(), "deciding raises no acquire");
    install(&mut a, &mut b, &pair_keys(1, gcm()), a_selector(), mirror(a_selector()));
    assert_eq!(a.decide(&flow), Decision::Protect { policy: PolicyIndex(0), spi: Spi(0xB001) });

    // A `Protect` default: the acquire is for the packet's own flow, host to host.
    let mut c =
        DataPlane::new(Spd::new(Vec::new(), Action::Protect(PolicyIndex(3))), DataPlaneConfig::default());
    let Decision::Acquire { policy, rule: None, selector } = c.decide(&flow) else { panic!() };
    assert_eq!(policy, PolicyIndex(3));
    assert_eq!(selector, Selector::for_flow(&flow));
    assert!(selector.matches_outbound(&flow));
    assert_eq!(c.seal(&ping(1), &mut buffer()), Outbound::Queued);
    assert!(matches!(c.poll_event(), Some(Event::Acquire { rule: None, .. })));
}

#[test]
fn the_data_plane_can_move_to_a_worker_thread() {
    fn send<T: std::marker::Send>() {}
    send::<DataPlane>();
}

#[test]
fn clear_packets_for_protected_flows_are_refused() {
    let (mut a, _) = planes();
    let reply = ipv4_packet(1, [10, 2, 2, 2], [10, 1, 1, 2], &[0, 0, 0, 0]);
    assert!(!a.accept_clear(&reply), "should have come in ESP");
    let other = ipv4_packet(1, [10, 7, 7, 7], [10, 1, 1, 2], &[0, 0, 0, 0]);
    assert!(a.accept_clear(&other));
    assert!(!a.accept_clear(&[0x45]));
    assert_eq!(a.statistics().inbound_clear_refused, 2);
}

/// A 1500-byte UDP packet from A's site, with or without DF.
fn big_packet(len: usize, dont_fragment: bool) -> Vec<u8> {
    let payload: Vec<u8> = (0..len - 20).map(|i| (i * 7) as u8).collect();
    let mut p = ipv4_packet(17, [10, 1, 1, 2], [10, 2, 2, 2], &payload);
    p[6] = if dont_fragment { 0x40 } else { 0 };
    p
}

#[test]
fn path_mtu_df_packets_get_icmp_fragmentation_needed() {
    for params in [
        gcm(),
        SaParams {
            udp_encapsulated: true,
            ..SaParams::new(EspCipher::AesCbc128, Some(Integrity::HmacSha256_128))
        },
    ] {
        let (mut a, mut b) = planes();
        install(&mut a, &mut b, &pair_keys(1, params), a_selector(), mirror(a_selector()));
        let mut out = buffer();
        let Outbound::TooBig { icmp, mtu } = a.seal(&big_packet(1500, true), &mut out) else {
            panic!("expected TooBig")
        };
        let icmp = icmp.to_vec();
        let (flow, ..) = Flow::parse_ipv4(&icmp).unwrap();
        assert_eq!(
            (flow.protocol, flow.source, flow.destination),
            (1, Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(10, 1, 1, 2))
        );
        assert_eq!((icmp[20], icmp[21]), (3, 4));
        assert_eq!(u16::from_be_bytes([icmp[26], icmp[27]]), mtu);
        // A packet of exactly `mtu` bytes fits: sealed, plus IPv4 and UDP, within 1500.
        let (_, esp) = send(&mut a, &big_packet(usize::from(mtu), true));
        assert!(esp.len() + 28 <= 1500, "{}", esp.len());
        assert_eq!(receive(&mut b, &esp), Ok(big_packet(usize::from(mtu), true)));
        assert!(matches!(a.seal(&big_packet(usize::from(mtu) + 1, true), &mut out), Outbound::TooBig { .. }));
        assert_eq!(a.statistics().too_big, 2);
    }
}

#[test]
fn path_mtu_other_packets_are_fragmented_before_encryption() {
    let small_path = DataPlaneConfig { path_mtu: 600, ..DataPlaneConfig::default() };
    let mut a = DataPlane::new(spd_for(a_selector()), small_path);
    let mut b = DataPlane::new(spd_for(mirror(a_selector())), DataPlaneConfig::default());
    install(&mut a, &mut b, &pair_keys(1, gcm()), a_selector(), mirror(a_selector()));
    let packet = big_packet(1500, false);
    let mut out = buffer();
    let mut datagrams = Vec::new();
    let Outbound::Send(first) = a.seal(&packet, &mut out) else { panic!() };
    assert!(first.pending);
    datagrams.push(first.datagram.to_vec());
    while let Some(outcome) = a.poll_queued(&mut out) {
        let Outbound::Send(s) = outcome else { panic!("{outcome:?}") };
        assert_eq!(s.spi, Spi(0xB001));
        datagrams.push(s.datagram.to_vec());
    }
    assert_eq!(datagrams.len(), 3);
    assert_eq!(a.statistics().fragmented, 1);
    let mut payload = vec![0u8; 1480];
    for esp in &datagrams {
        assert!(esp.len() + 28 <= 600);
        let fragment = receive(&mut b, esp).unwrap();
        let offset = usize::from(u16::from_be_bytes([fragment[6], fragment[7]]) & 0x1fff) * 8;
        payload[offset..offset + fragment.len() - 20].copy_from_slice(&fragment[20..]);
    }
    assert_eq!(payload, packet[20..]);

    // Fragments whose SA went away meanwhile are dropped, not re-routed.
    let Outbound::Send(_) = a.seal(&packet, &mut out) else { panic!() };
    assert!(a.remove_by_inbound_spi(Spi(0xA001)));
    assert!(a.poll_queued(&mut out).is_none());
    assert_eq!(a.statistics().queue_dropped, 2);
}

/// Issue 15: a datagram the gateway reassembled from inner fragments is sealed whole, past
/// the path MTU (the kernel fragments the ESP packet outside), so the peer opens it with its
/// ports; `seal` would have cut it again before encryption.
#[test]
fn a_reassembled_datagram_is_sealed_whole() {
    let (mut a, mut b) = planes();
    install(&mut a, &mut b, &pair_keys(1, gcm()), a_selector(), mirror(a_selector()));
    let packet = big_packet(3000, false);
    let mut out = vec![0u8; 3000 + MAX_HEADROOM + MAX_TAILROOM];
    let Outbound::Send(sent) = a.seal_whole(&packet, &mut out) else { panic!("expected Send") };
    assert!(!sent.pending && sent.datagram.len() > 3000);
    let esp = sent.datagram.to_vec();
    assert_eq!(receive(&mut b, &esp), Ok(packet.clone()));
    assert_eq!(a.statistics().fragmented, 0);
    let Outbound::Send(cut) = a.seal(&packet, &mut out) else { panic!("expected Send") };
    assert!(cut.pending && cut.datagram.len() < 1500);
    assert_eq!(a.statistics().fragmented, 1);
}

/// Issue 15: the first datagram of a negotiation, reassembled and queued for the acquire, is
/// still sealed whole when its SA arrives (it used to be cut before encryption on release).
#[test]
fn a_reassembled_datagram_queued_for_an_acquire_is_sealed_whole() {
    let (mut a, mut b) = planes();
    let packet = big_packet(3000, false);
    let mut out = vec![0u8; 3000 + MAX_HEADROOM + MAX_TAILROOM];
    assert_eq!(a.seal_whole(&packet, &mut out), Outbound::Queued);
    assert_eq!(a.seal(&packet, &mut out), Outbound::Queued);
    install(&mut a, &mut b, &pair_keys(1, gcm()), a_selector(), mirror(a_selector()));
    assert_eq!(a.next_queued_len(), Some(3000));
    let Some(Outbound::Send(whole)) = a.poll_queued(&mut out) else { panic!("expected Send") };
    assert!(whole.pending && whole.datagram.len() > 3000, "one ESP packet, the other one still waits");
    let esp = whole.datagram.to_vec();
    assert_eq!(receive(&mut b, &esp), Ok(packet.clone()));
    assert_eq!(a.statistics().fragmented, 0);
    // The packet queued by `seal` is cut before encryption, as before.
    let Some(Outbound::Send(cut)) = a.poll_queued(&mut out) else { panic!("expected Send") };
    assert!(cut.datagram.len() < 1500);
    assert_eq!(a.statistics().fragmented, 1);
}

#[test]
fn later_fragments_pass_a_port_specific_inbound_selector() {
    // B's SA covers UDP to port 53 only; A's side is wider (it holds the keys).
    let mut dns = mirror(a_selector());
    dns.protocol = Some(17);
    dns.local_ports = Some(PortRange::single(53));
    let wide = a_selector();
    let mut a =
        DataPlane::new(spd_for(wide), DataPlaneConfig { path_mtu: 600, ..DataPlaneConfig::default() });
    let mut b = DataPlane::new(spd_for(dns), DataPlaneConfig::default());
    install(&mut a, &mut b, &pair_keys(1, gcm()), wide, dns);
    let mut query =
        ipv4_packet(17, [10, 1, 1, 2], [10, 2, 2, 2], &[udp(4000, 53), vec![0xAB; 1200]].concat());
    query[6] = 0;
    let mut out = buffer();
    let Outbound::Send(first) = a.seal(&query, &mut out) else { panic!() };
    let mut datagrams = vec![first.datagram.to_vec()];
    while let Some(Outbound::Send(s)) = a.poll_queued(&mut out) {
        datagrams.push(s.datagram.to_vec());
    }
    assert_eq!(datagrams.len(), 3);
    for esp in &datagrams {
        receive(&mut b, esp).unwrap();
    }
    // A first fragment (or whole packet) to another port is still refused.
    let other = ipv4_packet(17, [10, 1, 1, 2], [10, 2, 2, 2], &udp(4000, 54));
    let (_, esp) = send(&mut a, &other);
    assert_eq!(receive(&mut b, &esp), Err(DropReason::PolicyMismatch { spi: Spi(0xB001) }));
}

/// Issue 15 (L2TP over IPsec): with a rule for UDP to port 1701 only, both fragments of a big
/// datagram to 1701 (the later one has no ports) are sealed in the rule's SA and pass the
/// peer's check; UDP to another port and ICMP match no rule, and the SPD says which of them
/// leaves in clear: those of the flows routed into the data plane by protocol.
#[test]
fn a_port_specific_rule_seals_every_fragment_and_leaves_other_traffic_to_the_clear_path() {
    let mut l2tp = a_selector();
    l2tp.protocol = Some(17);
    l2tp.remote_ports = Some(PortRange::single(1701));
    let spd = spd_for(l2tp).with_clear_fallback(vec![(net(SITE_B, 24), Some(17))]);
    let mut a = DataPlane::new(spd, DataPlaneConfig::default());
    let mut b = DataPlane::new(spd_for(mirror(l2tp)), DataPlaneConfig::default());
    install(&mut a, &mut b, &pair_keys(1, gcm()), l2tp, mirror(l2tp));
    // The host fragmented the datagram already: a first fragment with the UDP header, a
    // later one (offset 1200 bytes) without.
    let mut first =
        ipv4_packet(17, [10, 1, 1, 2], [10, 2, 2, 2], &[udp(1701, 1701), vec![0xAB; 1192]].concat());
    first[6] = 0x20; // more fragments
    let mut later = ipv4_packet(17, [10, 1, 1, 2], [10, 2, 2, 2], &[0xCD; 300]);
    later[6..8].copy_from_slice(&(1200u16 / 8).to_be_bytes());
    for fragment in [&first, &later] {
        let (spi, esp) = send(&mut a, fragment);
        assert_eq!(spi, Spi(0xB001));
        assert_eq!(&receive(&mut b, &esp).unwrap(), fragment);
    }
    // Other UDP to B's network and ICMP: no rule, so no SA and no acquire.
    let mut out = buffer();
    let other = ipv4_packet(17, [10, 1, 1, 2], [10, 2, 2, 2], &udp(5000, 9999));
    assert!(matches!(a.seal(&other, &mut out), Outbound::Bypass));
    assert!(matches!(a.seal(&ping(1), &mut out), Outbound::Bypass));
    let flow = |p: &[u8]| Flow::parse_ipv4(p).unwrap().0;
    assert!(
        a.spd().leaves_in_clear(&flow(&other)),
        "UDP comes by the protocol route: back to the clear path"
    );
    assert!(!a.spd().leaves_in_clear(&flow(&ping(1))), "ICMP never reaches the data plane by that route");
    assert!(!b.spd().leaves_in_clear(&flow(&other)), "without clear fallback, a bypass is dropped");
    assert_eq!(a.statistics().acquires, 0);
}

/// Installs `k` with `protocols` built from AH keys of the same generation (raw IP, so the
/// gateways' ports are 0).
fn install_ah(
    a: &mut DataPlane,
    b: &mut DataPlane,
    k: &PairKeys,
    integrity: Integrity,
    with_esp: bool,
    sel: Selector,
) {
    let ah_a_to_b =
        (Spi(0xC000 + k.a_to_b.0 .0), Vec::new(), key_bytes(EspCipher::Null, Some(integrity), 9).1);
    let ah_b_to_a =
        (Spi(0xD000 + k.b_to_a.0 .0), Vec::new(), key_bytes(EspCipher::Null, Some(integrity), 10).1);
    let raw = |last| SocketAddr::from(([192, 0, 2, last], 0));
    for (plane, local, remote, inbound, outbound, ah_in, ah_out, selector) in [
        (a, 1, 2, &k.b_to_a, &k.a_to_b, &ah_b_to_a, &ah_a_to_b, sel),
        (b, 2, 1, &k.a_to_b, &k.b_to_a, &ah_a_to_b, &ah_b_to_a, mirror(sel)),
    ] {
        let (inbound, outbound, protocols) = if with_esp {
            (
                keys(inbound),
                keys(outbound),
                Protocols::AhEsp { integrity, inbound: keys(ah_in), outbound: keys(ah_out) },
            )
        } else {
            (keys(ah_in), keys(ah_out), Protocols::Ah(integrity))
        };
        let pair = SaPair {
            policy: PolicyIndex(0),
            selector,
            params: k.params,
            local: raw(local),
            remote: raw(remote),
            inbound,
            outbound,
            protocols,
        };
        plane.install(pair, &mut SeededRandom(3)).unwrap();
    }
}

fn send_ah(from: &mut DataPlane, packet: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 1500 + MAX_HEADROOM + MAX_TAILROOM + MAX_AH_HEADROOM];
    match from.seal(packet, &mut out) {
        Outbound::Send(s) => {
            assert_eq!((s.protocol, s.udp_encapsulated), (PROTOCOL_AH, false));
            s.datagram.to_vec()
        }
        other => panic!("expected Send, got {other:?}"),
    }
}

fn receive_ah(to: &mut DataPlane, packet: &[u8]) -> Result<(Mode, u8, Vec<u8>), DropReason> {
    let mut out = vec![0u8; packet.len()];
    match to.open_ah(packet, &mut out) {
        Inbound::Deliver { packet, next_header, mode, .. } => Ok((mode, next_header, packet.to_vec())),
        Inbound::Drop(reason) => Err(reason),
    }
}

/// AH alone and AH+ESP, tunnel and transport: the outer packet is IPv4 protocol 51 between
/// the gateways, ESP (50) sits inside AH for the bundle, and the peer delivers the original.
#[test]
fn ah_and_ah_esp_both_modes() {
    let gateways = Selector::between(
        Prefix::host(Ipv4Addr::new(192, 0, 2, 1)),
        Prefix::host(Ipv4Addr::new(192, 0, 2, 2)),
    );
    for with_esp in [false, true] {
        for mode in [Mode::Tunnel, Mode::Transport] {
            let sel = if mode == Mode::Tunnel { a_selector() } else { gateways };
            let mut a = DataPlane::new(spd_for(sel), DataPlaneConfig::default());
            let mut b = DataPlane::new(spd_for(mirror(sel)), DataPlaneConfig::default());
            let params =
                SaParams { mode, ..SaParams::new(EspCipher::AesCbc128, Some(Integrity::HmacSha1_96)) };
            install_ah(&mut a, &mut b, &pair_keys(1, params), Integrity::HmacSha256_128, with_esp, sel);
            let packet = match mode {
                Mode::Tunnel => ping(1),
                Mode::Transport => ipv4_packet(1, [192, 0, 2, 1], [192, 0, 2, 2], &[8, 0, 0, 0, 0, 1, 0, 1]),
            };
            let sent = send_ah(&mut a, &packet);
            assert_eq!(sent[9], PROTOCOL_AH);
            assert_eq!((&sent[12..16], &sent[16..20]), (&[192, 0, 2, 1][..], &[192, 0, 2, 2][..]));
            let next = sent[20];
            let expected_next = match (with_esp, mode) {
                (true, _) => PROTOCOL_ESP,
                (false, Mode::Tunnel) => 4,
                (false, Mode::Transport) => 1,
            };
            assert_eq!(next, expected_next, "esp {with_esp} {mode:?}");
            if !with_esp {
                // AH alone: the payload travels in clear after the 28-byte AH header.
                assert_eq!(&sent[48..], if mode == Mode::Tunnel { &packet[..] } else { &packet[20..] });
            }
            let (got_mode, next_header, delivered) = receive_ah(&mut b, &sent).unwrap();
            assert_eq!(got_mode, mode);
            match mode {
                Mode::Tunnel => assert_eq!((next_header, delivered), (4, packet.clone())),
                Mode::Transport => assert_eq!((next_header, delivered), (1, packet[20..].to_vec())),
            }
            // Replayed: dropped by the AH window.
            assert!(matches!(receive_ah(&mut b, &sent), Err(DropReason::Open(OpenError::Replay(_)))));
            assert_eq!(b.statistics().opened, 1);
            let pair_spi = if with_esp { Spi(0xB001) } else { Spi(0xC000 + 0xB001) };
            assert_eq!(b.inbound_usage(pair_spi).unwrap().packets, 1);
            // A's outbound pair is named by its ESP SPI, or the AH SPI for AH alone.
            assert_eq!(a.outbound_usage(PolicyIndex(0), pair_spi).unwrap().1, 1);
        }
    }
}

/// The bundle must arrive whole: ESP without its AH, AH from another address, or an ESP
/// packet on an AH-only SPI are dropped and counted as policy mismatches.
#[test]
fn ah_esp_requires_both_layers() {
    let (mut a, mut b) = planes();
    let params = SaParams::new(EspCipher::AesGcm256, None);
    install_ah(&mut a, &mut b, &pair_keys(1, params), Integrity::HmacMd5_96, true, a_selector());
    let sent = send_ah(&mut a, &ping(1));
    let ah_len = 12 + 12;
    let esp_only = sent[20 + ah_len..].to_vec();
    let mut out = vec![0u8; sent.len()];
    assert!(matches!(b.open(&esp_only, &mut out), Inbound::Drop(DropReason::ProtectionMismatch { .. })));
    let mut other_source = sent.clone();
    other_source[15] = 9;
    assert_eq!(receive_ah(&mut b, &other_source), Err(DropReason::Open(OpenError::AuthenticationFailed)));
    assert_eq!(receive_ah(&mut b, &sent).unwrap().2, ping(1));
    assert_eq!(b.statistics().inbound.policy_mismatch, 1);
    assert!(b.remove_by_inbound_spi(Spi(0xB001)));
    assert!(matches!(receive_ah(&mut b, &sent), Err(DropReason::UnknownSpi(_))));
    // AH cannot be UDP-encapsulated.
    let (mut a, mut b) = planes();
    let k = pair_keys(2, gcm());
    let pair = SaPair {
        policy: PolicyIndex(0),
        selector: a_selector(),
        params: k.params,
        local: gateway(1),
        remote: gateway(2),
        inbound: keys(&k.b_to_a),
        outbound: keys(&k.a_to_b),
        protocols: Protocols::Ah(Integrity::HmacSha1_96),
    };
    assert_eq!(a.install(pair, &mut SeededRandom(1)), Err(SaError::AhUdpEncapsulated));
    let _ = &mut b;
}

/// Path MTU with AH outside ESP: the announced MTU accounts for the outer header, AH and
/// ESP, a packet of exactly that size leaves at most 1500 bytes, and fragments fit too.
#[test]
fn ah_path_mtu() {
    let (mut a, mut b) = planes();
    let params = SaParams::new(EspCipher::AesCbc128, Some(Integrity::HmacSha256_128));
    install_ah(&mut a, &mut b, &pair_keys(1, params), Integrity::HmacSha512_256, true, a_selector());
    let mut out = vec![0u8; 1500 + MAX_HEADROOM + MAX_TAILROOM + MAX_AH_HEADROOM];
    let Outbound::TooBig { mtu, .. } = a.seal(&big_packet(1500, true), &mut out) else {
        panic!("expected TooBig")
    };
    let sent = send_ah(&mut a, &big_packet(usize::from(mtu), true));
    assert!(sent.len() <= 1500 && sent.len() > 1500 - 16, "{} for mtu {mtu}", sent.len());
    assert_eq!(receive_ah(&mut b, &sent).unwrap().2, big_packet(usize::from(mtu), true));
    let Outbound::Send(first) = a.seal(&big_packet(1500, false), &mut out) else { panic!() };
    assert!(first.datagram.len() <= 1500 && first.pending);
    let mut count = 1;
    while let Some(Outbound::Send(s)) = a.poll_queued(&mut out) {
        assert!(s.datagram.len() <= 1500);
        count += 1;
    }
    assert_eq!(count, 2);
}

/// A reload inserts a policy before the reference one: the pair moves to index 1 with the
/// new SPD and keeps carrying traffic under the same SPI; a reload that removes the policy
/// removes the pair.
#[test]
fn renumbered_policies_keep_their_sas_and_removed_ones_lose_them() {
    let (mut a, mut b) = planes();
    let k = pair_keys(1, gcm());
    install(&mut a, &mut b, &k, a_selector(), mirror(a_selector()));
    let (spi, _) = send(&mut a, &ping(1));

    let other = Selector::between(net(SITE_A, 24), net([10, 3, 3, 0], 24));
    a.replace_spd(Spd::new(
        vec![
            Rule { selector: other, action: Action::Protect(PolicyIndex(0)) },
            Rule { selector: a_selector(), action: Action::Protect(PolicyIndex(1)) },
        ],
        Action::Bypass,
    ));
    assert_eq!(a.renumber_policies(|p| Some(PolicyIndex(p.0 + 1))), 0);
    let (again, esp) = send(&mut a, &ping(2));
    assert_eq!(again, spi, "the same SA seals under the new number");
    assert_eq!(receive(&mut b, &esp).unwrap(), ping(2));
    assert_eq!(a.outbound_sas(PolicyIndex(1)).count(), 1);
    assert_eq!(a.outbound_sas(PolicyIndex(0)).count(), 0);

    assert_eq!(a.renumber_policies(|p| (p.0 != 1).then_some(p)), 1);
    assert!(a.inbound_sa(k.b_to_a.0).is_none(), "the inbound half went too");
    let mut out = buffer();
    assert!(matches!(a.seal(&ping(3), &mut out), Outbound::Queued), "no SA: an acquire");
}

/// An SA that reaches its hard traffic limit queues the flow and raises an acquire; the pair
/// negotiated then carries the flow, including the packets that waited.
#[test]
fn a_pair_replaced_after_its_hard_traffic_limit_carries_the_flow() {
    let (mut a, mut b) = planes();
    let mut limited = gcm();
    limited.limits =
        TrafficLimits { soft_bytes: Some(200), hard_bytes: Some(400), ..TrafficLimits::default() };
    install(&mut a, &mut b, &pair_keys(1, limited), a_selector(), mirror(a_selector()));
    let mut out = buffer();
    let mut sent = 0;
    while let Outbound::Send(_) = a.seal(&ping(1), &mut out) {
        sent += 1;
        assert!(sent < 100, "the hard limit stops the SA");
    }
    let events: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(events.iter().any(|e| matches!(e, Event::Acquire { .. })), "{events:?}");
    install(&mut a, &mut b, &pair_keys(2, gcm()), a_selector(), mirror(a_selector()));
    let mut released = 0;
    while let Some(outcome) = a.poll_queued(&mut out) {
        assert!(matches!(outcome, Outbound::Send(_)), "{outcome:?}");
        released += 1;
    }
    assert_eq!(released, 1, "the packet that found the SA expired went out on the new one");
    let (spi, esp) = send(&mut a, &ping(2));
    assert_eq!(spi, Spi(0xB002));
    assert_eq!(receive(&mut b, &esp), Ok(ping(2)));
}

/// `undo ipsec sha2 compatible enable` (issue 15): HMAC-SHA2-256 truncated to 96 bits carries
/// traffic when both ends use it, with an ICV 4 bytes shorter than RFC 4868's; when one end
/// truncates to 96 and the other to 128, every packet fails its integrity check, counted as
/// an authentication drop on the receiving side (what `display ipsec statistics` shows).
#[test]
fn legacy_sha2_96_carries_traffic_and_a_mismatch_is_counted_as_integrity_drops() {
    let params = |integrity| SaParams::new(EspCipher::AesCbc128, Some(integrity));
    let legacy = Integrity::HmacSha256_128.legacy_96();
    let mut lengths = Vec::new();
    for integrity in [Integrity::HmacSha256_128, legacy] {
        let (mut a, mut b) = planes();
        install(&mut a, &mut b, &pair_keys(1, params(integrity)), a_selector(), mirror(a_selector()));
        let mut out = buffer();
        let Outbound::Send(sent) = a.seal(&ping(1), &mut out) else { panic!("not sealed") };
        let esp = sent.datagram.to_vec();
        lengths.push(esp.len());
        assert_eq!(receive(&mut b, &esp), Ok(ping(1)), "{integrity}");
    }
    assert_eq!(lengths[0] - lengths[1], 4, "a 12-byte ICV instead of 16");

    // A truncates to 96 bits, B expects 128: same keys, same SPIs, nothing gets through.
    let (mut a, mut b) = planes();
    let k = pair_keys(1, params(legacy));
    let pair = |params, local, remote, inbound, outbound| SaPair {
        policy: PolicyIndex(0),
        selector: if local == gateway(1) { a_selector() } else { mirror(a_selector()) },
        params,
        local,
        remote,
        inbound,
        outbound,
        protocols: Protocols::Esp,
    };
    a.install(
        pair(params(legacy), gateway(1), gateway(2), keys(&k.b_to_a), keys(&k.a_to_b)),
        &mut SeededRandom(1),
    )
    .unwrap();
    let b_params = params(Integrity::HmacSha256_128);
    b.install(pair(b_params, gateway(2), gateway(1), keys(&k.a_to_b), keys(&k.b_to_a)), &mut SeededRandom(2))
        .unwrap();
    for id in 1..=3 {
        let mut out = buffer();
        let Outbound::Send(sent) = a.seal(&ping(id), &mut out) else { panic!("not sealed") };
        let esp = sent.datagram.to_vec();
        assert_eq!(receive(&mut b, &esp), Err(DropReason::Open(OpenError::AuthenticationFailed)));
    }
    assert_eq!(b.statistics().inbound.authentication, 3);
}

/// The sealing side decides a flow once per run of its packets (a TSO burst) and keeps that
/// decision only while the SPD and the outbound SAs stay as they were: after a rekey, a
/// delete, an SPD reload, a rule added and a renumbering, the next packet of the same flow
/// goes by the new state, never by the SA or rule the cached decision named.
#[test]
fn a_cached_decision_is_never_used_after_the_sas_or_the_spd_change() {
    let (mut a, mut b) = planes();
    let seal_spi = |a: &mut DataPlane, id| match a.seal(&ping(id), &mut buffer()) {
        Outbound::Send(s) => Some(s.spi),
        _ => None,
    };
    install(&mut a, &mut b, &pair_keys(1, gcm()), a_selector(), mirror(a_selector()));
    // A run of one flow: every packet on the same SA.
    for id in 0..4 {
        assert_eq!(seal_spi(&mut a, id), Some(Spi(0xB001)));
    }
    // Rekey: the newest pair carries the flow from the next packet on.
    install(&mut a, &mut b, &pair_keys(2, gcm()), a_selector(), mirror(a_selector()));
    assert_eq!(seal_spi(&mut a, 4), Some(Spi(0xB002)), "a stale decision after a rekey");
    // Delete of the new pair: back to the old one, not the removed SA's slot.
    assert!(a.remove_by_inbound_spi(Spi(0xA002)));
    assert_eq!(seal_spi(&mut a, 5), Some(Spi(0xB001)), "a stale decision after a delete");
    // Delete of the last pair: an acquire, not a seal on a gone SA.
    assert!(a.remove_by_inbound_spi(Spi(0xA001)));
    assert_eq!(a.seal(&ping(6), &mut buffer()), Outbound::Queued, "a stale decision after the last delete");
    install(&mut a, &mut b, &pair_keys(3, gcm()), a_selector(), mirror(a_selector()));
    assert_eq!(seal_spi(&mut a, 7), Some(Spi(0xB003)));
    // A reload whose SPD sends the flow in clear.
    a.replace_spd(Spd::new(vec![], Action::Bypass));
    assert_eq!(a.seal(&ping(8), &mut buffer()), Outbound::Bypass, "a stale decision after a reload");
    // A rule added (a hub's template flow) protects it again, on the pair still installed.
    a.push_rule(Rule { selector: a_selector(), action: Action::Protect(PolicyIndex(0)) });
    assert_eq!(seal_spi(&mut a, 9), Some(Spi(0xB003)), "a stale decision after a rule was added");
    // A renumbering that removes the policy drops its pairs: the flow is acquired again.
    a.renumber_policies(|_| None);
    assert_eq!(a.seal(&ping(10), &mut buffer()), Outbound::Queued, "a stale decision after a renumbering");
}
