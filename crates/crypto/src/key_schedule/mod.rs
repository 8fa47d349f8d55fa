//! The IKEv1 key schedule: RFC 2409 §5 (SKEYID and its three children, HASH_I / HASH_R),
//! §5.5 (quick-mode HASH(1..3) and KEYMAT), Appendix B (phase-1 cipher key expansion and the
//! CBC IV chains), and the informational HASH of RFC 2409 §5.7.
//!
//! The schedule is a chain of typestates, so a key can only be used for what the RFC derives
//! it for (the shape of rustls `tls13/key_schedule.rs`):
//!
//! ```text
//! Skeyid ──derive_phase1_keys──▶ Phase1Keys { skeyid_d, skeyid_a, skeyid_e }
//!  │ HASH_I, HASH_R               │           │          └─ cipher_key ─▶ Phase1CipherKey (Ka)
//!  │                              │           └─ HASH(1..3), informational HASH
//!  │                              └─ KEYMAT ─▶ EspKeys (one per direction)
//! Phase1IvChain (hash(g^xi | g^xr)) ──exchange_chain(M-ID)──▶ ExchangeIvChain (QM, informational)
//! ```
//!
//! Every secret (SKEYID, SKEYID_d/a/e, Ka, KEYMAT, ESP keys) lives in [`SecretBytes`], which
//! zeroizes on drop and never prints its bytes. Received hashes are checked in constant time
//! and a successful check yields a [`HashVerified`] token that only this module can make.
//!
//! The PRF is the HMAC of the negotiated hash ([`HashFunction::hmac`]): no deployed IKEv1
//! peer negotiates a separate PRF attribute (RFC 2409 §4).
//!
//! [`SecretBytes`]: crate::SecretBytes
//! [`HashFunction::hmac`]: crate::HashFunction::hmac

mod exchange_hash;
mod iv;
mod keymat;
mod phase1;

pub use iv::{
    ExchangeIvChain, ExchangeIvTable, Iv, IvChain, NextIv, Phase1IvChain, Phase1Marker, Phase2Marker,
    MAX_BLOCK_LEN,
};
pub use keymat::{EspKeyLengths, EspKeys, IpsecSaKeys, Keymat, KeymatInput, MAX_KEYMAT_LEN};
pub use phase1::{AuthHashInput, Phase1CipherKey, Phase1Keys, Skeyid, SkeyidA, SkeyidD, SkeyidE};

use core::fmt;

use crate::phase1_cipher::{CipherError, Phase1Cipher};

/// The ISAKMP Message ID of an exchange (RFC 2408 §3.1). It enters the quick-mode and
/// informational hashes and the per-exchange IV as 4 bytes in network order; this newtype
/// keeps it from being confused with an SPI or a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u32);

impl MessageId {
    /// The 4 bytes as they appear in the ISAKMP header and in the hashed data.
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }

    /// The Message ID from the 4 header bytes.
    pub const fn from_bytes(bytes: [u8; 4]) -> Self {
        Self(u32::from_be_bytes(bytes))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// An IPsec SPI as carried in a quick-mode proposal (4 bytes for ESP and AH, RFC 2407 §4.5).
/// KEYMAT is keyed with it, so a distinct type keeps "whose SPI" visible at the call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Spi(pub u32);

impl Spi {
    /// The 4 bytes in network order, as in the proposal payload and the ESP header.
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }

    /// The SPI from its 4 wire bytes.
    pub const fn from_bytes(bytes: [u8; 4]) -> Self {
        Self(u32::from_be_bytes(bytes))
    }
}

