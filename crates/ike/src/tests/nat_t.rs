//! NAT traversal (RFC 3947, RFC 3948): NAT-D, the float to UDP 4500, UDP-encapsulated modes,
//! keepalives, and the NAT-D and VIDs of the strongSwan captures in `vectors/`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crypto::HashAlgorithm;
use isakmp::{Cookie, ExchangeType, Message, Payload, PayloadType, RawPayloads};

use super::util::{installed, Gateway, Nat, Pair};
use crate::{EncapsulationMode, Transmit, UdpEncapsulation};
use isakmp::capabilities::{NatTVersion, PeerCapabilities};

fn tunnel_up(pair: &Pair) -> bool {
    !installed(&pair.a).is_empty() && !installed(&pair.b).is_empty()
}

fn keepalives(transmits: &[Transmit]) -> usize {
    transmits.iter().filter(|t| t.nat_keepalive).count()
}

/// The NAT-D hashes of a cleartext message.
fn nat_d_hashes(message: &[u8]) -> Vec<Vec<u8>> {
    let Ok(m) = Message::parse(message) else { return Vec::new() };
    m.payloads()
        .iter()
        .filter_map(|p| match p {
            Payload::NatDiscovery(d) => Some(d.hash.to_vec()),
            _ => None,
        })
        .collect()
}

#[test]
fn nat_t_detected_floats_to_4500_and_negotiates_udp_tunnel() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 21);
    pair.nat = Some(Nat { offset: 30_000 });
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "a: {:?}\nb: {:?}", pair.a.events, pair.b.events);
    // MM1, MM3 from 500; MM5 and QM1, QM3 from 4500 to 4500 with the marker.
    let ports: Vec<(u16, u16)> = pair.a.transmits.iter().map(|t| (t.local.port(), t.remote.port())).collect();
    assert_eq!(ports, [(500, 500), (500, 500), (4500, 4500), (4500, 4500), (4500, 4500)]);
    assert!(pair.a.transmits[2..].iter().all(|t| t.non_esp_marker));
    assert_eq!(nat_d_hashes(&pair.a.sent[1]).len(), 2, "MM3 carries two NAT-D");
    assert_eq!(nat_d_hashes(&pair.b.sent[1]).len(), 2, "MM4 carries two NAT-D");
    // B answers where the NAT mapped A's port 4500.
    let b_ports: Vec<(u16, u16)> =
        pair.b.transmits.iter().map(|t| (t.local.port(), t.remote.port())).collect();
    assert_eq!(b_ports, [(500, 30_500), (500, 30_500), (4500, 34_500), (4500, 34_500)]);
    let (on_a, on_b) = (installed(&pair.a)[0], installed(&pair.b)[0]);
    assert_eq!(on_a.suite.proposal.mode, EncapsulationMode::Tunnel);
    assert_eq!(on_a.udp_encapsulation, Some(UdpEncapsulation { local_port: 4500, remote_port: 4500 }));
    assert_eq!(on_b.udp_encapsulation, Some(UdpEncapsulation { local_port: 4500, remote_port: 34_500 }));
    assert_eq!(on_b.remote, SocketAddr::new(IpAddr::V4(a.local), 34_500));
    assert_eq!(on_a.outbound.spi(), on_b.inbound.spi());
    // Only A, behind the NAT, keeps the mapping alive: one keepalive every 20 s.
    pair.advance(Duration::from_secs(61));
    assert_eq!(keepalives(&pair.a.transmits), 3);
    assert_eq!(keepalives(&pair.b.transmits), 0);
    let keepalive =
        pair.a.transmits.iter().find(|t| t.nat_keepalive).map(|t| (t.local.port(), t.payload.clone()));
    assert_eq!(keepalive, Some((4500, vec![0xff])));
}

#[test]
fn nat_t_without_nat_stays_on_500_with_plain_tunnel() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 22);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    for side in [&pair.a, &pair.b] {
        assert!(side
            .transmits
            .iter()
            .all(|t| t.local.port() == 500 && t.remote.port() == 500 && !t.non_esp_marker));
        assert_eq!(installed(side)[0].udp_encapsulation, None);
    }
    assert_eq!(nat_d_hashes(&pair.a.sent[1]).len(), 2, "NAT-D is exchanged even without a NAT");
    pair.advance(Duration::from_secs(61));
    assert_eq!(keepalives(&pair.a.transmits) + keepalives(&pair.b.transmits), 0);
}

