//! Phase-1 keys: SKEYID for pre-shared keys and for signatures, SKEYID_d / SKEYID_a /
//! SKEYID_e and HASH_I / HASH_R (RFC 2409 §5), and the phase-1 cipher key Ka with the
//! Appendix-B expansion.

use crate::hash::{Digest, HashAlgorithm, HashFunction};
use crate::phase1_cipher::Phase1Cipher;
use crate::secret::SecretBytes;

use super::{verify, AuthHash, HashMismatch, HashVerified};

/// SKEYID, the root of an IKE SA's keys (RFC 2409 §5). It keys HASH_I and HASH_R and derives
/// the three phase-1 keys; nothing else can be done with it, so it cannot be misused as,
/// say, a cipher key.
#[derive(Debug)]
pub struct Skeyid {
    prf: HashAlgorithm,
    key: SecretBytes,
}

impl Skeyid {
    /// Pre-shared-key authentication: `SKEYID = prf(pre-shared-key, Ni_b | Nr_b)`.
    ///
    /// `ni_b` / `nr_b` are the bodies of the initiator's and responder's Nonce payloads
    /// (without the generic header), in that order whichever side we are.
    pub fn for_pre_shared_key(prf: HashAlgorithm, psk: &[u8], ni_b: &[u8], nr_b: &[u8]) -> Self {
        Self::from_digest(prf, prf.hmac(psk, &[ni_b, nr_b]))
    }

    /// Signature authentication (RSA, DSS, ECDSA): `SKEYID = prf(Ni_b | Nr_b, g^xy)`.
    ///
    /// `g_xy` is the Diffie-Hellman shared secret at its fixed length (left-padded to the
    /// prime length for MODP, the x coordinate for ECP); stripping leading zeros would
    /// disagree with strongSwan about once in 256 handshakes.
    pub fn for_signatures(prf: HashAlgorithm, ni_b: &[u8], nr_b: &[u8], g_xy: &[u8]) -> Self {
        // HMAC takes one key; the nonces are concatenated into a zeroized buffer because the
        // concatenation is the key.
        let mut key = zeroize::Zeroizing::new(Vec::with_capacity(ni_b.len() + nr_b.len()));
        key.extend_from_slice(ni_b);
        key.extend_from_slice(nr_b);
        Self::from_digest(prf, prf.hmac(&key, &[g_xy]))
    }

    fn from_digest(prf: HashAlgorithm, digest: Digest) -> Self {
        Self { prf, key: SecretBytes::from_slice(&digest) }
    }

    /// The PRF's hash algorithm, which every key derived from this SKEYID uses too.
    pub fn prf(&self) -> HashAlgorithm {
        self.prf
    }

    /// The secret bytes, for test vectors and for a PRF this module does not offer. Never log
    /// them.
    pub fn expose(&self) -> &[u8] {
        self.key.expose()
    }

    /// Derives the three phase-1 keys (RFC 2409 §5):
    ///
    /// ```text
    /// SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
    /// SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
    /// SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)
    /// ```
    ///
    /// `cky_i` / `cky_r` are the initiator's and responder's cookies from the ISAKMP header.
    pub fn derive_phase1_keys(&self, g_xy: &[u8], cky_i: &[u8; 8], cky_r: &[u8; 8]) -> Phase1Keys {
        let key = self.key.expose();
        let d = self.prf.hmac(key, &[g_xy, cky_i, cky_r, &[0]]);
        let a = self.prf.hmac(key, &[&d, g_xy, cky_i, cky_r, &[1]]);
        let e = self.prf.hmac(key, &[&a, g_xy, cky_i, cky_r, &[2]]);
        Phase1Keys {
            skeyid_d: SkeyidD { prf: self.prf, key: SecretBytes::from_slice(&d) },
            skeyid_a: SkeyidA { prf: self.prf, key: SecretBytes::from_slice(&a) },
            skeyid_e: SkeyidE { prf: self.prf, key: SecretBytes::from_slice(&e) },
        }
    }

