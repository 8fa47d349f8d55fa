//! ESP ciphers: the transform ID of an ESP transform (RFC 2407 §4.4.4 and the IANA
//! registry) with its Key Length attribute (RFC 2407 §4.5).
//!
//! - `ESP_DES` (2) and `ESP_3DES` (3), CBC with an explicit 8-byte IV (RFC 2405, RFC 2451);
//! - `ESP_NULL` (11), no confidentiality (RFC 2410), only with an integrity algorithm;
//! - `ESP_AES` (12), AES-CBC with an explicit 16-byte IV (RFC 3602);
//! - `ESP_AES_GCM_16` (20), AES-GCM with a 16-byte ICV (RFC 4106): the KEYMAT for it is the
//!   key followed by a 4-byte salt (§8.1).

use core::fmt;

/// Length of the RFC 4106 salt at the end of an AES-GCM key.
pub const GCM_SALT_LEN: usize = 4;
/// Length of the explicit AES-GCM IV carried in every packet (RFC 4106 §3.1).
pub const GCM_IV_LEN: usize = 8;
/// Length of the AES-GCM-16 ICV.
pub const GCM_ICV_LEN: usize = 16;

/// One ESP cipher and every fact about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspCipherRow {
    /// The typed id `crypto` implements.
    pub id: EspCipher,
    /// The ESP transform ID (the proposal's transform ID field).
    pub transform_id: u8,
    /// Key Length attribute, in bits; `None` for fixed-key ciphers, which send none.
    pub key_length_attribute: Option<u16>,
    /// Bytes of KEYMAT the cipher consumes, including the AES-GCM salt.
    pub key_len: usize,
    /// Length of the explicit IV at the start of the ESP payload.
    pub iv_len: usize,
    /// Block length the ciphertext is aligned to; 1 for NULL and GCM.
    pub block_len: usize,
    /// Length of the ICV the cipher itself produces: non-zero only for combined-mode (AEAD)
    /// ciphers, which take no separate integrity algorithm.
    pub icv_len: usize,
    /// Weak: `vrp check` warns.
    pub weak: bool,
    /// The VRP keyword (`esp encryption-algorithm aes-256`); `None` for NULL, which VRP
    /// spells `undo esp encryption-algorithm`.
    pub vrp_keyword: Option<&'static str>,
    /// Further spellings VRP accepts on input.
    pub vrp_aliases: &'static [&'static str],
    /// The name in logs (`Display`).
    pub log_name: &'static str,
    /// The name `display ipsec sa` (`E:AES-256;`) and `display ipsec proposal` print.
    pub display: &'static str,
    /// Wireshark's name in its `esp_sa` table (`esp_encryption_type_vals` in
    /// `packet-ipsec.c`), which the key log must match exactly.
    pub wireshark: &'static str,
    /// strongSwan's proposal keyword (`esp=aes128gcm16`).
    pub strongswan: &'static str,
}

