//! The algorithm tables of keysteward: one table per family, one row per algorithm.
//!
//! A row holds every fact other crates need about an algorithm: its IANA number(s) as IKEv1
//! and the IPsec DOI carry them, its key length(s), its VRP configuration keyword, the names
//! the `display` commands, the logs, Wireshark and strongSwan use, and the typed id
//! (`Phase1Cipher::Aes128`, `EspCipher::AesGcm128`, …) that `crypto`'s implementation matches
//! on. Everything else looks facts up here, forward (id → row) and backward (by IANA number,
//! by VRP keyword), so adding an algorithm is one row here plus its implementation in
//! `crypto`.
//!
//! | family | table | typed id | numbers |
//! |---|---|---|---|
//! | IKE cipher | [`PHASE1_CIPHERS`] | [`Phase1Cipher`] | RFC 2409 App. A Encryption Algorithm + Key Length |
//! | IKE hash / PRF | [`HASH_ALGORITHMS`] | [`HashAlgorithm`] | RFC 2409 App. A Hash Algorithm |
//! | DH group | [`DH_GROUPS`] | [`DhGroup`] | Group Description (IKE and IPsec DOI) |
//! | ESP cipher | [`ESP_CIPHERS`] | [`EspCipher`] | ESP transform ID + Key Length |
//! | ESP/AH integrity | [`INTEGRITY_ALGORITHMS`] | [`Integrity`] | Authentication Algorithm, AH transform ID |
//!
//! The crate has no dependencies, so the wire crate, the configuration language and `crypto`
//! can all use it without depending on each other.

mod dh;
mod esp_cipher;
mod hash;
mod integrity;
mod phase1_cipher;

pub use dh::{DhGroup, DhGroupKind, DhGroupRow, DH_GROUPS};
pub use esp_cipher::{EspCipher, EspCipherRow, ESP_CIPHERS, GCM_ICV_LEN, GCM_IV_LEN, GCM_SALT_LEN};
pub use hash::{HashAlgorithm, HashRow, HASH_ALGORITHMS};
pub use integrity::{Integrity, IntegrityRow, INTEGRITY_ALGORITHMS, MAX_ICV_LEN};
pub use phase1_cipher::{Phase1Cipher, Phase1CipherRow, PHASE1_CIPHERS};

