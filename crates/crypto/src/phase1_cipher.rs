//! Phase-1 (ISAKMP message) ciphers: DES-CBC, 3DES-CBC and AES-CBC, RFC 2409 Appendix A
//! (encryption algorithm values 1, 5 and 7).
//!
//! IKEv1 encrypts the payload chain in CBC mode with no padding scheme of the cipher's own:
//! the sender pads to the block size itself (RFC 2409 Appendix B), so these functions work on
//! whole blocks in place. Weak and semi-weak DES keys are refused, as RFC 2409 Appendix B asks.

// DES and 3DES are deprecated in aws-lc-rs; IKEv1 peers (and the reference scenario's `des`
// proposal) still use them, and the VRP layer warns the operator when they are configured.
#[allow(deprecated)]
use aws_lc_rs::cipher::{
    DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128, AES_192,
    AES_256, DES_EDE3_FOR_LEGACY_USE_ONLY, DES_FOR_LEGACY_USE_ONLY,
};
use aws_lc_rs::iv::FixedLength;

pub use algorithm::Phase1Cipher;

/// Why a phase-1 cipher operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The key is not the length the cipher needs.
    #[error("{cipher} needs a {expected}-byte key, got {actual}")]
    KeyLength {
        /// The cipher.
        cipher: Phase1Cipher,
        /// Bytes it needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The IV is not one block long.
    #[error("{cipher} needs a {expected}-byte IV, got {actual}")]
    IvLength {
        /// The cipher.
        cipher: Phase1Cipher,
        /// Bytes it needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The data is not a whole number of blocks.
    #[error("{cipher} data of {len} bytes is not a multiple of the {block}-byte block")]
    NotBlockAligned {
        /// The cipher.
        cipher: Phase1Cipher,
        /// Data length.
        len: usize,
        /// Block length.
        block: usize,
    },
    /// A weak or semi-weak DES key (or a 3DES key with such a component, or with equal
    /// components, which degenerates to single DES).
    #[error("{0} key is weak or semi-weak (RFC 2409 Appendix B)")]
    WeakKey(Phase1Cipher),
    /// AWS-LC refused the operation for a reason it does not name.
    #[error("{0} operation failed inside the crypto library")]
    Internal(Phase1Cipher),
}

/// What `crypto` does with an IKE cipher: CBC over whole blocks, with the weak-key check of
/// RFC 2409 Appendix B. The cipher's facts (numbers, key and block length, names) are its row
/// in [`algorithm::PHASE1_CIPHERS`]; this is the implementation the row's typed id selects.
pub trait CbcCipher: Copy {
    /// Encrypts `data` in place in CBC mode starting from `iv`. `data` must be whole blocks.
    fn encrypt(self, key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), CipherError>;

    /// Decrypts `data` in place in CBC mode starting from `iv`. `data` must be whole blocks.
    fn decrypt(self, key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), CipherError>;

    /// True for a weak or semi-weak DES key, or a 3DES key with a weak component or with
    /// two equal adjacent components (which makes EDE3 collapse to single DES).
    fn is_weak_key(self, key: &[u8]) -> bool;
}

impl CbcCipher for Phase1Cipher {
    fn encrypt(self, key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), CipherError> {
        self.check(key, iv, data)?;
        let key = EncryptingKey::cbc(self.unbound(key)?).map_err(|_| CipherError::Internal(self))?;
        let context = match self.block_len() {
            8 => EncryptionContext::Iv64(FixedLength::from(self.iv_array::<8>(iv)?)),
            _ => EncryptionContext::Iv128(FixedLength::from(self.iv_array::<16>(iv)?)),
        };
        key.less_safe_encrypt(data, context).map(|_| ()).map_err(|_| CipherError::Internal(self))
    }

    fn decrypt(self, key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), CipherError> {
        self.check(key, iv, data)?;
        let key = DecryptingKey::cbc(self.unbound(key)?).map_err(|_| CipherError::Internal(self))?;
        let context = match self.block_len() {
            8 => DecryptionContext::Iv64(FixedLength::from(self.iv_array::<8>(iv)?)),
            _ => DecryptionContext::Iv128(FixedLength::from(self.iv_array::<16>(iv)?)),
        };
        key.decrypt(data, context).map(|_| ()).map_err(|_| CipherError::Internal(self))
    }

    fn is_weak_key(self, key: &[u8]) -> bool {
        match self {
            Self::Des => is_weak_des_key(key),
            Self::TripleDes => {
                let parts: Vec<&[u8]> = key.chunks(8).collect();
                parts.iter().any(|k| is_weak_des_key(k))
                    || parts.windows(2).any(|w| same_ignoring_parity(w[0], w[1]))
            }
            _ => false,
        }
    }
}

/// The checks and AWS-LC keys behind [`CbcCipher`], private to this module.
trait CbcParts: Copy {
    fn check(self, key: &[u8], iv: &[u8], data: &[u8]) -> Result<(), CipherError>;
    fn unbound(self, key: &[u8]) -> Result<UnboundCipherKey, CipherError>;
    fn iv_array<const N: usize>(self, iv: &[u8]) -> Result<[u8; N], CipherError>;
}

impl CbcParts for Phase1Cipher {
    fn check(self, key: &[u8], iv: &[u8], data: &[u8]) -> Result<(), CipherError> {
        if key.len() != self.key_len() {
            return Err(CipherError::KeyLength { cipher: self, expected: self.key_len(), actual: key.len() });
        }
        if iv.len() != self.block_len() {
            return Err(CipherError::IvLength { cipher: self, expected: self.block_len(), actual: iv.len() });
        }
        if !data.len().is_multiple_of(self.block_len()) {
            return Err(CipherError::NotBlockAligned {
                cipher: self,
                len: data.len(),
                block: self.block_len(),
            });
        }
        if self.is_weak_key(key) {
            return Err(CipherError::WeakKey(self));
        }
        Ok(())
    }

    #[allow(deprecated)] // DES/3DES: see the import above.
    fn unbound(self, key: &[u8]) -> Result<UnboundCipherKey, CipherError> {
        let algorithm = match self {
            Self::Des => &DES_FOR_LEGACY_USE_ONLY,
            Self::TripleDes => &DES_EDE3_FOR_LEGACY_USE_ONLY,
            Self::Aes128 => &AES_128,
            Self::Aes192 => &AES_192,
            Self::Aes256 => &AES_256,
        };
        UnboundCipherKey::new(algorithm, key).map_err(|_| CipherError::Internal(self))
    }

    fn iv_array<const N: usize>(self, iv: &[u8]) -> Result<[u8; N], CipherError> {
        iv.try_into().map_err(|_| CipherError::IvLength { cipher: self, expected: N, actual: iv.len() })
    }
}

/// The 4 weak and 12 semi-weak DES keys (FIPS 74 §3.6), with odd parity.
const WEAK_DES_KEYS: [[u8; 8]; 16] = [
    [0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01],
    [0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE],
    [0xE0, 0xE0, 0xE0, 0xE0, 0xF1, 0xF1, 0xF1, 0xF1],
    [0x1F, 0x1F, 0x1F, 0x1F, 0x0E, 0x0E, 0x0E, 0x0E],
    [0x01, 0x1F, 0x01, 0x1F, 0x01, 0x0E, 0x01, 0x0E],
    [0x1F, 0x01, 0x1F, 0x01, 0x0E, 0x01, 0x0E, 0x01],
    [0x01, 0xE0, 0x01, 0xE0, 0x01, 0xF1, 0x01, 0xF1],
    [0xE0, 0x01, 0xE0, 0x01, 0xF1, 0x01, 0xF1, 0x01],
    [0x01, 0xFE, 0x01, 0xFE, 0x01, 0xFE, 0x01, 0xFE],
    [0xFE, 0x01, 0xFE, 0x01, 0xFE, 0x01, 0xFE, 0x01],
    [0x1F, 0xE0, 0x1F, 0xE0, 0x0E, 0xF1, 0x0E, 0xF1],
    [0xE0, 0x1F, 0xE0, 0x1F, 0xF1, 0x0E, 0xF1, 0x0E],
    [0x1F, 0xFE, 0x1F, 0xFE, 0x0E, 0xFE, 0x0E, 0xFE],
    [0xFE, 0x1F, 0xFE, 0x1F, 0xFE, 0x0E, 0xFE, 0x0E],
    [0xE0, 0xFE, 0xE0, 0xFE, 0xF1, 0xFE, 0xF1, 0xFE],
    [0xFE, 0xE0, 0xFE, 0xE0, 0xFE, 0xF1, 0xFE, 0xF1],
];

/// DES ignores the low (parity) bit of each key byte, so the comparison does too.
fn same_ignoring_parity(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x & 0xFE == y & 0xFE)
}

