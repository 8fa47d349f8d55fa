//! The outbound glue (RFC 4301 §5.1, once the policy chose an SA): an installed pair's
//! outbound side seals a packet, ESP first and AH outside it, and says what to send.

use std::net::{IpAddr, SocketAddr};

use crypto::key_schedule::Spi;

use super::bundle::Bundle;
use super::outcome::Send;
use crate::mtu::{IPV4_HEADER_LEN, UDP_HEADER_LEN};
use crate::sa::esp::OutboundSa;
use crate::sa::{Mode, SealError, SequenceCounter};
use crate::wire::ah::PROTOCOL_AH;
use crate::wire::esp::{NEXT_HEADER_IPV4, PROTOCOL_ESP};

/// The outbound SAs of one pair.
pub(super) type OutboundBundle = Bundle<SequenceCounter>;

/// The outbound half of an installed pair, kept under its policy entry.
pub(super) struct OutboundEntry {
    pub(super) sa: OutboundBundle,
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
    /// The key of the pair's inbound half.
    pub(super) inbound_spi: Spi,
    /// Installation order: the newest usable pair carries new flows (make-before-break), and
    /// a fragment stays on the pair chosen for its whole packet.
    pub(super) serial: u64,
}

impl OutboundEntry {
    /// The longest inner packet a tunnel-mode pair carries without exceeding `path_mtu` once
    /// the outer IPv4 (and UDP) header is added; `None` in transport mode, whose packets
    /// are the caller's to size.
    #[inline]
    pub(super) fn max_inner(&self, path_mtu: u16) -> Option<usize> {
        if self.sa.mode() != Mode::Tunnel {
            return None;
        }
        let outer = IPV4_HEADER_LEN + if self.udp_encapsulated() { UDP_HEADER_LEN } else { 0 };
        let space = usize::from(path_mtu).saturating_sub(outer);
        let space = space.saturating_sub(self.sa.ah.as_ref().map_or(0, |ah| ah.params().header_len()));
        Some(match &self.sa.esp {
            Some(esp) => esp.max_payload_len(space),
            None => space,
        })
    }

    #[inline]
    fn udp_encapsulated(&self) -> bool {
        self.sa.esp.as_ref().is_some_and(|esp| esp.params().udp_encapsulated)
    }

    /// The sequence number of the pair's last packet (ESP's, else AH's), for usage reports.
    pub(super) fn last_sequence(&self) -> Option<u32> {
        match (&self.sa.esp, &self.sa.ah) {
            (Some(esp), _) => Some(esp.last_sequence()),
            (None, Some(ah)) => Some(ah.last_sequence()),
            (None, None) => None,
        }
    }

    /// Seals `packet` (IP protocol `protocol`, header of `header_len` bytes) into `out` after
    /// one copy: ESP first, in place, then AH outside it (RFC 4301 §4.5), as a [`Send`] of an
    /// ESP packet or of a whole IPv4 packet with AH.
    pub(super) fn seal<'o>(
        &mut self,
        protocol: u8,
        header_len: usize,
        packet: &[u8],
        out: &'o mut [u8],
        pending: bool,
    ) -> Result<Send<'o>, SealError> {
        let (next_header, payload) = match self.sa.mode() {
            Mode::Tunnel => (NEXT_HEADER_IPV4, packet),
            Mode::Transport => (protocol, packet.get(header_len..).unwrap_or_default()),
        };
        let ah = match (&mut self.sa.ah, self.local.ip(), self.remote.ip()) {
            (Some(ah), IpAddr::V4(source), IpAddr::V4(destination)) => Some((ah, source, destination)),
            (None, ..) if self.sa.esp.is_some() => None,
            _ => return Err(SealError::NotAnIpPacket),
        };
        let ah_room = ah.as_ref().map_or(0, |(ah, ..)| ah.headroom());
        let start = ah_room + self.sa.esp.as_ref().map_or(0, OutboundSa::headroom);
        let (needed, available) = (start + payload.len(), out.len());
        out.get_mut(start..needed)
            .ok_or(SealError::BufferTooSmall { needed, available })?
            .copy_from_slice(payload);
        let mut len = payload.len();
        if let Some(esp) = &mut self.sa.esp {
            len = esp.seal_in_place(&mut out[ah_room..], len, next_header)?;
        }
        let protocol = match ah {
            Some((ah, source, destination)) => {
                let next_header = if self.sa.esp.is_some() { PROTOCOL_ESP } else { next_header };
                len = ah.seal_in_place(source, destination, next_header, out, len)?;
                PROTOCOL_AH
            }
            None => PROTOCOL_ESP,
        };
        let (spi, local, remote, udp_encapsulated) =
            (self.sa.spi(), self.local, self.remote, self.udp_encapsulated());
        Ok(Send { spi, local, remote, udp_encapsulated, protocol, datagram: &out[..len], pending })
    }
}
