//! Signatures for IKEv1 authentication with certificates: RSA (authentication method 3,
//! RFC 2409 §5.1) and ECDSA (methods 9, 10, 11, RFC 4754 §3 and §7).
//!
//! IKEv1 signs the negotiated HASH_I or HASH_R itself, not a message: RSA uses the
//! EMSA-PKCS1-v1_5 block of RFC 8017 §9.2 *without* the DigestInfo, so the encoded message
//! is `00 01 FF … FF 00 || HASH` (RFC 2409 §5.1; strongSwan calls this scheme
//! `SIGN_RSA_EMSA_PKCS1_NULL`), and ECDSA signs the given digest and sends `r || s`, each
//! left-padded to the curve's coordinate length (RFC 4754 §7).
//!
//! RSA verification is strict (ikev1-notes, security pitfall 5; CVE-2018-16151/16152 were
//! lenient parsers): the signature must be exactly the modulus length, and the recovered block
//! must equal, byte for byte and in constant time, the block built from the expected hash —
//! `00 01`, at least eight `FF`, one `00`, the hash, nothing after. When it does not, the
//! block is parsed only to say *why* in the error. Public exponents below 3 or even are
//! refused, and so are moduli below 1024 bits.
//!
//! Keys are parsed by AWS-LC: private keys from PKCS#8 (RFC 5208), PKCS#1 `RSAPrivateKey`
//! (RFC 8017 A.1.2) or SEC1 `ECPrivateKey` (RFC 5915); public keys from
//! `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7), PKCS#1 `RSAPublicKey` (RFC 8017 A.1.1, the IKEv1
//! "raw RSA key" certificate encoding), or a modulus and exponent. AWS-LC wipes private key
//! material when the key is freed; the key types here never print it.

use core::fmt;

use crate::ffi::{self, EcKey, NistCurve, ParseFailure, ParsedKey, RsaKey};
use crate::secret::ct_eq;

/// Smallest RSA modulus accepted, in bits. 1024-bit keys are weak but still found on the
/// IKEv1 peers keysteward must interoperate with; anything smaller is refused outright.
pub const MIN_RSA_MODULUS_BITS: usize = 1024;

/// Minimum number of `FF` padding bytes in a PKCS#1 v1.5 signature block (RFC 8017 §9.2).
const MIN_PADDING: usize = 8;

/// A signature scheme with its key size, as far as the IKEv1 engine needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// RSA PKCS#1 v1.5 over the raw hash (IKEv1 authentication method 3).
    Rsa {
        /// Modulus length in bits.
        modulus_bits: usize,
    },
    /// ECDSA on P-256 (authentication method 9).
    EcdsaP256,
    /// ECDSA on P-384 (authentication method 10).
    EcdsaP384,
    /// ECDSA on P-521 (authentication method 11).
    EcdsaP521,
}

impl SignatureAlgorithm {
    /// Length of a signature on the wire (the SIG payload body).
    pub const fn signature_len(self) -> usize {
        match self {
            Self::Rsa { modulus_bits } => modulus_bits.div_ceil(8),
            Self::EcdsaP256 => 64,
            Self::EcdsaP384 => 96,
            Self::EcdsaP521 => 132,
        }
    }

    fn from_curve(curve: NistCurve) -> Self {
        match curve {
            NistCurve::P256 => Self::EcdsaP256,
            NistCurve::P384 => Self::EcdsaP384,
            NistCurve::P521 => Self::EcdsaP521,
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa { modulus_bits } => write!(f, "rsa-{modulus_bits}"),
            Self::EcdsaP256 => f.write_str("ecdsa-p256"),
            Self::EcdsaP384 => f.write_str("ecdsa-p384"),
            Self::EcdsaP521 => f.write_str("ecdsa-p521"),
        }
    }
}

/// The encoding a key was read from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// PKCS#8 `PrivateKeyInfo`.
    Pkcs8,
    /// PKCS#1 `RSAPrivateKey`.
    Pkcs1Private,
    /// SEC1 / RFC 5915 `ECPrivateKey`.
    Sec1,
    /// Any of the three private-key encodings, tried in turn.
    AnyPrivate,
    /// X.509 `SubjectPublicKeyInfo`.
    SubjectPublicKeyInfo,
    /// PKCS#1 `RSAPublicKey`.
    Pkcs1Public,
    /// An RSA modulus and exponent given separately.
    RsaComponents,
}

