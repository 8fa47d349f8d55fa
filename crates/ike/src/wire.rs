//! Building and opening ISAKMP messages for the exchanges: cleartext messages, and messages
//! whose payload chain is padded and encrypted under an IV chain (RFC 2409 Appendix B).

use crypto::key_schedule::{IvChain, NextIv, Phase1CipherKey};
use isakmp::{Body, ExchangeType, Flags, Header, Message, Payload, PayloadType};

use crate::event::FailureReason;

/// The header of a message we send.
pub(crate) fn header(
    cookie_i: isakmp::Cookie,
    cookie_r: isakmp::Cookie,
    exchange_type: ExchangeType,
    message_id: u32,
) -> Header {
    Header {
        initiator_cookie: cookie_i,
        responder_cookie: cookie_r,
        exchange_type,
        flags: Flags(0),
        message_id: isakmp::MessageId(message_id),
    }
}

/// A cleartext message.
pub(crate) fn cleartext(header: Header, payloads: Vec<Payload<'_>>) -> Vec<u8> {
    Message { header, body: Body::Cleartext { payloads, padding: &[] } }.to_vec()
}

/// An encrypted message: `chain` is the emitted payload chain (see
/// [`isakmp::emit_payload_chain`]) whose first payload has type `first`. It is padded with
/// zero bytes to the block size (strongSwan's padding: 1 to block-size bytes, never a
/// pad-length byte) and encrypted in place under `iv`, which then moves to the last block.
pub(crate) fn encrypted<K>(
    header: Header,
    first: PayloadType,
    mut chain: Vec<u8>,
    key: &Phase1CipherKey,
    iv: &mut IvChain<K>,
) -> Vec<u8> {
    let block = key.cipher().block_len();
    let pad = block - chain.len() % block;
    chain.resize(chain.len() + pad, 0);
    // The chain is whole blocks and the key matches the chain's cipher, which are the only
    // ways this can fail.
    if iv.encrypt(key, &mut chain).is_err() {
        chain.clear();
    }
    let header = Header { flags: Flags(header.flags.0 | 0x01), ..header };
    Message { header, body: Body::Encrypted { first_payload: first, ciphertext: &chain } }.to_vec()
}

/// A decrypted payload chain with the IV the chain moves to once the message is accepted.
pub(crate) struct Decrypted {
    /// Plaintext including the padding.
    pub(crate) plaintext: Vec<u8>,
    /// The IV after this message.
    pub(crate) next_iv: NextIv,
}

/// Decrypts the body of a received encrypted message without moving `iv`.
pub(crate) fn decrypt<K>(
    ciphertext: &[u8],
    key: &Phase1CipherKey,
    iv: &IvChain<K>,
) -> Result<Decrypted, FailureReason> {
    let mut plaintext = ciphertext.to_vec();
    let next_iv = iv.decrypt(key, &mut plaintext).map_err(|_| FailureReason::Undecryptable)?;
    Ok(Decrypted { plaintext, next_iv })
}

/// Parses a decrypted chain.
pub(crate) fn parse_chain(
    first: PayloadType,
    plaintext: &[u8],
) -> Result<(Vec<Payload<'_>>, usize), FailureReason> {
    let (payloads, padding) =
        isakmp::parse_payload_chain_with_padding(first, plaintext).map_err(FailureReason::InvalidMessage)?;
    Ok((payloads, plaintext.len() - padding.len()))
}

/// The bytes after a leading HASH payload up to the end of the chain (`chain_len`): what the
/// quick-mode and informational hashes cover (RFC 2409 §5.5, §5.7).
pub(crate) fn after_hash(plaintext: &[u8], hash_len: usize, chain_len: usize) -> &[u8] {
    plaintext.get(4 + hash_len..chain_len).unwrap_or_default()
}

/// Emits `payloads` as a chain beginning with a HASH payload of `hash_len` zero bytes, and
/// returns the chain with the offset range of the hash value, to be filled once the rest of
/// the chain (which the hash covers) is known.
pub(crate) fn chain_with_hash_placeholder(
    hash_len: usize,
    rest: &[Payload<'_>],
) -> (Vec<u8>, core::ops::Range<usize>) {
    let zeros = vec![0u8; hash_len];
    let mut payloads = Vec::with_capacity(rest.len() + 1);
    payloads.push(Payload::Hash(&zeros));
    payloads.extend(rest.iter().cloned());
    let mut chain = Vec::new();
    isakmp::emit_payload_chain(&payloads, &mut chain);
    (chain, 4..4 + hash_len)
}
