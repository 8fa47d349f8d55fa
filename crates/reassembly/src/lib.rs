//! IPv4 reassembly of inner fragments (RFC 791 §3.2), bounded, for the traffic that a
//! protocol-and-port rule protects (issue 15; docs/DESIGN.md, "Rules with protocol and
//! ports").
//!
//! A non-first fragment carries no ports. A peer that checks the ports of every inner packet
//! it opens (strongSwan's userspace ESP, Linux XFRM without netfilter's reassembly) discards
//! such fragments "due to policy", so a datagram that the inside host fragmented never
//! arrives. RFC 4301 §7 leaves two ways: reassemble before the SPD lookup (§7.3's stateful
//! check needs the same state and still sends port-less fragments into the SA) or send
//! fragments in a separate SA. The gateway reassembles: the whole datagram is classified by
//! its real ports and sealed as one ESP packet, which the kernel fragments outside, so the
//! peer opens it whole.
//!
//! The data-plane thread owns one [`Reassembler`] and offers it each fragment that such a rule
//! would carry ([`Reassembler::offer`]): the answer is [`Offer::Held`] (kept until the rest
//! comes), [`Offer::Whole`] (the datagram, header from its first fragment, no longer
//! fragmented) or [`Offer::Dropped`] with the reason. Bounds ([`Limits`]): datagrams in
//! progress (64), bytes held (1 MiB), the time a datagram may take (30 s, as Linux's
//! `ipfrag_time`), the length of a datagram (65,535, the first fragment's header included),
//! fragments per datagram (128, which bounds the work per fragment). A fragment that
//! overlaps or contradicts one already held (other bytes at the same place, a second end,
//! data past the end) drops its whole datagram and every later fragment of it until the
//! timeout, as RFC 5722 requires for IPv6: no overlap games with what the peer finally
//! sees; an exact repeat is a duplicated fragment (RFC 791) and is let go. A bad fragment
//! that would start a datagram leaves no entry behind, and a dropped datagram's entry gives
//! way to a new datagram when the table is full, so bad fragments cannot fill the table.
//! Every drop is counted ([`Counters`]).
//!
//! No clock and no I/O: the caller passes the time. Memory is allocated per datagram being
//! reassembled, within the byte bound (fragments are the slow path).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use esp_wire::mtu::checksum;

/// Bytes of IPv4 header without options.
const IPV4_HEADER_LEN: usize = 20;
/// The More Fragments flag in the flags-and-offset field.
const MORE_FRAGMENTS: u16 = 0x2000;
/// The Don't Fragment flag.
const DONT_FRAGMENT: u16 = 0x4000;
/// The fragment offset (in units of 8 bytes).
const OFFSET_MASK: u16 = 0x1fff;

/// True when `packet` is an IPv4 fragment: More Fragments set or a fragment offset.
#[inline]
pub fn is_fragment(packet: &[u8]) -> bool {
    let flags = |f: &[u8]| u16::from_be_bytes([f[0], f[1]]) & (MORE_FRAGMENTS | OFFSET_MASK) != 0;
    packet.first().is_some_and(|b| b >> 4 == 4) && packet.get(6..8).is_some_and(flags)
}

/// The bounds of a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Datagrams being reassembled at once; a fragment of another is dropped.
    pub max_datagrams: usize,
    /// Bytes held for all of them (headers and data).
    pub max_bytes: usize,
    /// How long a datagram may take from its first fragment seen to its last.
    pub timeout: Duration,
    /// The longest datagram (header included) reassembled.
    pub max_datagram_len: usize,
    /// Fragments kept per datagram: more drops it (each fragment is checked against those
    /// kept, so this bounds the work per fragment; Linux drops such queues as well).
    pub max_fragments: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_datagrams: 64,
            max_bytes: 1 << 20,
            timeout: Duration::from_secs(30),
            max_datagram_len: 65_535,
            max_fragments: 128,
        }
    }
}