    /// `HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)`, the initiator's
    /// phase-1 proof. `idii_b` is the initiator's ID payload body as sent (ID type, protocol,
    /// port and data), never a re-encoding of it.
    pub fn hash_i(&self, input: &AuthHashInput<'_>, idii_b: &[u8]) -> Digest {
        self.prf.hmac(
            self.key.expose(),
            &[input.g_xi, input.g_xr, &input.cky_i, &input.cky_r, input.sai_b, idii_b],
        )
    }

    /// `HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)`, the responder's
    /// phase-1 proof. Note the swapped KE values and cookies, and that it hashes the
    /// *initiator's* SA payload too.
    pub fn hash_r(&self, input: &AuthHashInput<'_>, idir_b: &[u8]) -> Digest {
        self.prf.hmac(
            self.key.expose(),
            &[input.g_xr, input.g_xi, &input.cky_r, &input.cky_i, input.sai_b, idir_b],
        )
    }

    /// Checks a received HASH_I (the responder's check of MM5 / AM3) in constant time.
    pub fn verify_hash_i(
        &self,
        input: &AuthHashInput<'_>,
        idii_b: &[u8],
        received: &[u8],
    ) -> Result<HashVerified, HashMismatch> {
        verify(AuthHash::HashI, &self.hash_i(input, idii_b), received)
    }

    /// Checks a received HASH_R (the initiator's check of MM6 / AM2) in constant time.
    pub fn verify_hash_r(
        &self,
        input: &AuthHashInput<'_>,
        idir_b: &[u8],
        received: &[u8],
    ) -> Result<HashVerified, HashMismatch> {
        verify(AuthHash::HashR, &self.hash_r(input, idir_b), received)
    }
}

/// The exchange values HASH_I and HASH_R both cover, named as in RFC 2409 §5. Grouping them
/// keeps the two hashes from being fed different KE values or SA bodies by mistake.
#[derive(Debug, Clone, Copy)]
pub struct AuthHashInput<'a> {
    /// The initiator's KE payload body (g^xi).
    pub g_xi: &'a [u8],
    /// The responder's KE payload body (g^xr).
    pub g_xr: &'a [u8],
    /// The initiator's cookie.
    pub cky_i: [u8; 8],
    /// The responder's cookie.
    pub cky_r: [u8; 8],
    /// The body of the initiator's SA payload (DOI, situation, proposals), without the
    /// generic header: both hashes use the initiator's offer, not the responder's choice.
    pub sai_b: &'a [u8],
}

/// The three keys SKEYID derives. The fields are public so the engine can keep each where it
/// is used (SKEYID_d for quick-mode rekeys, SKEYID_a for every protected exchange, SKEYID_e
/// only until Ka is made); their types cannot be built any other way.
#[derive(Debug)]
pub struct Phase1Keys {
    /// Derives IPsec SA KEYMAT.
    pub skeyid_d: SkeyidD,
    /// Keys the quick-mode and informational hashes.
    pub skeyid_a: SkeyidA,
    /// Source of the phase-1 cipher key Ka.
    pub skeyid_e: SkeyidE,
}

/// SKEYID_d: the only key KEYMAT can be derived from (RFC 2409 §5.5).
#[derive(Debug)]
pub struct SkeyidD {
    pub(super) prf: HashAlgorithm,
    pub(super) key: SecretBytes,
}

/// SKEYID_a: keys the integrity hashes of the exchanges protected by the IKE SA.
#[derive(Debug)]
pub struct SkeyidA {
    pub(super) prf: HashAlgorithm,
    pub(super) key: SecretBytes,
}

/// SKEYID_e: the material of the phase-1 cipher key.
#[derive(Debug)]
pub struct SkeyidE {
    prf: HashAlgorithm,
    key: SecretBytes,
}

impl SkeyidD {
    /// The secret bytes, for test vectors only. Never log them.
    pub fn expose(&self) -> &[u8] {
        self.key.expose()
    }
}