impl fmt::Display for KeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pkcs8 => "PKCS#8",
            Self::Pkcs1Private => "PKCS#1 RSAPrivateKey",
            Self::Sec1 => "SEC1 ECPrivateKey",
            Self::AnyPrivate => "private key DER",
            Self::SubjectPublicKeyInfo => "SubjectPublicKeyInfo",
            Self::Pkcs1Public => "PKCS#1 RSAPublicKey",
            Self::RsaComponents => "RSA modulus and exponent",
        })
    }
}

/// Why a key was refused or a signature was not made or not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The key bytes are not a valid key in the expected encoding.
    #[error("cannot parse {format} key: {reason}")]
    KeyParse {
        /// The encoding tried.
        format: KeyFormat,
        /// What went wrong.
        reason: &'static str,
    },
    /// A valid key of a type or curve keysteward does not sign with.
    #[error("unsupported {format} key: {what}")]
    UnsupportedKey {
        /// The encoding it came in.
        format: KeyFormat,
        /// What is unsupported.
        what: &'static str,
    },
    /// The RSA public exponent is below 3 or even.
    #[error("RSA public exponent is below 3 or even")]
    WeakExponent,
    /// The RSA modulus is shorter than [`MIN_RSA_MODULUS_BITS`].
    #[error("RSA modulus of {bits} bits is below the {minimum}-bit minimum")]
    ModulusTooSmall {
        /// The key's modulus length.
        bits: usize,
        /// The minimum accepted.
        minimum: usize,
    },
    /// The hash to sign or verify is empty.
    #[error("the hash to sign or verify is empty")]
    EmptyHash,
    /// The hash to sign or verify is too long for the RSA key.
    #[error("a {len}-byte hash cannot be signed with this key (at most {max} bytes)")]
    HashLength {
        /// The hash length given.
        len: usize,
        /// The longest hash the key can sign.
        max: usize,
    },
    /// The signature is not the length the key produces.
    #[error("signature must be {expected} bytes, got {actual}")]
    BadLength {
        /// The key's signature length.
        expected: usize,
        /// The received length.
        actual: usize,
    },
    /// The recovered PKCS#1 block is not `00 01 FF…FF 00` with at least eight `FF`.
    #[error("PKCS#1 v1.5 padding is malformed: {0}")]
    BadPadding(&'static str),
    /// The recovered block is well padded but holds bytes after a hash of the expected length.
    #[error("PKCS#1 v1.5 block holds {extra} bytes after the hash")]
    TrailingData {
        /// Bytes beyond the hash.
        extra: usize,
    },
    /// The signature does not match this hash under this key.
    #[error("signature does not verify")]
    BadSignature,
    /// AWS-LC failed an operation for a reason it does not name.
    #[error("signature operation failed inside the crypto library")]
    Internal,
}

/// Proof that a signature verified. Only [`VerifyingKey::verify`] makes one, so code that
/// holds it (the IKE engine, to mark a peer authenticated) cannot skip the check.
#[derive(Debug)]
#[must_use = "a verified signature only counts if the caller keeps the proof"]
pub struct SignatureVerified(());

/// A private key this gateway signs its HASH_I/HASH_R with. Freed (and wiped by AWS-LC) when
/// dropped; `Debug` shows the algorithm only.
pub enum SigningKey {
    /// An RSA private key.
    Rsa(RsaSigningKey),
    /// An ECDSA private key on P-256, P-384 or P-521.
    Ecdsa(EcdsaSigningKey),
}

/// An RSA private key (see [`SigningKey`]).
pub struct RsaSigningKey {
    key: RsaKey,
}

/// An ECDSA private key (see [`SigningKey`]).
pub struct EcdsaSigningKey {
    curve: NistCurve,
    key: EcKey,
}

fn parse_error(format: KeyFormat, failure: ParseFailure) -> SignatureError {
    match failure {
        ParseFailure::Malformed => SignatureError::KeyParse { format, reason: "malformed or inconsistent" },
        ParseFailure::TrailingData => SignatureError::KeyParse { format, reason: "bytes after the key" },
        ParseFailure::UnsupportedType => {
            SignatureError::UnsupportedKey { format, what: "key type other than RSA or EC" }
        }
    }
}

/// keysteward's policy on RSA public keys, beyond AWS-LC's own checks.
fn check_rsa_policy(key: &RsaKey) -> Result<(), SignatureError> {
    check_exponent(&key.public_exponent())?;
    let bits = key.modulus_bits();
    if bits < MIN_RSA_MODULUS_BITS {
        return Err(SignatureError::ModulusTooSmall { bits, minimum: MIN_RSA_MODULUS_BITS });
    }
    Ok(())
}

