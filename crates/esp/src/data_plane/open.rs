//! The opening side of the data plane (RFC 4301 §5.2): the inbound SAs with their replay
//! windows and the inbound counters. Owned by the thread that opens (behind a lock of its
//! own, which the sealing thread never takes); SAs arrive as the inbound half of a
//! [`BuiltPair`], before its outbound half is installed on the sealing side.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crypto::key_schedule::Spi;

use super::counters::Statistics;
use super::inbound::InboundEntry;
use super::outcome::{Direction, DropReason, Event, Inbound};
use super::policy::{BuiltPair, OpenDatabase, OutboundHalf};
use crate::sa::ah::InboundAh;
use crate::sa::esp::InboundSa;
use crate::sa::{Counters, OpenError, SaError};
use crate::wire::ah::packet_spi;
use crate::wire::esp::EspPacket;
use spd::PolicyIndex;

/// The inbound SAs of one gateway.
#[derive(Default)]
pub struct OpenPlane {
    databases: OpenDatabase,
    events: VecDeque<Event>,
    statistics: Statistics,
}

impl OpenPlane {
    /// Installs the inbound half of `pair`, and hands back its outbound half for
    /// [`SealPlane::install`](crate::SealPlane::install); refused when our SPI is taken.
    pub fn install(&mut self, pair: BuiltPair) -> Result<OutboundHalf, SaError> {
        self.databases.install(pair.inbound)?;
        Ok(pair.outbound)
    }

    /// Removes the pair whose inbound SA has our SPI `spi` (after its outbound half went).
    /// Returns false if there is none.
    pub fn remove_by_inbound_spi(&mut self, spi: Spi) -> bool {
        self.databases.remove(spi)
    }

    /// The inbound side of [`DataPlane::renumber_policies`](crate::DataPlane::renumber_policies).
    pub fn renumber_policies(&mut self, renumber: impl Fn(PolicyIndex) -> Option<PolicyIndex>) {
        self.databases.renumber(&renumber);
    }

    /// The inbound counters.
    pub fn statistics(&self) -> &Statistics {
        &self.statistics
    }

    /// The next event (inbound lifetime notices), if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Installed pairs.
    pub fn len(&self) -> usize {
        self.databases.len()
    }

    /// True when no pair is installed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// RFC 4301 §5.2 for one ESP packet from the peer (the payload of an IP protocol 50
    /// packet, or of a UDP/4500 datagram after the caller stripped the UDP header): SA by
    /// SPI, open into `out` (which needs `esp.len()` bytes), then the inbound policy check.
    pub fn open<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Inbound<'o> {
        let spi = EspPacket::new_checked(packet).ok().map(|packet| packet.spi());
        self.open_on(spi, false, |entry| entry.open_esp(|esp| esp.open(packet, out)))
    }

    /// As [`OpenPlane::open`], decrypting in place in `buf`, which holds exactly the ESP
    /// packet. On a drop the buffer's contents are unspecified.
    pub fn open_in_place<'b>(&mut self, buf: &'b mut [u8]) -> Inbound<'b> {
        let spi = EspPacket::new_checked(&*buf).ok().map(|packet| packet.spi());
        self.open_on(spi, false, |entry| entry.open_esp(|esp| esp.open_in_place(buf)))
    }

    /// RFC 4301 §5.2 for one IPv4 packet of protocol 51 (AH) from the peer, header
    /// included (as a raw socket reads it): SA by AH SPI, ICV over the header with its
    /// mutable fields zeroed, then for AH+ESP the ESP packet inside, then the inbound
    /// policy check. `out` needs `packet.len()` bytes.
    pub fn open_ah<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Inbound<'o> {
        let available = out.len();
        let Some(out) = out.get_mut(..packet.len()) else {
            let needed = packet.len();
            return self.finish(Err(DropReason::Open(OpenError::BufferTooSmall { needed, available })));
        };
        out.copy_from_slice(packet);
        self.open_ah_in_place(out)
    }

    /// As [`OpenPlane::open_ah`], in place in `buf`, which holds exactly the IPv4 packet.
    pub fn open_ah_in_place<'b>(&mut self, buf: &'b mut [u8]) -> Inbound<'b> {
        self.open_on(packet_spi(buf), true, |entry| entry.open_ah(buf))
    }

    /// Opens on the pair of our SPI `spi` (our AH SPI when `ah`; `None` when the packet is
    /// too short to carry one), reports the pair's lifetime notice and counts the outcome.
    fn open_on<'o>(
        &mut self,
        spi: Option<Spi>,
        ah: bool,
        open: impl FnOnce(&mut InboundEntry) -> Result<Inbound<'o>, DropReason>,
    ) -> Inbound<'o> {
        let Some(spi) = spi else { return self.finish(Err(DropReason::Truncated)) };
        let entry = if ah { self.databases.inbound_by_ah_spi(spi) } else { self.databases.inbound_mut(spi) };
        let Some(entry) = entry else { return self.finish(Err(DropReason::UnknownSpi(spi))) };
        let result = open(entry);
        // `if let`, not `extend`: an `extend` call per packet for an event that is almost never there.
        if let Some(event) = entry.sa.lifetime_event(Direction::Inbound, entry.remote) {
            self.events.push_back(event);
        }
        self.finish(result)
    }

    /// Counts an inbound outcome.
    fn finish<'o>(&mut self, result: Result<Inbound<'o>, DropReason>) -> Inbound<'o> {
        match result {
            Ok(deliver) => {
                self.statistics.opened += 1;
                if let Inbound::Deliver { packet, .. } = &deliver {
                    self.statistics.opened_bytes += packet.len() as u64;
                }
                deliver
            }
            Err(reason) => {
                self.statistics.inbound.count(&reason);
                Inbound::Drop(reason)
            }
        }
    }

    /// The inbound ESP SA of the pair with our SPI `spi`, for `display ipsec sa`.
    pub fn inbound_sa(&self, spi: Spi) -> Option<&InboundSa> {
        self.databases.inbound(spi)?.sa.esp.as_ref()
    }

    /// The inbound AH SA of the pair with our SPI `spi` (the ESP SPI for AH+ESP, the AH SPI
    /// for AH alone).
    pub fn inbound_ah_sa(&self, spi: Spi) -> Option<&InboundAh> {
        self.databases.inbound(spi)?.sa.ah.as_deref()
    }

    /// True when an inbound AH SA has our AH SPI `spi` (alone or in an AH+ESP pair).
    pub fn knows_ah_spi(&self, spi: Spi) -> bool {
        self.databases.knows_ah_spi(spi)
    }

    /// The outer addresses (ours, the peer's) of the pair with our SPI `spi`.
    pub fn pair_addresses(&self, spi: Spi) -> Option<(SocketAddr, SocketAddr)> {
        self.databases.inbound(spi).map(|entry| (entry.local, entry.remote))
    }

    /// Traffic of the pair with our SPI `spi` (ESP, or AH alone).
    pub fn inbound_usage(&self, spi: Spi) -> Option<Counters> {
        self.databases.inbound(spi)?.sa.counters()
    }
}
