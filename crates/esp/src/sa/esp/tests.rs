//! SA tests: strongSwan known answers, round trips for every suite and mode, tampering,
//! replay, lifetimes, and a no-panic property over random bytes.

use proptest::prelude::*;

use super::*;
use crate::replay::ReplayError;
use crate::sa::{Counters, LifetimeCause, LifetimeNotice, SEQUENCE_SOFT_LIMIT};
use crate::tests::{hex_value, key_bytes, suites, vector_section, SeededRandom};
use crate::tests::{ipv4_packet, udp};
use crate::wire::esp::{TrailerError, WireError};
use crypto::key_schedule::Spi;

const SPI_IN: Spi = Spi(0x1000_0001);

fn params(cipher: EspCipher, integrity: Option<Integrity>, mode: Mode) -> SaParams {
    SaParams { mode, ..SaParams::new(cipher, integrity) }
}

/// An outbound SA and the matching inbound SA (same keys and SPI), as the two ends have.
fn pair(cipher: EspCipher, integrity: Option<Integrity>, mode: Mode) -> (OutboundSa, InboundSa) {
    let p = params(cipher, integrity, mode);
    pair_with(&p)
}

fn pair_with(p: &SaParams) -> (OutboundSa, InboundSa) {
    let (ck, ik) = key_bytes(p.cipher, p.integrity, 7);
    let keys = SaKeys { spi: SPI_IN, cipher_key: &ck, integrity_key: &ik };
    let out = OutboundSa::new(p, keys, &mut SeededRandom(42)).unwrap();
    let inb = InboundSa::new(p, keys).unwrap();
    (out, inb)
}

fn inner(len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len.saturating_sub(20)).map(|i| i as u8).collect();
    ipv4_packet(1, [10, 1, 1, 2], [10, 2, 2, 2], &payload)
}

/// Opens strongSwan's first ESP packet of each direction of every captured scenario with
/// the logged keys and compares the inner ICMP packet (tshark decrypted the same bytes).
#[test]
fn strongswan_known_answers() {
    let files = [
        ("mm-psk-modp2048.vectors.txt", EspCipher::AesCbc128, Integrity::HmacSha256_128),
        ("mm-psk-sha1-modp1024-3des.vectors.txt", EspCipher::TripleDes, Integrity::HmacMd5_96),
        ("am-psk-fqdn.vectors.txt", EspCipher::AesCbc128, Integrity::HmacSha256_128),
        ("mm-psk-pfs.vectors.txt", EspCipher::AesCbc128, Integrity::HmacSha256_128),
        ("mm-psk-ecp256.vectors.txt", EspCipher::AesCbc128, Integrity::HmacSha256_128),
    ];
    for (file, cipher, integrity) in files {
        for section in ["esp-in", "esp-out"] {
            let v = vector_section(file, section);
            let spi = Spi::from_bytes(hex_value(&v, "spi").try_into().unwrap());
            let (ck, ik) = (hex_value(&v, "encryption_key"), hex_value(&v, "integrity_key"));
            let p = SaParams { udp_encapsulated: true, ..SaParams::new(cipher, Some(integrity)) };
            let mut sa = InboundSa::new(&p, SaKeys { spi, cipher_key: &ck, integrity_key: &ik }).unwrap();
            let esp = hex_value(&v, "packet1_esp");
            let mut out = vec![0u8; esp.len()];
            let opened = sa.open(&esp, &mut out).unwrap_or_else(|e| panic!("{file} [{section}]: {e}"));
            assert_eq!(opened.payload.to_vec(), hex_value(&v, "packet1_inner"), "{file} [{section}]");
            assert_eq!((opened.next_header, opened.sequence), (4, 1));
            assert_eq!(opened.offset, 8 + cipher.iv_len());
            assert_eq!(sa.replay_window().highest(), 1);
            assert_eq!(sa.counters(), Counters { packets: 1, bytes: 84 });
            // In place gives the same, and the replay window now refuses it.
            let mut again = esp.clone();
            assert_eq!(
                sa.open_in_place(&mut again),
                Err(OpenError::Replay(ReplayError::Duplicate { sequence: 1 }))
            );
        }
    }
}