crate::algorithm_table! {
    /// An ESP encryption transform as negotiated in a quick-mode proposal.
    pub enum EspCipher;
    /// The ESP ciphers keysteward implements.
    pub const ESP_CIPHERS: [EspCipherRow] = [
        /// `ESP_NULL`: no encryption (RFC 2410).
        Null {
            transform_id: 11, key_length_attribute: None, key_len: 0, iv_len: 0, block_len: 1, icv_len: 0,
            weak: false, vrp_keyword: None, vrp_aliases: &[], log_name: "null", display: "NULL",
            wireshark: "NULL", strongswan: "null",
        },
        /// `ESP_DES`: DES-CBC. Weak.
        Des {
            transform_id: 2, key_length_attribute: None, key_len: 8, iv_len: 8, block_len: 8, icv_len: 0,
            weak: true, vrp_keyword: Some("des"), vrp_aliases: &["des-cbc"], log_name: "des-cbc", display: "DES",
            wireshark: "DES-CBC [RFC2405]", strongswan: "des",
        },
        /// `ESP_3DES`: triple DES (EDE3) in CBC mode.
        TripleDes {
            transform_id: 3, key_length_attribute: None, key_len: 24, iv_len: 8, block_len: 8, icv_len: 0,
            weak: true, vrp_keyword: Some("3des"), vrp_aliases: &["3des-cbc"], log_name: "3des-cbc",
            display: "3DES", wireshark: "TripleDES-CBC [RFC2451]", strongswan: "3des",
        },
        /// `ESP_AES` with a 128-bit key.
        AesCbc128 {
            transform_id: 12, key_length_attribute: Some(128), key_len: 16, iv_len: 16, block_len: 16,
            icv_len: 0, weak: false, vrp_keyword: Some("aes-128"), vrp_aliases: &["aes-cbc-128", "aes", "aes-cbc"],
            log_name: "aes-cbc-128", display: "AES-128", wireshark: "AES-CBC [RFC3602]", strongswan: "aes128",
        },
        /// `ESP_AES` with a 192-bit key.
        AesCbc192 {
            transform_id: 12, key_length_attribute: Some(192), key_len: 24, iv_len: 16, block_len: 16,
            icv_len: 0, weak: false, vrp_keyword: Some("aes-192"), vrp_aliases: &["aes-cbc-192"],
            log_name: "aes-cbc-192", display: "AES-192", wireshark: "AES-CBC [RFC3602]", strongswan: "aes192",
        },
        /// `ESP_AES` with a 256-bit key.
        AesCbc256 {
            transform_id: 12, key_length_attribute: Some(256), key_len: 32, iv_len: 16, block_len: 16,
            icv_len: 0, weak: false, vrp_keyword: Some("aes-256"), vrp_aliases: &["aes-cbc-256"],
            log_name: "aes-cbc-256", display: "AES-256", wireshark: "AES-CBC [RFC3602]", strongswan: "aes256",
        },
        /// `ESP_AES_GCM_16` with a 128-bit key (plus 4-byte salt); the keyword is USG-E's.
        AesGcm128 {
            transform_id: 20, key_length_attribute: Some(128), key_len: 16 + GCM_SALT_LEN, iv_len: GCM_IV_LEN,
            block_len: 1, icv_len: GCM_ICV_LEN, weak: false, vrp_keyword: Some("aes-128-gcm-128"),
            vrp_aliases: &[], log_name: "aes-gcm-16-128", display: "AES-GCM-128",
            wireshark: "AES-GCM with 16 octet ICV [RFC4106]", strongswan: "aes128gcm16",
        },
        /// `ESP_AES_GCM_16` with a 256-bit key (plus 4-byte salt); the keyword is USG-E's.
        AesGcm256 {
            transform_id: 20, key_length_attribute: Some(256), key_len: 32 + GCM_SALT_LEN, iv_len: GCM_IV_LEN,
            block_len: 1, icv_len: GCM_ICV_LEN, weak: false, vrp_keyword: Some("aes-256-gcm-128"),
            vrp_aliases: &[], log_name: "aes-gcm-16-256", display: "AES-GCM-256",
            wireshark: "AES-GCM with 16 octet ICV [RFC4106]", strongswan: "aes256gcm16",
        },
    ];
}

impl EspCipher {
    /// The cipher for a transform ID and Key Length attribute. A cipher that sends a Key
    /// Length needs it (a missing one is refused rather than guessed, ikev1-notes pitfall 8);
    /// a fixed-key cipher accepts none or its own size in bits.
    pub fn from_transform_id(id: u8, key_bits: Option<u16>) -> Option<Self> {
        ESP_CIPHERS
            .iter()
            .find(|r| {
                let own_size = u16::try_from(r.key_len * 8).ok();
                r.transform_id == id
                    && (key_bits == r.key_length_attribute
                        || (r.key_length_attribute.is_none() && key_bits == own_size))
            })
            .map(|r| r.id)
    }

