//! AH tests: ICVs checked against an independent implementation (Python's `hmac`, run at
//! test time by `tests/ah_icv.py`), mutable fields and options, round trips in both modes,
//! replay, tampering, and no-panic properties over random and mutated bytes.

use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;

use super::*;
use crate::replay::ReplayError;
use crate::sa::{LifetimeCause, LifetimeNotice};
use crate::tests::ipv4_packet;
use crypto::key_schedule::Spi;

const SPI: Spi = Spi(0x2000_0101);
const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn key(integrity: Integrity, seed: u8) -> Vec<u8> {
    (0..integrity.key_len()).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect()
}

fn pair(integrity: Integrity, mode: Mode) -> (OutboundAh, InboundAh, Vec<u8>) {
    let params = AhParams { mode, ..AhParams::new(integrity) };
    let k = key(integrity, 3);
    let keys = SaKeys { spi: SPI, cipher_key: &[], integrity_key: &k };
    (OutboundAh::new(&params, keys).unwrap(), InboundAh::new(&params, keys).unwrap(), k)
}

fn inner(len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len.saturating_sub(20)).map(|i| (i * 7) as u8).collect();
    ipv4_packet(1, [10, 1, 1, 2], [10, 2, 2, 2], &payload)
}

/// Runs tests/ah_icv.py over `(algorithm, key, packet)` lines and returns its ICVs.
fn python_icvs(lines: &[(Integrity, &[u8], &[u8])]) -> Vec<Vec<u8>> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ah_icv.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs tests/ah_icv.py (the independent AH implementation)");
    let mut input = String::new();
    for (integrity, key, packet) in lines {
        input += &format!("{} {} {}\n", integrity.name(), hex::encode(key), hex::encode(packet));
    }
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "ah_icv.py failed");
    String::from_utf8(output.stdout).unwrap().lines().map(|l| hex::decode(l).unwrap()).collect()
}

/// Our sealed packets carry the ICV that Python's hmac computes over the same bytes with
/// the mutable fields zeroed, for every algorithm, in both modes.
#[test]
fn icv_matches_an_independent_implementation() {
    let mut packets = Vec::new();
    for integrity in Integrity::ALL {
        for mode in [Mode::Tunnel, Mode::Transport] {
            let (mut out, _, k) = pair(integrity, mode);
            let mut buf = vec![0u8; 200];
            let payload = inner(90);
            let packet = out.seal(A, B, 4, &payload, &mut buf).unwrap().to_vec();
            packets.push((integrity, k, packet));
        }
    }
    let lines: Vec<_> = packets.iter().map(|(i, k, p)| (*i, k.as_slice(), p.as_slice())).collect();
    let icvs = python_icvs(&lines);
    assert_eq!(icvs.len(), packets.len());
    for ((integrity, _, packet), expected) in packets.iter().zip(icvs) {
        assert_eq!(expected.len(), integrity.icv_len());
        let start = OUTER_HEADER_LEN + AH_FIXED_LEN;
        assert_eq!(&packet[start..start + expected.len()], expected.as_slice(), "{integrity}");
        // The header: protocol 51, DF, a non-zero ID, TTL 64, a valid checksum.
        assert_eq!(packet[9], PROTOCOL_AH);
        assert_eq!(packet[6], 0x40);
        assert_ne!(&packet[4..6], &[0, 0]);
        assert_eq!(crate::mtu::checksum(&packet[..20]), 0);
        assert_eq!(usize::from(u16::from_be_bytes([packet[2], packet[3]])), packet.len());
    }
}