/// Seal → open for every cipher/integrity pair, both modes, many lengths.
#[test]
fn round_trip_every_suite_and_mode() {
    for (cipher, integrity) in suites() {
        for mode in [Mode::Tunnel, Mode::Transport] {
            let (mut out_sa, mut in_sa) = pair(cipher, integrity, mode);
            for (n, len) in [20, 21, 40, 84, 100, 255, 1400, 1500].into_iter().enumerate() {
                let packet = inner(len);
                let mut buf = vec![0u8; len + MAX_HEADROOM + MAX_TAILROOM];
                let sealed = match mode {
                    Mode::Tunnel => out_sa.seal_tunnel(&packet, &mut buf),
                    Mode::Transport => out_sa.seal_transport(17, &packet[20..], &mut buf),
                }
                .unwrap()
                .to_vec();
                let payload_len = if mode == Mode::Tunnel { len } else { len - 20 };
                assert_eq!(sealed.len(), out_sa.sealed_len(payload_len));
                let esp = EspPacket::new_checked(&sealed[..]).unwrap();
                assert_eq!(esp.spi(), SPI_IN);
                assert_eq!(esp.sequence_number(), n as u32 + 1);
                let layout = esp.layout(
                    cipher.iv_len(),
                    params(cipher, integrity, mode).icv_len(),
                    cipher.block_len(),
                );
                let layout = layout.unwrap();
                assert_eq!((layout.icv_start - layout.ciphertext_start) % cipher.block_len().max(4), 0);
                if cipher != EspCipher::Null {
                    assert_ne!(&sealed[layout.ciphertext_start..layout.ciphertext_start + 8], &packet[..8]);
                }

                let mut out = vec![0u8; sealed.len()];
                let opened = in_sa
                    .open(&sealed, &mut out)
                    .unwrap_or_else(|e| panic!("{cipher} {integrity:?} {mode:?} {len}: {e}"));
                match mode {
                    Mode::Tunnel => {
                        assert_eq!(opened.payload, &packet[..]);
                        assert_eq!(opened.next_header, 4);
                    }
                    Mode::Transport => {
                        assert_eq!(opened.payload, &packet[20..]);
                        assert_eq!(opened.next_header, 17);
                    }
                }
                // And in place.
                let mut copy = sealed.clone();
                assert!(matches!(in_sa.open_in_place(&mut copy), Err(OpenError::Replay(_))));
            }
            assert_eq!(out_sa.counters().packets, 8);
            assert_eq!(in_sa.counters(), out_sa.counters());
        }
    }
}

#[test]
fn max_payload_len_is_the_largest_that_fits() {
    for (cipher, integrity) in suites() {
        let (sa, _) = pair(cipher, integrity, Mode::Tunnel);
        for space in [0, 10, 60, 100, 1000, 1472, 1480, 1500] {
            let max = sa.max_payload_len(space);
            if max > 0 {
                assert!(sa.sealed_len(max) <= space, "{cipher} {space}");
            }
            assert!(
                sa.sealed_len(max + 1) > space,
                "{cipher} {integrity:?} {space}: {max} is not the largest"
            );
        }
    }
}

#[test]
fn seal_in_place_matches_seal() {
    let (mut a, mut inb) = pair(EspCipher::AesGcm128, None, Mode::Tunnel);
    let packet = inner(300);
    let mut buf = vec![0u8; a.sealed_len(300)];
    let start = a.headroom();
    buf[start..start + 300].copy_from_slice(&packet);
    let len = a.seal_in_place(&mut buf, 300, 4).unwrap();
    assert_eq!(len, buf.len());
    let opened = inb.open_in_place(&mut buf).unwrap();
    assert_eq!(opened.payload, &packet[..]);
    assert_eq!(opened.offset, 16);
}

