//! Replays the cargo-fuzz corpus of the `esp_open` target (`fuzz/corpus/esp_open/` at the
//! repository root) as a plain test, with the same inbound SAs as the target (strongSwan's
//! from `vectors/`, plus an AES-GCM SA): nothing panics, `open` and `open_in_place` agree,
//! and the seeds named `seed-<vectors>-<section>-packet1` (strongSwan's first packet of that
//! SA) are delivered as that file's `packet1_inner`. Every file is also opened as an IPv4
//! packet with AH on an AH-only SA, and `ah-sha512-tunnel-seed` (signed with
//! `tests/ah_icv.py`) is delivered.
//!
//! The directory must exist: a missing corpus is a broken checkout, not a pass.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use esp::{
    Action, DataPlane, DataPlaneConfig, EspCipher, Inbound, Integrity, PolicyIndex, Prefix, Rule, SaKeys,
    SaPair, SaParams, SecureRandom, Selector, Spd, Spi,
};

struct Fixed(u8);

impl SecureRandom for Fixed {
    fn fill(&mut self, dest: &mut [u8]) {
        for byte in dest {
            self.0 = self.0.wrapping_add(97);
            *byte = self.0;
        }
    }
}

/// `key = hex` values of one section of a vectors file.
fn section(file: &str, name: &str) -> Vec<(String, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut current = String::new();
    let mut values = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if let Some(s) = line.strip_prefix('[') {
            current = s.trim_end_matches(']').to_string();
        } else if let Some((k, v)) = line.split_once(" = ") {
            if current == name && !k.ends_with("_text") && !k.ends_with("_num") {
                values.push((k.to_string(), hex::decode(v).unwrap()));
            }
        }
    }
    values
}

fn value(values: &[(String, Vec<u8>)], key: &str) -> Vec<u8> {
    values.iter().find(|(k, _)| k == key).unwrap().1.clone()
}

const FILES: [(&str, EspCipher, Integrity); 2] = [
    ("mm-psk-modp2048", EspCipher::AesCbc128, Integrity::HmacSha256_128),
    ("mm-psk-sha1-modp1024-3des", EspCipher::TripleDes, Integrity::HmacMd5_96),
];

fn plane() -> DataPlane {
    let inside = Selector::between(
        Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 8),
        Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 8),
    );
    let spd =
        Spd::new(vec![Rule { selector: inside, action: Action::Protect(PolicyIndex(0)) }], Action::Bypass);
    let mut plane = DataPlane::new(spd, DataPlaneConfig::default());
    let gcm_key = (0u8..20).collect::<Vec<u8>>();
    let mut sas = vec![(Spi(0x1000), EspCipher::AesGcm128, None, gcm_key, Vec::new())];
    for (file, cipher, integrity) in FILES {
        for name in ["esp-in", "esp-out"] {
            let v = section(&format!("{file}.vectors.txt"), name);
            let spi = Spi::from_bytes(value(&v, "spi").try_into().unwrap());
            sas.push((spi, cipher, Some(integrity), value(&v, "encryption_key"), value(&v, "integrity_key")));
        }
    }
    for (i, (spi, cipher, integrity, cipher_key, integrity_key)) in sas.iter().enumerate() {
        let inbound = SaKeys { spi: *spi, cipher_key, integrity_key };
        let pair = SaPair {
            policy: PolicyIndex(0),
            selector: inside,
            params: SaParams { udp_encapsulated: true, ..SaParams::new(*cipher, *integrity) },
            local: SocketAddr::from(([192, 0, 2, 1], 4500)),
            remote: SocketAddr::from(([192, 0, 2, 2], 4500)),
            inbound,
            outbound: SaKeys { spi: Spi(0x10_0000 + i as u32), ..inbound },
            protocols: esp::Protocols::Esp,
        };
        plane.install(pair, &mut Fixed(1)).unwrap();
    }
    // AH alone, as in the fuzz target: SPI 0x4000, HMAC-SHA2-512-256, key 64 × 0x07.
    let ah_key = [7u8; 64];
    let inbound = SaKeys { spi: Spi(0x4000), cipher_key: &[], integrity_key: &ah_key };
    let pair = SaPair {
        policy: PolicyIndex(0),
        selector: inside,
        params: SaParams::new(EspCipher::AesGcm128, None),
        local: SocketAddr::from(([192, 0, 2, 1], 0)),
        remote: SocketAddr::from(([192, 0, 2, 2], 0)),
        inbound,
        outbound: SaKeys { spi: Spi(0x4001), ..inbound },
        protocols: esp::Protocols::Ah(Integrity::HmacSha512_256),
    };
    plane.install(pair, &mut Fixed(1)).unwrap();
    plane
}

#[test]
fn corpus_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/esp_open");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} is missing ({e}); it must be committed", dir.display()));
    let (mut total, mut delivered) = (0usize, 0usize);
    for entry in entries {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        total += 1;
        let mut out = vec![0u8; bytes.len()];
        let opened = match plane().open(&bytes, &mut out) {
            Inbound::Deliver { packet, .. } => Some(packet.to_vec()),
            Inbound::Drop(_) => None,
        };
        let mut buf = bytes.clone();
        let in_place = match plane().open_in_place(&mut buf) {
            Inbound::Deliver { packet, .. } => Some(packet.to_vec()),
            Inbound::Drop(_) => None,
        };
        assert_eq!(opened, in_place, "{}", path.display());
        delivered += usize::from(opened.is_some());
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        // The same bytes as an IPv4 packet with AH.
        let ah = match plane().open_ah(&bytes, &mut out) {
            Inbound::Deliver { packet, .. } => Some(packet.to_vec()),
            Inbound::Drop(_) => None,
        };
        let mut buf = bytes.clone();
        let ah_in_place = match plane().open_ah_in_place(&mut buf) {
            Inbound::Deliver { packet, .. } => Some(packet.to_vec()),
            Inbound::Drop(_) => None,
        };
        assert_eq!(ah, ah_in_place, "{}", path.display());
        delivered += usize::from(ah.is_some());
        if name == "ah-sha512-tunnel-seed" {
            // Made by tests/ah_icv.py (Python's hmac): outer header, 44-byte AH, inner ping.
            assert_eq!(ah.as_deref(), Some(&bytes[64..]), "{name}");
        }
        if let Some(rest) = name.strip_prefix("seed-").and_then(|n| n.strip_suffix("-packet1")) {
            let (file, section_name) = rest.rsplit_once("-esp-").unwrap();
            let expected = value(
                &section(&format!("{file}.vectors.txt"), &format!("esp-{section_name}")),
                "packet1_inner",
            );
            assert_eq!(opened.as_deref(), Some(&expected[..]), "{name}");
        }
    }
    assert!(total > 0, "fuzz corpus {} is empty", dir.display());
    println!("replayed {total} corpus files, {delivered} delivered");
}
