//! The SAs of one installed pair in one direction: ESP, AH, or AH outside ESP (RFC 4301
//! §4.5). Generic over the direction so that both directions answer alike which SA names the
//! pair (ESP's when there is one), which mode it is in and what it has carried.

use std::net::SocketAddr;

use crypto::key_schedule::Spi;

use super::outcome::{Direction, Event};
use crate::sa::ah::Ah;
use crate::sa::esp::Esp;
use crate::sa::{Counters, Mode, Sa};

/// `S` is the direction, as in [`Sa`]; at least one of the two SAs is present. AH, rare,
/// is boxed: an ESP pair's table entries do not carry its room (issue 16: memory per SA).
pub(super) struct Bundle<S> {
    pub(super) esp: Option<Sa<S, Esp>>,
    pub(super) ah: Option<Box<Sa<S, Ah>>>,
}

impl<S> Bundle<S> {
    /// The SPI the pair is known by: the ESP SA's, else the AH SA's.
    pub(super) fn spi(&self) -> Spi {
        match (&self.esp, &self.ah) {
            (Some(esp), _) => esp.spi(),
            (None, Some(ah)) => ah.spi(),
            (None, None) => Spi(0),
        }
    }

    /// The bundle's mode; both SAs of an AH+ESP bundle are built in the same one.
    pub(super) fn mode(&self) -> Mode {
        match (&self.esp, &self.ah) {
            (Some(esp), _) => esp.params().mode,
            (None, Some(ah)) => ah.params().mode,
            (None, None) => Mode::Tunnel,
        }
    }

    /// The traffic the pair has carried: the ESP SA's counters, else the AH SA's (AH+ESP
    /// counts each packet in both).
    pub(super) fn counters(&self) -> Option<Counters> {
        match (&self.esp, &self.ah) {
            (Some(esp), _) => Some(esp.counters()),
            (None, Some(ah)) => Some(ah.counters()),
            (None, None) => None,
        }
    }

    /// True once either SA has crossed a hard limit: the pair carries no more traffic.
    pub(super) fn is_expired(&self) -> bool {
        self.esp.as_ref().is_some_and(Sa::is_expired) || self.ah.as_deref().is_some_and(Sa::is_expired)
    }

    /// The first pending lifetime notice, ESP's before AH's, as an event for the control
    /// plane; both are taken, so a notice of the other SA is not left to be reported later for
    /// the same pair.
    #[inline]
    pub(super) fn lifetime_event(&mut self, direction: Direction, remote: SocketAddr) -> Option<Event> {
        let esp = self.esp.as_mut().and_then(Sa::take_lifetime_notice);
        let ah = self.ah.as_deref_mut().and_then(Sa::take_lifetime_notice);
        Some(Event::Lifetime { direction, spi: self.spi(), remote, notice: esp.or(ah)? })
    }
}
