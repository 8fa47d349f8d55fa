//! Helpers shared by the unit tests: a seeded random source, keys, vector files.

use crypto::{EspCipher, Integrity, SecureRandom};

/// A deterministic generator (xorshift64*): tests must be reproducible, and the SA code only
/// needs it to key the CBC IV generator.
pub(crate) struct SeededRandom(pub(crate) u64);

impl SecureRandom for SeededRandom {
    fn fill(&mut self, dest: &mut [u8]) {
        for byte in dest {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            *byte = (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
        }
    }
}

/// Every cipher with every integrity algorithm it may be combined with.
pub(crate) fn suites() -> Vec<(EspCipher, Option<Integrity>)> {
    let mut suites = Vec::new();
    for cipher in EspCipher::ALL {
        if cipher.is_aead() {
            suites.push((cipher, None));
        } else {
            for integrity in Integrity::ALL {
                suites.push((cipher, Some(integrity)));
            }
        }
    }
    suites
}

/// Key bytes for a suite that are valid (no weak DES key) and differ per `seed`.
pub(crate) fn key_bytes(cipher: EspCipher, integrity: Option<Integrity>, seed: u8) -> (Vec<u8>, Vec<u8>) {
    let cipher_key =
        (0..cipher.key_len()).map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) ^ 0x5c).collect();
    let integrity_key = (0..integrity.map_or(0, Integrity::key_len))
        .map(|i| (i as u8).wrapping_mul(11).wrapping_add(seed))
        .collect();
    (cipher_key, integrity_key)
}

/// One section of a `vectors/*.vectors.txt` file as (key, value) pairs.
pub(crate) fn vector_section(file: &str, section: &str) -> Vec<(String, String)> {
    let path = format!("{}/../../vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut in_section = false;
    let mut values = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            in_section = line == format!("[{section}]");
            continue;
        }
        if in_section {
            if let Some((key, value)) = line.split_once(" = ") {
                values.push((key.to_string(), value.to_string()));
            }
        }
    }
    values
}

/// The hex value of `key` in a section.
pub(crate) fn hex_value(values: &[(String, String)], key: &str) -> Vec<u8> {
    let value = values.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no {key}"));
    hex::decode(&value.1).unwrap()
}

/// A minimal IPv4 packet: 20-byte header, then `payload`.
pub(crate) fn ipv4_packet(protocol: u8, source: [u8; 4], destination: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut p = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, protocol, 0, 0];
    p.extend_from_slice(&source);
    p.extend_from_slice(&destination);
    p.extend_from_slice(payload);
    p
}

/// A UDP header and four bytes of data from `sport` to `dport`.
pub(crate) fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&[0, 12, 0, 0, b'd', b'a', b't', b'a']);
    u
}
