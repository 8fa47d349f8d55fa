//! Cryptography for keysteward: the implementation of every algorithm in the tables of the
//! `algorithm` crate (whose typed ids `Phase1Cipher`, `HashAlgorithm`, `DhGroup`, `EspCipher`
//! and `Integrity` this crate re-exports) and the IKEv1 key schedule (RFC 2409 §5 and
//! Appendix B).
//!
//! Every primitive is backed by AWS-LC: through the safe `aws-lc-rs` API where it has the
//! operation, and through a small FFI module (`ffi`) over `aws-lc-sys` where it does not
//! (MD5 and HMAC-MD5, MODP Diffie-Hellman, PKCS#1 v1.5 signatures without DigestInfo), or
//! holds more than an ESP SA needs (`ffi::hmac_pads`: an HMAC key as its two precomputed hash
//! states; `ffi::aes_cbc`: one AES-CBC key schedule for its one direction).
//! That module is the only place in the workspace allowed `unsafe`.
//!
//! Secrets (keys, DH private values, SKEYIDs) live in types that zeroize on drop and never
//! print their contents.
#![deny(unsafe_code)]

mod ffi;

/// The algorithm tables whose typed ids this crate implements.
pub use algorithm;

pub mod dh;
pub mod esp_transform;
pub mod hash;
pub mod key_schedule;
pub mod phase1_cipher;
pub mod random;
pub mod secret;
pub mod signature;
pub mod untrusted;
pub mod x509;

pub use dh::{DhError, DhGroup, DhPrivate, InvalidPublicValue};
pub use esp_transform::{CipherKey, EspCipher, EspCryptoError, Icv, Integrity, IntegrityKey, KeyUse};
pub use hash::{Digest, HashAlgorithm, HashFunction};
pub use phase1_cipher::{CbcCipher, CipherError, Phase1Cipher};
pub use random::{OsRandom, SecureRandom};
pub use secret::SecretBytes;
pub use signature::{SignatureAlgorithm, SignatureError, SignatureVerified, SigningKey, VerifyingKey};
pub use x509::{
    utc_text, CertificateError, CertificateSummary, LocalCertificate, PresentedIdentity, TrustStore,
    VerifiedCertificate,
};
