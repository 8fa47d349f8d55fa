//! ESP and AH integrity algorithms: the IPsec DOI Authentication Algorithm attribute
//! (RFC 2407 §4.5) and the AH transform ID that names the same algorithm (RFC 2407 §4.4.3):
//! HMAC-MD5-96 (RFC 2403), HMAC-SHA1-96 (RFC 2404) and HMAC-SHA2-256-128, -384-192,
//! -512-256 with the RFC 4868 §2.1 key sizes (the hash length) and truncations (half of it).

use core::fmt;

/// Longest ICV any integrity algorithm produces (HMAC-SHA2-512-256).
pub const MAX_ICV_LEN: usize = 32;

/// One integrity algorithm and every fact about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegrityRow {
    /// The typed id `crypto` implements.
    pub id: Integrity,
    /// IPsec DOI Authentication Algorithm attribute value.
    pub auth_algorithm: u16,
    /// The AH transform ID of the same algorithm.
    pub ah_transform_id: u8,
    /// Bytes of KEYMAT the algorithm consumes (the hash output length).
    pub key_len: usize,
    /// Length of the truncated ICV appended to each packet.
    pub icv_len: usize,
    /// Weak: `vrp check` warns.
    pub weak: bool,
    /// The VRP keyword (`esp authentication-algorithm sha2-256`).
    pub vrp_keyword: Option<&'static str>,
    /// Further spellings VRP accepts on input.
    pub vrp_aliases: &'static [&'static str],
    /// The name in logs (`Display`).
    pub log_name: &'static str,
    /// The name `display ipsec sa` prints (`A:HMAC-SHA2-256-128;`).
    pub sa_display: &'static str,
    /// The name `display ipsec proposal` prints (`SHA2-HMAC-256`).
    pub proposal_display: &'static str,
    /// Wireshark's name (`esp_authentication_type_vals` in `packet-ipsec.c`).
    pub wireshark: &'static str,
    /// strongSwan's proposal keyword.
    pub strongswan: &'static str,
}

crate::algorithm_table! {
    /// An ESP or AH integrity algorithm (IPsec DOI "Authentication Algorithm" attribute).
    pub enum Integrity;
    /// The integrity algorithms keysteward implements.
    pub const INTEGRITY_ALGORITHMS: [IntegrityRow] = [
        /// HMAC-MD5-96 (RFC 2403).
        HmacMd5_96 {
            auth_algorithm: 1, ah_transform_id: 2, key_len: 16, icv_len: 12, weak: true,
            vrp_keyword: Some("md5"), vrp_aliases: &[], log_name: "hmac-md5-96", sa_display: "HMAC-MD5-96",
            proposal_display: "MD5-HMAC-96", wireshark: "HMAC-MD5-96 [RFC2403]", strongswan: "md5",
        },
        /// HMAC-SHA1-96 (RFC 2404).
        HmacSha1_96 {
            auth_algorithm: 2, ah_transform_id: 3, key_len: 20, icv_len: 12, weak: false,
            vrp_keyword: Some("sha1"), vrp_aliases: &["sha"], log_name: "hmac-sha1-96", sa_display: "HMAC-SHA1-96",
            proposal_display: "SHA1-HMAC-96", wireshark: "HMAC-SHA-1-96 [RFC2404]", strongswan: "sha1",
        },
        /// HMAC-SHA2-256-128 (RFC 4868). Some old peers truncate to 96 bits:
        /// [`Integrity::HmacSha256_96`] (ikev1-notes, interop pitfall 11).
        HmacSha256_128 {
            auth_algorithm: 5, ah_transform_id: 5, key_len: 32, icv_len: 16, weak: false,
            vrp_keyword: Some("sha2-256"), vrp_aliases: &["sha256", "sha2_256"], log_name: "hmac-sha2-256-128",
            sa_display: "HMAC-SHA2-256-128", proposal_display: "SHA2-HMAC-256",
            wireshark: "HMAC-SHA-256-128 [RFC4868]", strongswan: "sha256",
        },
        /// HMAC-SHA2-384-192 (RFC 4868).
        HmacSha384_192 {
            auth_algorithm: 6, ah_transform_id: 6, key_len: 48, icv_len: 24, weak: false,
            vrp_keyword: Some("sha2-384"), vrp_aliases: &["sha384", "sha2_384"], log_name: "hmac-sha2-384-192",
            sa_display: "HMAC-SHA2-384-192", proposal_display: "SHA2-HMAC-384",
            wireshark: "HMAC-SHA-384-192 [RFC4868]", strongswan: "sha384",
        },
        /// HMAC-SHA2-512-256 (RFC 4868).
        HmacSha512_256 {
            auth_algorithm: 7, ah_transform_id: 7, key_len: 64, icv_len: 32, weak: false,
            vrp_keyword: Some("sha2-512"), vrp_aliases: &["sha512", "sha2_512"], log_name: "hmac-sha2-512-256",
            sa_display: "HMAC-SHA2-512-256", proposal_display: "SHA2-HMAC-512",
            wireshark: "HMAC-SHA-512-256 [RFC4868]", strongswan: "sha512",
        },
        /// HMAC-SHA2-256 truncated to 96 bits, as older Huawei firmware (without `ipsec sha2
        /// compatible enable`) and old Linux kernels do. Not negotiated: it travels as
        /// HMAC-SHA2-256 (the same numbers, so lookups by number find the RFC 4868 row) and is
        /// selected for every SA by `undo ipsec sha2 compatible enable`
        /// ([`Integrity::legacy_96`]); strongSwan's `sha256_96 = yes`.
        HmacSha256_96 {
            auth_algorithm: 5, ah_transform_id: 5, key_len: 32, icv_len: 12, weak: false,
            vrp_keyword: None, vrp_aliases: &[], log_name: "hmac-sha2-256-96",
            sa_display: "HMAC-SHA2-256-96", proposal_display: "SHA2-HMAC-256-96",
            wireshark: "HMAC-SHA-256-96 [draft-ietf-ipsec-ciph-sha-256-00]", strongswan: "sha256_96",
        },
    ];
}

