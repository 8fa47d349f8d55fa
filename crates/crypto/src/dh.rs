//! Diffie-Hellman for IKEv1 phase 1 and quick-mode PFS: the KE payload body and the shared
//! secret `g^xy` that feeds SKEYID (RFC 2409 §5) and KEYMAT with PFS (RFC 2409 §5.5).
//!
//! Groups and their wire encodings:
//! - MODP groups 1 and 2 (RFC 2409 §6.1, §6.2) and 5, 14–18 (RFC 3526 §2–§7), generator 2.
//!   The public value and the shared secret are big-endian and left-padded with zeros to the
//!   prime's length (RFC 2409 §5 fixes the KE length; strongSwan pads the same way, and
//!   stripping leading zeros breaks interop once in 256 exchanges).
//! - ECP groups 19, 20, 21 (P-256, P-384, P-521) per RFC 5903 §7: the KE body is `x || y`,
//!   each coordinate left-padded to the field length, without the SEC1 `0x04` prefix; the
//!   shared secret is the x coordinate of the shared point only (RFC 5903 §9: RFC 4753 used
//!   x || y; every deployed implementation follows RFC 5903).
//! - Curve25519, group 31 (RFC 8031 §2, used with IKEv1 by strongSwan and Libreswan):
//!   32-byte public value and 32-byte shared secret, refused if all zero (RFC 7748 §6.1).
//!
//! Peer public values are validated before use (ikev1-notes, security pitfall 7): the length
//! must be exactly the group's, a MODP value `y` must satisfy `1 < y < p − 1`, an ECP point
//! must be on the curve, and an X25519 result must not be all zero. Unknown and private-use
//! group numbers have no `DhGroup` value, so they cannot reach this code.
//!
//! Private values: every private value is drawn from the caller's [`SecureRandom`], so the
//! engine stays deterministic under a seeded generator in tests.
//! - MODP exponents have `max(256, 2 × strength)` bits, where `strength` is the group's
//!   security strength from RFC 3526 §8 / NIST SP 800-57 (80, 80, ~100, 112, 128, 152, 176,
//!   200 bits for groups 1, 2, 5, 14, 15, 16, 17, 18). RFC 3526 §8 asks for at least twice the
//!   strength; the 256-bit floor costs little on the small groups (≈ 0.3 ms for group 14). So
//!   groups 1, 2, 5, 14, 15 use 256 bits, 16 uses 304, 17 uses 352 and 18 uses 400.
//!   Exponentiation is `BN_mod_exp_mont_consttime`, with each prime's Montgomery context
//!   built once and shared.
//! - ECP scalars are random bytes of the order's length (the top byte masked to one bit for
//!   P-521), rejected and redrawn when zero or not below the order (AWS-LC refuses them), so
//!   the scalar is uniform in `[1, n − 1]`.
//! - X25519 scalars are 32 random bytes; clamping happens inside X25519 (RFC 7748 §5).

use core::fmt;

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey};
use zeroize::Zeroizing;

use crate::ffi;
use crate::random::SecureRandom;
use crate::secret::SecretBytes;

pub use algorithm::DhGroup;

/// Why a Diffie-Hellman operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DhError {
    /// The peer's KE body is not the group's public value length.
    #[error("{group} public value must be {expected} bytes, got {actual}")]
    WrongLength {
        /// The negotiated group.
        group: DhGroup,
        /// Bytes the group's public value has.
        expected: usize,
        /// Bytes received.
        actual: usize,
    },
    /// The peer's public value is one that leaks or fixes the shared secret.
    #[error("{group} peer public value rejected: {reason}")]
    InvalidPublicValue {
        /// The negotiated group.
        group: DhGroup,
        /// What is wrong with it.
        reason: InvalidPublicValue,
    },
    /// X25519 with the peer's value produced the all-zero secret: the peer sent a small-order
    /// point (RFC 7748 §6.1).
    #[error("{0} shared secret is all zero (small-order peer point)")]
    AllZeroSharedSecret(DhGroup),
    /// The random generator did not yield a usable private value after many attempts; a
    /// broken generator, since a real one fails with negligible probability.
    #[error("{0} private value generation failed: the random source returned unusable values")]
    KeyGeneration(DhGroup),
    /// AWS-LC failed an operation for a reason it does not name (allocation).
    #[error("{0} operation failed inside the crypto library")]
    Internal(DhGroup),
}

/// The ways a peer's public value can be unacceptable (ikev1-notes, security pitfall 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidPublicValue {
    /// MODP `y = 0`.
    Zero,
    /// MODP `y = 1`: the shared secret would be 1.
    One,
    /// MODP `y = p − 1`: order 2, the shared secret would be ±1.
    PrimeMinusOne,
    /// MODP `y ≥ p`: not a group element.
    NotBelowPrime,
    /// ECP: the point is not on the curve.
    NotOnCurve,
}

