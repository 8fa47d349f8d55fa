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
