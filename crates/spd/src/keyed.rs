//! A hasher for tables keyed by values we choose ourselves (the data plane's SPIs and
//! policy indices), for the SA tables of `esp`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes the keys of the SA tables (our own inbound SPIs, policy indices) with one
/// multiplication (Fibonacci hashing). These keys are chosen by us, not by the network (the
/// IKE engine picks our SPIs at random; a packet's SPI is only looked up), so SipHash's
/// resistance to flooding buys nothing, and it cost about 7 % of sealing a 1400-byte packet.
#[derive(Debug, Default, Clone, Copy)]
pub struct IndexHasher(u64);

const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(FIBONACCI);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(32) ^ n).wrapping_mul(FIBONACCI);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A hash map keyed by our own indices, hashed with [`IndexHasher`].
pub type IndexMap<K, V> = HashMap<K, V, BuildHasherDefault<IndexHasher>>;