/// `nat traversal force-encapsulation` on either end, no NAT: both float to 4500 and the
/// IPsec SAs are UDP-encapsulated (the peer is made to find a NAT by our NAT-D); nobody sends
/// keepalives, since nobody is really behind a NAT.
#[test]
fn forced_encapsulation_floats_without_a_nat_from_either_end() {
    for (forcing_a, seed) in [(true, 31), (false, 32)] {
        let a = Gateway { force_encapsulation: forcing_a, ..Gateway::fw_a() };
        let b = Gateway { force_encapsulation: !forcing_a, ..Gateway::fw_b() };
        let mut pair = Pair::new(&a, &b, seed);
        pair.acquire_on_a(a.selector());
        assert!(pair.drive_until(100, tunnel_up), "forcing on a: {forcing_a}");
        let ports: Vec<(u16, u16)> =
            pair.a.transmits.iter().map(|t| (t.local.port(), t.remote.port())).collect();
        assert_eq!(ports, [(500, 500), (500, 500), (4500, 4500), (4500, 4500), (4500, 4500)]);
        let encapsulation = Some(UdpEncapsulation { local_port: 4500, remote_port: 4500 });
        assert_eq!(installed(&pair.a)[0].udp_encapsulation, encapsulation);
        assert_eq!(installed(&pair.b)[0].udp_encapsulation, encapsulation);
        pair.advance(Duration::from_secs(61));
        assert_eq!(keepalives(&pair.a.transmits) + keepalives(&pair.b.transmits), 0);
    }
}

/// Forcing needs NAT-T: with `undo nat traversal` on the peer nothing floats and ESP stays
/// raw.
#[test]
fn forced_encapsulation_without_nat_t_on_the_peer_stays_raw() {
    let a = Gateway { force_encapsulation: true, ..Gateway::fw_a() };
    let b = Gateway { nat_traversal: false, ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 33);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    assert!(pair.a.transmits.iter().all(|t| t.local.port() == 500 && t.remote.port() == 500));
    assert_eq!(installed(&pair.a)[0].udp_encapsulation, None);
}

#[test]
fn nat_t_off_sends_no_nat_t_vendor_ids_and_no_nat_d() {
    let a = Gateway { nat_traversal: false, ..Gateway::fw_a() };
    let b = Gateway::fw_b();
    let mut pair = Pair::new(&a, &b, 23);
    pair.nat = Some(Nat { offset: 30_000 });
    pair.acquire_on_a(a.selector());
    // Without NAT-T nothing floats; the NAT keeps translating port 500 and the tunnel comes up.
    assert!(pair.drive_until(100, tunnel_up));
    let mm1 = Message::parse(&pair.a.sent[0]).map(|m| PeerCapabilities::recognise(m.payloads()));
    assert_eq!(mm1.ok(), Some(PeerCapabilities { dpd: true, nat_t: None, fragmentation: true }));
    let mm2 = Message::parse(&pair.b.sent[0]).map(|m| PeerCapabilities::recognise(m.payloads()));
    assert_eq!(
        mm2.ok(),
        Some(PeerCapabilities { dpd: true, nat_t: None, fragmentation: true }),
        "B echoes no NAT-T VID"
    );
    assert!(nat_d_hashes(&pair.a.sent[1]).is_empty() && nat_d_hashes(&pair.b.sent[1]).is_empty());
    assert_eq!(installed(&pair.a)[0].udp_encapsulation, None);
}

/// Flips a byte of the last NAT-D payload of a cleartext main-mode message: the sender then
/// looks as if it were behind a NAT, which is what strongSwan with userspace ESP does on
/// purpose.
fn fake_source_nat_d(t: &mut Transmit) {
    let Ok(message) = Message::parse(&t.payload) else { return };
    if message.header.exchange_type != ExchangeType::IdentityProtection || message.encrypted_body().is_some()
    {
        return;
    }
    let first = message.first_payload();
    let Some(body) = t.payload.get(isakmp::HEADER_LEN..) else { return };
    let last = RawPayloads::new(first, body, isakmp::HEADER_LEN)
        .map_while(Result::ok)
        .filter(|p| p.payload_type == PayloadType::NatDiscovery)
        .last()
        .map(|p| p.offset + 4);
    if let Some(offset) = last {
        t.payload[offset] ^= 0xff;
    }
}