    /// The ESP transform ID.
    pub const fn transform_id(self) -> u8 {
        self.row().transform_id
    }

    /// The Key Length attribute that goes with the cipher, in bits, if it sends one.
    pub const fn key_length_attribute(self) -> Option<u16> {
        self.row().key_length_attribute
    }

    /// Bytes of KEYMAT the cipher consumes, including the AES-GCM salt.
    #[inline]
    pub const fn key_len(self) -> usize {
        self.row().key_len
    }

    /// Length of the explicit IV at the start of the ESP payload.
    #[inline]
    pub const fn iv_len(self) -> usize {
        self.row().iv_len
    }

    /// The cipher's block length, to which the ciphertext must be aligned; 1 for NULL and
    /// GCM (ESP still aligns the trailer to 4 bytes, RFC 4303 §2.4, which is the esp crate's
    /// business).
    #[inline]
    pub const fn block_len(self) -> usize {
        self.row().block_len
    }

    /// Length of the ICV the cipher itself produces: 16 for AES-GCM-16, 0 for the others
    /// (which need an [`Integrity`](crate::Integrity) algorithm).
    #[inline]
    pub const fn icv_len(self) -> usize {
        self.row().icv_len
    }

    /// True for combined-mode (AEAD) ciphers, which must not be paired with an integrity
    /// algorithm.
    #[inline]
    pub const fn is_aead(self) -> bool {
        self.row().icv_len > 0
    }

    /// The name used in logs and `display` output.
    pub const fn name(self) -> &'static str {
        self.row().log_name
    }
}

impl fmt::Display for EspCipher {
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
        for (index, row) in ESP_CIPHERS.iter().enumerate() {
            assert_eq!(row.id as usize, index);
            assert_eq!(row.id.row(), row);
            assert_eq!(EspCipher::ALL[index], row.id);
            assert_eq!(
                EspCipher::from_transform_id(row.transform_id, row.key_length_attribute),
                Some(row.id)
            );
            if let Some(keyword) = row.vrp_keyword {
                assert_eq!(EspCipher::from_vrp_keyword(keyword), Some(row.id));
            }
            for alias in row.vrp_aliases {
                assert_eq!(EspCipher::from_vrp_keyword(alias), Some(row.id));
            }
            if let Some(bits) = row.key_length_attribute {
                let salt = if row.id.is_aead() { GCM_SALT_LEN } else { 0 };
                assert_eq!(usize::from(bits), (row.key_len - salt) * 8, "{}", row.log_name);
            }
        }
        assert_unique("IANA number", ESP_CIPHERS.iter().map(|r| (r.transform_id, r.key_length_attribute)));
        assert_unique(
            "VRP keyword",
            ESP_CIPHERS.iter().flat_map(|r| r.vrp_keyword.into_iter().chain(r.vrp_aliases.iter().copied())),
        );
        assert_unique("log name", ESP_CIPHERS.iter().map(|r| r.log_name));
        assert_unique("display name", ESP_CIPHERS.iter().map(|r| r.display));
        assert_unique("strongSwan keyword", ESP_CIPHERS.iter().map(|r| r.strongswan));
    }

    #[test]
    fn fixed_key_ciphers_take_no_key_length_or_their_own() {
        assert_eq!(EspCipher::from_transform_id(2, Some(64)), Some(EspCipher::Des));
        assert_eq!(EspCipher::from_transform_id(3, Some(192)), Some(EspCipher::TripleDes));
        assert_eq!(EspCipher::from_transform_id(11, Some(0)), Some(EspCipher::Null));
        assert_eq!(EspCipher::from_transform_id(2, Some(128)), None);
        assert_eq!(EspCipher::from_transform_id(12, None), None);
        assert_eq!(EspCipher::from_transform_id(20, Some(192)), None, "AES-GCM-192 is not implemented");
    }
}
