//! CBC IV chains of IKEv1 message encryption (RFC 2409 Appendix B; strongSwan `iv_manager.c`,
//! racoon `oakley_newiv` / `oakley_newiv2`).
//!
//! * Phase 1: the first encrypted message uses `hash(g^xi | g^xr)` truncated to the block
//!   size; every later phase-1 message uses the last ciphertext block of the one before.
//! * Quick mode and informational exchanges: each Message ID starts its own chain at
//!   `hash(last phase-1 ciphertext block | M-ID)` truncated, then chains within the exchange.
//!   Such an exchange never moves the phase-1 chain: [`Phase1IvChain::exchange_chain`] only
//!   borrows it.
//!
//! A received message is decrypted without moving the chain; the caller advances it with the
//! returned [`NextIv`] once the message has been authenticated, so a forged or corrupt
//! message cannot desynchronise the IVs (strongSwan's `update_iv` / `confirm_iv` split).

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use std::collections::VecDeque;

use crate::hash::{HashAlgorithm, HashFunction};
use crate::phase1_cipher::{CbcCipher, CipherError, Phase1Cipher};

use super::{KeyScheduleError, MessageId, Phase1CipherKey};

/// The largest block of a phase-1 cipher (AES), hence the largest IV.
pub const MAX_BLOCK_LEN: usize = 16;

/// A CBC IV: one cipher block. IKEv1 IVs are derived from public values (KE payloads and
/// ciphertext), so they are not secret and print in hex.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Iv {
    bytes: [u8; MAX_BLOCK_LEN],
    len: usize,
}

impl Iv {
    /// The first `len` bytes of `source` (all of it if shorter, which the cipher then refuses
    /// as a wrong-length IV rather than this code panicking).
    fn truncated(source: &[u8], len: usize) -> Self {
        let len = len.min(source.len()).min(MAX_BLOCK_LEN);
        let mut bytes = [0; MAX_BLOCK_LEN];
        bytes[..len].copy_from_slice(&source[..len]);
        Self { bytes, len }
    }

    /// The IV's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Deref for Iv {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Iv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Iv(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// The IV a chain moves to after a received message: its last ciphertext block. Returned by
/// [`IvChain::decrypt`] and applied with [`IvChain::advance`] once the message is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "the chain only moves when this is passed to IvChain::advance"]
pub struct NextIv(Iv);

impl NextIv {
    /// The IV's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Marks the phase-1 (main or aggressive mode) chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase1Marker {}

/// Marks the chain of one quick-mode or informational exchange (one Message ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase2Marker {}

/// A CBC IV chain over the messages of one exchange. The marker type keeps the phase-1 chain
/// and per-Message-ID chains apart: only the phase-1 chain can start a per-exchange chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvChain<K> {
    cipher: Phase1Cipher,
    iv: Iv,
    kind: PhantomData<K>,
}

/// The phase-1 chain, starting at `hash(g^xi | g^xr)`.
pub type Phase1IvChain = IvChain<Phase1Marker>;

/// The chain of one quick-mode or informational exchange, starting at
/// `hash(last phase-1 block | M-ID)`.
pub type ExchangeIvChain = IvChain<Phase2Marker>;

impl<K> IvChain<K> {
    fn with_iv(cipher: Phase1Cipher, iv: Iv) -> Self {
        Self { cipher, iv, kind: PhantomData }
    }

    /// The cipher whose block size this chain uses.
    pub fn cipher(&self) -> Phase1Cipher {
        self.cipher
    }

    /// The IV the next message (sent or received) is encrypted under.
    pub fn iv(&self) -> &Iv {
        &self.iv
    }

    /// Encrypts `body` (the padded payload chain, after the 28-byte ISAKMP header) in place
    /// and moves the chain to its last ciphertext block: once we send a message, the next one
    /// in either direction chains on it.
    pub fn encrypt(&mut self, key: &Phase1CipherKey, body: &mut [u8]) -> Result<(), KeyScheduleError> {
        self.check(key, body)?;
        self.cipher.encrypt(key.expose(), &self.iv, body)?;
        self.iv = self.last_block(body)?;
        Ok(())
    }