impl SkeyidA {
    /// The secret bytes, for test vectors only. Never log them.
    pub fn expose(&self) -> &[u8] {
        self.key.expose()
    }
}

impl SkeyidE {
    /// The secret bytes, for test vectors only. Never log them.
    pub fn expose(&self) -> &[u8] {
        self.key.expose()
    }

    /// The phase-1 cipher key Ka (RFC 2409 Appendix B). When SKEYID_e is at least as long as
    /// the cipher's key, Ka is its first bytes; otherwise (3DES or AES-256 with SHA-1, AES-192+
    /// with MD5) Ka = K1 | K2 | … truncated, with `K1 = prf(SKEYID_e, 0)` (one zero byte) and
    /// `Kn+1 = prf(SKEYID_e, Kn)`.
    pub fn cipher_key(&self, cipher: Phase1Cipher) -> Phase1CipherKey {
        Phase1CipherKey { cipher, key: expand_cipher_key(self.prf, self.key.expose(), cipher.key_len()) }
    }
}

/// Appendix-B expansion of `skeyid_e` to `len` bytes (see [`SkeyidE::cipher_key`]).
pub(super) fn expand_cipher_key(prf: HashAlgorithm, skeyid_e: &[u8], len: usize) -> SecretBytes {
    if skeyid_e.len() >= len {
        return SecretBytes::from_slice(&skeyid_e[..len]);
    }
    // Reserve the whole length up front so no reallocation leaves a copy of key bytes behind.
    let mut out = Vec::with_capacity(len + prf.output_len());
    let mut block = prf.hmac(skeyid_e, &[&[0]]);
    loop {
        out.extend_from_slice(&block);
        if out.len() >= len || block.is_empty() {
            break;
        }
        block = prf.hmac(skeyid_e, &[&block]);
    }
    out.truncate(len);
    SecretBytes::new(out)
}

/// Ka, the key of the phase-1 cipher, bound to the cipher it was derived for so it cannot be
/// used with another.
#[derive(Debug)]
pub struct Phase1CipherKey {
    cipher: Phase1Cipher,
    key: SecretBytes,
}

impl Phase1CipherKey {
    /// The cipher this key is for.
    pub fn cipher(&self) -> Phase1Cipher {
        self.cipher
    }