/// Declares a family: the typed id enum and its table, from one list in which each algorithm
/// is one entry (its variant and its row). The rows are in variant order, so an id finds its
/// row by index and the compiler keeps the two from drifting apart.
macro_rules! algorithm_table {
    (
        $(#[$meta:meta])*
        pub enum $name:ident;
        $(#[$table_meta:meta])*
        pub const $table:ident: [$row:ident] = [
            $( $(#[$vmeta:meta])* $variant:ident { $($field:ident: $value:expr),* $(,)? } ),+ $(,)?
        ];
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        $(#[$table_meta])*
        pub const $table: &[$row] = &[ $( $row { id: $name::$variant, $($field: $value),* }, )+ ];

        impl $name {
            /// Every algorithm of the family, in table order.
            pub const ALL: [$name; [$( stringify!($variant) ),+].len()] = [ $( $name::$variant, )+ ];

            /// This algorithm's row of the table.
            #[inline] // read per packet by esp and crypto, other crates
            pub const fn row(self) -> &'static $row {
                // The table lists the variants in declaration order (the macro writes both
                // from one list), so the discriminant is the row's index.
                &$table[self as usize]
            }

            /// The algorithm whose VRP keyword or alias is `keyword` (exact, lower case).
            pub fn from_vrp_keyword(keyword: &str) -> Option<Self> {
                $table
                    .iter()
                    .find(|r| r.vrp_keyword == Some(keyword) || r.vrp_aliases.contains(&keyword))
                    .map(|r| r.id)
            }

            /// The canonical VRP keyword, `None` for an algorithm the language cannot name.
            pub const fn vrp_keyword(self) -> Option<&'static str> {
                self.row().vrp_keyword
            }

            /// True for algorithms `vrp check` warns about.
            pub const fn is_weak(self) -> bool {
                self.row().weak
            }
        }
    };
}
pub(crate) use algorithm_table;

#[cfg(test)]
mod test_util {
    use std::collections::HashSet;
    use std::fmt::Debug;
    use std::hash::Hash;

    /// Panics naming the first value that occurs twice.
    pub(crate) fn assert_unique<T: Eq + Hash + Debug>(what: &str, values: impl IntoIterator<Item = T>) {
        let mut seen = HashSet::new();
        for v in values {
            let shown = format!("{v:?}");
            assert!(seen.insert(v), "two rows share the {what} {shown}");
        }
    }
}

#[cfg(test)]
mod strongswan_tests {
    use super::*;

    /// Splits a strongSwan IKEv1 proposal (`aes128-sha256-modp2048`) into rows.
    fn ike_proposal(text: &str) -> Option<(Phase1Cipher, HashAlgorithm, DhGroup)> {
        let [cipher, hash, group] = text.split('-').collect::<Vec<_>>()[..] else { return None };
        Some((
            PHASE1_CIPHERS.iter().find(|r| r.strongswan == cipher)?.id,
            HASH_ALGORITHMS.iter().find(|r| r.strongswan == hash)?.id,
            DH_GROUPS.iter().find(|r| r.strongswan == group)?.id,
        ))
    }

    /// Splits a strongSwan ESP proposal (`aes128-sha256[-modp2048]`, `aes128gcm16`) into rows.
    fn esp_proposal(text: &str) -> Option<(EspCipher, Option<Integrity>, Option<DhGroup>)> {
        let mut parts = text.split('-').peekable();
        let first = parts.next()?;
        let cipher = ESP_CIPHERS.iter().find(|r| r.strongswan == first)?.id;
        let integrity = parts.peek().and_then(|p| INTEGRITY_ALGORITHMS.iter().find(|r| r.strongswan == *p));
        if integrity.is_some() {
            parts.next();
        }
        let group = match parts.next() {
            Some(name) => Some(DH_GROUPS.iter().find(|r| r.strongswan == name)?.id),
            None => None,
        };
        parts.next().is_none().then_some((cipher, integrity.map(|r| r.id), group))
    }

    #[test]
    fn the_interop_suites_strongswan_proposals_name_rows() {
        // The proposals crates/gateway/tests configure strongSwan with.
        assert_eq!(
            ike_proposal("aes128-sha256-modp2048"),
            Some((Phase1Cipher::Aes128, HashAlgorithm::Sha256, DhGroup::Modp2048))
        );
        assert_eq!(
            ike_proposal("aes256-sha256-curve25519"),
            Some((Phase1Cipher::Aes256, HashAlgorithm::Sha256, DhGroup::Curve25519))
        );
        assert_eq!(
            ike_proposal("3des-sha1-modp1024"),
            Some((Phase1Cipher::TripleDes, HashAlgorithm::Sha1, DhGroup::Modp1024))
        );
        for text in ["aes128-sha256-ecp256", "aes256-sha384-ecp384", "aes256-sha512-modp4096"] {
            assert!(ike_proposal(text).is_some(), "{text}");
        }
        assert_eq!(esp_proposal("aes128gcm16"), Some((EspCipher::AesGcm128, None, None)));
        assert_eq!(
            esp_proposal("aes128-sha256-modp2048"),
            Some((EspCipher::AesCbc128, Some(Integrity::HmacSha256_128), Some(DhGroup::Modp2048)))
        );
        assert_eq!(esp_proposal("3des-md5"), Some((EspCipher::TripleDes, Some(Integrity::HmacMd5_96), None)));
        assert_eq!(
            esp_proposal("aes256-sha256"),
            Some((EspCipher::AesCbc256, Some(Integrity::HmacSha256_128), None))
        );
    }
}
