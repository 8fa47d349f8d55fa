//! IKE ciphers: the CBC ciphers that protect ISAKMP messages (RFC 2409 Appendix A
//! Encryption Algorithm values 1, 5 and 7; AES with its Key Length attribute, RFC 3602).

use core::fmt;

/// One IKE cipher and every fact about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase1CipherRow {
    /// The typed id `crypto` implements.
    pub id: Phase1Cipher,
    /// Encryption Algorithm attribute value (RFC 2409 App. A).
    pub encryption_algorithm: u16,
    /// Key Length attribute, in bits; `None` for fixed-key ciphers, which send none (and
    /// which a peer must not send one for).
    pub key_length_attribute: Option<u16>,
    /// Key length in bytes.
    pub key_len: usize,
    /// Block length in bytes, which is also the IV length.
    pub block_len: usize,
    /// Weak: `vrp check` warns.
    pub weak: bool,
    /// The VRP keyword (`encryption-algorithm aes-256`).
    pub vrp_keyword: Option<&'static str>,
    /// Further spellings VRP accepts on input (§6 of the reference).
    pub vrp_aliases: &'static [&'static str],
    /// The name in logs and failure messages (`Display`).
    pub log_name: &'static str,
    /// The name `display ike sa verbose` prints.
    pub sa_display: &'static str,
    /// The name `display ike proposal` prints.
    pub proposal_display: &'static str,
    /// strongSwan's proposal keyword (`ike=aes128-sha256-modp2048`).
    pub strongswan: &'static str,
}

crate::algorithm_table! {
    /// A block cipher in CBC mode as IKEv1 uses it for phase-1, quick-mode and informational
    /// messages.
    pub enum Phase1Cipher;
    /// The IKE ciphers keysteward implements.
    pub const PHASE1_CIPHERS: [Phase1CipherRow] = [
        /// DES-CBC, 56-bit key in 8 bytes with parity. Weak.
        Des {
            encryption_algorithm: 1, key_length_attribute: None, key_len: 8, block_len: 8, weak: true,
            vrp_keyword: Some("des"), vrp_aliases: &["des-cbc"], log_name: "des-cbc",
            sa_display: "DES-CBC", proposal_display: "DES", strongswan: "des",
        },
        /// Triple DES (EDE3) in CBC mode, 24-byte key.
        TripleDes {
            encryption_algorithm: 5, key_length_attribute: None, key_len: 24, block_len: 8, weak: true,
            vrp_keyword: Some("3des"), vrp_aliases: &["3des-cbc"], log_name: "3des-cbc",
            sa_display: "3DES-CBC", proposal_display: "3DES", strongswan: "3des",
        },
        /// AES-128-CBC.
        Aes128 {
            encryption_algorithm: 7, key_length_attribute: Some(128), key_len: 16, block_len: 16, weak: false,
            vrp_keyword: Some("aes-128"), vrp_aliases: &["aes-cbc-128", "aes", "aes-cbc"], log_name: "aes-128",
            sa_display: "AES-CBC-128", proposal_display: "AES-128", strongswan: "aes128",
        },
        /// AES-192-CBC.
        Aes192 {
            encryption_algorithm: 7, key_length_attribute: Some(192), key_len: 24, block_len: 16, weak: false,
            vrp_keyword: Some("aes-192"), vrp_aliases: &["aes-cbc-192"], log_name: "aes-192",
            sa_display: "AES-CBC-192", proposal_display: "AES-192", strongswan: "aes192",
        },
        /// AES-256-CBC.
        Aes256 {
            encryption_algorithm: 7, key_length_attribute: Some(256), key_len: 32, block_len: 16, weak: false,
            vrp_keyword: Some("aes-256"), vrp_aliases: &["aes-cbc-256"], log_name: "aes-256",
            sa_display: "AES-CBC-256", proposal_display: "AES-256", strongswan: "aes256",
        },
    ];
}

impl Phase1Cipher {
    /// The cipher of an Encryption Algorithm attribute and Key Length attribute. The key
    /// length must be exactly the row's: AES without one is refused rather than guessed
    /// (ikev1-notes pitfall 8), and a fixed-key cipher with one is refused.
    pub fn from_attributes(encryption_algorithm: u16, key_length: Option<u16>) -> Option<Self> {
        PHASE1_CIPHERS
            .iter()
            .find(|r| r.encryption_algorithm == encryption_algorithm && r.key_length_attribute == key_length)
            .map(|r| r.id)
    }

    /// The Encryption Algorithm attribute value.
    pub const fn encryption_algorithm(self) -> u16 {
        self.row().encryption_algorithm
    }

    /// The Key Length attribute that goes with the cipher, in bits, if it sends one.
    pub const fn key_length_attribute(self) -> Option<u16> {
        self.row().key_length_attribute
    }

    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        self.row().key_len
    }

    /// Block length in bytes, which is also the IV length.
    pub const fn block_len(self) -> usize {
        self.row().block_len
    }
}

impl fmt::Display for Phase1Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.row().log_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_unique;

    #[test]
    fn every_row_round_trips_and_no_two_rows_collide() {
        for (index, row) in PHASE1_CIPHERS.iter().enumerate() {
            assert_eq!(row.id as usize, index);
            assert_eq!(row.id.row(), row);
            assert_eq!(
                Phase1Cipher::from_attributes(row.encryption_algorithm, row.key_length_attribute),
                Some(row.id)
            );
            let keyword = row.vrp_keyword.expect("every IKE cipher has a VRP keyword");
            assert_eq!(Phase1Cipher::from_vrp_keyword(keyword), Some(row.id));
            for alias in row.vrp_aliases {
                assert_eq!(Phase1Cipher::from_vrp_keyword(alias), Some(row.id));
            }
            if let Some(bits) = row.key_length_attribute {
                assert_eq!(
                    usize::from(bits),
                    row.key_len * 8,
                    "{keyword}: Key Length attribute and key length"
                );
            }
            assert_eq!(Phase1Cipher::ALL[index], row.id);
        }
        assert_unique(
            "IANA number",
            PHASE1_CIPHERS.iter().map(|r| (r.encryption_algorithm, r.key_length_attribute)),
        );
        assert_unique(
            "VRP keyword",
            PHASE1_CIPHERS
                .iter()
                .flat_map(|r| r.vrp_keyword.into_iter().chain(r.vrp_aliases.iter().copied())),
        );
        for names in [
            |r: &Phase1CipherRow| r.log_name,
            |r: &Phase1CipherRow| r.sa_display,
            |r: &Phase1CipherRow| r.proposal_display,
            |r: &Phase1CipherRow| r.strongswan,
        ] {
            assert_unique("name", PHASE1_CIPHERS.iter().map(names));
        }
    }

    #[test]
    fn fixed_key_ciphers_refuse_a_key_length_and_aes_needs_one() {
        assert_eq!(Phase1Cipher::from_attributes(1, None), Some(Phase1Cipher::Des));
        assert_eq!(Phase1Cipher::from_attributes(1, Some(64)), None);
        assert_eq!(Phase1Cipher::from_attributes(7, None), None);
        assert_eq!(Phase1Cipher::from_attributes(7, Some(512)), None);
    }
}