#[test]
fn cbc_ivs_are_unpredictable_and_gcm_ivs_are_the_sequence() {
    let (mut cbc, _) = pair(EspCipher::AesCbc128, Some(Integrity::HmacSha1_96), Mode::Tunnel);
    let packet = inner(64);
    let mut ivs = Vec::new();
    for _ in 0..4 {
        let mut buf = vec![0u8; 200];
        let sealed = cbc.seal_tunnel(&packet, &mut buf).unwrap();
        ivs.push(sealed[8..24].to_vec());
    }
    for (i, iv) in ivs.iter().enumerate() {
        assert!(!iv.starts_with(&[0; 8]), "IV {i} looks like a counter");
        assert!(ivs[i + 1..].iter().all(|other| other != iv), "IVs repeat");
    }
    // Another SA, another IV key: different IVs for the same sequence numbers.
    let p = params(EspCipher::AesCbc128, Some(Integrity::HmacSha1_96), Mode::Tunnel);
    let (ck, ik) = key_bytes(p.cipher, p.integrity, 7);
    let keys = SaKeys { spi: SPI_IN, cipher_key: &ck, integrity_key: &ik };
    let mut other = OutboundSa::new(&p, keys, &mut SeededRandom(43)).unwrap();
    let mut buf = vec![0u8; 200];
    assert_ne!(other.seal_tunnel(&packet, &mut buf).unwrap()[8..24], ivs[0][..]);

    let (mut gcm, _) = pair(EspCipher::AesGcm256, None, Mode::Tunnel);
    for seq in 1..=3u64 {
        let mut buf = vec![0u8; 200];
        let sealed = gcm.seal_tunnel(&packet, &mut buf).unwrap();
        assert_eq!(sealed[8..16], seq.to_be_bytes());
    }
}

/// Flips one byte at `index` of a sealed packet and expects `open` to refuse it without
/// moving the window; then the genuine packet still opens.
fn tamper(
    cipher: EspCipher,
    integrity: Option<Integrity>,
    index: impl Fn(usize) -> usize,
    expected: OpenError,
) {
    let (mut out_sa, mut in_sa) = pair(cipher, integrity, Mode::Tunnel);
    let packet = inner(100);
    let mut buf = vec![0u8; 256];
    let sealed = out_sa.seal_tunnel(&packet, &mut buf).unwrap().to_vec();
    let mut bad = sealed.clone();
    let i = index(bad.len());
    bad[i] ^= 0x01;
    let mut out = vec![0u8; bad.len()];
    assert_eq!(in_sa.open(&bad, &mut out), Err(expected), "{cipher} {integrity:?} byte {i}");
    assert_eq!(in_sa.replay_window().highest(), 0, "window moved");
    assert_eq!(in_sa.counters().packets, 0);
    assert_eq!(in_sa.open(&sealed, &mut out).unwrap().payload, &packet[..]);
}

#[test]
fn tampering_is_refused_without_moving_the_window() {
    for (cipher, integrity) in suites() {
        // Last byte of the ICV, a ciphertext byte, an IV byte, the sequence number.
        tamper(cipher, integrity, |len| len - 1, OpenError::AuthenticationFailed);
        tamper(cipher, integrity, |_| 8 + cipher.iv_len() + 3, OpenError::AuthenticationFailed);
        if cipher.iv_len() > 0 {
            tamper(cipher, integrity, |_| 9, OpenError::AuthenticationFailed);
        }
        tamper(cipher, integrity, |_| 6, OpenError::AuthenticationFailed);
        // The SPI: not this SA's (the data plane would not even find an SA).
        tamper(cipher, integrity, |_| 3, OpenError::WrongSpi { expected: SPI_IN, found: Spi(SPI_IN.0 ^ 1) });
    }
}

/// Builds an authentic packet with an arbitrary encrypted part, as a buggy or hostile peer
/// holding the keys could: padding and trailer checks happen after the ICV.
fn forge(cipher: EspCipher, integrity: Option<Integrity>, sequence: u32, plaintext: &[u8]) -> Vec<u8> {
    let (ck, ik) = key_bytes(cipher, integrity, 7);
    let key = CipherKey::new(cipher, &ck).unwrap();
    let mut packet = Vec::new();
    packet.extend_from_slice(&SPI_IN.to_bytes());
    packet.extend_from_slice(&sequence.to_be_bytes());
    let iv = vec![0x42u8; cipher.iv_len()];
    packet.extend_from_slice(&iv);
    let mut body = plaintext.to_vec();
    if cipher.is_aead() {
        let tag = key.seal_in_place(&iv.clone().try_into().unwrap(), &packet[..8], &mut body).unwrap();
        packet.extend_from_slice(&body);
        packet.extend_from_slice(&tag);
    } else {
        key.encrypt_in_place(&iv, &mut body).unwrap();
        packet.extend_from_slice(&body);
        if let Some(integrity) = integrity {
            let icv = IntegrityKey::new(integrity, &ik).unwrap().compute(&[&packet]).unwrap();
            packet.extend_from_slice(&icv);
        }
    }
    packet
}