impl fmt::Display for InvalidPublicValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Zero => "y = 0",
            Self::One => "y = 1",
            Self::PrimeMinusOne => "y = p - 1",
            Self::NotBelowPrime => "y >= p",
            Self::NotOnCurve => "point not on the curve",
        })
    }
}

/// The parameters `crypto` computes with for a group (its number, lengths and names are its
/// row in [`algorithm::DH_GROUPS`]).
trait GroupParameters: Copy {
    fn prime(self) -> Option<&'static [u8]>;
    fn exponent_bits(self) -> usize;
    fn agreement_algorithm(self) -> Option<&'static agreement::Algorithm>;
}

impl GroupParameters for DhGroup {
    /// The MODP prime, big-endian; `None` for elliptic-curve groups.
    fn prime(self) -> Option<&'static [u8]> {
        Some(match self {
            Self::Modp768 => &MODP_768,
            Self::Modp1024 => &MODP_1024,
            Self::Modp1536 => &MODP_1536,
            Self::Modp2048 => &MODP_2048,
            Self::Modp3072 => &MODP_3072,
            Self::Modp4096 => &MODP_4096,
            Self::Modp6144 => &MODP_6144,
            Self::Modp8192 => &MODP_8192,
            Self::Ecp256 | Self::Ecp384 | Self::Ecp521 | Self::Curve25519 => return None,
        })
    }

    /// Bits of the random private exponent for a MODP group (see the module docs).
    fn exponent_bits(self) -> usize {
        match self {
            Self::Modp4096 => 304,
            Self::Modp6144 => 352,
            Self::Modp8192 => 400,
            _ => 256,
        }
    }

    fn agreement_algorithm(self) -> Option<&'static agreement::Algorithm> {
        match self {
            Self::Ecp256 => Some(&agreement::ECDH_P256),
            Self::Ecp384 => Some(&agreement::ECDH_P384),
            Self::Ecp521 => Some(&agreement::ECDH_P521),
            Self::Curve25519 => Some(&agreement::X25519),
            _ => None,
        }
    }
}

/// Attempts at drawing a private value before concluding that the generator is broken. A
/// sound generator needs a second draw with probability below 2^-32 (P-256 is the worst case).
const MAX_DRAWS: usize = 16;

/// Longest private scalar drawn for an elliptic-curve group (P-521: 66 bytes).
const MAX_SCALAR_LEN: usize = 66;

/// Our half of one Diffie-Hellman exchange: the private value and the public value sent in
/// the KE payload. One `DhPrivate` per exchange; it is wiped when dropped and never printed.
pub struct DhPrivate {
    group: DhGroup,
    secret: PrivateValue,
    public: Vec<u8>,
}

/// The private value, by group family.
enum PrivateValue {
    /// MODP exponent, big-endian.
    Modp(SecretBytes),
    /// An AWS-LC key (ECP or X25519); AWS-LC wipes it when freed.
    Agreement(PrivateKey),
}

impl DhPrivate {
    /// Draws a fresh private value for `group` from `rng` and computes the public value.
    pub fn generate(group: DhGroup, rng: &mut dyn SecureRandom) -> Result<Self, DhError> {
        match (group.prime(), group.agreement_algorithm()) {
            (Some(prime), _) => Self::generate_modp(group, prime, rng),
            (None, Some(algorithm)) => Self::generate_agreement(group, algorithm, rng),
            (None, None) => Err(DhError::Internal(group)),
        }
    }

    fn generate_modp(group: DhGroup, prime: &[u8], rng: &mut dyn SecureRandom) -> Result<Self, DhError> {
        let mut exponent = vec![0u8; group.exponent_bits() / 8];
        for _ in 0..MAX_DRAWS {
            rng.fill(&mut exponent);
            // x ∈ {0, 1} would make the public value 1 or 2 and the secret trivial.
            let (last, rest) = exponent.split_last().ok_or(DhError::Internal(group))?;
            if rest.iter().any(|&b| b != 0) || *last > 1 {
                let exponent = SecretBytes::new(exponent);
                let mut public = vec![0u8; prime.len()];
                ffi::mod_exp_consttime(&[2], exponent.expose(), modulus(group)?, &mut public)
                    .ok_or(DhError::Internal(group))?;
                return Ok(Self { group, secret: PrivateValue::Modp(exponent), public });
            }
        }
        Err(DhError::KeyGeneration(group))
    }