/// Refuses an exponent below 3 or even (big-endian, leading zeros allowed).
fn check_exponent(exponent: &[u8]) -> Result<(), SignatureError> {
    let significant: &[u8] = match exponent.iter().position(|&b| b != 0) {
        Some(start) => exponent.get(start..).unwrap_or_default(),
        None => &[],
    };
    match significant {
        [] => Err(SignatureError::WeakExponent),
        [small] if *small < 3 => Err(SignatureError::WeakExponent),
        [.., last] if last & 1 == 0 => Err(SignatureError::WeakExponent),
        _ => Ok(()),
    }
}

fn ec_curve(key: &EcKey, format: KeyFormat) -> Result<NistCurve, SignatureError> {
    key.curve().ok_or(SignatureError::UnsupportedKey { format, what: "curve other than P-256, P-384, P-521" })
}

impl SigningKey {
    /// An RSA or EC private key in PKCS#8 DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, SignatureError> {
        let format = KeyFormat::Pkcs8;
        match ffi::parse_pkcs8_private_key(der).map_err(|f| parse_error(format, f))? {
            ParsedKey::Rsa(key) => Self::rsa(key, format),
            ParsedKey::Ec(key) => Self::ecdsa(key, format),
        }
    }

    /// An RSA private key in PKCS#1 `RSAPrivateKey` DER.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, SignatureError> {
        let format = KeyFormat::Pkcs1Private;
        Self::rsa(RsaKey::parse_pkcs1_private(der).map_err(|f| parse_error(format, f))?, format)
    }

    /// An EC private key in SEC1 `ECPrivateKey` DER that names its curve.
    pub fn from_sec1_der(der: &[u8]) -> Result<Self, SignatureError> {
        let format = KeyFormat::Sec1;
        Self::ecdsa(EcKey::parse_sec1_private(der).map_err(|f| parse_error(format, f))?, format)
    }

    /// A private key in whichever of PKCS#8, PKCS#1 or SEC1 DER it is, for configuration files
    /// that do not say.
    pub fn from_der(der: &[u8]) -> Result<Self, SignatureError> {
        type Parser = fn(&[u8]) -> Result<SigningKey, SignatureError>;
        let parsers: [Parser; 3] = [Self::from_pkcs8_der, Self::from_pkcs1_der, Self::from_sec1_der];
        for parse in parsers {
            match parse(der) {
                // A key that parsed but breaks policy (weak exponent, unknown curve) is reported
                // as such, not hidden behind "unparseable".
                Err(SignatureError::KeyParse { .. }) => continue,
                other => return other,
            }
        }
        Err(SignatureError::KeyParse {
            format: KeyFormat::AnyPrivate,
            reason: "not a PKCS#8, PKCS#1 or SEC1 private key",
        })
    }

    fn rsa(key: RsaKey, format: KeyFormat) -> Result<Self, SignatureError> {
        if !key.has_private() {
            return Err(SignatureError::KeyParse { format, reason: "no private exponent" });
        }
        check_rsa_policy(&key)?;
        Ok(Self::Rsa(RsaSigningKey { key }))
    }

    fn ecdsa(key: EcKey, format: KeyFormat) -> Result<Self, SignatureError> {
        if !key.has_private() {
            return Err(SignatureError::KeyParse { format, reason: "no private scalar" });
        }
        let curve = ec_curve(&key, format)?;
        Ok(Self::Ecdsa(EcdsaSigningKey { curve, key }))
    }

    /// The scheme and size of the signatures this key makes.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            Self::Rsa(k) => SignatureAlgorithm::Rsa { modulus_bits: k.key.modulus_bits() },
            Self::Ecdsa(k) => SignatureAlgorithm::from_curve(k.curve),
        }
    }

    /// Signs `hash` (HASH_I or HASH_R) and returns the SIG payload body.
    pub fn sign(&self, hash: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let mut signature = vec![0u8; self.algorithm().signature_len()];
        match self {
            Self::Rsa(k) => {
                let block = pkcs1_block(signature.len(), hash)?;
                k.key.private_raw(&block, &mut signature).ok_or(SignatureError::Internal)?;
            }
            Self::Ecdsa(k) => {
                if hash.is_empty() {
                    return Err(SignatureError::EmptyHash);
                }
                k.key.sign_digest(hash, &mut signature).ok_or(SignatureError::Internal)?;
            }
        }
        Ok(signature)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, <redacted>)", self.algorithm())
    }
}

/// A peer's public key, from its certificate or configuration, used to check its SIG payload.
pub struct VerifyingKey {
    inner: PublicKey,
}

