//! The data plane's implementation limits and the room AH needs in front of a packet.

use crate::wire::ah as ah_wire;

/// Implementation limits of the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataPlaneConfig {
    /// Packets kept per acquire queue while an SA is negotiated.
    pub queue_len: usize,
    /// Spare packet buffers kept for reuse by the queues.
    pub spare_buffers: usize,
    /// MTU of the path to the peers: no outer packet (IPv4 header, UDP header when
    /// encapsulated, ESP) leaves bigger than this.
    pub path_mtu: u16,
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        Self { queue_len: 8, spare_buffers: 64, path_mtu: 1500 }
    }
}

/// Longest addition AH makes before a payload: the outer IPv4 header and the longest AH
/// header. [`SealPlane::seal`](crate::SealPlane::seal)'s output buffer needs this much more for AH pairs.
pub const MAX_AH_HEADROOM: usize = ah_wire::OUTER_HEADER_LEN + ah_wire::MAX_AH_LEN;