    fn generate_agreement(
        group: DhGroup,
        algorithm: &'static agreement::Algorithm,
        rng: &mut dyn SecureRandom,
    ) -> Result<Self, DhError> {
        let mut scalar = Zeroizing::new([0u8; MAX_SCALAR_LEN]);
        // The scalar has the coordinate length: 32, 48, 66 (P-521) or 32 (X25519) bytes.
        let scalar = scalar.get_mut(..group.shared_len()).ok_or(DhError::Internal(group))?;
        for _ in 0..MAX_DRAWS {
            rng.fill(scalar);
            if group == DhGroup::Ecp521 {
                // The P-521 order has 521 bits: keep only the low bit of the top byte, so a
                // draw is below the order with probability ≈ 1 − 2^-260.
                if let Some(top) = scalar.first_mut() {
                    *top &= 0x01;
                }
            }
            // AWS-LC refuses a zero scalar or one not below the order: redraw.
            let Ok(key) = PrivateKey::from_private_key(algorithm, scalar) else {
                continue;
            };
            let computed = key.compute_public_key().map_err(|_| DhError::Internal(group))?;
            let encoded = computed.as_ref();
            let public = match group {
                // SEC1 uncompressed point 0x04 || x || y; the KE body drops the 0x04.
                DhGroup::Ecp256 | DhGroup::Ecp384 | DhGroup::Ecp521 => match encoded.split_first() {
                    Some((0x04, xy)) if xy.len() == group.public_len() => xy.to_vec(),
                    _ => return Err(DhError::Internal(group)),
                },
                _ if encoded.len() == group.public_len() => encoded.to_vec(),
                _ => return Err(DhError::Internal(group)),
            };
            return Ok(Self { group, secret: PrivateValue::Agreement(key), public });
        }
        Err(DhError::KeyGeneration(group))
    }

    /// The group this private value belongs to.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// The public value, exactly as it goes into the KE payload body.
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// The shared secret `g^xy` with the peer's KE payload body, after validating it. The
    /// result has exactly [`DhGroup::shared_len`] bytes (left-padded for MODP).
    pub fn shared_secret(&self, peer_public: &[u8]) -> Result<SecretBytes, DhError> {
        let group = self.group;
        if peer_public.len() != group.public_len() {
            return Err(DhError::WrongLength {
                group,
                expected: group.public_len(),
                actual: peer_public.len(),
            });
        }
        match &self.secret {
            PrivateValue::Modp(exponent) => {
                let prime = group.prime().ok_or(DhError::Internal(group))?;
                validate_modp_public(peer_public, prime)
                    .map_err(|reason| DhError::InvalidPublicValue { group, reason })?;
                // With a safe prime, a y passing the checks above has order q or 2q, and our
                // exponent is far below q, so the result can be neither 1 nor p − 1.
                let mut shared = Zeroizing::new(vec![0u8; prime.len()]);
                ffi::mod_exp_consttime(peer_public, exponent.expose(), modulus(group)?, &mut shared)
                    .ok_or(DhError::Internal(group))?;
                Ok(SecretBytes::new(core::mem::take(&mut *shared)))
            }
            PrivateValue::Agreement(key) => self.agree(key, peer_public),
        }
    }

    fn agree(&self, key: &PrivateKey, peer_public: &[u8]) -> Result<SecretBytes, DhError> {
        let group = self.group;
        let algorithm = group.agreement_algorithm().ok_or(DhError::Internal(group))?;
        // Rebuild the SEC1 uncompressed encoding AWS-LC parses: 0x04 || x || y.
        let mut encoded = [0u8; 1 + 2 * MAX_SCALAR_LEN];
        let peer = if group == DhGroup::Curve25519 {
            peer_public
        } else {
            let buf = encoded.get_mut(..1 + peer_public.len()).ok_or(DhError::Internal(group))?;
            buf[0] = 0x04;
            buf[1..].copy_from_slice(peer_public);
            buf
        };
        let refused = match group {
            DhGroup::Curve25519 => DhError::AllZeroSharedSecret(group),
            _ => DhError::InvalidPublicValue { group, reason: InvalidPublicValue::NotOnCurve },
        };
        let shared = agreement::agree(key, UnparsedPublicKey::new(algorithm, peer), refused, |secret| {
            Ok(SecretBytes::from_slice(secret))
        })?;
        if shared.len() != group.shared_len() {
            return Err(DhError::Internal(group));
        }
        // AWS-LC already refuses an all-zero X25519 output; checked again, in constant time,
        // because accepting it would hand the key to whoever chose the peer point.
        if group == DhGroup::Curve25519 && shared.ct_eq(&[0u8; 32]) {
            return Err(DhError::AllZeroSharedSecret(group));
        }
        Ok(shared)
    }
}

impl fmt::Debug for DhPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhPrivate").field("group", &self.group).field("private", &"<redacted>").finish()
    }
}

/// The shared [`ffi::Modulus`] of a MODP group, built on first use. Only a built one is kept:
/// a failed build (out of memory) fails this handshake, not every later one on the group.
fn modulus(group: DhGroup) -> Result<&'static ffi::Modulus, DhError> {
    static MODULI: [std::sync::OnceLock<ffi::Modulus>; 8] = [const { std::sync::OnceLock::new() }; 8];
    let index = match group {
        DhGroup::Modp768 => 0,
        DhGroup::Modp1024 => 1,
        DhGroup::Modp1536 => 2,
        DhGroup::Modp2048 => 3,
        DhGroup::Modp3072 => 4,
        DhGroup::Modp4096 => 5,
        DhGroup::Modp6144 => 6,
        DhGroup::Modp8192 => 7,
        DhGroup::Ecp256 | DhGroup::Ecp384 | DhGroup::Ecp521 | DhGroup::Curve25519 => {
            return Err(DhError::Internal(group))
        }
    };
    let prime = group.prime().ok_or(DhError::Internal(group))?;
    if let Some(modulus) = MODULI[index].get() {
        return Ok(modulus);
    }
    let built = ffi::Modulus::new(prime).ok_or(DhError::Internal(group))?;
    Ok(MODULI[index].get_or_init(|| built)) // a lost race drops the spare
}