#[test]
fn nat_t_responder_follows_a_peer_that_claims_nat_without_one() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 24);
    // B's MM4 claims B is behind a NAT: A floats, and B, which saw no NAT, must follow.
    pair.alter = Some(Box::new(|to_b, t| {
        if !to_b {
            fake_source_nat_d(t);
        }
        true
    }));
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "a: {:?}\nb: {:?}", pair.a.events, pair.b.events);
    let b_ports: Vec<(u16, u16)> =
        pair.b.transmits.iter().map(|t| (t.local.port(), t.remote.port())).collect();
    assert_eq!(
        b_ports,
        [(500, 500), (500, 500), (4500, 4500), (4500, 4500)],
        "MM6 and QM2 from 4500 to 4500"
    );
    for side in [&pair.a, &pair.b] {
        let expected = Some(UdpEncapsulation { local_port: 4500, remote_port: 4500 });
        assert_eq!(installed(side)[0].udp_encapsulation, expected);
    }
    // Neither believes itself behind a NAT: no keepalives (as between two strongSwans).
    pair.advance(Duration::from_secs(61));
    assert_eq!(keepalives(&pair.a.transmits) + keepalives(&pair.b.transmits), 0);
}

#[test]
fn nat_t_responder_alone_does_not_float() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 25);
    // A's MM3 claims A is behind a NAT; A itself sees none and does not float, so neither does B.
    pair.alter = Some(Box::new(|to_b, t| {
        if to_b {
            fake_source_nat_d(t);
        }
        true
    }));
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    assert!(pair.b.transmits.iter().all(|t| t.local.port() == 500));
    assert_eq!(installed(&pair.b)[0].udp_encapsulation, None);
}

#[test]
fn nat_t_transport_mode_through_a_nat_uses_udp_transport() {
    let mut a = Gateway::fw_a();
    a.ipsec[0].mode = EncapsulationMode::Transport;
    let b = Gateway { ipsec: a.ipsec.clone(), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 26);
    pair.nat = Some(Nat { offset: 30_000 });
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "a: {:?}\nb: {:?}", pair.a.events, pair.b.events);
    for side in [&pair.a, &pair.b] {
        let pair = installed(side)[0];
        assert_eq!(pair.suite.proposal.mode, EncapsulationMode::Transport);
        assert_eq!(pair.udp_encapsulation.map(|u| u.local_port), Some(4500));
    }
    // QM1 and QM2 carry the two NAT-OA payloads: they are longer than in tunnel mode by two
    // 12-byte payloads (rounded to the cipher block).
    let tunnel = {
        let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
        let mut pair = Pair::new(&a, &b, 26);
        pair.nat = Some(Nat { offset: 30_000 });
        pair.acquire_on_a(a.selector());
        assert!(pair.drive_until(100, tunnel_up));
        pair.a.sent[3].len()
    };
    assert!(pair.a.sent[3].len() >= tunnel + 16, "{} vs {tunnel}", pair.a.sent[3].len());
}

// --- strongSwan captures ---------------------------------------------------------------

/// The UDP datagrams of a classic pcap (Ethernet, IPv4): (source, destination, payload).
fn pcap_udp(name: &str) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors").join(name);
    let data = std::fs::read(path).expect("capture in vectors/");
    let mut out = Vec::new();
    let mut offset = 24;
    while offset + 16 <= data.len() {
        let len = u32::from_le_bytes(data[offset + 8..offset + 12].try_into().unwrap()) as usize;
        let frame = &data[offset + 16..offset + 16 + len];
        offset += 16 + len;
        let ip = &frame[14..];
        if ip[9] != 17 {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let udp = &ip[ihl..];
        let port = |i: usize| u16::from_be_bytes([udp[i], udp[i + 1]]);
        let udp_len = usize::from(port(4));
        let addr = |i: usize| Ipv4Addr::new(ip[i], ip[i + 1], ip[i + 2], ip[i + 3]);
        out.push((
            SocketAddr::new(IpAddr::V4(addr(12)), port(0)),
            SocketAddr::new(IpAddr::V4(addr(16)), port(2)),
            udp[8..udp_len].to_vec(),
        ));
    }
    out
}

