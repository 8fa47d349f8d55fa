//! HMAC (RFC 2104) keyed once and kept as the two hash states it starts from: the state after
//! absorbing the key XOR ipad block, and the state after the key XOR opad block. A packet's MAC
//! copies the first, absorbs the packet, finishes, copies the second, absorbs that digest and
//! finishes. Through AWS-LC's low-level hash API (`SHA256_CTX` and friends, 92 to 216 bytes
//! each) instead of an `HMAC_CTX` (1,232 bytes, sized for SHA-512 whatever the hash): an ESP SA
//! with HMAC-SHA2-256 keeps 224 bytes of HMAC state instead of 1.2 kB (issue 16: memory per SA).
//!
//! Every state (kept, or copied for one packet) and every key block is zeroized when dropped.
#![allow(unsafe_code)] // Part of the FFI module; every block has a SAFETY comment.

use aws_lc_sys as sys;
use zeroize::Zeroizing;

use super::{Md, MAX_MD_LEN};

/// Largest hash block (SHA-384 and SHA-512: 128 bytes).
const MAX_BLOCK: usize = 128;

/// One hash function through AWS-LC's low-level API: a plain-old-data context.
trait Hash: Copy {
    /// The hash's block length (the HMAC key block).
    const BLOCK: usize;
    /// The digest length.
    const LEN: usize;
    /// A freshly initialised context.
    fn fresh() -> Self;
    /// Absorbs `data`.
    fn absorb(&mut self, data: &[u8]);
    /// Writes the digest to the start of `out`.
    fn finish(&mut self, out: &mut [u8; MAX_MD_LEN]);
}

macro_rules! low_level_hash {
    ($name:ident, $ctx:ty, $init:ident, $update:ident, $final:ident, $block:expr, $len:expr) => {
        #[derive(Clone, Copy)]
        #[repr(transparent)]
        struct $name($ctx);

        impl Hash for $name {
            const BLOCK: usize = $block;
            const LEN: usize = $len;

            fn fresh() -> Self {
                // SAFETY: the context is a C struct of integers and byte arrays, for which all
                // zeroes is a valid value; the Init function then sets it up (it cannot fail:
                // it only writes the initial chaining values).
                unsafe {
                    let mut ctx: $ctx = core::mem::zeroed();
                    sys::$init(&mut ctx);
                    Self(ctx)
                }
            }

            fn absorb(&mut self, data: &[u8]) {
                // SAFETY: the context was initialised by `fresh` (or copied from one that
                // was); data points to data.len() readable bytes. Update cannot fail.
                unsafe { sys::$update(&mut self.0, data.as_ptr().cast(), data.len()) };
            }

            fn finish(&mut self, out: &mut [u8; MAX_MD_LEN]) {
                // SAFETY: the context is initialised; out holds MAX_MD_LEN ≥ LEN bytes.
                unsafe { sys::$final(out.as_mut_ptr(), &mut self.0) };
            }
        }
    };
}

low_level_hash!(Md5, sys::MD5_CTX, MD5_Init, MD5_Update, MD5_Final, 64, 16);
low_level_hash!(Sha1, sys::SHA_CTX, SHA1_Init, SHA1_Update, SHA1_Final, 64, 20);
low_level_hash!(Sha256, sys::SHA256_CTX, SHA256_Init, SHA256_Update, SHA256_Final, 64, 32);
low_level_hash!(Sha384, sys::SHA512_CTX, SHA384_Init, SHA384_Update, SHA384_Final, 128, 48);
low_level_hash!(Sha512, sys::SHA512_CTX, SHA512_Init, SHA512_Update, SHA512_Final, 128, 64);

/// A hash state that is zeroized when dropped (it is key-equivalent before any message).
struct Wiped<H: Hash>(H);

impl<H: Hash> Drop for Wiped<H> {
    fn drop(&mut self) {
        // SAFETY: H is a plain-old-data C struct (integers and byte arrays, no pointers, no
        // Drop), for which all zeroes is a valid value.
        unsafe { zeroize::zeroize_flat_type(&mut self.0) }
    }
}

/// The two precomputed states of one key.
struct Pads<H: Hash> {
    inner: Wiped<H>,
    outer: Wiped<H>,
}