/// A packet built outside our sealing code, with a mutable option (Record Route) and an
/// immutable one (Router Alert), signed by Python: it opens; changing the mutable option or
/// TTL/TOS afterwards does not matter; changing the immutable option does.
#[test]
fn packet_with_options_signed_by_python_opens() {
    let integrity = Integrity::HmacSha1_96;
    let (_, mut inbound, k) = pair(integrity, Mode::Tunnel);
    let build = |sequence: u32| {
        let payload = inner(40);
        let ah_len = 12 + 12;
        let total = 32 + ah_len + payload.len();
        let mut p = vec![0x48, 0x10, (total >> 8) as u8, total as u8, 0x12, 0x34, 0, 0, 17, 51, 0xab, 0xcd];
        p.extend_from_slice(&A.octets());
        p.extend_from_slice(&B.octets());
        p.extend_from_slice(&[148, 4, 0, 0]); // Router Alert (immutable)
        p.extend_from_slice(&[7, 7, 4, 0, 0, 0, 0]); // Record Route (mutable)
        p.push(0); // End of Options
        p.extend_from_slice(&[4, (ah_len / 4 - 2) as u8, 0, 0]);
        p.extend_from_slice(&SPI.0.to_be_bytes());
        p.extend_from_slice(&sequence.to_be_bytes());
        p.extend_from_slice(&[0; 12]);
        p.extend_from_slice(&payload);
        p
    };
    let mut packets = [build(1), build(2), build(3)];
    let lines: Vec<_> = packets.iter().map(|p| (integrity, k.as_slice(), p.as_slice())).collect();
    let icvs = python_icvs(&lines);
    for (packet, icv) in packets.iter_mut().zip(icvs) {
        packet[44..56].copy_from_slice(&icv);
    }
    let mut first = packets[0].clone();
    let opened = inbound.open_in_place(&mut first).unwrap();
    assert_eq!((opened.next_header, opened.sequence, opened.offset), (4, 1, 56));
    assert_eq!(opened.payload.to_vec(), inner(40));
    // Routers record their address and decrement TTL, rewrite DSCP: still authentic.
    let mut routed = packets[1].clone();
    routed[27..31].copy_from_slice(&[198, 51, 100, 9]);
    routed[8] = 3;
    routed[1] = 0xb8;
    routed[10] = 0;
    inbound.open_in_place(&mut routed).unwrap();
    // The Router Alert value is immutable.
    let mut forged = packets[2].clone();
    forged[22] = 1;
    assert_eq!(inbound.open_in_place(&mut forged), Err(OpenError::AuthenticationFailed));
}

#[test]
fn round_trip_every_algorithm_both_modes() {
    for integrity in Integrity::ALL {
        for mode in [Mode::Tunnel, Mode::Transport] {
            let (mut out, mut inb, _) = pair(integrity, mode);
            for (n, len) in [20, 21, 84, 1400].into_iter().enumerate() {
                let payload = inner(len);
                let mut buf = vec![0u8; len + MAX_AH_LEN + OUTER_HEADER_LEN];
                let sealed = out.seal(A, B, 4, &payload, &mut buf).unwrap();
                assert_eq!(sealed.len(), OUTER_HEADER_LEN + AH_FIXED_LEN + integrity.icv_len() + len);
                let opened = inb.open_in_place(sealed).unwrap();
                assert_eq!(opened.payload.to_vec(), payload, "{integrity} {mode:?}");
                assert_eq!((opened.source, opened.destination), (A, B));
                assert_eq!(opened.sequence, n as u32 + 1);
            }
            assert_eq!(out.counters().packets, 4);
            assert_eq!(inb.counters(), out.counters());
        }
    }
}

/// Identification, addresses, SPI, sequence and payload are covered; TTL, TOS, flags and
/// the checksum are not.
#[test]
fn mutable_and_immutable_fields() {
    let (mut out, mut inb, _) = pair(Integrity::HmacSha256_128, Mode::Tunnel);
    let seal = |out: &mut OutboundAh| {
        let mut buf = vec![0u8; 300];
        let len = out.seal(A, B, 4, &inner(100), &mut buf).unwrap().len();
        buf.truncate(len);
        buf
    };
    let mut p = seal(&mut out);
    p[8] = 1; // TTL
    p[1] = 0xfc; // TOS
    p[6] = 0; // DF cleared
    p[10] ^= 0xff; // checksum
    inb.open_in_place(&mut p).unwrap();
    for (index, what) in
        [(4, "identification"), (12, "source"), (19, "destination"), (24, "SPI"), (50, "payload")]
    {
        let mut p = seal(&mut out);
        p[index] ^= 1;
        let result = inb.open_in_place(&mut p);
        if index == 24 {
            assert!(matches!(result, Err(OpenError::WrongSpi { .. })), "{what}");
        } else {
            assert_eq!(result, Err(OpenError::AuthenticationFailed), "{what}");
        }
    }
    // Replays: the same packet twice, and a sequence number the window passed.
    let mut p = seal(&mut out);
    inb.open_in_place(&mut p.clone()).unwrap();
    assert_eq!(inb.open_in_place(&mut p), Err(OpenError::Replay(ReplayError::Duplicate { sequence: 7 })));
    // A forged sequence number far ahead does not move the window.
    let mut forged = seal(&mut out);
    forged[28..32].copy_from_slice(&1000u32.to_be_bytes());
    assert_eq!(inb.open_in_place(&mut forged), Err(OpenError::AuthenticationFailed));
    assert_eq!(inb.replay_window().highest(), 7);
}