fn with_trailer(payload: &[u8], padding: &[u8], next_header: u8) -> Vec<u8> {
    let mut p = payload.to_vec();
    p.extend_from_slice(padding);
    p.push(padding.len() as u8);
    p.push(next_header);
    p
}

#[test]
fn bad_padding_and_next_header_are_dropped_without_moving_the_window() {
    for (cipher, integrity) in [
        (EspCipher::AesCbc128, Some(Integrity::HmacSha256_128)),
        (EspCipher::TripleDes, Some(Integrity::HmacMd5_96)),
        (EspCipher::AesGcm128, None),
        (EspCipher::Null, Some(Integrity::HmacSha1_96)),
    ] {
        let (_, mut sa) = pair(cipher, integrity, Mode::Tunnel);
        let packet = inner(20);
        // 20 + 10 + 2 = 32: a multiple of 8 and 16.
        let good = with_trailer(&packet, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 4);
        let wrong = with_trailer(&packet, &[1, 2, 3, 4, 5, 6, 7, 0, 9, 10], 4);
        let mut out = vec![0u8; 200];
        assert_eq!(
            sa.open(&forge(cipher, integrity, 5, &wrong), &mut out),
            Err(OpenError::Trailer(TrailerError::BadPadding { index: 7, found: 0, expected: 8 }))
        );
        // Pad length beyond the payload.
        let mut too_long = good.clone();
        let n = too_long.len();
        too_long[n - 2] = 31;
        assert_eq!(
            sa.open(&forge(cipher, integrity, 5, &too_long), &mut out),
            Err(OpenError::Trailer(TrailerError::PadLengthTooLarge { pad_len: 31, available: 30 }))
        );
        // Next header 6 in a tunnel-mode SA.
        let tcp = with_trailer(&packet, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 6);
        assert_eq!(
            sa.open(&forge(cipher, integrity, 5, &tcp), &mut out),
            Err(OpenError::UnexpectedNextHeader(6))
        );
        // An inner header that lies about its length.
        let mut broken = good.clone();
        broken[3] = 200;
        assert!(matches!(
            sa.open(&forge(cipher, integrity, 5, &broken), &mut out),
            Err(OpenError::InnerMalformed(_))
        ));
        assert_eq!(sa.replay_window().highest(), 0);
        // The genuine packet with the same sequence number is still accepted.
        let opened = sa.open(&forge(cipher, integrity, 5, &good), &mut out).unwrap();
        assert_eq!(opened.payload, &packet[..]);
        assert_eq!(sa.replay_window().highest(), 5);
    }
}

#[test]
fn dummy_packets_and_tfc_padding() {
    let cipher = EspCipher::AesGcm128;
    let (_, mut sa) = pair(cipher, None, Mode::Tunnel);
    let mut out = vec![0u8; 200];
    // Next header 59: authentic, so the window moves, but nothing is delivered.
    let dummy = with_trailer(&[0xAB; 10], &[], 59);
    assert_eq!(sa.open(&forge(cipher, None, 1, &dummy), &mut out), Err(OpenError::Dummy));
    assert_eq!(sa.replay_window().highest(), 1);
    // TFC padding after the inner packet (RFC 4303 §2.7) is cut off.
    let packet = inner(28);
    let mut padded = packet.clone();
    padded.extend_from_slice(&[0; 16]);
    let opened = sa.open(&forge(cipher, None, 2, &with_trailer(&padded, &[1, 2], 4)), &mut out).unwrap();
    assert_eq!(opened.payload, &packet[..]);
}