enum PublicKey {
    Rsa(RsaKey),
    Ecdsa { curve: NistCurve, key: EcKey },
}

impl VerifyingKey {
    /// An RSA or EC public key in `SubjectPublicKeyInfo` DER (as in an X.509 certificate).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, SignatureError> {
        let format = KeyFormat::SubjectPublicKeyInfo;
        let inner = match ffi::parse_spki(der).map_err(|f| parse_error(format, f))? {
            ParsedKey::Rsa(key) => {
                check_rsa_policy(&key)?;
                PublicKey::Rsa(key)
            }
            ParsedKey::Ec(key) => PublicKey::Ecdsa { curve: ec_curve(&key, format)?, key },
        };
        Ok(Self { inner })
    }

    /// An RSA public key in PKCS#1 `RSAPublicKey` DER.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, SignatureError> {
        let key = RsaKey::parse_pkcs1_public(der).map_err(|f| parse_error(KeyFormat::Pkcs1Public, f))?;
        check_rsa_policy(&key)?;
        Ok(Self { inner: PublicKey::Rsa(key) })
    }

    /// An RSA public key from its big-endian modulus and public exponent.
    pub fn from_rsa_components(modulus: &[u8], exponent: &[u8]) -> Result<Self, SignatureError> {
        // Our policy first, so a weak exponent is named as such rather than as a parse error.
        check_exponent(exponent)?;
        let key = RsaKey::from_public_components(modulus, exponent).ok_or(SignatureError::KeyParse {
            format: KeyFormat::RsaComponents,
            reason: "rejected by the RSA key checks",
        })?;
        check_rsa_policy(&key)?;
        Ok(Self { inner: PublicKey::Rsa(key) })
    }

    /// The scheme and size of the signatures this key checks.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match &self.inner {
            PublicKey::Rsa(key) => SignatureAlgorithm::Rsa { modulus_bits: key.modulus_bits() },
            PublicKey::Ecdsa { curve, .. } => SignatureAlgorithm::from_curve(*curve),
        }
    }

    /// Checks the peer's SIG payload body `signature` over `hash` (the HASH_I or HASH_R we
    /// computed ourselves). Returns the proof token only when it verifies.
    pub fn verify(&self, hash: &[u8], signature: &[u8]) -> Result<SignatureVerified, SignatureError> {
        let expected = self.algorithm().signature_len();
        if signature.len() != expected {
            return Err(SignatureError::BadLength { expected, actual: signature.len() });
        }
        match &self.inner {
            PublicKey::Rsa(key) => verify_rsa(key, hash, signature),
            PublicKey::Ecdsa { key, .. } => {
                if hash.is_empty() {
                    return Err(SignatureError::EmptyHash);
                }
                let (r, s) = signature.split_at(expected / 2);
                if key.verify_digest(hash, r, s) {
                    Ok(SignatureVerified(()))
                } else {
                    Err(SignatureError::BadSignature)
                }
            }
        }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", self.algorithm())
    }
}

/// The EMSA-PKCS1-v1_5 block of `len` bytes for `hash` with no DigestInfo:
/// `00 01 FF … FF 00 || hash`, with at least [`MIN_PADDING`] `FF` bytes.
fn pkcs1_block(len: usize, hash: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let max = len.saturating_sub(3 + MIN_PADDING);
    if hash.is_empty() {
        return Err(SignatureError::EmptyHash);
    }
    if hash.len() > max {
        return Err(SignatureError::HashLength { len: hash.len(), max });
    }
    let padding = len - 3 - hash.len();
    let mut block = Vec::with_capacity(len);
    block.extend_from_slice(&[0x00, 0x01]);
    block.resize(2 + padding, 0xFF);
    block.push(0x00);
    block.extend_from_slice(hash);
    Ok(block)
}

fn verify_rsa(key: &RsaKey, hash: &[u8], signature: &[u8]) -> Result<SignatureVerified, SignatureError> {
    let expected = pkcs1_block(key.modulus_len(), hash)?;
    let mut recovered = vec![0u8; key.modulus_len()];
    // AWS-LC refuses a signature not below the modulus; that is simply a bad signature.
    key.public_raw(signature, &mut recovered).ok_or(SignatureError::BadSignature)?;
    if ct_eq(&recovered, &expected) {
        return Ok(SignatureVerified(()));
    }
    Err(diagnose_pkcs1_block(&recovered, hash.len()))
}

