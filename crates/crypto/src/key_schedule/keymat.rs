//! IPsec SA keying material from quick mode (RFC 2409 §5.5):
//!
//! ```text
//! KEYMAT = K1 | K2 | K3 | …
//! K1     = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
//! Kn+1   = prf(SKEYID_d, Kn | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
//! ```
//!
//! One KEYMAT is made per direction, and each is keyed with the SPI **chosen by the receiver
//! of that SA** (the SPI that appears in the ESP header of its packets):
//!
//! * **inbound** (packets the peer sends us): the SPI *we* chose and sent in our proposal;
//! * **outbound** (packets we send the peer): the SPI the *peer* chose and sent.
//!
//! Ni_b and Nr_b are always in initiator, responder order, whichever side computes. The
//! material is split as strongSwan's `derive_child_keys` does: the encryption key first
//! (followed by its salt for AES-GCM/CTR/GMAC, 4 bytes, or CCM, 3 bytes), then the integrity key.

use crate::hash::HashFunction;
use crate::secret::SecretBytes;

use super::{KeyScheduleError, SkeyidD, Spi};

/// The most KEYMAT one call derives: far above any transform pair (AES-256 with its salt and
/// HMAC-SHA2-512 need 100 bytes), low enough that a bad length cannot make us loop for long.
pub const MAX_KEYMAT_LEN: usize = 1024;

/// The quick-mode values both directions' KEYMAT share (everything but the SPI).
#[derive(Clone, Copy)]
pub struct KeymatInput<'a> {
    /// g(qm)^xy, the quick-mode Diffie-Hellman shared secret at its fixed length, when the
    /// quick mode used PFS (a KE payload); `None` otherwise.
    pub pfs_shared_secret: Option<&'a [u8]>,
    /// The proposal's protocol ID (RFC 2407 §4.4.1: PROTO_IPSEC_AH 2, PROTO_IPSEC_ESP 3).
    pub protocol: u8,
    /// The body of QM1's Nonce payload.
    pub ni_b: &'a [u8],
    /// The body of QM2's Nonce payload.
    pub nr_b: &'a [u8],
}

impl KeymatInput<'_> {
    /// The PRF input after SKEYID_d (and after Kn for the later blocks):
    /// `[g(qm)^xy |] protocol | SPI | Ni_b | Nr_b`. Secret when it holds g(qm)^xy.
    pub fn seed(&self, spi: Spi) -> SecretBytes {
        let pfs = self.pfs_shared_secret.unwrap_or_default();
        let mut seed = Vec::with_capacity(pfs.len() + 5 + self.ni_b.len() + self.nr_b.len());
        seed.extend_from_slice(pfs);
        seed.push(self.protocol);
        seed.extend_from_slice(&spi.to_bytes());
        seed.extend_from_slice(self.ni_b);
        seed.extend_from_slice(self.nr_b);
        SecretBytes::new(seed)
    }
}

impl core::fmt::Debug for KeymatInput<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeymatInput")
            .field("pfs", &self.pfs_shared_secret.is_some())
            .field("protocol", &self.protocol)
            .field("ni_b_len", &self.ni_b.len())
            .field("nr_b_len", &self.nr_b.len())
            .finish()
    }
}

/// Raw KEYMAT for one SA, before it is split into keys.
#[derive(Debug)]
pub struct Keymat(SecretBytes);

impl Keymat {
    /// The secret bytes, for test vectors and for transforms this module does not split.
    /// Never log them.
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }
}

/// How many KEYMAT bytes each part of an IPsec SA's keys takes, in KEYMAT order. The
/// lengths come from the negotiated transform (the KEY_LENGTH attribute or the cipher's fixed
/// size, and the authentication algorithm's key size), which the ESP layer knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EspKeyLengths {
    /// Cipher key bytes without the salt (16 for AES-128, 24 for 3DES, 0 for NULL or AH).
    pub encryption_key_len: usize,
    /// Salt bytes after the cipher key (4 for AES-GCM/CTR/GMAC, 3 for CCM, 0 for CBC).
    pub salt_len: usize,
    /// Integrity key bytes (16 for HMAC-MD5, 20 for HMAC-SHA1, 32 for HMAC-SHA2-256, 0 for AEAD).
    pub integrity_key_len: usize,
}

impl EspKeyLengths {
    /// The KEYMAT length these keys need; `None` on overflow.
    pub fn total(&self) -> Option<usize> {
        self.encryption_key_len.checked_add(self.salt_len)?.checked_add(self.integrity_key_len)
    }
}

