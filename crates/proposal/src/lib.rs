//! Building and choosing SA proposals: phase 1 (RFC 2409 §5 and Appendix A) and quick mode
//! (RFC 2407 §4.5, RFC 2409 §5.5).
//!
//! Phase 1: one ISAKMP proposal with one transform per configured `ike proposal`, in priority
//! order. The responder takes the first offered transform equal to one of its proposals in
//! encryption (and key length), hash, authentication method and DH group; the lifetime is not
//! compared, both sides use the shorter (the USG and ASA rule).
//!
//! Quick mode: one ESP proposal per configured `ipsec proposal`, each with one transform. The
//! responder takes the first one equal to one of its own, with the same PFS group.
//!
//! `phase1` and `ipsec` hold the two; this file holds the configured proposals they are built
//! from (one `ike proposal`, one `ipsec proposal`), which the engine's configuration re-exports.
//!
//! Why a crate of its own: choosing among a peer's offers depends only on the algorithms and
//! the SA payload's wire form, never on an exchange's state, so it is read and tested apart
//! from the engine (`keysteward-ike`), which calls it from main, aggressive and quick mode.

mod ipsec;
mod phase1;

pub use self::ipsec::{
    choose_ipsec, is_udp_encapsulated, quick_mode_offer, ChosenProtocol, IpsecChoice, OurSpis,
};
pub use self::ipsec::{IpsecMismatch, IpsecOffer, IpsecSuite};
pub use self::phase1::{accept_phase1_reply, choose_phase1, phase1_offer, Phase1Choice};
pub use self::phase1::{Phase1Mismatch, Phase1Offer, SuiteName};

use std::time::Duration;

use crypto::{DhGroup, EspCipher, HashAlgorithm, Integrity, Phase1Cipher};

/// How a phase-1 peer proves its identity: a pre-shared key, or a signature with the key of
/// an X.509 certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// Pre-shared key (RFC 2409 §5.4).
    PreSharedKey,
    /// RSA signatures (RFC 2409 §5.1, method 3): PKCS#1 v1.5 over the raw HASH_I / HASH_R.
    RsaSignature,
    /// ECDSA with SHA-256 on P-256 (RFC 4754, method 9).
    EcdsaP256,
    /// ECDSA with SHA-384 on P-384 (RFC 4754, method 10).
    EcdsaP384,
    /// ECDSA with SHA-512 on P-521 (RFC 4754, method 11).
    EcdsaP521,
}

impl AuthMethod {
    /// True for the signature methods, which need a certificate (the engine's `PeerConfig::certificate`).
    pub fn is_signature(self) -> bool {
        !matches!(self, Self::PreSharedKey)
    }

    /// The signature method a key signs with: RSA keys use method 3, each ECDSA curve its own
    /// method (RFC 4754 §3), so the configuration layer derives the method from the key.
    pub fn for_key(algorithm: crypto::SignatureAlgorithm) -> Self {
        match algorithm {
            crypto::SignatureAlgorithm::Rsa { .. } => Self::RsaSignature,
            crypto::SignatureAlgorithm::EcdsaP256 => Self::EcdsaP256,
            crypto::SignatureAlgorithm::EcdsaP384 => Self::EcdsaP384,
            crypto::SignatureAlgorithm::EcdsaP521 => Self::EcdsaP521,
        }
    }

    /// Whether a peer's verified certificate key may sign under this method.
    pub fn accepts_key(self, algorithm: crypto::SignatureAlgorithm) -> bool {
        self.is_signature() && Self::for_key(algorithm) == self
    }
}

/// One `ike proposal`: a phase-1 transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IkeProposal {
    /// Phase-1 cipher (with its key length).
    pub encryption: Phase1Cipher,
    /// Hash, and through HMAC the PRF.
    pub hash: HashAlgorithm,
    /// Authentication method.
    pub auth_method: AuthMethod,
    /// Diffie-Hellman group.
    pub group: DhGroup,
    /// IKE SA lifetime. Not compared when matching: the shorter of both sides wins.
    pub lifetime: Duration,
}