#[test]
fn nat_t_discovery_hashes_match_strongswan_capture_except_its_faked_source() {
    // vectors/mm-psk-modp2048.vectors.txt: cky_i, cky_r; SHA2-256 negotiated.
    let cky_i = Cookie(hex_8("5fa225424e1a9e5b"));
    let cky_r = Cookie(hex_8("ac37dcc3014ca153"));
    let datagrams = pcap_udp("mm-psk-modp2048.pcap");
    let with_nat_d: Vec<_> = datagrams
        .iter()
        .filter(|(s, d, _)| s.port() == 500 && d.port() == 500)
        .filter(|(_, _, m)| nat_d_hashes(m).len() == 2)
        .collect();
    assert_eq!(with_nat_d.len(), 2, "MM3 and MM4");
    for (source, destination, message) in with_nat_d {
        let hashes = nat_d_hashes(message);
        let hash = |addr| crate::nat_t::discovery_hash(HashAlgorithm::Sha256, cky_i, cky_r, addr);
        // RFC 3947 §3.2: first the destination, which strongSwan computes honestly …
        assert_eq!(hashes[0], hash(*destination), "{source} -> {destination}");
        // … then the source, which strongSwan fakes (random) to force UDP encapsulation.
        assert_ne!(hashes[1], hash(*source), "{source} -> {destination}");
        // So each of our engines would see "the peer is behind a NAT, we are not".
        let payloads = Message::parse(message).unwrap().payloads().to_vec();
        let seen =
            crate::nat_t::detect(&payloads, HashAlgorithm::Sha256, cky_i, cky_r, *destination, *source);
        assert_eq!(seen, Some((false, true)));
    }
}

#[test]
fn vendor_ids_of_strongswan_capture_are_recognised() {
    let datagrams = pcap_udp("mm-psk-modp2048.pcap");
    let first_two: Vec<PeerCapabilities> = datagrams
        .iter()
        .filter_map(|(_, _, m)| Message::parse(m).ok().map(|m| PeerCapabilities::recognise(m.payloads())))
        .take(2)
        .collect();
    // MM1 (XAuth, DPD, FRAGMENTATION, RFC 3947, draft-02\n) and MM2 (XAuth, DPD, RFC 3947, …).
    let expected = PeerCapabilities { dpd: true, nat_t: Some(NatTVersion::Rfc3947), fragmentation: true };
    assert_eq!(first_two, [expected, expected]);
}

fn hex_8(text: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn nat_t_responder_follows_a_nat_rebinding_on_authenticated_messages() {
    let dpd = crate::DpdConfig {
        idle_time: Duration::from_secs(10),
        retransmit_interval: Duration::from_secs(5),
        retry_limit: 3,
    };
    let a = Gateway { dpd: Some(dpd), ..Gateway::fw_a() };
    let b = Gateway::fw_b();
    let mut pair = Pair::new(&a, &b, 27);
    pair.nat = Some(Nat { offset: 30_000 });
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let connection = installed(&pair.b)[0].connection;
    // The NAT forgets its mapping and picks another port; keepalives (unauthenticated) do
    // not move anything, A's next R-U-THERE (authenticated) does.
    pair.nat = Some(Nat { offset: 31_000 });
    pair.advance(Duration::from_secs(15));
    let moves: Vec<_> = pair
        .b
        .events
        .iter()
        .filter_map(|e| match e {
            crate::Event::PeerMoved { connection, remote, .. } => Some((*connection, remote.port())),
            _ => None,
        })
        .collect();
    assert_eq!(moves, [(connection, 35_500)]);
    let last = pair.b.transmits.last().map(|t| t.remote.port());
    assert_eq!(last, Some(35_500), "B's R-U-THERE-ACK goes to the new mapping");
    assert!(pair.a.events.iter().all(|e| !matches!(e, crate::Event::SasCleared { .. })));
}

#[test]
fn nat_t_with_a_draft_only_peer_uses_draft_payloads_and_modes() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 28);
    pair.nat = Some(Nat { offset: 30_000 });
    // A's MM1 loses its RFC 3947 VID (one byte changed: an unknown VID, ignored), so B sees a
    // peer that speaks draft-03 at best and answers with that dialect.
    pair.alter = Some(Box::new(|to_b, t| {
        if to_b {
            if let Some(at) = t.payload.windows(16).position(|w| w == isakmp::vendor::NAT_T_RFC3947) {
                t.payload[at] ^= 0xff;
            }
        }
        true
    }));
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "a: {:?}\nb: {:?}", pair.a.events, pair.b.events);
    let mm2 = Message::parse(&pair.b.sent[0]).map(|m| PeerCapabilities::recognise(m.payloads()));
    assert_eq!(
        mm2.ok(),
        Some(PeerCapabilities { dpd: true, nat_t: Some(NatTVersion::Draft03), fragmentation: true })
    );
    for mm in [&pair.a.sent[1], &pair.b.sent[1]] {
        let types: Vec<PayloadType> =
            Message::parse(mm).map(|m| m.payloads().iter().map(Payload::payload_type).collect()).unwrap();
        assert_eq!(types.iter().filter(|t| **t == PayloadType::NatDiscoveryDraft).count(), 2, "{types:?}");
    }
    let views: Vec<_> =
        pair.a.engine.ike_sas().map(|v| (v.nat_traversal, v.local_behind_nat, v.local.port())).collect();
    assert_eq!(views, [(Some(NatTVersion::Draft03), true, 4500)]);
    for side in [&pair.a, &pair.b] {
        assert_eq!(installed(side)[0].udp_encapsulation.map(|u| u.local_port), Some(4500));
    }
}

