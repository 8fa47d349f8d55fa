//! The outbound glue (RFC 4301 §5.1, once the policy chose an SA): an installed pair's
//! outbound side seals a packet, ESP first and AH outside it, and says what to send.

use std::net::{IpAddr, SocketAddr};

use crypto::key_schedule::Spi;

use super::bundle::Bundle;
use super::outcome::{Direction, Event, Send};
use crate::mtu::{IPV4_HEADER_LEN, UDP_HEADER_LEN};
use crate::sa::esp::OutboundSa;
use crate::sa::{Mode, SealError, SequenceCounter};
use crate::selector::Selector;
use crate::wire::ah::PROTOCOL_AH;
use crate::wire::esp::{NEXT_HEADER_IPV4, PROTOCOL_ESP};

/// The outbound SAs of one pair.
pub(super) type OutboundBundle = Bundle<SequenceCounter>;

/// The outbound half of an installed pair, kept under its policy entry.
pub(super) struct OutboundEntry {
    pub(super) sa: OutboundBundle,
    pub(super) selector: Selector,
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

    /// The lifetime notice the last packet raised, as an event for the control plane.
    pub(super) fn lifetime_event(&mut self) -> Option<Event> {
        let notice = self.sa.take_lifetime_notice()?;
        Some(Event::Lifetime {
            direction: Direction::Outbound,
            spi: self.sa.spi(),
            remote: self.remote,
            notice,
        })
    }

    /// Seals `packet` (IP protocol `protocol`, header of `header_len` bytes) into `out`: ESP
    /// first, then AH outside it, as a [`Send`] of an ESP packet or of a whole IPv4 packet
    /// with AH.
    pub(super) fn seal<'o>(
        &mut self,
        protocol: u8,
        header_len: usize,
        packet: &[u8],
        out: &'o mut [u8],
        pending: bool,
    ) -> Result<Send<'o>, SealError> {
        let mode = self.sa.mode();
        let (next_header, payload) = match mode {
            Mode::Tunnel => (NEXT_HEADER_IPV4, packet),
            Mode::Transport => (protocol, packet.get(header_len..).unwrap_or_default()),
        };
        let (len, protocol) = match (&mut self.sa.esp, &mut self.sa.ah, self.local.ip(), self.remote.ip()) {
            (Some(esp), None, ..) => (seal_esp(esp, mode, next_header, payload, out)?, PROTOCOL_ESP),
            (esp, Some(ah), IpAddr::V4(source), IpAddr::V4(destination)) => {
                let len = match esp {
                    Some(esp) => {
                        let (headroom, available) = (ah.headroom(), out.len());
                        let inner = out
                            .get_mut(headroom..)
                            .ok_or(SealError::BufferTooSmall { needed: headroom, available })?;
                        let esp_len = seal_esp(esp, mode, next_header, payload, inner)?;
                        ah.seal_in_place(source, destination, PROTOCOL_ESP, out, esp_len)?
                    }
                    None => ah.seal(source, destination, next_header, payload, out)?.len(),
                };
                (len, PROTOCOL_AH)
            }
            _ => return Err(SealError::NotAnIpPacket),
        };
        let (spi, local, remote, udp_encapsulated) =
            (self.sa.spi(), self.local, self.remote, self.udp_encapsulated());
        Ok(Send { spi, local, remote, udp_encapsulated, protocol, datagram: &out[..len], pending })
    }
}

/// Seals `payload` with the ESP SA of a bundle in the bundle's mode into `out`, returning the
/// ESP packet's length: one place for ESP alone and for ESP under AH, so both check the mode
/// the same way (a tunnel payload must be an IP packet; a transport one keeps `next_header`).
fn seal_esp(
    esp: &mut OutboundSa,
    mode: Mode,
    next_header: u8,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, SealError> {
    Ok(match mode {
        Mode::Tunnel => esp.seal_tunnel(payload, out)?.len(),
        Mode::Transport => esp.seal_transport(next_header, payload, out)?.len(),
    })
}