    /// Decrypts a received `body` in place, without moving the chain. Call
    /// [`advance`](Self::advance) with the result once the message is authenticated (its HASH
    /// checked); a message that fails is dropped and the chain stays where it was.
    pub fn decrypt(&self, key: &Phase1CipherKey, body: &mut [u8]) -> Result<NextIv, KeyScheduleError> {
        self.check(key, body)?;
        // The next IV is the last *ciphertext* block, so it is taken before decryption.
        let next = self.last_block(body)?;
        self.cipher.decrypt(key.expose(), &self.iv, body)?;
        Ok(NextIv(next))
    }

    /// Moves the chain past a received message that has been accepted.
    pub fn advance(&mut self, next: NextIv) {
        self.iv = next.0;
    }

    fn check(&self, key: &Phase1CipherKey, body: &[u8]) -> Result<(), KeyScheduleError> {
        if key.cipher() != self.cipher {
            return Err(KeyScheduleError::CipherMismatch { chain: self.cipher, key: key.cipher() });
        }
        if body.is_empty() {
            return Err(KeyScheduleError::EmptyBody);
        }
        let block = self.cipher.block_len();
        if !body.len().is_multiple_of(block) {
            return Err(CipherError::NotBlockAligned { cipher: self.cipher, len: body.len(), block }.into());
        }
        Ok(())
    }

    /// The last block of `body`, which the cipher has checked to be whole blocks.
    fn last_block(&self, body: &[u8]) -> Result<Iv, KeyScheduleError> {
        let block = self.cipher.block_len();
        body.len()
            .checked_sub(block)
            .and_then(|start| body.get(start..))
            .map(|last| Iv::truncated(last, block))
            .ok_or(KeyScheduleError::EmptyBody)
    }
}

impl IvChain<Phase1Marker> {
    /// The phase-1 chain: its first IV is `hash(g^xi | g^xr)` truncated to the cipher's block
    /// size, with the KE payload bodies in initiator, responder order. `hash` is the
    /// negotiated hash algorithm (not its HMAC).
    pub fn new(hash: HashAlgorithm, cipher: Phase1Cipher, g_xi: &[u8], g_xr: &[u8]) -> Self {
        Self::with_iv(cipher, Iv::truncated(&hash.digest(&[g_xi, g_xr]), cipher.block_len()))
    }

    /// Starts the chain of the quick-mode or informational exchange `message_id`:
    /// `hash(last phase-1 ciphertext block | M-ID)` truncated to the block size. Call it once
    /// phase 1 is over (the current IV is then the last block of MM6 / AM3; if no phase-1
    /// message was encrypted it is still the initial IV, which is what racoon uses then). It
    /// borrows the phase-1 chain immutably, so no later exchange can move it.
    pub fn exchange_chain(&self, hash: HashAlgorithm, message_id: MessageId) -> ExchangeIvChain {
        let iv = hash.digest(&[&self.iv, &message_id.to_bytes()]);
        IvChain::with_iv(self.cipher, Iv::truncated(&iv, self.cipher.block_len()))
    }
}

/// The IV chains of the exchanges in progress on one IKE SA, most recently used first, with
/// a small fixed capacity: a peer opening many quick modes at once cannot make us keep state
/// for all of them (strongSwan keeps 3, `max_ikev1_exchanges`).
///
/// Quick modes live here across their three messages. An informational exchange is a single
/// message; take a throw-away chain from [`Phase1IvChain::exchange_chain`] for it instead.
#[derive(Debug, Clone)]
pub struct ExchangeIvTable {
    capacity: usize,
    entries: VecDeque<(MessageId, ExchangeIvChain)>,
}

impl ExchangeIvTable {
    /// strongSwan's default number of concurrent exchanges per IKE SA.
    pub const DEFAULT_CAPACITY: usize = 3;

    /// An empty table holding at most `capacity` chains (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self { capacity, entries: VecDeque::with_capacity(capacity) }
    }