#[test]
fn malformed_packets_are_typed_errors() {
    let (mut out, mut inb, _) = pair(Integrity::HmacMd5_96, Mode::Tunnel);
    let mut buf = vec![0u8; 300];
    let good = out.seal(A, B, 4, &inner(60), &mut buf).unwrap().to_vec();
    let mut fragment = good.clone();
    fragment[6] = 0x20;
    assert_eq!(inb.open_in_place(&mut fragment), Err(OpenError::MalformedAh(AhWireError::Fragment)));
    let mut wrong_len = good.clone();
    wrong_len[21] = 5;
    assert!(matches!(
        inb.open_in_place(&mut wrong_len),
        Err(OpenError::MalformedAh(AhWireError::HeaderLength { found: 28, expected: 24 }))
    ));
    let mut esp = good.clone();
    esp[9] = 50;
    assert!(matches!(inb.open_in_place(&mut esp), Err(OpenError::MalformedAh(AhWireError::NotAh(_)))));
    let mut short = good[..30].to_vec();
    assert!(matches!(
        inb.open_in_place(&mut short),
        Err(OpenError::MalformedAh(AhWireError::BadLength { .. }))
    ));
    let mut bad_option = good.clone();
    bad_option[0] = 0x46;
    bad_option.splice(20..20, [7, 9, 4, 0]);
    let total = bad_option.len() as u16;
    bad_option[2..4].copy_from_slice(&total.to_be_bytes());
    assert_eq!(
        inb.open_in_place(&mut bad_option),
        Err(OpenError::MalformedAh(AhWireError::BadOption { offset: 20 }))
    );
    // A tunnel-mode SA refuses a payload that is not IPv4; an exhausted outbound SA refuses to seal.
    let (mut out, mut inb, _) = pair(Integrity::HmacMd5_96, Mode::Tunnel);
    let mut p = out.seal(A, B, 17, &[1, 2, 3, 4], &mut buf).unwrap().to_vec();
    assert_eq!(inb.open_in_place(&mut p), Err(OpenError::UnexpectedNextHeader(17)));
    out.set_last_sequence(u32::MAX - 1);
    out.seal(A, B, 4, &inner(20), &mut buf).unwrap();
    assert_eq!(out.take_lifetime_notice(), Some(LifetimeNotice::Hard(LifetimeCause::SequenceNumbers)));
    assert_eq!(out.seal(A, B, 4, &inner(20), &mut buf).unwrap_err(), SealError::Expired);
    assert!(matches!(out.seal(A, B, 4, &inner(20), &mut [0u8; 10]), Err(SealError::BufferTooSmall { .. })));
}

fn integrity_strategy() -> impl Strategy<Value = Integrity> {
    prop::sample::select(Integrity::ALL.to_vec())
}

proptest! {
    #[test]
    fn open_inverts_seal(
        integrity in integrity_strategy(),
        transport in any::<bool>(),
        body in prop::collection::vec(any::<u8>(), 0..1500),
    ) {
        let mode = if transport { Mode::Transport } else { Mode::Tunnel };
        let (mut out, mut inb, _) = pair(integrity, mode);
        let payload = if transport { body } else { ipv4_packet(17, [10, 1, 1, 2], [10, 2, 2, 2], &body) };
        let mut buf = vec![0u8; payload.len() + OUTER_HEADER_LEN + MAX_AH_LEN];
        let next_header = if transport { 17 } else { 4 };
        let sealed = out.seal(A, B, next_header, &payload, &mut buf).unwrap();
        let opened = inb.open_in_place(sealed).unwrap();
        prop_assert_eq!(opened.next_header, next_header);
        prop_assert_eq!(opened.payload.to_vec(), payload);
    }

    #[test]
    fn random_bytes_never_panic(integrity in integrity_strategy(), mut bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let (_, mut inb, _) = pair(integrity, Mode::Tunnel);
        if let Some(first) = bytes.first_mut() {
            *first = 0x45 | (*first & 0x0f);
        }
        let _ = inb.open_in_place(&mut bytes);
        let _ = packet_spi(&bytes);
    }

    /// A sealed packet with one byte changed either still opens (a mutable field) or is
    /// refused; it never panics and never opens with a changed immutable byte.
    #[test]
    fn mutated_packets_never_panic(integrity in integrity_strategy(), index in 0usize..200, xor in 1u8..) {
        let (mut out, mut inb, _) = pair(integrity, Mode::Tunnel);
        let mut buf = vec![0u8; 300];
        let mut packet = out.seal(A, B, 4, &inner(100), &mut buf).unwrap().to_vec();
        let index = index % packet.len();
        packet[index] ^= xor;
        let mutable = matches!(index, 1 | 6 | 7 | 8 | 10 | 11);
        let result = inb.open_in_place(&mut packet);
        if result.is_ok() {
            prop_assert!(mutable, "byte {} changed and the packet still opened", index);
        }
    }
}