#[test]
fn nat_t_replayed_informational_from_another_port_moves_nothing() {
    let dpd = crate::DpdConfig {
        idle_time: Duration::from_secs(10),
        retransmit_interval: Duration::from_secs(5),
        retry_limit: 3,
    };
    let a = Gateway { dpd: Some(dpd), ..Gateway::fw_a() };
    let mut pair = Pair::new(&a, &Gateway::fw_b(), 29);
    pair.nat = Some(Nat { offset: 30_000 });
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    pair.advance(Duration::from_secs(11));
    let r_u_there = pair
        .a
        .transmits
        .iter()
        .rev()
        .find(|t| {
            Message::parse(&t.payload).is_ok_and(|m| m.header.exchange_type == ExchangeType::Informational)
        })
        .map(|t| t.payload.clone())
        .expect("A probed");
    let b_sent = pair.b.transmits.len();
    // An attacker replays it from its own port.
    let b_local = SocketAddr::new(IpAddr::V4(Gateway::fw_b().local), 4500);
    let attacker = SocketAddr::new(IpAddr::V4(a.local), 40_000);
    pair.b.engine.handle_datagram(pair.now, b_local, attacker, &r_u_there);
    assert!(pair.b.engine.poll_transmit().is_none(), "no ACK for a replay");
    assert!(pair.b.engine.poll_event().is_none(), "no PeerMoved");
    assert_eq!(pair.b.transmits.len(), b_sent);
    assert_eq!(pair.b.engine.ike_sas().map(|v| v.remote.port()).collect::<Vec<_>>(), [34_500]);
}

#[test]
fn nat_t_float_converges_despite_loss_duplication_and_reordering() {
    for seed in 0..20 {
        let a = Gateway {
            limits: crate::Limits { retransmit_count: 12, ..Gateway::fw_a().limits },
            ..Gateway::fw_a()
        };
        let b = Gateway { limits: a.limits, ..Gateway::fw_b() };
        // The seeds of the test without NAT (tests/mod.rs): some other seeds lose MM6 more
        // often than the responder answers repeats of MM5, with or without NAT.
        let mut pair = Pair::new(&a, &b, 1000 + seed);
        pair.nat = Some(Nat { offset: 30_000 });
        pair.faults = super::util::Faults { loss: 30, duplicate: 20, jitter: Duration::from_millis(300) };
        pair.acquire_on_a(a.selector());
        assert!(
            pair.drive_until(5000, tunnel_up),
            "seed {seed}: a: {:?}\nb: {:?}",
            pair.a.events,
            pair.b.events
        );
        let (on_a, on_b) = (installed(&pair.a), installed(&pair.b));
        assert_eq!((on_a.len(), on_b.len()), (1, 1), "seed {seed}");
        assert_eq!(on_a[0].outbound.spi(), on_b[0].inbound.spi(), "seed {seed}");
        assert_eq!(on_a[0].udp_encapsulation, Some(UdpEncapsulation { local_port: 4500, remote_port: 4500 }));
        assert_eq!(
            on_b[0].udp_encapsulation,
            Some(UdpEncapsulation { local_port: 4500, remote_port: 34_500 })
        );
    }
}