    /// The secret bytes, for test vectors and for the cipher. Never log them.
    pub fn expose(&self) -> &[u8] {
        self.key.expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // Hand-checkable: with the PSK "Jefe" and nonces that concatenate to RFC 4231 test case
    // 2's message, SKEYID is that test case's HMAC-SHA-256 output.
    #[test]
    fn skeyid_psk_is_hmac_of_nonces() {
        let s =
            Skeyid::for_pre_shared_key(HashAlgorithm::Sha256, b"Jefe", b"what do ya want ", b"for nothing?");
        assert_eq!(s.expose(), h("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
        assert_eq!(s.prf(), HashAlgorithm::Sha256);
    }

    // RFC 2202 test case 2 (HMAC-SHA1, key "Jefe"), with the key split into the two nonces.
    #[test]
    fn skeyid_signature_keys_with_nonces() {
        let s = Skeyid::for_signatures(HashAlgorithm::Sha1, b"Je", b"fe", b"what do ya want for nothing?");
        assert_eq!(s.expose(), h("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"));
    }

    /// Checks SKEYID and its children against an NIST ACVP kdf135 IKEv1 sample (SHA-1), as
    /// carried in libreswan `programs/cavp/test.acvp.ikev1_{dsa,psk}.run`.
    fn check_acvp(skeyid: &Skeyid, g_xy: &str, cky_i: &str, cky_r: &str, want: [&str; 4]) {
        let ci: [u8; 8] = h(cky_i).try_into().unwrap();
        let cr: [u8; 8] = h(cky_r).try_into().unwrap();
        let keys = skeyid.derive_phase1_keys(&h(g_xy), &ci, &cr);
        assert_eq!(hex::encode(skeyid.expose()), want[0]);
        assert_eq!(hex::encode(keys.skeyid_d.expose()), want[1]);
        assert_eq!(hex::encode(keys.skeyid_a.expose()), want[2]);
        assert_eq!(hex::encode(keys.skeyid_e.expose()), want[3]);
    }

    #[test]
    fn acvp_kdf135_ikev1_signature_sample() {
        let skeyid = Skeyid::for_signatures(
            HashAlgorithm::Sha1,
            &h("69a62284195f1680"),
            &h("80c94ba25c8abda5"),
            &h("8ba4cbc73c0187301dc19a975823854dbd641c597f637f8d053a83b9514673eb"),
        );
        check_acvp(
            &skeyid,
            "8ba4cbc73c0187301dc19a975823854dbd641c597f637f8d053a83b9514673eb",
            "8c3bcd3a69831d7f",
            "d2d9a7ff4fbe95a7",
            [
                "707197817fb2d90cf54d1842606bdea59b9f4823",
                "384be709a8a5e63c3ed160cfe3921c4b37d5b32d",
                "48b327575abe3adba0f279849e289022a13e2b47",
                "a4a415c8e0c38c0da847c356cc61c24df8025560",
            ],
        );
    }

    #[test]
    fn acvp_kdf135_ikev1_psk_sample() {
        let skeyid = Skeyid::for_pre_shared_key(
            HashAlgorithm::Sha1,
            &h("75"),
            &h("b9a2d0e922dc66dd"),
            &h("2130166863b5ddef"),
        );
        check_acvp(
            &skeyid,
            "739003ba2c11c982946c65e26acf661fbf8ebb78011a9fead79efa12fe3e71cc",
            "83d374c30b3b5082",
            "5afc0da06c728029",
            [
                "62b04d112877e442fc3282fc37c076997718a0b9",
                "369e5aad1bdb5faf6a3d929d500cdc236710a9ab",
                "588e957d8d790d093b3a39f121473473af78e9bb",
                "cd74b0c048219db81384d3fda8f6cda51e398a2b",
            ],
        );
    }

    #[test]
    fn phase1_keys_chain_and_differ() {
        let prf = HashAlgorithm::Sha256;
        let s = Skeyid::for_pre_shared_key(prf, b"psk", b"ni", b"nr");
        let (g, ci, cr) = (b"gxy".as_slice(), [1u8; 8], [2u8; 8]);
        let k = s.derive_phase1_keys(g, &ci, &cr);
        let d = prf.hmac(s.expose(), &[g, &ci, &cr, &[0]]);
        let a = prf.hmac(s.expose(), &[&d, g, &ci, &cr, &[1]]);
        let e = prf.hmac(s.expose(), &[&a, g, &ci, &cr, &[2]]);
        assert_eq!(k.skeyid_d.expose(), &*d);
        assert_eq!(k.skeyid_a.expose(), &*a);
        assert_eq!(k.skeyid_e.expose(), &*e);
        // Swapping the cookies changes every key.
        let swapped = s.derive_phase1_keys(g, &cr, &ci);
        assert_ne!(swapped.skeyid_d.expose(), k.skeyid_d.expose());
    }

    #[test]
    fn hash_i_and_hash_r_swap_ke_and_cookies() {
        let prf = HashAlgorithm::Sha1;
        let s = Skeyid::for_pre_shared_key(prf, b"psk", b"ni", b"nr");
        let input =
            AuthHashInput { g_xi: b"XI", g_xr: b"XR", cky_i: [0xaa; 8], cky_r: [0xbb; 8], sai_b: b"SA" };
        let hi = s.hash_i(&input, b"IDI");
        let hr = s.hash_r(&input, b"IDR");
        let mut data_i = b"XIXR".to_vec();
        data_i.extend([0xaa; 8]);
        data_i.extend([0xbb; 8]);
        data_i.extend(b"SAIDI");
        assert_eq!(&*hi, &*prf.hmac(s.expose(), &[&data_i]));
        let mut data_r = b"XRXI".to_vec();
        data_r.extend([0xbb; 8]);
        data_r.extend([0xaa; 8]);
        data_r.extend(b"SAIDR");
        assert_eq!(&*hr, &*prf.hmac(s.expose(), &[&data_r]));

        assert!(s.verify_hash_i(&input, b"IDI", &hi).is_ok());
        assert_eq!(s.verify_hash_i(&input, b"IDR", &hi), Err(HashMismatch(AuthHash::HashI)));
        assert!(s.verify_hash_r(&input, b"IDR", &hr).is_ok());
        assert_eq!(s.verify_hash_r(&input, b"IDR", &hi), Err(HashMismatch(AuthHash::HashR)));
    }

    #[test]
    fn cipher_key_truncates_when_long_enough() {
        let k = expand_cipher_key(HashAlgorithm::Sha256, &[7; 32], 16);
        assert_eq!(k.expose(), [7; 16]);
    }

    #[test]
    fn cipher_key_appendix_b_expansion() {
        // 3DES (24 bytes) from a 20-byte SHA-1 SKEYID_e: K1 = prf(e, 0), K2 = prf(e, K1).
        let prf = HashAlgorithm::Sha1;
        let e = [0x42u8; 20];
        let k1 = prf.hmac(&e, &[&[0]]);
        let k2 = prf.hmac(&e, &[&k1]);
        let ka = expand_cipher_key(prf, &e, 24);
        assert_eq!(&ka.expose()[..20], &*k1);
        assert_eq!(&ka.expose()[20..], &k2[..4]);
        // Exactly the key length is plain truncation, not expansion.
        assert_eq!(expand_cipher_key(prf, &e, 20).expose(), e);
    }

    #[test]
    fn cipher_key_is_bound_to_its_cipher() {
        let s = Skeyid::for_pre_shared_key(HashAlgorithm::Md5, b"psk", b"ni", b"nr");
        let keys = s.derive_phase1_keys(b"g", &[0; 8], &[1; 8]);
        for cipher in Phase1Cipher::ALL {
            let ka = keys.skeyid_e.cipher_key(cipher);
            assert_eq!(ka.cipher(), cipher);
            assert_eq!(ka.expose().len(), cipher.key_len());
        }
    }

    #[test]
    fn debug_is_redacted() {
        let s = Skeyid::for_pre_shared_key(HashAlgorithm::Sha1, b"psk", b"ni", b"nr");
        let keys = s.derive_phase1_keys(b"g", &[0; 8], &[1; 8]);
        let ka = keys.skeyid_e.cipher_key(Phase1Cipher::Aes128);
        for shown in [format!("{s:?}"), format!("{keys:?}"), format!("{ka:?}")] {
            assert!(shown.contains("redacted"), "{shown}");
            assert!(!shown.contains(&hex::encode(&s.expose()[..4])), "{shown}");
        }
    }

    proptest! {
        // Once SKEYID_e is too short, a shorter Appendix-B key is always a prefix of a longer
        // one from the same SKEYID_e, and the length is exactly what was asked for.
        #[test]
        fn appendix_b_prefix_consistent(
            e in proptest::collection::vec(any::<u8>(), 1..64),
            a in 0usize..200,
            b in 0usize..200,
            alg in prop::sample::select(HashAlgorithm::ALL.to_vec()),
        ) {
            let (short, long) = (e.len() + 1 + a.min(b), e.len() + 1 + a.max(b));
            let ks = expand_cipher_key(alg, &e, short);
            let kl = expand_cipher_key(alg, &e, long);
            prop_assert_eq!(ks.len(), short);
            prop_assert_eq!(kl.len(), long);
            prop_assert_eq!(ks.expose(), &kl.expose()[..short]);
        }
    }
}
