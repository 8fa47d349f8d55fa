//! The integrity hashes of the exchanges an IKE SA protects, all keyed with SKEYID_a:
//! quick-mode HASH(1), HASH(2) and HASH(3) (RFC 2409 §5.5) and the informational HASH(1)
//! (RFC 2409 §5.7; the same form protects transaction exchanges, draft-ietf-ipsec-isakmp-mode-cfg).
//!
//! "The message after the HASH payload" is every payload that follows the HASH payload, up to
//! the end of the payload chain as given by the payload lengths. Padding is never hashed, and
//! the 28-byte ISAKMP header is not part of it (the M-ID enters separately, in network order).

use crate::hash::{Digest, HashFunction};

use super::{verify, AuthHash, HashMismatch, HashVerified, MessageId, SkeyidA};

impl SkeyidA {
    /// `HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [| KE] [| IDci | IDcr])`, protecting QM1.
    /// `after_hash` is QM1's payloads after the HASH payload, headers included, no padding.
    pub fn quick_mode_hash_1(&self, message_id: MessageId, after_hash: &[u8]) -> Digest {
        self.prf.hmac(self.key.expose(), &[&message_id.to_bytes(), after_hash])
    }

    /// `HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [| KE] [| IDci | IDcr])`, protecting QM2.
    /// `ni_b` is the body of QM1's Nonce payload; `after_hash` is QM2's payloads after the
    /// HASH payload, no padding.
    pub fn quick_mode_hash_2(&self, message_id: MessageId, ni_b: &[u8], after_hash: &[u8]) -> Digest {
        self.prf.hmac(self.key.expose(), &[&message_id.to_bytes(), ni_b, after_hash])
    }

    /// `HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)`, QM3's proof of liveness; the leading
    /// zero byte keeps it from colliding with HASH(1).
    pub fn quick_mode_hash_3(&self, message_id: MessageId, ni_b: &[u8], nr_b: &[u8]) -> Digest {
        self.prf.hmac(self.key.expose(), &[&[0], &message_id.to_bytes(), ni_b, nr_b])
    }

    /// `HASH(1) = prf(SKEYID_a, M-ID | N/D)` of an informational (or transaction) exchange:
    /// `after_hash` is the Notify / Delete (or Attribute) payloads after the HASH payload.
    pub fn informational_hash(&self, message_id: MessageId, after_hash: &[u8]) -> Digest {
        self.prf.hmac(self.key.expose(), &[&message_id.to_bytes(), after_hash])
    }

    /// Checks QM1's HASH(1) in constant time.
    pub fn verify_quick_mode_hash_1(
        &self,
        message_id: MessageId,
        after_hash: &[u8],
        received: &[u8],
    ) -> Result<HashVerified, HashMismatch> {
        verify(AuthHash::QuickModeHash1, &self.quick_mode_hash_1(message_id, after_hash), received)
    }

    /// Checks QM2's HASH(2) in constant time.
    pub fn verify_quick_mode_hash_2(
        &self,
        message_id: MessageId,
        ni_b: &[u8],
        after_hash: &[u8],
        received: &[u8],
    ) -> Result<HashVerified, HashMismatch> {
        verify(AuthHash::QuickModeHash2, &self.quick_mode_hash_2(message_id, ni_b, after_hash), received)
    }

    /// Checks QM3's HASH(3) in constant time.
    pub fn verify_quick_mode_hash_3(
        &self,
        message_id: MessageId,
        ni_b: &[u8],
        nr_b: &[u8],
        received: &[u8],
    ) -> Result<HashVerified, HashMismatch> {
        verify(AuthHash::QuickModeHash3, &self.quick_mode_hash_3(message_id, ni_b, nr_b), received)
    }

    /// Checks an informational HASH(1) in constant time. Nothing in an encrypted
    /// informational (Delete, DPD, INITIAL-CONTACT) may be acted on before this succeeds.
    pub fn verify_informational_hash(
        &self,
        message_id: MessageId,
        after_hash: &[u8],
        received: &[u8],
    ) -> Result<HashVerified, HashMismatch> {
        verify(AuthHash::Informational, &self.informational_hash(message_id, after_hash), received)
    }
}

#[cfg(test)]
mod tests {
    use crate::hash::{HashAlgorithm, HashFunction};
    use crate::key_schedule::{AuthHash, HashMismatch, MessageId, Skeyid, SkeyidA};

    fn skeyid_a() -> SkeyidA {
        let s = Skeyid::for_pre_shared_key(HashAlgorithm::Sha256, b"psk", b"ni", b"nr");
        s.derive_phase1_keys(b"g^xy", &[1; 8], &[2; 8]).skeyid_a
    }

    #[test]
    fn hashes_cover_the_rfc_inputs() {
        let a = skeyid_a();
        let prf = HashAlgorithm::Sha256;
        let mid = MessageId(0x0a0b0c0d);
        let m = [0x0a, 0x0b, 0x0c, 0x0d];
        let concat = |parts: &[&[u8]]| parts.concat();
        assert_eq!(&*a.quick_mode_hash_1(mid, b"SA.."), &*prf.hmac(a.expose(), &[&concat(&[&m, b"SA.."])]));
        assert_eq!(
            &*a.quick_mode_hash_2(mid, b"NI", b"SA.."),
            &*prf.hmac(a.expose(), &[&concat(&[&m, b"NI", b"SA.."])])
        );
        assert_eq!(
            &*a.quick_mode_hash_3(mid, b"NI", b"NR"),
            &*prf.hmac(a.expose(), &[&concat(&[&[0], &m, b"NI", b"NR"])])
        );
        // Informational HASH(1) has the quick-mode HASH(1) form.
        assert_eq!(&*a.informational_hash(mid, b"N"), &*a.quick_mode_hash_1(mid, b"N"));
    }

    #[test]
    fn verification_tokens_and_errors() {
        let a = skeyid_a();
        let mid = MessageId(7);
        let h1 = a.quick_mode_hash_1(mid, b"rest");
        assert!(a.verify_quick_mode_hash_1(mid, b"rest", &h1).is_ok());
        assert_eq!(
            a.verify_quick_mode_hash_1(MessageId(8), b"rest", &h1),
            Err(HashMismatch(AuthHash::QuickModeHash1))
        );
        let h2 = a.quick_mode_hash_2(mid, b"ni", b"rest");
        assert!(a.verify_quick_mode_hash_2(mid, b"ni", b"rest", &h2).is_ok());
        assert!(a.verify_quick_mode_hash_2(mid, b"nj", b"rest", &h2).is_err());
        let h3 = a.quick_mode_hash_3(mid, b"ni", b"nr");
        assert!(a.verify_quick_mode_hash_3(mid, b"ni", b"nr", &h3).is_ok());
        assert_eq!(
            a.verify_quick_mode_hash_3(mid, b"nr", b"ni", &h3),
            Err(HashMismatch(AuthHash::QuickModeHash3))
        );
        let hi = a.informational_hash(mid, b"delete");
        assert!(a.verify_informational_hash(mid, b"delete", &hi).is_ok());
        assert_eq!(
            a.verify_informational_hash(mid, b"delete", &hi[..16]),
            Err(HashMismatch(AuthHash::Informational))
        );
    }
}
