//! Secret byte strings: zeroized on drop, never printed, compared in constant time.

use core::fmt;
use zeroize::{Zeroize, Zeroizing};

/// A variable-length secret (a key, a pre-shared key, an SKEYID, a DH shared value).
///
/// Its `Debug` prints only the length, so a secret that ends up in a log line by mistake
/// shows as `SecretBytes(<redacted, 32 bytes>)`. The memory is overwritten when it drops.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`; the vector's memory is zeroized when the secret drops.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies `bytes` into a new secret.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    /// The secret's bytes. Callers must not copy them into memory that outlives the secret
    /// unless that memory is itself a secret type.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the secret holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares with `other` in time that depends only on the lengths.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        ct_eq(&self.0, other)
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<redacted, {} bytes>)", self.0.len())
    }
}

impl Zeroize for SecretBytes {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

/// Constant-time equality of two byte strings: the time depends on the lengths only, never
/// on where the first difference is. Used for every received HASH, ICV and signature check.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let s = SecretBytes::from_slice(b"tiandihui2");
        let shown = format!("{s:?}");
        assert!(!shown.contains("tiandihui2"));
        assert!(!shown.contains("74"));
        assert!(shown.contains("10 bytes"));
    }

    #[test]
    fn constant_time_compare() {
        let s = SecretBytes::from_slice(&[1, 2, 3]);
        assert!(s.ct_eq(&[1, 2, 3]));
        assert!(!s.ct_eq(&[1, 2, 4]));
        assert!(!s.ct_eq(&[1, 2]));
        assert!(ct_eq(&[], &[]));
    }
}