#[test]
fn replayed_and_reordered_packets() {
    let (mut out_sa, mut in_sa) = pair(EspCipher::AesCbc256, Some(Integrity::HmacSha512_256), Mode::Tunnel);
    let packet = inner(60);
    let sealed: Vec<Vec<u8>> = (0..100)
        .map(|_| {
            let mut buf = vec![0u8; 200];
            out_sa.seal_tunnel(&packet, &mut buf).unwrap().to_vec()
        })
        .collect();
    let mut out = vec![0u8; 200];
    in_sa.open(&sealed[99], &mut out).unwrap();
    in_sa.open(&sealed[50], &mut out).unwrap();
    assert_eq!(
        in_sa.open(&sealed[50], &mut out),
        Err(OpenError::Replay(ReplayError::Duplicate { sequence: 51 }))
    );
    assert_eq!(
        in_sa.open(&sealed[20], &mut out),
        Err(OpenError::Replay(ReplayError::TooOld { sequence: 21, highest: 100 }))
    );
    in_sa.open(&sealed[36], &mut out).unwrap();
    // Sequence number 0 never comes from a conforming sender.
    let mut zero = sealed[0].clone();
    zero[4..8].fill(0);
    assert_eq!(in_sa.open(&zero, &mut out), Err(OpenError::Replay(ReplayError::Zero)));
}

#[test]
fn sequence_numbers_run_out() {
    let (mut sa, _) = pair(EspCipher::AesGcm128, None, Mode::Tunnel);
    let packet = inner(40);
    let mut buf = vec![0u8; 200];
    sa.set_last_sequence(SEQUENCE_SOFT_LIMIT - 1);
    sa.seal_tunnel(&packet, &mut buf).unwrap();
    assert_eq!(sa.take_lifetime_notice(), Some(LifetimeNotice::Soft(LifetimeCause::SequenceNumbers)));
    assert_eq!(sa.take_lifetime_notice(), None);
    sa.seal_tunnel(&packet, &mut buf).unwrap();
    assert_eq!(sa.take_lifetime_notice(), None, "the soft notice comes once");
    sa.set_last_sequence(u32::MAX - 1);
    let sealed = sa.seal_tunnel(&packet, &mut buf).unwrap();
    assert_eq!(EspPacket::new_checked(&*sealed).unwrap().sequence_number(), u32::MAX);
    assert_eq!(sa.take_lifetime_notice(), Some(LifetimeNotice::Hard(LifetimeCause::SequenceNumbers)));
    assert!(sa.is_expired());
    assert_eq!(sa.seal_tunnel(&packet, &mut buf), Err(SealError::Expired));
    // Even without the expiry flag, the counter never wraps.
    let (mut sa, _) = pair(EspCipher::AesGcm128, None, Mode::Tunnel);
    sa.set_last_sequence(u32::MAX);
    assert_eq!(sa.seal_tunnel(&packet, &mut buf), Err(SealError::SequenceExhausted));
}

#[test]
fn traffic_limits() {
    let limits = TrafficLimits {
        soft_bytes: Some(250),
        hard_bytes: Some(400),
        soft_packets: None,
        hard_packets: None,
    };
    let p = SaParams { limits, ..SaParams::new(EspCipher::AesCbc128, Some(Integrity::HmacSha256_128)) };
    let (mut out_sa, mut in_sa) = pair_with(&p);
    let packet = inner(100);
    let mut buf = vec![0u8; 300];
    let mut out = vec![0u8; 300];
    let mut notices = Vec::new();
    let mut sealed_packets = Vec::new();
    for _ in 0..4 {
        sealed_packets.push(out_sa.seal_tunnel(&packet, &mut buf).unwrap().to_vec());
        notices.extend(out_sa.take_lifetime_notice());
    }
    assert_eq!(
        notices,
        [LifetimeNotice::Soft(LifetimeCause::Bytes), LifetimeNotice::Hard(LifetimeCause::Bytes)]
    );
    assert_eq!(out_sa.seal_tunnel(&packet, &mut buf), Err(SealError::Expired));
    for sealed in &sealed_packets {
        in_sa.open(sealed, &mut out).unwrap();
    }
    assert_eq!(in_sa.take_lifetime_notice(), Some(LifetimeNotice::Hard(LifetimeCause::Bytes)));
    assert!(in_sa.is_expired());
    let mut late = sealed_packets[0].clone();
    late[7] = 9;
    assert_eq!(in_sa.open(&late, &mut out), Err(OpenError::Expired));

    let kb = TrafficLimits::from_kilobytes(4, 3686);
    assert_eq!((kb.soft_bytes, kb.hard_bytes), (Some(3686), Some(4096)));
    let kb = TrafficLimits::from_kilobytes(4, 5000);
    assert_eq!((kb.soft_bytes, kb.hard_bytes), (Some(4096), Some(4096)), "soft at most hard");
    let packets = TrafficLimits { soft_packets: Some(1), hard_packets: Some(2), ..TrafficLimits::default() };
    let (mut sa, _) = pair_with(&SaParams { limits: packets, ..p });
    sa.seal_tunnel(&packet, &mut buf).unwrap();
    assert_eq!(sa.take_lifetime_notice(), Some(LifetimeNotice::Soft(LifetimeCause::Packets)));
    sa.seal_tunnel(&packet, &mut buf).unwrap();
    assert_eq!(sa.take_lifetime_notice(), Some(LifetimeNotice::Hard(LifetimeCause::Packets)));
}

