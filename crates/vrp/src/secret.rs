//! The pre-shared key of an `ike peer` (reference `vrp-cli.md` §2.3).
//!
//! A key read from the configuration must never reach a log or a `display` output in clear:
//! the type zeroizes its memory on drop, its `Debug` is redacted, and the renderer masks it
//! unless the caller asks explicitly for keys in clear.

use std::fmt;
use zeroize::Zeroizing;

/// Longest plaintext key VRP accepts (§2.3: 1–128 characters).
pub const MAX_KEY_LEN: usize = 128;

/// A pre-shared key, in clear, zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct PreSharedKey(Zeroizing<String>);

impl PreSharedKey {
    /// Wraps `key`; the string's memory is zeroized when the key drops.
    pub fn new(key: String) -> Self {
        Self(Zeroizing::new(key))
    }

    /// The key in clear, for the key schedule. Do not copy it into a non-secret type.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in characters (not secret: the short-key warning reports it).
    pub fn char_len(&self) -> usize {
        self.0.chars().count()
    }
}

impl fmt::Debug for PreSharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PreSharedKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_print_the_key() {
        let key = PreSharedKey::new("tiandihui2".into());
        let printed = format!("{key:?}");
        assert!(!printed.contains("tiandihui2"), "{printed}");
        assert_eq!(key.expose(), "tiandihui2");
        assert_eq!(key.char_len(), 10);
    }
}
