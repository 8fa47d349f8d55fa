//! Packets that arrived on an SPI not installed yet, kept a little for their SA.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::buffers::DATAGRAM;

/// Packets kept that arrived on an SPI we do not know yet. When we respond to a quick mode,
/// the initiator installs its SAs when it sends QM3 and at once sends the packets that waited
/// for them; those can reach this thread before QM3 has reached the engine (they come on
/// another socket), and would be lost. They are kept, at most this many and for at most
/// [`EARLY_LIFETIME`], and tried again at each wake-up until their SA is installed. Bounded,
/// so random SPIs from anyone cost a copy and nothing more.
const EARLY_PACKETS: usize = 16;
/// How long an early packet waits for its SA.
pub(super) const EARLY_LIFETIME: std::time::Duration = std::time::Duration::from_secs(2);

/// One early packet: when it came, whether it is AH (a whole IPv4 packet), the bytes given
/// to the data plane, its source and our address.
pub(super) struct Early {
    pub(super) at: Instant,
    pub(super) ah: bool,
    pub(super) packet: Vec<u8>,
    pub(super) from: Option<SocketAddr>,
    pub(super) local: IpAddr,
}

/// Keeps a packet that came on an unknown SPI, dropping the oldest beyond
/// [`EARLY_PACKETS`] and those older than [`EARLY_LIFETIME`].
pub(super) fn keep_early(
    early: &mut VecDeque<Early>,
    ah: bool,
    packet: &[u8],
    from: Option<SocketAddr>,
    local: IpAddr,
) {
    let now = Instant::now();
    // The buffer of an entry that leaves is reused, so a stream of packets on unknown SPIs
    // (anyone can send them) allocates at most [`EARLY_PACKETS`] buffers, not one a packet.
    let mut spare = None;
    while early.front().is_some_and(|e| now.duration_since(e.at) > EARLY_LIFETIME) {
        spare = early.pop_front().map(|e| e.packet);
    }
    if early.len() >= EARLY_PACKETS {
        spare = early.pop_front().map(|e| e.packet);
    }
    let mut buffer = spare.unwrap_or_else(|| Vec::with_capacity(DATAGRAM));
    buffer.clear();
    buffer.extend_from_slice(packet);
    early.push_back(Early { at: now, ah, packet: buffer, from, local });
}