/// Checks `1 < y < p − 1` for a MODP public value of exactly the prime's length. The value is
/// public, so ordinary comparisons are fine.
fn validate_modp_public(y: &[u8], prime: &[u8]) -> Result<(), InvalidPublicValue> {
    let (last, rest) = y.split_last().ok_or(InvalidPublicValue::Zero)?;
    if rest.iter().all(|&b| b == 0) {
        match last {
            0 => return Err(InvalidPublicValue::Zero),
            1 => return Err(InvalidPublicValue::One),
            _ => {}
        }
    }
    // Same length, big-endian: lexicographic order is numeric order.
    if y >= prime {
        return Err(InvalidPublicValue::NotBelowPrime);
    }
    // p is odd, so p − 1 differs from p only in the last byte (no borrow).
    let (p_last, p_rest) = prime.split_last().ok_or(InvalidPublicValue::NotBelowPrime)?;
    if rest == p_rest && *last == p_last.wrapping_sub(1) {
        return Err(InvalidPublicValue::PrimeMinusOne);
    }
    Ok(())
}

/// Decodes a hex string at compile time (the primes below are written as the RFCs print them).
const fn decode_hex<const N: usize>(hex: &str) -> [u8; N] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not a hex digit"),
        }
    }
    let bytes = hex.as_bytes();
    assert!(bytes.len() == 2 * N, "hex constant has the wrong length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = (nibble(bytes[2 * i]) << 4) | nibble(bytes[2 * i + 1]);
        i += 1;
    }
    out
}

// Specification constants: the MODP primes, p = 2^n − 2^(n−64) − 1 + 2^64 · (⌊2^(n−130) π⌋ + k).
/// The 768-bit MODP prime of group 1, RFC 2409 §6.1 (First Oakley Group).
const MODP_768: [u8; 96] = decode_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A63A3620FFFFFFFFFFFFFFFF",
));

/// The 1024-bit MODP prime of group 2, RFC 2409 §6.2 (Second Oakley Group).
const MODP_1024: [u8; 128] = decode_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
));

/// The 1536-bit MODP prime of group 5, RFC 3526 §2.
const MODP_1536: [u8; 192] = decode_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF",
));

/// The 2048-bit MODP prime of group 14, RFC 3526 §3.
const MODP_2048: [u8; 256] = decode_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
));

/// The 3072-bit MODP prime of group 15, RFC 3526 §4.
const MODP_3072: [u8; 384] = decode_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
));

/// The 4096-bit MODP prime of group 16, RFC 3526 §5.
const MODP_4096: [u8; 512] = decode_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF",
));

/// The 6144-bit MODP prime of group 17, RFC 3526 §6.
const MODP_6144: [u8; 768] = decode_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026",
    "C1D4DCB2602646DEC9751E763DBA37BDF8FF9406AD9E530EE5DB382F413001AE",
    "B06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B",
    "DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92EC",
    "F032EA15D1721D03F482D7CE6E74FEF6D55E702F46980C82B5A84031900B1C9E",
    "59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA",
    "CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76",
    "F550AA3D8A1FBFF0EB19CCB1A313D55CDA56C9EC2EF29632387FE8D76E3C0468",
    "043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DCC4024FFFFFFFFFFFFFFFF",
));