/// Why a fragment was dropped (and, but for `Malformed` and `TableFull`, its datagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Dropped {
    /// Not a well-formed IPv4 fragment (lengths, or a non-last fragment whose data is not a
    /// multiple of 8 bytes or empty).
    #[error("not a well-formed IPv4 fragment")]
    Malformed,
    /// It overlaps or contradicts a fragment of its datagram (RFC 5722).
    #[error("it overlaps or repeats part of its datagram, which is dropped whole")]
    Overlap,
    /// The datagram would be longer than [`Limits::max_datagram_len`].
    #[error("its datagram would be longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// [`Limits::max_datagrams`] datagrams are in progress already.
    #[error("{max} datagrams are being reassembled already")]
    TableFull {
        /// The limit.
        max: usize,
    },
    /// Holding it would exceed [`Limits::max_bytes`]; its datagram is dropped.
    #[error("{max} bytes wait for reassembly already")]
    BytesFull {
        /// The limit.
        max: usize,
    },
    /// Its datagram has [`Limits::max_fragments`] fragments already; it is dropped.
    #[error("its datagram has {max} fragments already")]
    TooManyFragments {
        /// The limit.
        max: usize,
    },
    /// Its datagram was dropped earlier for one of the reasons above and its identification
    /// is not free yet (until the timeout).
    #[error("its datagram was dropped earlier")]
    DatagramDropped,
}

/// What [`Reassembler::offer`] did with a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer<'a> {
    /// Kept until its datagram is complete.
    Held,
    /// It completed its datagram: the whole IPv4 packet, with the first fragment's header
    /// (options included), no fragment flags and offset, and its total length and checksum.
    Whole(&'a [u8]),
    /// Dropped, for this reason.
    Dropped(Dropped),
}

/// What the reassembler saw, for the statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Fragments offered.
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Fragments dropped as malformed.
    pub malformed: u64,
    /// Datagrams dropped for an overlapping, repeated or contradicting fragment.
    pub overlap: u64,
    /// Datagrams dropped for their length.
    pub too_long: u64,
    /// Datagrams dropped for their number of fragments.
    pub too_many_fragments: u64,
    /// Fragments dropped because the table was full.
    pub table_full: u64,
    /// Datagrams dropped because the byte bound was reached.
    pub bytes_full: u64,
    /// Fragments of a datagram dropped earlier.
    pub after_drop: u64,
    /// Datagrams whose fragments did not all come in time.
    pub timed_out: u64,
}

impl Counters {
    /// Everything dropped: fragments and datagrams, by any reason.
    pub fn dropped(&self) -> u64 {
        self.malformed
            + self.overlap
            + self.too_long
            + self.too_many_fragments
            + self.table_full
            + self.bytes_full
            + self.after_drop
            + self.timed_out
    }
}

/// Which datagram a fragment belongs to (RFC 791: source, destination, protocol and
/// identification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    source: Ipv4Addr,
    destination: Ipv4Addr,
    protocol: u8,
    identification: u16,
}

/// One fragment, read from its header.
struct Fragment<'p> {
    key: Key,
    header: &'p [u8],
    data: &'p [u8],
    /// Offset of `data` in the datagram's data, in bytes.
    start: usize,
    more: bool,
}

impl<'p> Fragment<'p> {
    fn parse(packet: &'p [u8]) -> Option<Self> {
        if packet.len() < IPV4_HEADER_LEN || packet[0] >> 4 != 4 {
            return None;
        }
        let header_len = usize::from(packet[0] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
        if header_len < IPV4_HEADER_LEN || total_len < header_len || total_len > packet.len() {
            return None;
        }
        let flags = u16::from_be_bytes([packet[6], packet[7]]);
        let (start, more) = (usize::from(flags & OFFSET_MASK) * 8, flags & MORE_FRAGMENTS != 0);
        let data = &packet[header_len..total_len];
        // Every fragment but the last carries a multiple of 8 bytes (RFC 791), and none is empty.
        if (start == 0 && !more) || data.is_empty() || (more && !data.len().is_multiple_of(8)) {
            return None;
        }
        let address = |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
        let key = Key {
            source: address(12),
            destination: address(16),
            protocol: packet[9],
            identification: u16::from_be_bytes([packet[4], packet[5]]),
        };
        Some(Self { key, header: &packet[..header_len], data, start, more })
    }

    fn end(&self) -> usize {
        self.start + self.data.len()
    }
}

/// One datagram in progress.
struct Entry {
    key: Key,
    started: Instant,
    /// The first fragment's header, empty until it came.
    header: Vec<u8>,
    /// The data received, by offset (gaps zero).
    data: Vec<u8>,
    /// The ranges of `data` received, `[start, end)`, none overlapping.
    pieces: Vec<(usize, usize)>,
    /// The data's length, once the last fragment came.
    total: Option<usize>,
    /// Dropped: later fragments are dropped too, until the timeout.
    dropped: bool,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.header.len() + self.data.len()
    }