impl fmt::Display for Spi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// Which authentication hash a verification was about, so a failure can be logged and
/// answered (INVALID-HASH-INFORMATION / AUTHENTICATION-FAILED) with the exact cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthHash {
    /// HASH_I, the initiator's phase-1 proof (MM5 / AM3).
    HashI,
    /// HASH_R, the responder's phase-1 proof (MM6 / AM2).
    HashR,
    /// Quick-mode HASH(1), in QM1.
    QuickModeHash1,
    /// Quick-mode HASH(2), in QM2.
    QuickModeHash2,
    /// Quick-mode HASH(3), in QM3.
    QuickModeHash3,
    /// The HASH(1) of an informational (or transaction) exchange.
    Informational,
}

impl fmt::Display for AuthHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HashI => "HASH_I",
            Self::HashR => "HASH_R",
            Self::QuickModeHash1 => "quick mode HASH(1)",
            Self::QuickModeHash2 => "quick mode HASH(2)",
            Self::QuickModeHash3 => "quick mode HASH(3)",
            Self::Informational => "informational HASH(1)",
        })
    }
}

/// Proof that a received authentication hash matched the one we computed. The field is
/// private, so the only way to hold one is to have called a `verify_*` function of this
/// module; the IKE engine must present it to mark an SA authenticated (rustls
/// `HandshakeSignatureValid`).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a verified hash is the proof the exchange needs; dropping it loses the proof"]
pub struct HashVerified(());

impl HashVerified {
    /// Made only after a constant-time comparison succeeded.
    fn new() -> Self {
        Self(())
    }
}

/// A received authentication hash did not match ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} does not match")]
pub struct HashMismatch(pub AuthHash);

/// Compares a received hash with the computed one in constant time.
fn verify(which: AuthHash, computed: &[u8], received: &[u8]) -> Result<HashVerified, HashMismatch> {
    if crate::secret::ct_eq(computed, received) {
        Ok(HashVerified::new())
    } else {
        Err(HashMismatch(which))
    }
}

/// Why a key-schedule operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyScheduleError {
    /// The phase-1 cipher refused the key, IV or data (wrong length, not whole blocks, weak
    /// DES key).
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// The key was derived for another cipher than the one the IV chain was made for.
    #[error("IV chain is for {chain} but the key is for {key}")]
    CipherMismatch {
        /// The chain's cipher.
        chain: Phase1Cipher,
        /// The key's cipher.
        key: Phase1Cipher,
    },
    /// An encrypted body must hold at least one block: its last block is the next IV.
    #[error("encrypted body is empty")]
    EmptyBody,
    /// More KEYMAT was asked for than any IPsec transform needs.
    #[error("{requested} bytes of KEYMAT requested, at most {max} allowed")]
    KeymatTooLong {
        /// Bytes asked for.
        requested: usize,
        /// The limit, [`MAX_KEYMAT_LEN`].
        max: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_is_network_order() {
        assert_eq!(MessageId(0x4ae9947f).to_bytes(), [0x4a, 0xe9, 0x94, 0x7f]);
        assert_eq!(MessageId::from_bytes([0, 0, 1, 2]), MessageId(0x0102));
        assert_eq!(MessageId(0xab).to_string(), "000000ab");
        assert_eq!(Spi(0xa4cb1e3c).to_bytes(), [0xa4, 0xcb, 0x1e, 0x3c]);
        assert_eq!(Spi::from_bytes([0x89, 0xb5, 0x68, 0x58]), Spi(0x89b56858));
    }

    #[test]
    fn verify_is_exact() {
        assert!(verify(AuthHash::HashI, &[1, 2, 3], &[1, 2, 3]).is_ok());
        assert_eq!(verify(AuthHash::HashR, &[1, 2, 3], &[1, 2, 4]), Err(HashMismatch(AuthHash::HashR)));
        // A truncated or empty received hash never matches.
        assert!(verify(AuthHash::HashR, &[1, 2, 3], &[1, 2]).is_err());
        assert!(verify(AuthHash::HashR, &[1, 2, 3], &[]).is_err());
        assert_eq!(HashMismatch(AuthHash::QuickModeHash2).to_string(), "quick mode HASH(2) does not match");
    }
}