#[test]
fn modes_buffers_and_construction_errors() {
    let (mut tunnel, mut inb) = pair(EspCipher::AesGcm128, None, Mode::Tunnel);
    let packet = inner(100);
    let mut small = vec![0u8; 100];
    assert_eq!(
        tunnel.seal_tunnel(&packet, &mut small),
        Err(SealError::BufferTooSmall { needed: tunnel.sealed_len(100), available: 100 })
    );
    assert_eq!(tunnel.last_sequence(), 0, "a refused packet consumes no sequence number");
    assert_eq!(tunnel.seal_transport(6, &packet, &mut small), Err(SealError::WrongMode(Mode::Tunnel)));
    assert_eq!(tunnel.seal_tunnel(&[0x50; 40], &mut small), Err(SealError::NotAnIpPacket));
    let (mut transport, _) = pair(EspCipher::AesGcm128, None, Mode::Transport);
    assert_eq!(transport.seal_tunnel(&packet, &mut small), Err(SealError::WrongMode(Mode::Transport)));

    let mut buf = vec![0u8; 200];
    let sealed = tunnel.seal_tunnel(&packet, &mut buf).unwrap().to_vec();
    let mut short = vec![0u8; sealed.len() - 1];
    assert_eq!(
        inb.open(&sealed, &mut short),
        Err(OpenError::BufferTooSmall { needed: sealed.len(), available: sealed.len() - 1 })
    );
    assert!(matches!(
        inb.open(&sealed[..20], &mut buf),
        Err(OpenError::Malformed(WireError::Truncated { .. }))
    ));

    let keys = SaKeys { spi: SPI_IN, cipher_key: &[0x11; 20], integrity_key: &[] };
    let gcm_hmac = SaParams::new(EspCipher::AesGcm128, Some(Integrity::HmacSha1_96));
    assert!(matches!(InboundSa::new(&gcm_hmac, keys), Err(SaError::AeadWithIntegrity { .. })));
    for cipher in [EspCipher::AesCbc128, EspCipher::Null] {
        assert_eq!(
            InboundSa::new(&SaParams::new(cipher, None), keys).unwrap_err(),
            SaError::MissingIntegrity(cipher)
        );
    }
    let reserved = SaKeys { spi: Spi(255), ..keys };
    assert_eq!(
        InboundSa::new(&SaParams::new(EspCipher::AesGcm128, None), reserved).unwrap_err(),
        SaError::ReservedSpi(Spi(255))
    );
    let short_key = SaKeys { cipher_key: &[0x11; 16], ..keys };
    assert!(matches!(
        InboundSa::new(&SaParams::new(EspCipher::AesGcm128, None), short_key),
        Err(SaError::Key(_))
    ));
    assert_eq!(format!("{keys:?}"), "SaKeys(10000001, <redacted>)");
    assert!(!format!("{tunnel:?}").contains("11"));
}

