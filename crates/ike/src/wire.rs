//! Building and opening ISAKMP messages for the exchanges: cleartext messages, and messages
//! whose payload chain is padded and encrypted under an IV chain (RFC 2409 Appendix B).

use crypto::key_schedule::{IvChain, NextIv, Phase1CipherKey};
use isakmp::{
    Body, Doi, ExchangeType, Flags, Header, Message, Notification, NotifyType, Payload, PayloadType,
    ProtocolId, RawPayloads, SecurityAssociation,
};

use crate::failure::{FailureReason, MalformedFailure};

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

/// An Informational exchange in clear carrying one notification about the ISAKMP SA of
/// `cookie_i`/`cookie_r` (its SPI the two cookies, RFC 2408 §3.14): what we send before phase 1
/// is authenticated, or for cookies we do not know.
pub(crate) fn clear_notify(
    cookie_i: isakmp::Cookie,
    cookie_r: isakmp::Cookie,
    notify_type: NotifyType,
) -> Vec<u8> {
    let mut spi = [0u8; 16];
    spi[..8].copy_from_slice(&cookie_i.0);
    spi[8..].copy_from_slice(&cookie_r.0);
    let payload = Payload::Notification(Notification {
        doi: Doi::Ipsec,
        protocol: ProtocolId::Isakmp,
        spi: &spi,
        notify_type,
        data: &[],
    });
    cleartext(header(cookie_i, cookie_r, ExchangeType::Informational, 0), vec![payload])
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
    let next_iv = iv
        .decrypt(key, &mut plaintext)
        .map_err(|_| FailureReason::Malformed(MalformedFailure::Undecryptable))?;
    Ok(Decrypted { plaintext, next_iv })
}

/// Parses a decrypted chain.
pub(crate) fn parse_chain(
    first: PayloadType,
    plaintext: &[u8],
) -> Result<(Vec<Payload<'_>>, usize), FailureReason> {
    let (payloads, padding) =
        isakmp::parse_payload_chain_with_padding(first, plaintext).map_err(FailureReason::from)?;
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

/// N(INITIAL-CONTACT), protocol ISAKMP, SPI = CKY-I | CKY-R (RFC 2407 §4.6.3.3), as
/// strongSwan sends it in MM5.
pub(crate) fn initial_contact(cookies: &[u8; 16]) -> Payload<'_> {
    Payload::Notification(isakmp::Notification {
        doi: isakmp::Doi::Ipsec,
        protocol: isakmp::ProtocolId::Isakmp,
        spi: cookies,
        notify_type: isakmp::NotifyType::InitialContact,
        data: &[],
    })
}

/// The first SA payload of a chain.
pub(crate) fn find_sa<'m, 'a>(payloads: &'m [Payload<'a>]) -> Option<&'m SecurityAssociation<'a>> {
    payloads.iter().find_map(|p| match p {
        Payload::SecurityAssociation(sa) => Some(sa),
        _ => None,
    })
}

pub(crate) fn ke_and_nonce<'a>(payloads: &[Payload<'a>]) -> Result<(&'a [u8], &'a [u8]), FailureReason> {
    let ke = payloads
        .iter()
        .find_map(|p| match p {
            Payload::KeyExchange(ke) => Some(*ke),
            _ => None,
        })
        .ok_or(FailureReason::missing_payload("KE"))?;
    let nonce = payloads
        .iter()
        .find_map(|p| match p {
            Payload::Nonce(n) => Some(*n),
            _ => None,
        })
        .ok_or(FailureReason::missing_payload("NONCE"))?;
    Ok((ke, nonce))
}

/// The body of a cleartext datagram after the ISAKMP header.
pub(crate) fn body_of(datagram: &[u8]) -> &[u8] {
    datagram.get(isakmp::HEADER_LEN..).unwrap_or_default()
}

/// The body of the first payload of type `wanted` exactly as it was on the wire: HASH_I/HASH_R
/// cover the received bytes (notes pitfall 4), not a re-encoding.
pub(crate) fn raw_body(first: PayloadType, chain: &[u8], wanted: PayloadType) -> Option<&[u8]> {
    RawPayloads::new(first, chain, 0).map_while(Result::ok).find(|p| p.payload_type == wanted).map(|p| p.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decrypted_chain_with_a_nonce_outside_8_to_256_bytes_is_malformed() {
        // The quick-mode path (QM1's Ni, QM2's Nr): HASH(1), then a NONCE of `len` bytes.
        let chain = |len: usize| {
            let mut out = Vec::new();
            isakmp::emit_payload_chain(&[Payload::Hash(&[1; 32]), Payload::Nonce(&vec![2; len])], &mut out);
            out
        };
        for len in [8, 256] {
            let plaintext = chain(len);
            assert!(parse_chain(PayloadType::Hash, &plaintext).is_ok(), "len {len}");
        }
        for len in [7, 257] {
            let plaintext = chain(len);
            let Err(error) = parse_chain(PayloadType::Hash, &plaintext) else { panic!("len {len} accepted") };
            assert!(
                matches!(
                    &error,
                    FailureReason::Malformed(MalformedFailure::InvalidMessage(e))
                        if e.kind == isakmp::ParseErrorKind::LengthBounds { field: "nonce", length: len, min: 8, max: 256 }
                ),
                "{error}"
            );
            assert_eq!(error.notify(), Some(isakmp::NotifyType::PayloadMalformed));
            assert_eq!(
                error.to_string(),
                format!("malformed message: nonce of {len} bytes (allowed: 8 to 256) in NONCE payload at offset 36")
            );
        }
    }
}