/// The keys of one IPsec SA (one direction), split from its KEYMAT.
#[derive(Debug)]
pub struct EspKeys {
    spi: Spi,
    /// Encryption key followed by the salt, as the kernel and strongSwan store them.
    cipher_material: SecretBytes,
    encryption_key_len: usize,
    integrity_key: SecretBytes,
}

impl EspKeys {
    /// The SPI these keys were derived for, i.e. the SPI in the ESP header of the SA's packets.
    pub fn spi(&self) -> Spi {
        self.spi
    }

    /// The cipher key, without the salt. Never log it.
    pub fn encryption_key(&self) -> &[u8] {
        self.cipher_material.expose().get(..self.encryption_key_len).unwrap_or_default()
    }

    /// The salt that follows the cipher key (empty for CBC). Never log it.
    pub fn salt(&self) -> &[u8] {
        self.cipher_material.expose().get(self.encryption_key_len..).unwrap_or_default()
    }

    /// Cipher key and salt together, the form AEAD key set-up usually takes. Never log it.
    pub fn encryption_key_with_salt(&self) -> &[u8] {
        self.cipher_material.expose()
    }

    /// The integrity (ICV) key. Never log it.
    pub fn integrity_key(&self) -> &[u8] {
        self.integrity_key.expose()
    }
}

/// The two SAs a quick mode creates, with their keys.
#[derive(Debug)]
pub struct IpsecSaKeys {
    /// For packets the peer sends us, keyed with the SPI we chose.
    pub inbound: EspKeys,
    /// For packets we send the peer, keyed with the SPI the peer chose.
    pub outbound: EspKeys,
}

impl SkeyidD {
    /// `len` bytes of KEYMAT for the SA identified by `spi` (the SPI its *receiver* chose).
    pub fn keymat(&self, input: &KeymatInput<'_>, spi: Spi, len: usize) -> Result<Keymat, KeyScheduleError> {
        if len > MAX_KEYMAT_LEN {
            return Err(KeyScheduleError::KeymatTooLong { requested: len, max: MAX_KEYMAT_LEN });
        }
        let seed = input.seed(spi);
        let key = self.key.expose();
        // Reserved up front so no reallocation leaves key bytes behind.
        let mut out = Vec::with_capacity(len + self.prf.output_len());
        let mut previous: Option<crate::hash::Digest> = None;
        while out.len() < len {
            let block = match &previous {
                None => self.prf.hmac(key, &[seed.expose()]),
                Some(previous) => self.prf.hmac(key, &[previous, seed.expose()]),
            };
            out.extend_from_slice(&block);
            previous = Some(block);
        }
        out.truncate(len);
        Ok(Keymat(SecretBytes::new(out)))
    }

    /// The keys of the SA identified by `spi` (the SPI its receiver chose), split from its
    /// KEYMAT: encryption key, salt, integrity key.
    pub fn esp_keys(
        &self,
        input: &KeymatInput<'_>,
        spi: Spi,
        lengths: EspKeyLengths,
    ) -> Result<EspKeys, KeyScheduleError> {
        let total = lengths.total().unwrap_or(usize::MAX);
        let keymat = self.keymat(input, spi, total)?;
        let (cipher_material, integrity_key) =
            keymat.expose().split_at(lengths.encryption_key_len + lengths.salt_len);
        Ok(EspKeys {
            spi,
            cipher_material: SecretBytes::from_slice(cipher_material),
            encryption_key_len: lengths.encryption_key_len,
            integrity_key: SecretBytes::from_slice(integrity_key),
        })
    }