/// Names what is wrong with a recovered block that did not match. The block is public
/// (anyone can apply the public key), so this parse need not be constant time.
fn diagnose_pkcs1_block(block: &[u8], hash_len: usize) -> SignatureError {
    let Some(([0x00, 0x01], rest)) = block.split_first_chunk::<2>().map(|(h, r)| (*h, r)) else {
        return SignatureError::BadPadding("block does not start with 00 01");
    };
    let padding = rest.iter().take_while(|&&b| b == 0xFF).count();
    let Some((&separator, hash_and_more)) = rest.get(padding..).and_then(<[u8]>::split_first) else {
        return SignatureError::BadPadding("no 00 separator after the FF bytes");
    };
    if separator != 0x00 {
        return SignatureError::BadPadding("a byte other than FF or 00 follows the FF bytes");
    }
    if padding < MIN_PADDING {
        return SignatureError::BadPadding("fewer than 8 FF bytes");
    }
    if hash_and_more.len() > hash_len {
        return SignatureError::TrailingData { extra: hash_and_more.len() - hash_len };
    }
    SignatureError::BadSignature
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{HashAlgorithm, HashFunction};

    const RSA2048_PK8: &[u8] = include_bytes!("../tests/data/rsa2048.pk8.der");
    const RSA2048_PKCS1: &[u8] = include_bytes!("../tests/data/rsa2048.pkcs1.der");
    const RSA2048_SPKI: &[u8] = include_bytes!("../tests/data/rsa2048.spki.der");
    const RSA2048_PKCS1_PUB: &[u8] = include_bytes!("../tests/data/rsa2048.pkcs1pub.der");
    const RSA3072_PK8: &[u8] = include_bytes!("../tests/data/rsa3072.pk8.der");
    const RSA3072_PKCS1: &[u8] = include_bytes!("../tests/data/rsa3072.pkcs1.der");
    const RSA3072_SPKI: &[u8] = include_bytes!("../tests/data/rsa3072.spki.der");
    const RSA3072_PKCS1_PUB: &[u8] = include_bytes!("../tests/data/rsa3072.pkcs1pub.der");
    const P256_PK8: &[u8] = include_bytes!("../tests/data/p256.pk8.der");
    const P256_SEC1: &[u8] = include_bytes!("../tests/data/p256.sec1.der");
    const P256_SPKI: &[u8] = include_bytes!("../tests/data/p256.spki.der");
    const P384_PK8: &[u8] = include_bytes!("../tests/data/p384.pk8.der");
    const P384_SEC1: &[u8] = include_bytes!("../tests/data/p384.sec1.der");
    const P384_SPKI: &[u8] = include_bytes!("../tests/data/p384.spki.der");
    const P521_PK8: &[u8] = include_bytes!("../tests/data/p521.pk8.der");
    const P521_SEC1: &[u8] = include_bytes!("../tests/data/p521.sec1.der");
    const P521_SPKI: &[u8] = include_bytes!("../tests/data/p521.spki.der");

    fn hash_i() -> Vec<u8> {
        HashAlgorithm::Sha1.digest(&[b"keysteward HASH_I"]).to_vec()
    }

    #[test]
    fn round_trips_for_every_key_and_encoding() {
        let cases: [(&[u8], &[u8], SignatureAlgorithm, HashAlgorithm); 10] = [
            (RSA2048_PK8, RSA2048_SPKI, SignatureAlgorithm::Rsa { modulus_bits: 2048 }, HashAlgorithm::Sha1),
            (
                RSA2048_PKCS1,
                RSA2048_PKCS1_PUB,
                SignatureAlgorithm::Rsa { modulus_bits: 2048 },
                HashAlgorithm::Md5,
            ),
            (
                RSA3072_PK8,
                RSA3072_PKCS1_PUB,
                SignatureAlgorithm::Rsa { modulus_bits: 3072 },
                HashAlgorithm::Sha512,
            ),
            (
                RSA3072_PKCS1,
                RSA3072_SPKI,
                SignatureAlgorithm::Rsa { modulus_bits: 3072 },
                HashAlgorithm::Sha256,
            ),
            (P256_PK8, P256_SPKI, SignatureAlgorithm::EcdsaP256, HashAlgorithm::Sha256),
            (P256_SEC1, P256_SPKI, SignatureAlgorithm::EcdsaP256, HashAlgorithm::Sha256),
            (P384_PK8, P384_SPKI, SignatureAlgorithm::EcdsaP384, HashAlgorithm::Sha384),
            (P384_SEC1, P384_SPKI, SignatureAlgorithm::EcdsaP384, HashAlgorithm::Sha384),
            (P521_PK8, P521_SPKI, SignatureAlgorithm::EcdsaP521, HashAlgorithm::Sha512),
            (P521_SEC1, P521_SPKI, SignatureAlgorithm::EcdsaP521, HashAlgorithm::Sha512),
        ];
        for (private, public, algorithm, hash_alg) in cases {
            let signer = SigningKey::from_der(private).unwrap();
            let verifier = VerifyingKey::from_spki_der(public)
                .or_else(|_| VerifyingKey::from_pkcs1_der(public))
                .unwrap();
            assert_eq!(signer.algorithm(), algorithm);
            assert_eq!(verifier.algorithm(), algorithm);
            let hash = hash_alg.digest(&[b"message ", b"to sign"]);
            let signature = signer.sign(&hash).unwrap();
            assert_eq!(signature.len(), algorithm.signature_len(), "{algorithm}");
            let _proof: SignatureVerified = verifier.verify(&hash, &signature).unwrap();
            let other = hash_alg.digest(&[b"another message"]);
            assert!(verifier.verify(&other, &signature).is_err(), "{algorithm}: wrong hash accepted");
        }
    }

    // Expected signature made by OpenSSL (tests/data/README.md): PKCS#1 v1.5 type-1 padding of
    // the raw SHA-1 of "keysteward HASH_I", no DigestInfo. RSA PKCS#1 v1.5 is deterministic, so
    // our signature must be byte-identical.
    #[test]
    fn rsa_matches_openssl_pkeyutl() {
        let openssl = include_bytes!("../tests/data/rsa2048.hash_i.sig");
        let ours = SigningKey::from_pkcs8_der(RSA2048_PK8).unwrap().sign(&hash_i()).unwrap();
        assert_eq!(hex::encode(&ours), hex::encode(openssl));
        let verifier = VerifyingKey::from_spki_der(RSA2048_SPKI).unwrap();
        assert!(verifier.verify(&hash_i(), openssl).is_ok());
    }

    // ECDSA signatures made by OpenSSL over the digests (tests/data/README.md).
    #[test]
    fn ecdsa_verifies_openssl_signatures() {
        let cases: [(&[u8], &[u8], HashAlgorithm); 3] = [
            (P256_SPKI, include_bytes!("../tests/data/p256.hash_r.sig"), HashAlgorithm::Sha256),
            (P384_SPKI, include_bytes!("../tests/data/p384.hash_r.sig"), HashAlgorithm::Sha384),
            (P521_SPKI, include_bytes!("../tests/data/p521.hash_r.sig"), HashAlgorithm::Sha512),
        ];
        for (spki, signature, hash_alg) in cases {
            let verifier = VerifyingKey::from_spki_der(spki).unwrap();
            let hash = hash_alg.digest(&[b"keysteward HASH_R"]);
            assert!(verifier.verify(&hash, signature).is_ok(), "{}", verifier.algorithm());
            let mut tampered = signature.to_vec();
            tampered[5] ^= 0x10;
            assert_eq!(verifier.verify(&hash, &tampered).unwrap_err(), SignatureError::BadSignature);
        }
    }

    /// Applies the raw private operation to a hand-made block, as a forger with a broken
    /// signer (or a buggy peer) would produce it.
    fn raw_sign(block: &[u8]) -> Vec<u8> {
        let SigningKey::Rsa(signer) = SigningKey::from_pkcs8_der(RSA2048_PK8).unwrap() else {
            panic!("not RSA");
        };
        let mut out = vec![0u8; block.len()];
        signer.key.private_raw(block, &mut out).unwrap();
        out
    }

    fn block(padding: usize, separator: u8, hash: &[u8], trailing: &[u8]) -> Vec<u8> {
        let mut b = vec![0x00, 0x01];
        b.resize(2 + padding, 0xFF);
        b.push(separator);
        b.extend_from_slice(hash);
        b.extend_from_slice(trailing);
        b
    }

    #[test]
    fn rsa_strict_verification() {
        let verifier = VerifyingKey::from_spki_der(RSA2048_SPKI).unwrap();
        let hash = hash_i();
        let k = 256;
        let good = raw_sign(&block(k - 3 - hash.len(), 0x00, &hash, &[]));
        assert!(verifier.verify(&hash, &good).is_ok());

        // Bytes after the hash (the Bleichenbacher 2006 forgery shape).
        let trailing = raw_sign(&block(k - 3 - hash.len() - 4, 0x00, &hash, &[0xde, 0xad, 0xbe, 0xef]));
        assert_eq!(verifier.verify(&hash, &trailing).unwrap_err(), SignatureError::TrailingData { extra: 4 });

        // Fewer than eight FF bytes (the block stays full length: 0x42 filler after the 00).
        let mut short = vec![0x00, 0x01];
        short.extend_from_slice(&[0xFF; 7]);
        short.push(0x00);
        short.resize(k, 0x42);
        let short = raw_sign(&short);
        assert_eq!(
            verifier.verify(&hash, &short).unwrap_err(),
            SignatureError::BadPadding("fewer than 8 FF bytes")
        );

        // Wrong separator.
        let wrong_separator = raw_sign(&block(k - 3 - hash.len(), 0x01, &hash, &[]));
        assert!(matches!(verifier.verify(&hash, &wrong_separator), Err(SignatureError::BadPadding(_))));

        // Block type 02 (encryption padding) instead of 01.
        let mut type2 = block(k - 3 - hash.len(), 0x00, &hash, &[]);
        type2[1] = 0x02;
        let type2 = raw_sign(&type2);
        assert_eq!(
            verifier.verify(&hash, &type2).unwrap_err(),
            SignatureError::BadPadding("block does not start with 00 01")
        );

        // A DigestInfo-wrapped (RFC 8017 EMSA) signature is not what IKEv1 signs.
        let mut digest_info = hex::decode("3021300906052b0e03021a05000414").unwrap();
        digest_info.extend_from_slice(&hash);
        let wrapped = raw_sign(&block(k - 3 - digest_info.len(), 0x00, &digest_info, &[]));
        assert!(verifier.verify(&hash, &wrapped).is_err());

        // Wrong lengths.
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(
            verifier.verify(&hash, &longer).unwrap_err(),
            SignatureError::BadLength { expected: 256, actual: 257 }
        );
        assert_eq!(
            verifier.verify(&hash, &good[1..]).unwrap_err(),
            SignatureError::BadLength { expected: 256, actual: 255 }
        );
        assert!(matches!(verifier.verify(&hash, &[]), Err(SignatureError::BadLength { .. })));

        // Wrong hash, tampered bit, and a value not below the modulus.
        let mut other = hash.clone();
        other[0] ^= 1;
        assert_eq!(verifier.verify(&other, &good).unwrap_err(), SignatureError::BadSignature);
        let mut tampered = good.clone();
        tampered[100] ^= 0x01;
        assert!(matches!(
            verifier.verify(&hash, &tampered),
            Err(SignatureError::BadPadding(_) | SignatureError::BadSignature)
        ));
        assert_eq!(verifier.verify(&hash, &[0xFF; 256]).unwrap_err(), SignatureError::BadSignature);
        assert_eq!(verifier.verify(&[], &good).unwrap_err(), SignatureError::EmptyHash);
    }

    #[test]
    fn ecdsa_rejects_malformed_signatures() {
        let signer = SigningKey::from_pkcs8_der(P256_PK8).unwrap();
        let verifier = VerifyingKey::from_spki_der(P256_SPKI).unwrap();
        let hash = HashAlgorithm::Sha256.digest(&[b"x"]);
        let signature = signer.sign(&hash).unwrap();
        assert!(matches!(verifier.verify(&hash, &signature[..63]), Err(SignatureError::BadLength { .. })));
        assert_eq!(verifier.verify(&hash, &[0u8; 64]).unwrap_err(), SignatureError::BadSignature);
        let mut s_zero = signature.clone();
        s_zero[32..].fill(0);
        assert_eq!(verifier.verify(&hash, &s_zero).unwrap_err(), SignatureError::BadSignature);
        assert_eq!(verifier.verify(&hash, &[0xFF; 64]).unwrap_err(), SignatureError::BadSignature);
        // The P-384 key does not verify a P-256 signature.
        let p384 = VerifyingKey::from_spki_der(P384_SPKI).unwrap();
        assert!(matches!(p384.verify(&hash, &signature), Err(SignatureError::BadLength { .. })));
    }

    #[test]
    fn weak_rsa_public_keys_are_refused() {
        let modulus = {
            let key = RsaKey::parse_pkcs1_public(RSA2048_PKCS1_PUB).unwrap();
            let mut n = vec![0u8; key.modulus_len()];
            // Recover n from the DER: the 257-byte INTEGER after the 4-byte SEQUENCE header
            // and the 4-byte INTEGER header (leading 00).
            n.copy_from_slice(&RSA2048_PKCS1_PUB[9..9 + 256]);
            n
        };
        for e in [&[][..], &[0], &[1], &[2], &[0, 1], &[1, 0, 0], &[0x01, 0x00, 0x00]] {
            assert_eq!(
                VerifyingKey::from_rsa_components(&modulus, e).unwrap_err(),
                SignatureError::WeakExponent,
                "e = {e:02x?}"
            );
        }
        let ok = VerifyingKey::from_rsa_components(&modulus, &[0x01, 0x00, 0x01]).unwrap();
        assert!(ok.verify(&hash_i(), include_bytes!("../tests/data/rsa2048.hash_i.sig")).is_ok());
        assert!(VerifyingKey::from_rsa_components(&modulus, &[3]).is_ok());

        let mut small = vec![0xC5u8; 96];
        small[95] = 0x01;
        assert_eq!(
            VerifyingKey::from_rsa_components(&small, &[1, 0, 1]).unwrap_err(),
            SignatureError::ModulusTooSmall { bits: 768, minimum: 1024 }
        );
    }

    #[test]
    fn key_parse_errors_are_typed() {
        let mut trailing = RSA2048_PK8.to_vec();
        trailing.push(0);
        assert_eq!(
            SigningKey::from_pkcs8_der(&trailing).unwrap_err(),
            SignatureError::KeyParse { format: KeyFormat::Pkcs8, reason: "bytes after the key" }
        );
        assert!(matches!(SigningKey::from_pkcs8_der(b"garbage"), Err(SignatureError::KeyParse { .. })));
        assert!(matches!(SigningKey::from_pkcs8_der(RSA2048_SPKI), Err(SignatureError::KeyParse { .. })));
        assert!(matches!(SigningKey::from_sec1_der(RSA2048_PKCS1), Err(SignatureError::KeyParse { .. })));
        assert!(matches!(SigningKey::from_pkcs1_der(P256_SEC1), Err(SignatureError::KeyParse { .. })));
        assert!(matches!(
            SigningKey::from_der(&[0x30, 0x00]),
            Err(SignatureError::KeyParse { format: KeyFormat::AnyPrivate, .. })
        ));
        assert!(matches!(VerifyingKey::from_spki_der(&[]), Err(SignatureError::KeyParse { .. })));
        assert!(matches!(VerifyingKey::from_pkcs1_der(P256_SPKI), Err(SignatureError::KeyParse { .. })));
        let mut spki = P256_SPKI.to_vec();
        spki.extend_from_slice(&[0, 0]);
        assert!(matches!(VerifyingKey::from_spki_der(&spki), Err(SignatureError::KeyParse { .. })));
    }

    #[test]
    fn hash_too_long_for_the_modulus() {
        let signer = SigningKey::from_pkcs8_der(RSA2048_PK8).unwrap();
        assert_eq!(signer.sign(&[0x11; 246]).unwrap_err(), SignatureError::HashLength { len: 246, max: 245 });
        assert!(signer.sign(&[0x11; 245]).is_ok());
        assert_eq!(signer.sign(&[]).unwrap_err(), SignatureError::EmptyHash);
        let ecdsa = SigningKey::from_pkcs8_der(P256_PK8).unwrap();
        assert_eq!(ecdsa.sign(&[]).unwrap_err(), SignatureError::EmptyHash);
    }

    #[test]
    fn diagnosis_never_panics_on_short_blocks() {
        for len in 0..16 {
            let _ = diagnose_pkcs1_block(&vec![0xFF; len], 20);
            let mut b = vec![0x00, 0x01];
            b.resize(len.max(2), 0xFF);
            let _ = diagnose_pkcs1_block(&b, 20);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        // Arbitrary signature bytes give a typed error, never a panic or an acceptance.
        #[test]
        fn arbitrary_signatures_are_rejected(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            full_length in proptest::prelude::any::<bool>(),
        ) {
            for spki in [RSA2048_SPKI, P256_SPKI, P521_SPKI] {
                let verifier = VerifyingKey::from_spki_der(spki).unwrap();
                let mut signature = bytes.clone();
                if full_length {
                    signature.resize(verifier.algorithm().signature_len(), 0x5a);
                }
                proptest::prop_assert!(verifier.verify(&hash_i(), &signature).is_err());
            }
        }
    }

    #[test]
    fn keys_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<SigningKey>();
        send_sync::<VerifyingKey>();
    }

    #[test]
    fn debug_never_shows_key_material() {
        let signer = SigningKey::from_pkcs8_der(P256_PK8).unwrap();
        assert_eq!(format!("{signer:?}"), "SigningKey(ecdsa-p256, <redacted>)");
        let verifier = VerifyingKey::from_spki_der(RSA2048_SPKI).unwrap();
        assert_eq!(format!("{verifier:?}"), "VerifyingKey(rsa-2048)");
    }
}