/// The whole chain from the phase-1 values to an opened packet: SKEYID (PSK) → SKEYID_d →
/// quick-mode KEYMAT for both SPIs → [`EspKeys`] → [`SaKeys`] → strongSwan's packets.
#[test]
fn keys_from_the_key_schedule_open_strongswan_packets() {
    use crypto::key_schedule::{EspKeyLengths, KeymatInput, Skeyid};
    use crypto::HashAlgorithm;

    for (file, prf, cipher, integrity) in [
        (
            "mm-psk-modp2048.vectors.txt",
            HashAlgorithm::Sha256,
            EspCipher::AesCbc128,
            Integrity::HmacSha256_128,
        ),
        (
            "mm-psk-sha1-modp1024-3des.vectors.txt",
            HashAlgorithm::Sha1,
            EspCipher::TripleDes,
            Integrity::HmacMd5_96,
        ),
    ] {
        let phase1 = vector_section(file, "phase1");
        let quick = vector_section(file, "quickmode");
        let (esp_in, esp_out) = (vector_section(file, "esp-in"), vector_section(file, "esp-out"));
        let v = |values: &[(String, String)], key: &str| hex_value(values, key);
        let skeyid =
            Skeyid::for_pre_shared_key(prf, &v(&phase1, "psk"), &v(&phase1, "ni_b"), &v(&phase1, "nr_b"));
        let cookie = |key| -> [u8; 8] { v(&phase1, key).try_into().unwrap() };
        let keys = skeyid.derive_phase1_keys(&v(&phase1, "g_xy"), &cookie("cky_i"), &cookie("cky_r"));
        let (ni_b, nr_b) = (v(&quick, "ni_b"), v(&quick, "nr_b"));
        let input = KeymatInput { pfs_shared_secret: None, protocol: 3, ni_b: &ni_b, nr_b: &nr_b };
        let spi = |values: &[(String, String)]| Spi::from_bytes(v(values, "spi").try_into().unwrap());
        let lengths = EspKeyLengths {
            encryption_key_len: cipher.key_len(),
            salt_len: 0,
            integrity_key_len: integrity.key_len(),
        };
        let sa_keys = keys.skeyid_d.ipsec_sa_keys(&input, spi(&esp_in), spi(&esp_out), lengths).unwrap();

        let p = SaParams::new(cipher, Some(integrity));
        for (keys, values) in [(&sa_keys.inbound, &esp_in), (&sa_keys.outbound, &esp_out)] {
            let mut sa = InboundSa::new(&p, SaKeys::from(keys)).unwrap();
            let esp = v(values, "packet1_esp");
            let mut out = vec![0u8; esp.len()];
            assert_eq!(
                sa.open(&esp, &mut out).unwrap().payload.to_vec(),
                v(values, "packet1_inner"),
                "{file}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `open` never panics, whatever the bytes, for every SA shape; a random packet under
    /// the right SPI is refused by the replay check, a length check or the ICV.
    #[test]
    fn open_never_panics(suite in 0usize..16, mode in any::<bool>(), spi_prefix in any::<bool>(), mut bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let all = suites();
        let (cipher, integrity) = all[suite % all.len()];
        let mode = if mode { Mode::Tunnel } else { Mode::Transport };
        let (_, mut sa) = pair(cipher, integrity, mode);
        if spi_prefix && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&SPI_IN.to_bytes());
        }
        let mut out = vec![0u8; bytes.len()];
        let result = sa.open(&bytes, &mut out);
        prop_assert!(result.is_err());
        prop_assert_eq!(sa.replay_window().highest(), 0);
        let _ = sa.open_in_place(&mut bytes);
    }

    /// Any payload survives the round trip.
    #[test]
    fn round_trip_any_transport_payload(suite in 0usize..16, payload in prop::collection::vec(any::<u8>(), 0..600), protocol in any::<u8>()) {
        let all = suites();
        let (cipher, integrity) = all[suite % all.len()];
        prop_assume!(protocol != NEXT_HEADER_NONE);
        let (mut out_sa, mut in_sa) = pair(cipher, integrity, Mode::Transport);
        let mut buf = vec![0u8; payload.len() + MAX_HEADROOM + MAX_TAILROOM];
        let sealed = out_sa.seal_transport(protocol, &payload, &mut buf).unwrap().to_vec();
        let mut out = vec![0u8; sealed.len()];
        let opened = in_sa.open(&sealed, &mut out).unwrap();
        prop_assert_eq!(&*opened.payload, &payload[..]);
        prop_assert_eq!(opened.next_header, protocol);
    }
}

#[test]
fn udp_payload_helper_is_sane() {
    // The selector test helper builds UDP headers; keep it honest for the data-plane tests.
    assert_eq!(&udp(1, 2)[..4], &[0, 1, 0, 2]);
}