impl Integrity {
    /// The algorithm for an IPsec DOI Authentication Algorithm attribute value.
    pub fn from_auth_algorithm_id(id: u16) -> Option<Self> {
        INTEGRITY_ALGORITHMS.iter().find(|r| r.auth_algorithm == id).map(|r| r.id)
    }

    /// The algorithm of an AH transform ID.
    pub fn from_ah_transform_id(id: u8) -> Option<Self> {
        INTEGRITY_ALGORITHMS.iter().find(|r| r.ah_transform_id == id).map(|r| r.id)
    }

    /// The IPsec DOI Authentication Algorithm attribute value.
    pub const fn auth_algorithm_id(self) -> u16 {
        self.row().auth_algorithm
    }

    /// The AH transform ID that names this algorithm.
    pub const fn ah_transform_id(self) -> u8 {
        self.row().ah_transform_id
    }

    /// Bytes of KEYMAT the algorithm consumes (the hash output length).
    #[inline]
    pub const fn key_len(self) -> usize {
        self.row().key_len
    }

    /// Length of the truncated ICV appended to each packet.
    #[inline]
    pub const fn icv_len(self) -> usize {
        self.row().icv_len
    }

    /// The name used in logs and `display` output.
    pub const fn name(self) -> &'static str {
        self.row().log_name
    }

    /// The algorithm with the legacy truncation (`undo ipsec sha2 compatible enable`):
    /// HMAC-SHA2-256-128 becomes [`Integrity::HmacSha256_96`]; the others are unchanged.
    pub const fn legacy_96(self) -> Self {
        match self {
            Self::HmacSha256_128 => Self::HmacSha256_96,
            other => other,
        }
    }

    /// The algorithm as negotiated (what its number names): the legacy truncation is
    /// HMAC-SHA2-256 on the wire.
    pub const fn negotiated(self) -> Self {
        match self {
            Self::HmacSha256_96 => Self::HmacSha256_128,
            other => other,
        }
    }
}

impl fmt::Display for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_unique;

    #[test]
    fn every_row_round_trips_and_no_two_rows_collide() {
        for (index, row) in INTEGRITY_ALGORITHMS.iter().enumerate() {
            assert_eq!(row.id as usize, index);
            assert_eq!(row.id.row(), row);
            assert_eq!(Integrity::ALL[index], row.id);
            assert_eq!(Integrity::from_auth_algorithm_id(row.auth_algorithm), Some(row.id.negotiated()));
            assert_eq!(Integrity::from_ah_transform_id(row.ah_transform_id), Some(row.id.negotiated()));
            assert_eq!(row.id.negotiated().legacy_96(), row.id.legacy_96());
            if row.id != row.id.negotiated() {
                // Selected by `undo ipsec sha2 compatible enable`, never by a keyword.
                assert_eq!(row.vrp_keyword, None);
                continue;
            }
            let keyword = row.vrp_keyword.expect("every negotiated integrity algorithm has a VRP keyword");
            assert_eq!(Integrity::from_vrp_keyword(keyword), Some(row.id));
            for alias in row.vrp_aliases {
                assert_eq!(Integrity::from_vrp_keyword(alias), Some(row.id));
            }
            assert!(row.icv_len <= MAX_ICV_LEN && row.icv_len <= row.key_len, "{}", row.log_name);
        }
        let negotiated = || INTEGRITY_ALGORITHMS.iter().filter(|r| r.id == r.id.negotiated());
        assert_unique("IANA number", negotiated().map(|r| r.auth_algorithm));
        assert_unique("AH transform ID", negotiated().map(|r| r.ah_transform_id));
        assert_eq!(Integrity::HmacSha256_128.legacy_96().icv_len(), 12);
        assert_unique(
            "VRP keyword",
            INTEGRITY_ALGORITHMS
                .iter()
                .flat_map(|r| r.vrp_keyword.into_iter().chain(r.vrp_aliases.iter().copied())),
        );
        for names in [
            |r: &IntegrityRow| r.log_name,
            |r: &IntegrityRow| r.sa_display,
            |r: &IntegrityRow| r.proposal_display,
            |r: &IntegrityRow| r.wireshark,
            |r: &IntegrityRow| r.strongswan,
        ] {
            assert_unique("name", INTEGRITY_ALGORITHMS.iter().map(names));
        }
    }
}
