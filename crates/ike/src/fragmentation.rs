//! IKEv1 fragmentation in the Cisco/Microsoft format that strongSwan also speaks (no RFC;
//! announced by the FRAGMENTATION Vendor ID, payload type 132). A phase-1 message larger than
//! [`Limits::fragment_size`] — typically MM5/MM6 or AM2/AM3 carrying a certificate — is cut
//! into pieces of the *whole* datagram, ISAKMP header included; each piece travels in its own
//! unencrypted message `HDR, FRAG` with the original cookies, exchange type and message ID.
//! The receiver concatenates the pieces in order and handles the result as if it had arrived
//! in one datagram.
//!
//! Reassembly is untrusted work before any authentication (ikev1-notes, security pitfall 2),
//! so it is bounded: fragments are accepted only for an IKE SA that exists (never for an
//! unknown cookie pair), one message per SA at a time (a fragment with a new ID replaces the
//! partial one), at most [`Limits::max_fragments`] pieces and [`Limits::max_reassembly_bytes`]
//! bytes, and a partial message older than [`Limits::fragment_timeout`] is dropped. Duplicate
//! pieces are ignored and pieces may arrive in any order; a piece numbered beyond the last,
//! a second "last" piece, or a fragment inside a reassembled message discards the message.

use std::collections::BTreeMap;
use std::time::Instant;

use isakmp::fragment::FRAGMENT_FLAG_LAST;
use isakmp::{Cookie, ExchangeType, Fragment, Message, Payload};

use crate::config::Limits;
use crate::wire;

/// Bytes a fragment message adds around its piece: the ISAKMP header, the generic payload
/// header and the fragment header (ID, number, flags).
const FRAGMENT_OVERHEAD: usize = isakmp::HEADER_LEN + 4 + 4;

/// Cuts `message` (a complete phase-1 datagram) into fragment datagrams of at most
/// `limits.fragment_size` bytes each, under fragment ID `id`. `None` when the message fits,
/// is not a phase-1 message, or would need more than `limits.max_fragments` pieces.
pub(crate) fn split(message: &[u8], id: u16, limits: &Limits) -> Option<Vec<Vec<u8>>> {
    if message.len() <= limits.fragment_size {
        return None;
    }
    let parsed = Message::parse(message).ok()?;
    let header = parsed.header;
    if !matches!(header.exchange_type, ExchangeType::IdentityProtection | ExchangeType::Aggressive) {
        return None;
    }
    let piece = limits.fragment_size.checked_sub(FRAGMENT_OVERHEAD).filter(|p| *p > 0)?;
    let count = message.len().div_ceil(piece);
    if count > usize::from(limits.max_fragments) || count > usize::from(u8::MAX) {
        return None;
    }
    let fragments = message
        .chunks(piece)
        .enumerate()
        .map(|(index, data)| {
            let number = u8::try_from(index + 1).unwrap_or(u8::MAX);
            let flags = if index + 1 == count { FRAGMENT_FLAG_LAST } else { 0 };
            let fragment = Fragment { id, number, flags, data };
            wire::cleartext(
                wire::header(
                    header.initiator_cookie,
                    header.responder_cookie,
                    header.exchange_type,
                    header.message_id.0,
                ),
                vec![Payload::Fragment(fragment)],
            )
        })
        .collect();
    Some(fragments)
}

/// What one received fragment did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reassembled {
    /// Stored (or a duplicate, ignored); the message is not complete yet.
    Pending,
    /// The last missing piece: the whole datagram, to be handled as received.
    Complete(Vec<u8>),
    /// The partial message was dropped, for this reason.
    Discarded(&'static str),
}

/// The partial message of one IKE SA.
#[derive(Debug)]
struct Partial {
    id: u16,
    expires: Instant,
    pieces: BTreeMap<u8, Vec<u8>>,
    bytes: usize,
    last: Option<u8>,
    cookies: (Cookie, Cookie),
}

/// Reassembly state of one IKE SA: at most one partial message.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    partial: Option<Partial>,
}

impl Reassembly {
    /// Adds `fragment`, received in a message with cookies `cookies`, at `now`.
    pub(crate) fn add(
        &mut self,
        fragment: &Fragment<'_>,
        cookies: (Cookie, Cookie),
        now: Instant,
        limits: &Limits,
    ) -> Reassembled {
        self.expire(now);
        if fragment.number == 0 {
            return self.discard("fragment number 0");
        }
        if fragment.number > limits.max_fragments {
            return self.discard("more fragments than the limit");
        }
        let fresh = !matches!(&self.partial, Some(p) if p.id == fragment.id && p.cookies == cookies);
        if fresh {
            // One message per SA: a new fragment ID replaces whatever was being collected.
            self.partial = Some(Partial {
                id: fragment.id,
                expires: now + limits.fragment_timeout,
                pieces: BTreeMap::new(),
                bytes: 0,
                last: None,
                cookies,
            });
        }
        let Some(partial) = self.partial.as_mut() else { return Reassembled::Pending };
        if partial.pieces.contains_key(&fragment.number) {
            return Reassembled::Pending;
        }
        if partial.last.is_some_and(|last| fragment.number > last) {
            return self.discard("fragment numbered after the last one");
        }
        if fragment.is_last() {
            if partial.last.is_some() {
                return self.discard("two last fragments");
            }
            if partial.pieces.keys().next_back().is_some_and(|&n| n > fragment.number) {
                return self.discard("fragment numbered after the last one");
            }
            partial.last = Some(fragment.number);
        }
        if partial.bytes + fragment.data.len() > limits.max_reassembly_bytes {
            return self.discard("reassembled message larger than the limit");
        }
        partial.bytes += fragment.data.len();
        partial.pieces.insert(fragment.number, fragment.data.to_vec());
        if partial.last.is_some_and(|last| partial.pieces.len() == usize::from(last)) {
            let partial = self.partial.take();
            let message: Vec<u8> =
                partial.into_iter().flat_map(|p| p.pieces.into_values()).flatten().collect();
            return Reassembled::Complete(message);
        }
        Reassembled::Pending
    }

    fn discard(&mut self, why: &'static str) -> Reassembled {
        self.partial = None;
        Reassembled::Discarded(why)
    }

    /// Drops a partial message older than the limit; true when one was dropped.
    pub(crate) fn expire(&mut self, now: Instant) -> bool {
        let old = self.partial.as_ref().is_some_and(|p| now >= p.expires);
        if old {
            self.partial = None;
        }
        old
    }

    /// When the partial message times out, if there is one.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.partial.as_ref().map(|p| p.expires)
    }

    /// The heap bytes held for the partial message: its pieces, each an allocation, and their
    /// map nodes (about 32 bytes a piece), for the half-open table's charge.
    pub(crate) fn held_bytes(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.bytes + p.pieces.len() * (16 + 32))
    }

    /// Bytes held for the partial message (counted by [`crate::Engine::buffered_bytes`]).
    pub(crate) fn buffered(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.bytes)
    }
}

/// The fragment payload of a message, if it is a fragment message.
pub(crate) fn fragment_of<'m, 'a>(message: &'m Message<'a>) -> Option<&'m Fragment<'a>> {
    message.payloads().iter().find_map(|p| match p {
        Payload::Fragment(f) => Some(f),
        _ => None,
    })
}
