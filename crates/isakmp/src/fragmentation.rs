//! IKEv1 fragmentation in the Cisco/Microsoft format that strongSwan also speaks (no RFC;
//! announced by the FRAGMENTATION Vendor ID, payload type 132): splitting a phase-1 message
//! and reassembling one. A message larger than [`FragmentLimits::fragment_size`] — typically
//! MM5/MM6 or AM2/AM3 carrying a certificate — is cut into pieces of the *whole* datagram,
//! ISAKMP header included; each piece travels in its own unencrypted message `HDR, FRAG` with
//! the original cookies, exchange type and message ID. The receiver concatenates the pieces in
//! order and handles the result as if it had arrived in one datagram.
//!
//! Reassembly is untrusted work before any authentication (ikev1-notes, security pitfall 2),
//! so it is bounded: the engine accepts fragments only for an IKE SA that exists (never for an
//! unknown cookie pair); one message per SA at a time (a fragment with a new ID replaces the
//! partial one), at most [`FragmentLimits::max_fragments`] pieces and
//! [`FragmentLimits::max_reassembly_bytes`] bytes, and a partial message older than
//! [`FragmentLimits::fragment_timeout`] is dropped. Duplicate pieces are ignored and pieces
//! may arrive in any order; a piece numbered beyond the last, or a second "last" piece,
//! discards the message. Wire work with no engine state, so it lives here (the engine keeps
//! one [`Reassembly`] per IKE SA and passes its limits in).

use std::collections::BTreeMap;
use std::time::Instant;

use std::time::Duration;

use crate::fragment::FRAGMENT_FLAG_LAST;
use crate::{Body, Cookie, ExchangeType, Flags, Fragment, Header, Message, Payload};

/// The bounds of fragmentation (the engine's `Limits` of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentLimits {
    /// Largest datagram sent whole, and the largest fragment datagram.
    pub fragment_size: usize,
    /// Most fragments one message may have.
    pub max_fragments: u8,
    /// Most bytes one reassembled message may have.
    pub max_reassembly_bytes: usize,
    /// A partial message is dropped after this long.
    pub fragment_timeout: Duration,
}

/// Bytes a fragment message adds around its piece: the ISAKMP header, the generic payload
/// header and the fragment header (ID, number, flags).
const FRAGMENT_OVERHEAD: usize = crate::HEADER_LEN + 4 + 4;

/// Cuts `message` (a complete phase-1 datagram) into fragment datagrams of at most
/// `limits.fragment_size` bytes each, under fragment ID `id`. `None` when the message fits,
/// is not a phase-1 message, or would need more than `limits.max_fragments` pieces.
pub fn split(message: &[u8], id: u16, limits: &FragmentLimits) -> Option<Vec<Vec<u8>>> {
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
            let header = Header { flags: Flags(0), ..header };
            let payloads = vec![Payload::Fragment(fragment)];
            Message { header, body: Body::Cleartext { payloads, padding: &[] } }.to_vec()
        })
        .collect();
    Some(fragments)
}

/// What one received fragment did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembled {
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
pub struct Reassembly {
    partial: Option<Partial>,
}

impl Reassembly {
    /// Adds `fragment`, received in a message with cookies `cookies`, at `now`.
    pub fn add(
        &mut self,
        fragment: &Fragment<'_>,
        cookies: (Cookie, Cookie),
        now: Instant,
        limits: &FragmentLimits,
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
    pub fn expire(&mut self, now: Instant) -> bool {
        let old = self.partial.as_ref().is_some_and(|p| now >= p.expires);
        if old {
            self.partial = None;
        }
        old
    }

    /// When the partial message times out, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.partial.as_ref().map(|p| p.expires)
    }

    /// The heap bytes held for the partial message: its pieces, each an allocation, and their
    /// map nodes (about 32 bytes a piece), for the half-open table's charge.
    pub fn held_bytes(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.bytes + p.pieces.len() * (16 + 32))
    }

    /// Bytes held for the partial message (the engine counts them among its buffered bytes).
    pub fn buffered(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.bytes)
    }
}

/// The fragment payload of a message, if it is a fragment message.
pub fn fragment_of<'m, 'a>(message: &'m Message<'a>) -> Option<&'m Fragment<'a>> {
    message.payloads().iter().find_map(|p| match p {
        Payload::Fragment(f) => Some(f),
        _ => None,
    })
}