    /// Both SAs of a quick mode. `our_spi` is the SPI we put in our proposal (the peer sends
    /// to it, so it keys our **inbound** SA); `peer_spi` is the one the peer put in its
    /// proposal (it keys our **outbound** SA). Both sides compute the same two KEYMATs.
    pub fn ipsec_sa_keys(
        &self,
        input: &KeymatInput<'_>,
        our_spi: Spi,
        peer_spi: Spi,
        lengths: EspKeyLengths,
    ) -> Result<IpsecSaKeys, KeyScheduleError> {
        Ok(IpsecSaKeys {
            inbound: self.esp_keys(input, our_spi, lengths)?,
            outbound: self.esp_keys(input, peer_spi, lengths)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::HashAlgorithm;
    use crate::key_schedule::Skeyid;
    use proptest::prelude::*;

    fn skeyid_d(prf: HashAlgorithm) -> SkeyidD {
        let s = Skeyid::for_pre_shared_key(prf, b"psk", b"ni", b"nr");
        s.derive_phase1_keys(b"g^xy", &[1; 8], &[2; 8]).skeyid_d
    }

    const INPUT: KeymatInput<'static> =
        KeymatInput { pfs_shared_secret: None, protocol: 3, ni_b: b"NI", nr_b: b"NR" };

    #[test]
    fn seed_layout() {
        assert_eq!(INPUT.seed(Spi(0x01020304)).expose(), b"\x03\x01\x02\x03\x04NINR");
        let pfs = KeymatInput { pfs_shared_secret: Some(b"GQM"), ..INPUT };
        assert_eq!(pfs.seed(Spi(0x01020304)).expose(), b"GQM\x03\x01\x02\x03\x04NINR");
        assert!(!format!("{pfs:?}").contains("GQM"));
    }

    #[test]
    fn keymat_blocks_chain_on_the_previous_block() {
        let prf = HashAlgorithm::Md5;
        let d = skeyid_d(prf);
        let seed = INPUT.seed(Spi(9));
        let k1 = prf.hmac(d.expose(), &[seed.expose()]);
        let k2 = prf.hmac(d.expose(), &[&k1, seed.expose()]);
        let k3 = prf.hmac(d.expose(), &[&k2, seed.expose()]);
        let km = d.keymat(&INPUT, Spi(9), 40).unwrap();
        assert_eq!(km.expose(), [&k1[..], &k2[..], &k3[..8]].concat());
        assert!(d.keymat(&INPUT, Spi(9), 0).unwrap().expose().is_empty());
        assert_eq!(
            d.keymat(&INPUT, Spi(9), MAX_KEYMAT_LEN + 1).unwrap_err(),
            KeyScheduleError::KeymatTooLong { requested: MAX_KEYMAT_LEN + 1, max: MAX_KEYMAT_LEN }
        );
    }

    #[test]
    fn split_and_directions() {
        let d = skeyid_d(HashAlgorithm::Sha256);
        let lengths = EspKeyLengths { encryption_key_len: 16, salt_len: 4, integrity_key_len: 32 };
        let pair = d.ipsec_sa_keys(&INPUT, Spi(0xaaaa), Spi(0xbbbb), lengths).unwrap();
        let inbound = d.keymat(&INPUT, Spi(0xaaaa), 52).unwrap();
        let outbound = d.keymat(&INPUT, Spi(0xbbbb), 52).unwrap();
        assert_eq!(pair.inbound.spi(), Spi(0xaaaa));
        assert_eq!(pair.outbound.spi(), Spi(0xbbbb));
        assert_eq!(pair.inbound.encryption_key(), &inbound.expose()[..16]);
        assert_eq!(pair.inbound.salt(), &inbound.expose()[16..20]);
        assert_eq!(pair.inbound.encryption_key_with_salt(), &inbound.expose()[..20]);
        assert_eq!(pair.inbound.integrity_key(), &inbound.expose()[20..]);
        assert_eq!(pair.outbound.integrity_key(), &outbound.expose()[20..]);
        assert_ne!(pair.inbound.encryption_key(), pair.outbound.encryption_key());

        // The peer computes the same pair with the SPIs the other way round.
        let peer = d.ipsec_sa_keys(&INPUT, Spi(0xbbbb), Spi(0xaaaa), lengths).unwrap();
        assert_eq!(peer.outbound.encryption_key(), pair.inbound.encryption_key());
        assert_eq!(peer.inbound.integrity_key(), pair.outbound.integrity_key());
        assert!(format!("{pair:?}").contains("redacted"));
    }

    #[test]
    fn absurd_lengths_are_refused() {
        let d = skeyid_d(HashAlgorithm::Sha1);
        let lengths = EspKeyLengths { encryption_key_len: usize::MAX, salt_len: 1, integrity_key_len: 0 };
        assert!(matches!(d.esp_keys(&INPUT, Spi(1), lengths), Err(KeyScheduleError::KeymatTooLong { .. })));
    }

    proptest! {
        // KEYMAT is a stream: asking for fewer bytes gives a prefix of asking for more.
        #[test]
        fn keymat_prefix_consistent(
            a in 0usize..300,
            b in 0usize..300,
            spi in any::<u32>(),
            alg in prop::sample::select(HashAlgorithm::ALL.to_vec()),
        ) {
            let d = skeyid_d(alg);
            let short = d.keymat(&INPUT, Spi(spi), a.min(b)).unwrap();
            let long = d.keymat(&INPUT, Spi(spi), a.max(b)).unwrap();
            prop_assert_eq!(short.expose().len(), a.min(b));
            prop_assert_eq!(short.expose(), &long.expose()[..a.min(b)]);
        }
    }
}
