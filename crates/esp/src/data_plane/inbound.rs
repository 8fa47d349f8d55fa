//! The inbound glue (RFC 4301 §5.2, once the SPI named a pair): an installed pair's inbound
//! side opens a packet with every protection it was negotiated with, and the inner packet
//! must then lie inside the pair's selector before it is delivered.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::bundle::Bundle;
use super::outcome::{DropReason, Inbound};
use crate::replay::ReplayWindow;
use crate::sa::esp::{InboundSa, Opened};
use crate::sa::{Mode, OpenError};
use crate::wire::esp::PROTOCOL_ESP;
use spd::PolicyIndex;
use spd::{Flow, Selector, PROTOCOL_SCTP, PROTOCOL_TCP, PROTOCOL_UDP};

/// The inbound SAs of one pair.
pub(super) type InboundBundle = Bundle<ReplayWindow>;

/// Why a bare ESP packet on an AH or AH+ESP pair is dropped: RFC 4301 §5.2 step 4, the
/// packet must arrive with every protection the SA bundle was negotiated with.
const ESP_WITHOUT_AH: &str = "ESP without the AH the SA bundle requires";

/// The inbound half of an installed pair, kept under our SPI.
pub(super) struct InboundEntry {
    pub(super) sa: InboundBundle,
    pub(super) policy: PolicyIndex,
    pub(super) selector: Selector,
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
}

impl InboundEntry {
    /// An ESP packet alone, opened by `open` (copying or in place) on the pair's ESP SA.
    pub(super) fn open_esp<'o>(
        &mut self,
        open: impl FnOnce(&mut InboundSa) -> Result<Opened<'o>, OpenError>,
    ) -> Result<Inbound<'o>, DropReason> {
        let spi = self.sa.spi();
        let opened = match (&mut self.sa.esp, &self.sa.ah) {
            (Some(esp), None) => open(esp).map_err(DropReason::Open)?,
            _ => return Err(DropReason::ProtectionMismatch { spi, why: ESP_WITHOUT_AH }),
        };
        self.deliver(opened)
    }

    /// An IPv4 packet with AH, in place: AH, the peer's address, and the ESP inside for
    /// AH+ESP.
    pub(super) fn open_ah<'b>(&mut self, buf: &'b mut [u8]) -> Result<Inbound<'b>, DropReason> {
        let spi = self.sa.spi();
        let mismatch = |why| DropReason::ProtectionMismatch { spi, why };
        let InboundBundle { esp, ah } = &mut self.sa;
        let ah = ah.as_mut().ok_or(mismatch("no AH SA"))?;
        let opened = ah.open_in_place(buf).map_err(DropReason::Open)?;
        if IpAddr::V4(opened.source) != self.remote.ip() || IpAddr::V4(opened.destination) != self.local.ip()
        {
            return Err(mismatch("AH between other addresses than the SA's"));
        }
        let opened = match (esp, opened.next_header) {
            (Some(esp), PROTOCOL_ESP) => {
                let offset = opened.offset;
                let inner = esp.open_in_place(opened.payload).map_err(DropReason::Open)?;
                Opened { offset: offset + inner.offset, ..inner }
            }
            (Some(_), _) => return Err(mismatch("AH without the ESP of the AH+ESP bundle")),
            (None, PROTOCOL_ESP) => return Err(mismatch("ESP inside an AH-only SA")),
            (None, next_header) => Opened {
                payload: opened.payload,
                offset: opened.offset,
                next_header,
                sequence: opened.sequence,
            },
        };
        self.deliver(opened)
    }

    /// Delivers an opened packet if the pair's selector allows it (RFC 4301 §5.2 step 4).
    fn deliver<'o>(&self, opened: Opened<'o>) -> Result<Inbound<'o>, DropReason> {
        let (spi, mode, next_header) = (self.sa.spi(), self.sa.mode(), opened.next_header);
        if !self.policy_allows(mode, next_header, opened.payload) {
            return Err(DropReason::PolicyMismatch { spi });
        }
        Ok(Inbound::Deliver { spi, policy: self.policy, mode, next_header, packet: opened.payload })
    }

    /// RFC 4301 §5.2 step 4: the decrypted packet must lie inside the SA's selector. In tunnel
    /// mode the inner IPv4 header is checked (IPv6 never matches an IPv4 selector); in
    /// transport mode the addresses are the SA's endpoints and the protocol is the next header.
    fn policy_allows(&self, mode: Mode, next_header: u8, payload: &[u8]) -> bool {
        let flow = match mode {
            // A non-first fragment carries no ports (RFC 4301 §7.1): the selector checks it on
            // addresses and protocol (`spd::selector`); its host drops it unless a first
            // fragment passed the port check.
            Mode::Tunnel => match Flow::parse_ipv4(payload) {
                Ok((flow, ..)) => flow,
                Err(_) => return false,
            },
            Mode::Transport => {
                let (IpAddr::V4(source), IpAddr::V4(destination)) = (self.remote.ip(), self.local.ip())
                else {
                    return false;
                };
                transport_flow(next_header, source, destination, payload)
            }
        };
        self.selector.matches_inbound(&flow)
    }
}

fn transport_flow(protocol: u8, source: Ipv4Addr, destination: Ipv4Addr, payload: &[u8]) -> Flow {
    let ports = match (protocol, payload) {
        (PROTOCOL_TCP | PROTOCOL_UDP | PROTOCOL_SCTP, [a, b, c, d, ..]) => {
            Some((u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d])))
        }
        _ => None,
    };
    Flow {
        protocol,
        source,
        destination,
        source_port: ports.map(|p| p.0),
        destination_port: ports.map(|p| p.1),
    }
}