/// True when `key` (8 bytes) is one of the weak or semi-weak DES keys, whatever its parity bits.
pub fn is_weak_des_key(key: &[u8]) -> bool {
    WEAK_DES_KEYS.iter().any(|weak| same_ignoring_parity(weak, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn round_trip(cipher: Phase1Cipher, key: &str, iv: &str, plain: &str, cipher_text: &str) {
        let (key, iv) = (h(key), h(iv));
        let mut data = h(plain);
        cipher.encrypt(&key, &iv, &mut data).unwrap();
        assert_eq!(hex::encode(&data), cipher_text, "{cipher} encrypt");
        cipher.decrypt(&key, &iv, &mut data).unwrap();
        assert_eq!(hex::encode(&data), plain, "{cipher} decrypt");
    }

    // NIST SP 800-38A F.2.1 / F.2.3 / F.2.5 (first two blocks).
    #[test]
    fn aes_cbc_sp800_38a() {
        let iv = "000102030405060708090a0b0c0d0e0f";
        let plain = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51";
        round_trip(
            Phase1Cipher::Aes128,
            "2b7e151628aed2a6abf7158809cf4f3c",
            iv,
            plain,
            "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2",
        );
        round_trip(
            Phase1Cipher::Aes192,
            "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
            iv,
            plain,
            "4f021db243bc633d7178183a9fa071e8b4d9ada9ad7dedf4e5e738763f69145a",
        );
        round_trip(
            Phase1Cipher::Aes256,
            "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
            iv,
            plain,
            "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d",
        );
    }

    // NIST SP 800-67 / FIPS 81 style: single DES known answer ("Now is the time for all "),
    // from FIPS 81 Appendix C (CBC mode).
    #[test]
    fn des_cbc_fips81() {
        round_trip(
            Phase1Cipher::Des,
            "0123456789abcdef",
            "1234567890abcdef",
            "4e6f772069732074",
            "e5c7cdde872bf27c",
        );
    }

    // NIST SP 800-20 / SP 800-67 Appendix B example: TDEA CBC, first block.
    #[test]
    fn triple_des_cbc_sp800_67() {
        round_trip(
            Phase1Cipher::TripleDes,
            "0123456789abcdef23456789abcdef01456789abcdef0123",
            "f69f2445df4f9b17",
            "6bc1bee22e409f96",
            "2079c3d53aa763e1",
        );
    }

    #[test]
    fn weak_des_keys_are_refused() {
        let iv = [0u8; 8];
        let mut data = [0u8; 8];
        for weak in WEAK_DES_KEYS {
            assert_eq!(
                Phase1Cipher::Des.encrypt(&weak, &iv, &mut data),
                Err(CipherError::WeakKey(Phase1Cipher::Des))
            );
            // The same key with the parity bits flipped is the same DES key.
            let flipped: Vec<u8> = weak.iter().map(|b| b ^ 1).collect();
            assert!(is_weak_des_key(&flipped));
        }
        let mut k3 = h("0123456789abcdef0101010101010101456789abcdef0123");
        assert_eq!(
            Phase1Cipher::TripleDes.decrypt(&k3, &iv, &mut data),
            Err(CipherError::WeakKey(Phase1Cipher::TripleDes))
        );
        k3 = h("0123456789abcdef0123456789abcdef456789abcdef0123");
        assert!(Phase1Cipher::TripleDes.is_weak_key(&k3), "K1 == K2 collapses to single DES");
        assert!(!Phase1Cipher::Des.is_weak_key(&h("0123456789abcdef")));
    }

    #[test]
    fn bad_lengths_are_typed_errors() {
        let mut data = [0u8; 15];
        assert!(matches!(
            Phase1Cipher::Aes128.encrypt(&[0; 16], &[0; 16], &mut data),
            Err(CipherError::NotBlockAligned { .. })
        ));
        let mut data = [0u8; 16];
        assert!(matches!(
            Phase1Cipher::Aes128.encrypt(&[0; 15], &[0; 16], &mut data),
            Err(CipherError::KeyLength { .. })
        ));
        assert!(matches!(
            Phase1Cipher::Aes256.decrypt(&[0; 32], &[0; 8], &mut data),
            Err(CipherError::IvLength { .. })
        ));
    }
}