/// The 8192-bit MODP prime of group 18, RFC 3526 §7.
const MODP_8192: [u8; 1024] = decode_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026",
    "C1D4DCB2602646DEC9751E763DBA37BDF8FF9406AD9E530EE5DB382F413001AE",
    "B06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B",
    "DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92EC",
    "F032EA15D1721D03F482D7CE6E74FEF6D55E702F46980C82B5A84031900B1C9E",
    "59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA",
    "CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76",
    "F550AA3D8A1FBFF0EB19CCB1A313D55CDA56C9EC2EF29632387FE8D76E3C0468",
    "043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DBE115974A3926F12FEE5E4",
    "38777CB6A932DF8CD8BEC4D073B931BA3BC832B68D9DD300741FA7BF8AFC47ED",
    "2576F6936BA424663AAB639C5AE4F5683423B4742BF1C978238F16CBE39D652D",
    "E3FDB8BEFC848AD922222E04A4037C0713EB57A81A23F0C73473FC646CEA306B",
    "4BCBC8862F8385DDFA9D4B7FA2C087E879683303ED5BDD3A062B3CF5B3A278A6",
    "6D2A13F83F44F82DDF310EE074AB6A364597E899A0255DC164F31CC50846851D",
    "F9AB48195DED7EA1B1D510BD7EE74D73FAF36BC31ECFA268359046F4EB879F92",
    "4009438B481C6CD7889A002ED5EE382BC9190DA6FC026E479558E4475677E9AA",
    "9E3050E2765694DFC81F56E880B96E7160C980DD98EDD3DFFFFFFFFFFFFFFFFF",
));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{HashAlgorithm, HashFunction};
    use crate::random::OsRandom;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// Hands out pre-recorded bytes, so a known-answer private value goes through `generate`.
    struct Replay {
        bytes: Vec<u8>,
        at: usize,
    }

    impl Replay {
        fn new(bytes: Vec<u8>) -> Self {
            Self { bytes, at: 0 }
        }
    }

    impl SecureRandom for Replay {
        fn fill(&mut self, dest: &mut [u8]) {
            let end = self.at + dest.len();
            dest.copy_from_slice(&self.bytes[self.at..end]);
            self.at = end;
        }
    }

    /// Produces zeros forever: a broken generator.
    struct Zeros;

    impl SecureRandom for Zeros {
        fn fill(&mut self, dest: &mut [u8]) {
            dest.fill(0);
        }
    }

    #[test]
    fn ids_lengths_and_names() {
        for group in DhGroup::ALL {
            assert_eq!(DhGroup::from_id(group.id()), Some(group));
            assert_eq!(group.to_string(), format!("group{}", group.id()));
            if let Some(p) = group.prime() {
                assert_eq!(p.len(), group.public_len());
                assert_eq!(p.len(), group.shared_len());
            }
        }
        for unknown in [0, 3, 4, 6, 13, 22, 23, 24, 25, 26, 30, 32, 1024, 32768, 65535] {
            assert_eq!(DhGroup::from_id(unknown), None, "group {unknown} must be refused");
        }
        assert_eq!(DhGroup::Ecp521.public_len(), 132);
        assert_eq!(DhGroup::Ecp521.shared_len(), 66);
    }

    // The primes: leading and trailing 64 bits are all ones (by construction), and the SHA-256
    // of each big-endian prime matches the value printed by `tests/data/gen_modp_primes.py`, which computes
    // p = 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) * pi) + k) with the RFCs' k values, pi
    // from Machin's formula, each p and (p-1)/2 checked prime with Miller-Rabin, then
    // `hashlib.sha256(p.to_bytes(n // 8, "big")).hexdigest()`.
    #[test]
    fn modp_primes_are_the_rfc_primes() {
        let cases = [
            (DhGroup::Modp768, "b52ba6a3026520a6c49d37e4587601801bee500123b3259b6bf03e7cecc3e63d"),
            (DhGroup::Modp1024, "3f35a3f5f6c4376a744acad409bb22f8d897f949d2311d885adaa890981b67a0"),
            (DhGroup::Modp1536, "64fcc83ec403930bf18393dbc883ccaa1fbb08ac876f77f7aa99748ca945019b"),
            (DhGroup::Modp2048, "d66436f79bbd6b2e38c0ffbd079be904d2641415e2e67140e09448be9a60890e"),
            (DhGroup::Modp3072, "48cf8b092fbce4359d9871abf74f98e25b6163379eaa15cd9087e800c6d1c55c"),
            (DhGroup::Modp4096, "4ee95187682bcb230ad26a95205f6920e84708f6251b3894329b09ec23919e33"),
            (DhGroup::Modp6144, "d1bfe6d0925ce7e4da262b62861514a7755e35831e429f343e7b864848657efd"),
            (DhGroup::Modp8192, "39ab4feab950a3128fb71accb9fc3965d857012e081998a85996e3ea8b3c3bcf"),
        ];
        for (group, sha256) in cases {
            let p = group.prime().unwrap();
            assert_eq!(&p[..16], &h("ffffffffffffffffc90fdaa22168c234")[..], "{group}");
            assert_eq!(&p[p.len() - 8..], &[0xff; 8], "{group}");
            assert_eq!(hex::encode(&*HashAlgorithm::Sha256.digest(&[p])), sha256, "{group}");
            // AWS-LC carries its own copy of the RFC 3526 primes: an independent check.
            if let Some(theirs) = ffi::rfc3526_prime(p.len() * 8) {
                assert_eq!(p, &theirs[..], "{group} differs from AWS-LC's RFC 3526 prime");
            }
        }
        assert!(ffi::rfc3526_prime(2048).is_some());
    }

    #[test]
    fn every_group_agrees_with_itself() {
        for group in DhGroup::ALL {
            let a = DhPrivate::generate(group, &mut OsRandom).unwrap();
            let b = DhPrivate::generate(group, &mut OsRandom).unwrap();
            assert_eq!(a.public_value().len(), group.public_len(), "{group}");
            assert_ne!(a.public_value(), b.public_value(), "{group}");
            let ab = a.shared_secret(b.public_value()).unwrap();
            let ba = b.shared_secret(a.public_value()).unwrap();
            assert_eq!(ab.len(), group.shared_len(), "{group}");
            assert!(ab.ct_eq(ba.expose()), "{group}: the two sides disagree");
        }
    }

    // Group 14 known answer. Expected values computed with Python's built-in integers (an
    // implementation we did not write):
    //   p = <RFC 3526 §3 prime>; x = 0x0f1e2d…eeff0; y = 0xc0ffee…0f1011
    //   pow(2, x, p), pow(2, y, p), pow(pow(2, y, p), x, p)  (each .to_bytes(256, "big").hex())
    #[test]
    fn each_modp_prime_has_one_montgomery_context() {
        // Built once and shared by every exponentiation of the group (the known answers
        // above and below go through it); an ECP group has none.
        for group in [DhGroup::Modp768, DhGroup::Modp2048, DhGroup::Modp8192] {
            assert!(core::ptr::eq(modulus(group).unwrap(), modulus(group).unwrap()));
        }
        assert!(!core::ptr::eq(modulus(DhGroup::Modp1024).unwrap(), modulus(DhGroup::Modp2048).unwrap()));
        assert_eq!(modulus(DhGroup::Ecp256).err(), Some(DhError::Internal(DhGroup::Ecp256)));
    }

    #[test]
    fn modp2048_known_answer() {
        let x = h("0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0");
        let gx = "7b02a19fe71dfb940a7f2fb8dc9c41c500e80db879d9c4f0ad383ea613874d2e864b88f279d53ecebaada89ce6d0ecaccf05666ef5a4ec06f3ec8d075d3171e97827e38cc717edac7119ef4896707402495e572617506e8d7e8bcea0199bc4728c54c9018069d7e85bbf86f0384d10638eb0757fe52391c896b2abb9f99df2121837df2d2ed03885ec4d4922e0f14f469230dfa69f7628dbe8587328f900b5239dadd2e033a8a28d939c816235077144547b7ba97dcbd95a6b62147254e2ebebbf6ba1b6f358aff2ccf65ac70ca8898289a038817acdad68d79d89f277cdfa58689f9ec9e0b144ac38e7f3a8f56d0e33bdde73b710da54471d2af72eb4c9f47a";
        let gy = "12461bd725c1c6f805bfd5bcee5901e2ebe88141f88b6cdcd87149f01fabb2a9a0561985150c752bdd31f0dd0bd63642c2df87b99ad12e57e011d8ae56917d0606448d911b3a76a651f479f78f0edb1f96333d4d3a0ebdc3d5e00f4b6f68a97bd75649cbfe68c9ac01322c1b6a215330c3128d4167f9764c6b8d4711c675127504f0eb3dfd26b62db7c164514631c577665b0b629e38b3db3ba430ac34ffcb0d3e9416ad95b8217c50aa2b25b36991da4305dfb4d297afcefaed60edf2d2dc7cbe3a13c2c763667704180911011a3d988ae667caddb5f7bdfc6fd2ce2c6f72c1bb0fbbe9e525124d917dbe4ce747a745aefb2d27584384b7fe25c13f83c2e14b";
        let gxy = "e6488d76733313849e693eb26b593bfea8fb7311774c9435d45756335d6528ffd425afe11fb14aaeffb46d16658514ccadcc4bc3533af04ecfd6f9ab9f180fd50aa81b394febc78310ed7a53f7a99a7af27be8ff2bbf0c0731477e9e3c054d8217584325e65dd5a07723f8892bbd23e0462d26c2a956959cc7a5f8779425df6b6a186aa66042132fba449c6c9ab5500b71f62d509d6fdf8a7708fde0b58b0944d63993eda5bce593494888f4ce7eb175d3c108fbc91edd6ff0e7ffa9761f212b6cf5bdada8b55b1f904749b0662cac9469c8d7f9416d81d70f2d9ef5f82c7caefcc4ac60860c923395e31703ff90e88cc94c4b75341e4a4f722f95be24e18e64";
        let ours = DhPrivate::generate(DhGroup::Modp2048, &mut Replay::new(x)).unwrap();
        assert_eq!(hex::encode(ours.public_value()), gx);
        let shared = ours.shared_secret(&h(gy)).unwrap();
        assert_eq!(hex::encode(shared.expose()), gxy);
    }

    // A group-1 public value whose top byte is zero must keep its full 96-byte length. The
    // exponent was found with Python: the first x >= 0x5555…5555 (32 bytes) with
    // pow(2, x, p768) < 2^760; expected value is pow(2, x, p768).to_bytes(96, "big").
    #[test]
    fn modp_public_value_keeps_leading_zero() {
        let x = h("55555555555555555555555555555555555555555555555555555555555555b4");
        let want = "00dacb14ab646797396f257ade82d9334ec5aa0b6bac5b5a6dab2be9187bd22aa82a4a63b4598046c6669155ea47529496d946a144177548599ba53b1496113d7c291ad7d8477962b56d3f8c62410cb4601e6472b3947b42997bd62ea19f5b4f";
        let ours = DhPrivate::generate(DhGroup::Modp768, &mut Replay::new(x)).unwrap();
        assert_eq!(ours.public_value().len(), 96);
        assert_eq!(hex::encode(ours.public_value()), want);
        // And a peer sending such a value is accepted.
        let other = DhPrivate::generate(DhGroup::Modp768, &mut OsRandom).unwrap();
        assert!(other.shared_secret(ours.public_value()).is_ok());
    }

    fn invalid(group: DhGroup, reason: InvalidPublicValue) -> Result<SecretBytes, DhError> {
        Err(DhError::InvalidPublicValue { group, reason })
    }

    #[test]
    fn modp_peer_values_are_validated() {
        let group = DhGroup::Modp1024;
        let ours = DhPrivate::generate(group, &mut OsRandom).unwrap();
        let p = group.prime().unwrap().to_vec();
        let len = p.len();

        let zero = vec![0u8; len];
        assert_eq!(ours.shared_secret(&zero), invalid(group, InvalidPublicValue::Zero));
        let mut one = vec![0u8; len];
        one[len - 1] = 1;
        assert_eq!(ours.shared_secret(&one), invalid(group, InvalidPublicValue::One));
        let mut p_minus_one = p.clone();
        p_minus_one[len - 1] -= 1;
        assert_eq!(ours.shared_secret(&p_minus_one), invalid(group, InvalidPublicValue::PrimeMinusOne));
        assert_eq!(ours.shared_secret(&p), invalid(group, InvalidPublicValue::NotBelowPrime));
        assert_eq!(ours.shared_secret(&[0xff; 128]), invalid(group, InvalidPublicValue::NotBelowPrime));

        // Two and p − 2 are the smallest and largest acceptable values.
        let mut two = vec![0u8; len];
        two[len - 1] = 2;
        assert!(ours.shared_secret(&two).is_ok());
        let mut p_minus_two = p.clone();
        p_minus_two[len - 1] -= 2;
        assert!(ours.shared_secret(&p_minus_two).is_ok());

        for bad_len in [0, 1, len - 1, len + 1] {
            assert_eq!(
                ours.shared_secret(&vec![2u8; bad_len]),
                Err(DhError::WrongLength { group, expected: len, actual: bad_len })
            );
        }
    }

    // RFC 5903 §8.1–§8.3. The private values i and r, and g^ir, are the RFC's; the public
    // values were recomputed with Python `cryptography` (ec.derive_private_key(i, curve)
    // .public_key().public_numbers(), x and y padded to the field length), which also checked
    // that its ECDH result equals the RFC's g^ir x coordinate.
    #[test]
    fn ecp_rfc5903_known_answers() {
        let cases = [
            (
                DhGroup::Ecp256,
                "C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433",
                "dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c37725811805271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3",
                "C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53",
                "d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf6356fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab",
                "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE",
            ),
            (
                DhGroup::Ecp384,
                "099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655E35B538041E649EE3FAEF896783AB194",
                "667842d7d180ac2cde6f74f37551f55755c7645c20ef73e31634fe72b4c55ee6de3ac808acb4bdb4c88732aee95f41aa9482ed1fc0eeb9cafc4984625ccfc23f65032149e0e144ada024181535a0f38eeb9fcff3c2c947dae69b4c634573a81c",
                "41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942E0308312916B8ED2960E4BD55A7448FC",
                "e558dbef53eecde3d3fccfc1aea08a89a987475d12fd950d83cfa41732bc509d0d1ac43a0336def96fda41d0774a3571dcfbec7aacf3196472169e838430367f66eebe3c6e70c416dd5f0c68759dd1fff83fa40142209dff5eaad96db9e6386c",
                "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4D603135569B9E9D09CF5D4A270F59746",
            ),
            (
                DhGroup::Ecp521,
                "0037ADE9319A89F4DABDB3EF411AACCCA5123C61ACAB57B5393DCE47608172A095AA85A30FE1C2952C6771D937BA9777F5957B2639BAB072462F68C27A57382D4A52",
                "0015417e84dbf28c0ad3c278713349dc7df153c897a1891bd98bab4357c9ecbee1e3bf42e00b8e380aeae57c2d107564941885942af5a7f4601723c4195d176ced3e017cae20b6641d2eeb695786d8c946146239d099e18e1d5a514c739d7cb4a10ad8a788015ac405d7799dc75e7b7d5b6cf2261a6a7f1507438bf01beb6ca3926f9582",
                "0145BA99A847AF43793FDD0E872E7CDFA16BE30FDC780F97BCCC3F078380201E9C677D600B343757A3BDBF2A3163E4C2F869CCA7458AA4A4EFFC311F5CB151685EB9",
                "00d0b3975ac4b799f5bea16d5e13e9af971d5e9b984c9f39728b5e5739735a219b97c356436adc6e95bb0352f6be64a6c2912d4ef2d0433ced2b6171640012d9460f015c68226383956e3bd066e797b623c27ce0eac2f551a10c2c724d9852077b87220b6536c5c408a1d2aebb8e86d678ae49cb57091f4732296579ab44fcd17f0fc56a",
                "01144C7D79AE6956BC8EDB8E7C787C4521CB086FA64407F97894E5E6B2D79B04D1427E73CA4BAA240A34786859810C06B3C715A3A8CC3151F2BEE417996D19F3DDEA",
            ),
        ];
        for (group, i, gi, r, gr, gir) in cases {
            let initiator = DhPrivate::generate(group, &mut Replay::new(h(&i.to_lowercase()))).unwrap();
            let responder = DhPrivate::generate(group, &mut Replay::new(h(&r.to_lowercase()))).unwrap();
            assert_eq!(hex::encode(initiator.public_value()), gi, "{group} g^i");
            assert_eq!(hex::encode(responder.public_value()), gr, "{group} g^r");
            let a = initiator.shared_secret(&h(gr)).unwrap();
            let b = responder.shared_secret(&h(gi)).unwrap();
            assert_eq!(hex::encode(a.expose()), gir.to_lowercase(), "{group} g^ir");
            assert_eq!(a, b);
        }
    }

    #[test]
    fn ecp_peer_points_are_validated() {
        for group in [DhGroup::Ecp256, DhGroup::Ecp384, DhGroup::Ecp521] {
            let ours = DhPrivate::generate(group, &mut OsRandom).unwrap();
            let theirs = DhPrivate::generate(group, &mut OsRandom).unwrap();
            let mut off_curve = theirs.public_value().to_vec();
            *off_curve.last_mut().unwrap() ^= 1;
            let not_on_curve = invalid(group, InvalidPublicValue::NotOnCurve);
            assert_eq!(ours.shared_secret(&off_curve), not_on_curve);
            assert_eq!(ours.shared_secret(&vec![0u8; group.public_len()]), not_on_curve);
            assert!(matches!(ours.shared_secret(&off_curve[1..]), Err(DhError::WrongLength { .. })));
            // A SEC1-prefixed point is one byte too long: the KE body carries x || y only.
            let mut prefixed = vec![0x04];
            prefixed.extend_from_slice(theirs.public_value());
            assert!(matches!(ours.shared_secret(&prefixed), Err(DhError::WrongLength { .. })));
        }
    }

    // RFC 7748 §6.1 (Alice and Bob); values re-checked with Python `cryptography` X25519.
    #[test]
    fn x25519_rfc7748_known_answer() {
        let alice_private = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let alice_public = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
        let bob_private = h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let bob_public = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
        let alice = DhPrivate::generate(DhGroup::Curve25519, &mut Replay::new(alice_private)).unwrap();
        let bob = DhPrivate::generate(DhGroup::Curve25519, &mut Replay::new(bob_private)).unwrap();
        assert_eq!(hex::encode(alice.public_value()), alice_public);
        assert_eq!(hex::encode(bob.public_value()), bob_public);
        assert_eq!(hex::encode(alice.shared_secret(&h(bob_public)).unwrap().expose()), shared);
        assert_eq!(hex::encode(bob.shared_secret(&h(alice_public)).unwrap().expose()), shared);
    }

    #[test]
    fn x25519_small_order_points_are_refused() {
        let ours = DhPrivate::generate(DhGroup::Curve25519, &mut OsRandom).unwrap();
        let mut one = [0u8; 32];
        one[0] = 1;
        for point in [[0u8; 32], one] {
            assert_eq!(ours.shared_secret(&point), Err(DhError::AllZeroSharedSecret(DhGroup::Curve25519)));
        }
        assert!(matches!(ours.shared_secret(&[9u8; 31]), Err(DhError::WrongLength { .. })));
    }

    #[test]
    fn broken_generator_is_reported() {
        for group in [DhGroup::Modp2048, DhGroup::Ecp256, DhGroup::Ecp521] {
            assert_eq!(DhPrivate::generate(group, &mut Zeros).unwrap_err(), DhError::KeyGeneration(group));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        // Arbitrary peer bytes (of the right length or not) give a value or a typed error,
        // never a panic.
        #[test]
        fn arbitrary_peer_values_never_panic(
            group in proptest::sample::select(vec![DhGroup::Modp768, DhGroup::Ecp256, DhGroup::Ecp521, DhGroup::Curve25519]),
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..140),
            full_length in proptest::prelude::any::<bool>(),
        ) {
            let ours = DhPrivate::generate(group, &mut OsRandom).unwrap();
            let mut peer = bytes;
            if full_length {
                peer.resize(group.public_len(), 0x5a);
            }
            let _ = ours.shared_secret(&peer);
        }
    }

    #[test]
    fn private_values_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<DhPrivate>();
    }

    #[test]
    fn debug_hides_the_private_value() {
        let x = h("0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0");
        let ours = DhPrivate::generate(DhGroup::Modp2048, &mut Replay::new(x)).unwrap();
        let shown = format!("{ours:?}");
        assert!(shown.contains("group14") || shown.contains("Modp2048"));
        assert!(!shown.contains("0f1e2d"));
        assert!(shown.contains("redacted"));
    }
}