impl<H: Hash> Pads<H> {
    fn new(key: &[u8]) -> Box<Self> {
        // RFC 2104 §2: a key longer than the block is hashed first; then padded with zeroes.
        let mut block = Zeroizing::new([0u8; MAX_BLOCK]);
        if key.len() > H::BLOCK {
            let mut digest = Zeroizing::new([0u8; MAX_MD_LEN]);
            let mut hash = Wiped(H::fresh());
            hash.0.absorb(key);
            hash.0.finish(&mut digest);
            block[..H::LEN].copy_from_slice(&digest[..H::LEN]);
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let block = &mut block[..H::BLOCK];
        // The pads are absorbed in the box itself: keyed states built on the stack and moved
        // in would leave unwiped copies behind (a move runs no Drop). Fresh states hold no
        // secret.
        let mut pads = Box::new(Self { inner: Wiped(H::fresh()), outer: Wiped(H::fresh()) });
        block.iter_mut().for_each(|b| *b ^= 0x36);
        pads.inner.0.absorb(block);
        block.iter_mut().for_each(|b| *b ^= 0x36 ^ 0x5c);
        pads.outer.0.absorb(block);
        pads
    }

    fn mac(&self, parts: &[&[u8]], out: &mut [u8; MAX_MD_LEN]) -> usize {
        let mut inner = Wiped(self.inner.0);
        for part in parts {
            inner.0.absorb(part);
        }
        let mut digest = Zeroizing::new([0u8; MAX_MD_LEN]);
        inner.0.finish(&mut digest);
        let mut outer = Wiped(self.outer.0);
        outer.0.absorb(&digest[..H::LEN]);
        outer.0.finish(out);
        H::LEN
    }
}

/// An HMAC key kept as its precomputed inner and outer hash states, each behind one box
/// sized for its own hash (MD5 2 × 92, SHA-1 2 × 96, SHA-256 2 × 112, SHA-384/512 2 × 216 bytes).
pub(crate) struct HmacPads(Kind);

enum Kind {
    Md5(Box<Pads<Md5>>),
    Sha1(Box<Pads<Sha1>>),
    Sha256(Box<Pads<Sha256>>),
    Sha384(Box<Pads<Sha384>>),
    Sha512(Box<Pads<Sha512>>),
}

impl HmacPads {
    /// Keys HMAC with `md` and `key` (any length, RFC 2104).
    pub(crate) fn new(md: Md, key: &[u8]) -> Self {
        Self(match md {
            Md::Md5 => Kind::Md5(Pads::new(key)),
            Md::Sha1 => Kind::Sha1(Pads::new(key)),
            Md::Sha256 => Kind::Sha256(Pads::new(key)),
            Md::Sha384 => Kind::Sha384(Pads::new(key)),
            Md::Sha512 => Kind::Sha512(Pads::new(key)),
        })
    }

    /// The full HMAC over the concatenation of `parts`, written to the start of `out`;
    /// returns its length (the hash's digest length).
    pub(crate) fn mac(&self, parts: &[&[u8]], out: &mut [u8; MAX_MD_LEN]) -> usize {
        match &self.0 {
            Kind::Md5(pads) => pads.mac(parts, out),
            Kind::Sha1(pads) => pads.mac(parts, out),
            Kind::Sha256(pads) => pads.mac(parts, out),
            Kind::Sha384(pads) => pads.mac(parts, out),
            Kind::Sha512(pads) => pads.mac(parts, out),
        }
    }

    /// Heap bytes this key holds (for the memory tests and figures).
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        match &self.0 {
            Kind::Md5(_) => size_of::<Pads<Md5>>(),
            Kind::Sha1(_) => size_of::<Pads<Sha1>>(),
            Kind::Sha256(_) => size_of::<Pads<Sha256>>(),
            Kind::Sha384(_) => size_of::<Pads<Sha384>>(),
            Kind::Sha512(_) => size_of::<Pads<Sha512>>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: AWS-LC's own `HMAC_CTX` (an implementation this module does not share).
    fn reference(md: Md, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut out = [0u8; MAX_MD_LEN];
        let len = super::super::hmac(md, key, parts, &mut out).unwrap();
        out[..len].to_vec()
    }

    fn ours(md: Md, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut out = [0u8; MAX_MD_LEN];
        let len = HmacPads::new(md, key).mac(parts, &mut out);
        out[..len].to_vec()
    }

    #[test]
    fn agrees_with_hmac_ctx_for_every_hash_key_length_and_split() {
        let data: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        for md in [Md::Md5, Md::Sha1, Md::Sha256, Md::Sha384, Md::Sha512] {
            // Keys shorter than, equal to, and longer than each block (64 and 128).
            for key_len in [0, 1, 16, 20, 32, 63, 64, 65, 127, 128, 129, 200] {
                let key: Vec<u8> = (0..key_len).map(|i| (i * 7 + 3) as u8).collect();
                for len in [0, 1, 55, 56, 63, 64, 65, 111, 112, 128, 129, 700] {
                    let message = &data[..len];
                    let (a, b) = message.split_at(len / 3);
                    assert_eq!(ours(md, &key, &[message]), reference(md, &key, &[message]));
                    assert_eq!(ours(md, &key, &[a, b, &[]]), reference(md, &key, &[message]));
                }
            }
        }
    }

    // Keys longer than the block, hashed first (RFC 2104 §2): RFC 2202 test case 6 (HMAC-MD5,
    // HMAC-SHA-1, key 0xaa × 80) and RFC 4231 test case 6 (HMAC-SHA-256/384/512, 0xaa × 131).
    #[test]
    fn rfc2202_and_rfc4231_long_key_vectors() {
        let data = b"Test Using Larger Than Block-Size Key - Hash Key First";
        let cases = [
            (Md::Md5, 80, "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"),
            (Md::Sha1, 80, "aa4ae5e15272d00e95705637ce8a3b55ed402112"),
            (Md::Sha256, 131, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            (
                Md::Sha384,
                131,
                "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6\
                 0c2ef6ab4030fe8296248df163f44952",
            ),
            (
                Md::Sha512,
                131,
                "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352\
                 6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
            ),
        ];
        for (md, key_len, expected) in cases {
            assert_eq!(hex::encode(ours(md, &vec![0xaa; key_len], &[data])), expected, "{md:?}");
        }
    }

    #[test]
    fn box_holds_only_its_hashs_two_states() {
        assert_eq!(HmacPads::new(Md::Sha256, &[1; 32]).heap_bytes(), 2 * 112);
        assert_eq!(HmacPads::new(Md::Sha1, &[1; 20]).heap_bytes(), 2 * 96);
        assert_eq!(HmacPads::new(Md::Sha512, &[1; 64]).heap_bytes(), 2 * 216);
        assert_eq!(size_of::<HmacPads>(), 16);
    }
}
