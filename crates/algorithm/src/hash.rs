//! IKE hash algorithms: the phase-1 Hash Algorithm attribute (RFC 2409 Appendix A, SHA-2
//! numbers from the IANA registry). Through HMAC each is also the IKEv1 PRF (RFC 2409 §4: no
//! deployed peer negotiates a separate PRF attribute).

use core::fmt;

/// One hash algorithm and every fact about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashRow {
    /// The typed id `crypto` implements.
    pub id: HashAlgorithm,
    /// Hash Algorithm attribute value (RFC 2409 App. A).
    pub hash_algorithm: u16,
    /// Output length in bytes.
    pub output_len: usize,
    /// Weak: `vrp check` warns.
    pub weak: bool,
    /// The VRP keyword (`authentication-algorithm sha2-256`); also the name in logs.
    pub vrp_keyword: Option<&'static str>,
    /// Further spellings VRP accepts on input.
    pub vrp_aliases: &'static [&'static str],
    /// The name the IKE displays print (`SHA2-256`; `HMAC-SHA2-256` as integrity and PRF).
    pub display: &'static str,
    /// strongSwan's proposal keyword.
    pub strongswan: &'static str,
}

crate::algorithm_table! {
    /// A hash algorithm usable as the IKE hash and, through HMAC, as the IKE PRF.
    pub enum HashAlgorithm;
    /// The IKE hash algorithms keysteward implements, weakest first.
    pub const HASH_ALGORITHMS: [HashRow] = [
        /// MD5 (RFC 1321). Weak; kept for old peers.
        Md5 {
            hash_algorithm: 1, output_len: 16, weak: true, vrp_keyword: Some("md5"), vrp_aliases: &[],
            display: "MD5", strongswan: "md5",
        },
        /// SHA-1 (FIPS 180-4).
        Sha1 {
            hash_algorithm: 2, output_len: 20, weak: false, vrp_keyword: Some("sha1"), vrp_aliases: &["sha"],
            display: "SHA1", strongswan: "sha1",
        },
        /// SHA2-256.
        Sha256 {
            hash_algorithm: 4, output_len: 32, weak: false, vrp_keyword: Some("sha2-256"),
            vrp_aliases: &["sha256", "sha2_256"], display: "SHA2-256", strongswan: "sha256",
        },
        /// SHA2-384.
        Sha384 {
            hash_algorithm: 5, output_len: 48, weak: false, vrp_keyword: Some("sha2-384"),
            vrp_aliases: &["sha384", "sha2_384"], display: "SHA2-384", strongswan: "sha384",
        },
        /// SHA2-512.
        Sha512 {
            hash_algorithm: 6, output_len: 64, weak: false, vrp_keyword: Some("sha2-512"),
            vrp_aliases: &["sha512", "sha2_512"], display: "SHA2-512", strongswan: "sha512",
        },
    ];
}

impl HashAlgorithm {
    /// The algorithm of a Hash Algorithm attribute value.
    pub fn from_hash_algorithm(value: u16) -> Option<Self> {
        HASH_ALGORITHMS.iter().find(|r| r.hash_algorithm == value).map(|r| r.id)
    }

    /// The Hash Algorithm attribute value.
    pub const fn hash_algorithm(self) -> u16 {
        self.row().hash_algorithm
    }

    /// Output length in bytes.
    pub const fn output_len(self) -> usize {
        self.row().output_len
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every hash has a keyword; the display name is the fallback a new row without one
        // would print.
        f.write_str(self.row().vrp_keyword.unwrap_or(self.row().display))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_unique;

    #[test]
    fn every_row_round_trips_and_no_two_rows_collide() {
        for (index, row) in HASH_ALGORITHMS.iter().enumerate() {
            assert_eq!(row.id as usize, index);
            assert_eq!(row.id.row(), row);
            assert_eq!(HashAlgorithm::ALL[index], row.id);
            assert_eq!(HashAlgorithm::from_hash_algorithm(row.hash_algorithm), Some(row.id));
            let keyword = row.vrp_keyword.expect("every IKE hash has a VRP keyword");
            assert_eq!(HashAlgorithm::from_vrp_keyword(keyword), Some(row.id));
            for alias in row.vrp_aliases {
                assert_eq!(HashAlgorithm::from_vrp_keyword(alias), Some(row.id));
            }
            assert_eq!(row.id.to_string(), keyword);
        }
        assert_unique("IANA number", HASH_ALGORITHMS.iter().map(|r| r.hash_algorithm));
        assert_unique(
            "VRP keyword",
            HASH_ALGORITHMS
                .iter()
                .flat_map(|r| r.vrp_keyword.into_iter().chain(r.vrp_aliases.iter().copied())),
        );
        assert_unique("display name", HASH_ALGORITHMS.iter().map(|r| r.display));
        assert_unique("strongSwan keyword", HASH_ALGORITHMS.iter().map(|r| r.strongswan));
        assert_eq!(HashAlgorithm::from_hash_algorithm(3), None, "Tiger is not implemented");
    }
}