impl IkeProposal {
    /// The USG defaults: aes-256 / sha2-256 / pre-share / group14 / 86400 s.
    pub fn recommended() -> Self {
        Self {
            encryption: Phase1Cipher::Aes256,
            hash: HashAlgorithm::Sha256,
            auth_method: AuthMethod::PreSharedKey,
            group: DhGroup::Modp2048,
            lifetime: Duration::from_secs(86_400),
        }
    }
}

/// The protocols of an `ipsec proposal` (`transform esp|ah|ah-esp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpsecProtocols {
    /// ESP with an encryption and an optional integrity algorithm.
    Esp {
        /// ESP encryption.
        encryption: EspCipher,
        /// ESP integrity; `None` only with an AEAD cipher.
        integrity: Option<Integrity>,
    },
    /// AH alone (RFC 4302): integrity of the whole packet, no confidentiality.
    Ah {
        /// AH integrity (the AH transform ID and its AUTH_ALGORITHM, RFC 2407 §4.4.3).
        integrity: Integrity,
    },
    /// AH and ESP together (`transform ah-esp`): two SAs each way, negotiated as two
    /// proposal payloads with the same number (RFC 2408 §4.2), AH first.
    AhEsp {
        /// AH integrity.
        ah_integrity: Integrity,
        /// ESP encryption.
        esp_encryption: EspCipher,
        /// ESP integrity; `None` only with an AEAD cipher.
        esp_integrity: Option<Integrity>,
    },
}

impl IpsecProtocols {
    /// The ESP part, if any: encryption and integrity.
    pub fn esp(&self) -> Option<(EspCipher, Option<Integrity>)> {
        match *self {
            Self::Esp { encryption, integrity } => Some((encryption, integrity)),
            Self::AhEsp { esp_encryption, esp_integrity, .. } => Some((esp_encryption, esp_integrity)),
            Self::Ah { .. } => None,
        }
    }

    /// The AH part, if any: its integrity algorithm.
    pub fn ah(&self) -> Option<Integrity> {
        match *self {
            Self::Ah { integrity } => Some(integrity),
            Self::AhEsp { ah_integrity, .. } => Some(ah_integrity),
            Self::Esp { .. } => None,
        }
    }

    /// The same protocols with HMAC-SHA2-256 truncated to 96 bits (`undo ipsec sha2
    /// compatible enable`): what the negotiated suite becomes on a gateway that uses the
    /// legacy truncation. The wire numbers are unchanged.
    pub fn legacy_96(self) -> Self {
        let esp = self.esp().map(|(encryption, integrity)| (encryption, integrity.map(Integrity::legacy_96)));
        Self::from_parts(self.ah().map(Integrity::legacy_96), esp).unwrap_or(self)
    }

    /// Builds the protocols from their parts; `None` when there is neither.
    pub fn from_parts(ah: Option<Integrity>, esp: Option<(EspCipher, Option<Integrity>)>) -> Option<Self> {
        Some(match (ah, esp) {
            (None, Some((encryption, integrity))) => Self::Esp { encryption, integrity },
            (Some(integrity), None) => Self::Ah { integrity },
            (Some(ah_integrity), Some((esp_encryption, esp_integrity))) => {
                Self::AhEsp { ah_integrity, esp_encryption, esp_integrity }
            }
            (None, None) => return None,
        })
    }
}

/// `encapsulation-mode` of an `ipsec proposal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EncapsulationMode {
    /// Tunnel mode: the whole inner packet is protected.
    #[default]
    Tunnel,
    /// Transport mode: between the gateways' own addresses.
    Transport,
}

/// One `ipsec proposal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpsecProposal {
    /// Protocols and algorithms.
    pub protocols: IpsecProtocols,
    /// Tunnel or transport.
    pub mode: EncapsulationMode,
}
