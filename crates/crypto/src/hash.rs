//! Hash functions and their HMACs, the IKEv1 pseudo-random function.
//!
//! RFC 2409 §4: when no PRF attribute is negotiated (no deployed peer negotiates one), the PRF
//! is the HMAC (RFC 2104) of the negotiated hash algorithm. Phase-1 hash algorithm numbers are
//! RFC 2409 Appendix A (MD5 1, SHA 2, SHA2-256 4, SHA2-384 5, SHA2-512 6).

use core::fmt;
use core::ops::Deref;
use zeroize::Zeroize;

use crate::ffi::{self, Md, MAX_MD_LEN};

pub use algorithm::HashAlgorithm;

/// What `crypto` does with a hash algorithm: digest and HMAC. The algorithm's facts (number,
/// output length, names) are its row in [`algorithm::HASH_ALGORITHMS`].
pub trait HashFunction: Copy {
    /// Hash of the concatenation of `parts`.
    fn digest(self, parts: &[&[u8]]) -> Digest;

    /// HMAC keyed with `key` over the concatenation of `parts`: the IKEv1 `prf(key, msg)`.
    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Digest;
}

impl HashFunction for HashAlgorithm {
    fn digest(self, parts: &[&[u8]]) -> Digest {
        let mut out = Digest::empty();
        let len = ffi::digest(md(self), parts, &mut out.bytes).unwrap_or_else(|| internal_failure());
        out.len = len;
        out
    }

    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Digest {
        let mut out = Digest::empty();
        let len = ffi::hmac(md(self), key, parts, &mut out.bytes).unwrap_or_else(|| internal_failure());
        out.len = len;
        out
    }
}

/// The AWS-LC digest that implements `hash`.
fn md(hash: HashAlgorithm) -> Md {
    match hash {
        HashAlgorithm::Md5 => Md::Md5,
        HashAlgorithm::Sha1 => Md::Sha1,
        HashAlgorithm::Sha256 => Md::Sha256,
        HashAlgorithm::Sha384 => Md::Sha384,
        HashAlgorithm::Sha512 => Md::Sha512,
    }
}

/// AWS-LC only fails a hash on allocation failure; nothing sensible can continue after that.
fn internal_failure() -> ! {
    std::process::abort()
}

/// A hash or HMAC output, held inline (no allocation) and zeroized on drop because PRF outputs
/// are often keys. `Debug` does not show the bytes.
#[derive(Clone)]
pub struct Digest {
    bytes: [u8; MAX_MD_LEN],
    len: usize,
}

impl Digest {
    fn empty() -> Self {
        Self { bytes: [0; MAX_MD_LEN], len: 0 }
    }
}

impl Deref for Digest {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(<{} bytes>)", self.len)
    }
}

impl Drop for Digest {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // FIPS 180-2 / RFC 1321 "abc" vectors.
    #[test]
    fn digest_known_answers() {
        let cases = [
            (HashAlgorithm::Md5, "900150983cd24fb0d6963f7d28e17f72"),
            (HashAlgorithm::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (HashAlgorithm::Sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                HashAlgorithm::Sha384,
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
            ),
            (
                HashAlgorithm::Sha512,
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
        ];
        for (alg, want) in cases {
            assert_eq!(&*alg.digest(&[b"a", b"bc"]), &h(want)[..], "{alg}");
            assert_eq!(alg.digest(&[b"abc"]).len(), alg.output_len());
        }
    }

    // RFC 2202 test case 2 (MD5, SHA-1) and RFC 4231 test case 2 (SHA-2).
    #[test]
    fn hmac_known_answers() {
        let key = b"Jefe";
        let msg: &[&[u8]] = &[b"what do ya want ", b"for nothing?"];
        let cases = [
            (HashAlgorithm::Md5, "750c783e6ab0b503eaa86e310a5db738"),
            (HashAlgorithm::Sha1, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
            (HashAlgorithm::Sha256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (
                HashAlgorithm::Sha384,
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
            ),
            (
                HashAlgorithm::Sha512,
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            ),
        ];
        for (alg, want) in cases {
            assert_eq!(&*alg.hmac(key, msg), &h(want)[..], "{alg}");
        }
    }

    #[test]
    fn digest_debug_is_redacted() {
        let d = HashAlgorithm::Sha256.hmac(b"k", &[b"m"]);
        assert_eq!(format!("{d:?}"), "Digest(<32 bytes>)");
    }
}