    /// The chain of `message_id`, started from `phase1` if the table does not hold it yet. It
    /// becomes the most recently used entry; the least recently used is forgotten when full.
    pub fn get_or_insert(
        &mut self,
        phase1: &Phase1IvChain,
        hash: HashAlgorithm,
        message_id: MessageId,
    ) -> &mut ExchangeIvChain {
        let entry = self
            .position(message_id)
            .and_then(|i| self.entries.remove(i))
            .unwrap_or_else(|| (message_id, phase1.exchange_chain(hash, message_id)));
        self.entries.push_front(entry);
        self.entries.truncate(self.capacity);
        &mut self.entries[0].1
    }

    /// The chain of `message_id` if the table holds it, made the most recently used.
    pub fn get_mut(&mut self, message_id: MessageId) -> Option<&mut ExchangeIvChain> {
        let entry = self.entries.remove(self.position(message_id)?)?;
        self.entries.push_front(entry);
        self.entries.front_mut().map(|(_, chain)| chain)
    }

    /// Forgets the chain of a finished or abandoned exchange.
    pub fn remove(&mut self, message_id: MessageId) -> Option<ExchangeIvChain> {
        self.entries.remove(self.position(message_id)?).map(|(_, chain)| chain)
    }

    /// Number of chains held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no exchange is in progress.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, message_id: MessageId) -> Option<usize> {
        self.entries.iter().position(|(id, _)| *id == message_id)
    }
}

impl Default for ExchangeIvTable {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_schedule::Skeyid;
    use proptest::prelude::*;

    fn ka(cipher: Phase1Cipher) -> Phase1CipherKey {
        let s = Skeyid::for_pre_shared_key(HashAlgorithm::Sha256, b"psk", b"ni", b"nr");
        s.derive_phase1_keys(b"g^xy", &[1; 8], &[2; 8]).skeyid_e.cipher_key(cipher)
    }

    #[test]
    fn initial_iv_is_truncated_hash_of_ke_values() {
        // SHA-1("abc") = a9993e36 4706816a ba3e2571 ...; a 3DES block is its first 8 bytes.
        let chain = Phase1IvChain::new(HashAlgorithm::Sha1, Phase1Cipher::TripleDes, b"a", b"bc");
        assert_eq!(chain.iv().as_bytes(), hex::decode("a9993e364706816a").unwrap());
        let chain = Phase1IvChain::new(HashAlgorithm::Md5, Phase1Cipher::Aes128, b"ab", b"c");
        assert_eq!(format!("{:?}", chain.iv()), "Iv(900150983cd24fb0d6963f7d28e17f72)");
    }

    #[test]
    fn exchange_iv_hashes_last_block_and_message_id() {
        let p1 = Phase1IvChain::new(HashAlgorithm::Sha256, Phase1Cipher::Aes128, b"x", b"y");
        let qm = p1.exchange_chain(HashAlgorithm::Sha256, MessageId(0x01020304));
        let want = HashAlgorithm::Sha256.digest(&[p1.iv(), &[1, 2, 3, 4]]);
        assert_eq!(qm.iv().as_bytes(), &want[..16]);
        assert_ne!(p1.exchange_chain(HashAlgorithm::Sha256, MessageId(5)).iv(), qm.iv());
    }

    #[test]
    fn encrypt_advances_and_decrypt_waits_for_advance() {
        let key = ka(Phase1Cipher::Aes128);
        let mut sender = Phase1IvChain::new(HashAlgorithm::Sha256, Phase1Cipher::Aes128, b"x", b"y");
        let mut receiver = sender.clone();
        let mut body = [0x5au8; 48];
        sender.encrypt(&key, &mut body).unwrap();
        assert_eq!(sender.iv().as_bytes(), &body[32..]);

        let next = receiver.decrypt(&key, &mut body).unwrap();
        assert_eq!(body, [0x5a; 48]);
        assert_ne!(receiver.iv(), sender.iv(), "decrypt alone must not move the chain");
        receiver.advance(next);
        assert_eq!(receiver.iv(), sender.iv());
    }