    fn complete(&self) -> Option<usize> {
        let total = self.total?;
        let received: usize = self.pieces.iter().map(|(s, e)| e - s).sum();
        (!self.header.is_empty() && received == total).then_some(total)
    }
}

/// The fragments being reassembled, within [`Limits`].
#[derive(Debug)]
pub struct Reassembler {
    limits: Limits,
    entries: Vec<Entry>,
    /// Bytes held by `entries`.
    bytes: usize,
    /// The last datagram completed (what [`Offer::Whole`] lends).
    whole: Vec<u8>,
    counters: Counters,
}

impl core::fmt::Debug for Entry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Entry").field("key", &self.key).field("bytes", &self.bytes()).finish_non_exhaustive()
    }
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Reassembler {
    /// An empty reassembler with these bounds.
    pub fn new(limits: Limits) -> Self {
        Self { limits, entries: Vec::new(), bytes: 0, whole: Vec::new(), counters: Counters::default() }
    }

    /// What it saw and dropped.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Datagrams in progress (dropped ones waiting for their timeout included).
    pub fn in_progress(&self) -> usize {
        self.entries.len()
    }

    /// Bytes held for datagrams in progress.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes one IPv4 fragment (see [`is_fragment`]) at time `now`; first forgets the
    /// datagrams older than the timeout.
    pub fn offer(&mut self, packet: &[u8], now: Instant) -> Offer<'_> {
        self.expire(now);
        self.counters.fragments += 1;
        let Some(fragment) = Fragment::parse(packet) else {
            self.counters.malformed += 1;
            return Offer::Dropped(Dropped::Malformed);
        };
        if self.entries.len() >= self.limits.max_datagrams {
            // A datagram dropped earlier only keeps its identification busy: the oldest such
            // makes room for a new one, so that bad fragments cannot fill the table.
            if let Some(oldest) =
                self.entries.iter().enumerate().filter(|(_, e)| e.dropped).min_by_key(|(_, e)| e.started)
            {
                if !self.entries.iter().any(|e| e.key == fragment.key) {
                    let index = oldest.0;
                    self.entries.swap_remove(index);
                }
            }
        }
        let index = match self.entries.iter().position(|e| e.key == fragment.key) {
            Some(index) => index,
            None if self.entries.len() >= self.limits.max_datagrams => {
                self.counters.table_full += 1;
                return Offer::Dropped(Dropped::TableFull { max: self.limits.max_datagrams });
            }
            None => {
                let (header, data, pieces) = (Vec::new(), Vec::new(), Vec::new());
                let entry = Entry {
                    key: fragment.key,
                    started: now,
                    header,
                    data,
                    pieces,
                    total: None,
                    dropped: false,
                };
                self.entries.push(entry);
                self.entries.len() - 1
            }
        };
        if self.entries[index].dropped {
            self.counters.after_drop += 1;
            return Offer::Dropped(Dropped::DatagramDropped);
        }
        if let Err(reason) = self.insert(index, &fragment) {
            let counter = match reason {
                Dropped::Overlap => &mut self.counters.overlap,
                Dropped::TooLong { .. } => &mut self.counters.too_long,
                Dropped::TooManyFragments { .. } => &mut self.counters.too_many_fragments,
                _ => &mut self.counters.bytes_full,
            };
            *counter += 1;
            if self.entries[index].pieces.is_empty() {
                // Nothing of its datagram was held: no entry is kept for it either.
                self.entries.swap_remove(index);
            } else {
                self.drop_entry(index);
            }
            return Offer::Dropped(reason);
        }
        let Some(total) = self.entries[index].complete() else { return Offer::Held };
        let entry = self.entries.swap_remove(index);
        self.bytes -= entry.bytes();
        self.counters.reassembled += 1;
        self.whole.clear();
        self.whole.extend_from_slice(&entry.header);
        self.whole.extend_from_slice(&entry.data[..total]);
        let len = self.whole.len() as u16;
        let flags = u16::from_be_bytes([self.whole[6], self.whole[7]]) & DONT_FRAGMENT;
        self.whole[2..4].copy_from_slice(&len.to_be_bytes());
        self.whole[6..8].copy_from_slice(&flags.to_be_bytes());
        self.whole[10..12].fill(0);
        let sum = checksum(&self.whole[..entry.header.len()]);
        self.whole[10..12].copy_from_slice(&sum.to_be_bytes());
        Offer::Whole(&self.whole)
    }

    /// Adds `fragment` to entry `index`, or says why its datagram must go.
    fn insert(&mut self, index: usize, fragment: &Fragment<'_>) -> Result<(), Dropped> {
        let entry = &mut self.entries[index];
        let (start, end) = (fragment.start, fragment.end());
        // An exact repeat (RFC 791 allows duplicated fragments) is let go, not an overlap.
        if entry.pieces.contains(&(start, end)) && entry.data.get(start..end) == Some(fragment.data) {
            return Ok(());
        }
        // The header is the first fragment's, which may be longer than the others': checked
        // against all the datagram spans so far when it comes.
        let header_len =
            if start == 0 || entry.header.is_empty() { fragment.header.len() } else { entry.header.len() };
        let furthest = end.max(entry.data.len()).max(entry.total.unwrap_or(0));
        let max = self.limits.max_datagram_len.min(usize::from(u16::MAX));
        if header_len + furthest > max {
            return Err(Dropped::TooLong { max });
        }
        if entry.pieces.len() >= self.limits.max_fragments {
            return Err(Dropped::TooManyFragments { max: self.limits.max_fragments });
        }
        let past_end = entry.total.is_some_and(|total| end > total || (!fragment.more && end != total));
        let beyond_last = !fragment.more && entry.pieces.iter().any(|&(_, e)| e > end);
        let overlaps = entry.pieces.iter().any(|&(s, e)| start < e && s < end);
        if past_end || beyond_last || overlaps {
            return Err(Dropped::Overlap);
        }
        let growth =
            end.saturating_sub(entry.data.len()) + if start == 0 { fragment.header.len() } else { 0 };
        if self.bytes + growth > self.limits.max_bytes {
            return Err(Dropped::BytesFull { max: self.limits.max_bytes });
        }
        if entry.data.len() < end {
            entry.data.resize(end, 0);
        }
        entry.data[start..end].copy_from_slice(fragment.data);
        entry.pieces.push((start, end));
        if start == 0 {
            entry.header.extend_from_slice(fragment.header);
        }
        if !fragment.more {
            entry.total = Some(end);
        }
        self.bytes += growth;
        Ok(())
    }

    /// Frees entry `index`'s bytes and marks it dropped until its timeout.
    fn drop_entry(&mut self, index: usize) {
        let entry = &mut self.entries[index];
        self.bytes -= entry.bytes();
        (entry.header, entry.data, entry.pieces) = (Vec::new(), Vec::new(), Vec::new());
        entry.dropped = true;
    }

    /// Forgets the datagrams that took longer than the timeout (counting those not dropped).
    fn expire(&mut self, now: Instant) {
        let timeout = self.limits.timeout;
        let mut index = 0;
        while index < self.entries.len() {
            let entry = &self.entries[index];
            if now.saturating_duration_since(entry.started) < timeout {
                index += 1;
                continue;
            }
            if !entry.dropped {
                self.counters.timed_out += 1;
            }
            self.bytes -= entry.bytes();
            self.entries.swap_remove(index);
        }
    }
}

#[cfg(test)]
mod tests;