    #[test]
    fn exchange_chain_never_moves_phase1() {
        let key = ka(Phase1Cipher::TripleDes);
        let p1 = Phase1IvChain::new(HashAlgorithm::Sha1, Phase1Cipher::TripleDes, b"x", b"y");
        let before = p1.clone();
        let mut info = p1.exchange_chain(HashAlgorithm::Sha1, MessageId(9));
        let mut body = [1u8; 16];
        info.encrypt(&key, &mut body).unwrap();
        assert_eq!(p1, before);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let mut chain = Phase1IvChain::new(HashAlgorithm::Sha1, Phase1Cipher::Aes128, b"x", b"y");
        let key = ka(Phase1Cipher::Aes128);
        assert_eq!(chain.encrypt(&key, &mut []), Err(KeyScheduleError::EmptyBody));
        assert!(matches!(chain.decrypt(&key, &mut [0; 15]), Err(KeyScheduleError::Cipher(_))));
        let other = ka(Phase1Cipher::Aes256);
        assert_eq!(
            chain.encrypt(&other, &mut [0; 16]),
            Err(KeyScheduleError::CipherMismatch { chain: Phase1Cipher::Aes128, key: Phase1Cipher::Aes256 })
        );
        // A failed operation leaves the chain where it was.
        assert_eq!(chain, Phase1IvChain::new(HashAlgorithm::Sha1, Phase1Cipher::Aes128, b"x", b"y"));
    }

    #[test]
    fn table_is_bounded_most_recently_used() {
        let p1 = Phase1IvChain::new(HashAlgorithm::Sha256, Phase1Cipher::Aes128, b"x", b"y");
        let key = ka(Phase1Cipher::Aes128);
        let mut table = ExchangeIvTable::default();
        assert!(table.is_empty());
        let mut body = [0u8; 16];
        table.get_or_insert(&p1, HashAlgorithm::Sha256, MessageId(1)).encrypt(&key, &mut body).unwrap();
        let moved = *table.get_mut(MessageId(1)).unwrap().iv();
        assert_eq!(moved.as_bytes(), &body);
        table.get_or_insert(&p1, HashAlgorithm::Sha256, MessageId(2));
        table.get_or_insert(&p1, HashAlgorithm::Sha256, MessageId(3));
        // Touch 1 so that 2 is the least recently used, then overflow.
        assert_eq!(*table.get_or_insert(&p1, HashAlgorithm::Sha256, MessageId(1)).iv(), moved);
        table.get_or_insert(&p1, HashAlgorithm::Sha256, MessageId(4));
        assert_eq!(table.len(), 3);
        assert!(table.get_mut(MessageId(2)).is_none());
        assert!(table.get_mut(MessageId(1)).is_some());
        assert!(table.remove(MessageId(3)).is_some());
        assert_eq!(table.len(), 2);
        assert_eq!(ExchangeIvTable::new(0).capacity, 1);
    }

    proptest! {
        // Whatever the messages, two peers that start from the same IV and each process the
        // other's messages in order stay in step and recover every plaintext.
        #[test]
        fn chain_round_trip(
            cipher in prop::sample::select(Phase1Cipher::ALL.to_vec()),
            messages in proptest::collection::vec(
                (any::<bool>(), 1usize..6, any::<u8>()), 1..6),
        ) {
            let key = ka(cipher);
            prop_assume!(!cipher.is_weak_key(key.expose()));
            let mut a = Phase1IvChain::new(HashAlgorithm::Sha1, cipher, b"gxi", b"gxr");
            let mut b = a.clone();
            for (a_sends, blocks, fill) in messages {
                let (sender, receiver) = if a_sends { (&mut a, &mut b) } else { (&mut b, &mut a) };
                let plain = vec![fill; blocks * cipher.block_len()];
                let mut body = plain.clone();
                sender.encrypt(&key, &mut body).unwrap();
                let next = receiver.decrypt(&key, &mut body).unwrap();
                prop_assert_eq!(&body, &plain);
                receiver.advance(next);
                prop_assert_eq!(a.iv(), b.iv());
            }
        }
    }
}
