//! Traffic selectors (RFC 4301 §4.4.1.1) and the flow of an IPv4 packet they are matched
//! against (RFC 791 header, RFC 793 / RFC 768 ports).
//!
//! A [`Selector`] is written from this gateway's side, as the ACL rules and the IKE proxy
//! identities are: `local` is the source of outbound traffic (the ACL rule's `source`),
//! `remote` its destination. An inbound packet matches with the roles swapped.
//!
//! Ports are optional. A selector without ports matches every packet of its protocol,
//! including ICMP and non-first fragments, which carry no ports; a selector with a port range
//! matches packets that carry ports in it ("OPAQUE" never matches a range, §4.4.1.1), and a
//! TCP, UDP or SCTP packet whose ports are not there to read — a non-first fragment
//! (RFC 4301 §7) — by its addresses and protocol alone: such a fragment may belong to the
//! port-specific flow, so it goes into that flow's SA rather than out in clear, and the
//! receiving side checks it the same way (its host reassembles it only with a first fragment
//! that passed the port check).

use core::fmt;
use std::net::Ipv4Addr;

/// IP protocol number of TCP.
pub const PROTOCOL_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTOCOL_UDP: u8 = 17;
/// IP protocol number of SCTP (ports at the same offsets as TCP and UDP).
pub const PROTOCOL_SCTP: u8 = 132;

/// An IPv4 prefix with host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    address: Ipv4Addr,
    length: u8,
}

impl Prefix {
    /// Every address.
    pub const ANY: Prefix = Prefix { address: Ipv4Addr::UNSPECIFIED, length: 0 };

    /// The prefix `address/length`; host bits are cleared and lengths above 32 mean 32.
    pub fn new(address: Ipv4Addr, length: u8) -> Self {
        let length = length.min(32);
        Self { address: Ipv4Addr::from(u32::from(address) & mask(length)), length }
    }

    /// A single host.
    pub fn host(address: Ipv4Addr) -> Self {
        Self { address, length: 32 }
    }

    /// From an address and a dotted netmask, as ACL rules and the IKE engine write them;
    /// a non-contiguous mask is rounded down to its leading ones.
    pub fn from_mask(address: Ipv4Addr, netmask: Ipv4Addr) -> Self {
        Self::new(address, u32::from(netmask).leading_ones() as u8)
    }

    /// The network address.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The prefix length.
    pub fn length(&self) -> u8 {
        self.length
    }

    /// True when `address` lies inside.
    #[inline]
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & mask(self.length) == u32::from(self.address)
    }

    /// True when all of `other` lies inside.
    pub fn covers(&self, other: &Prefix) -> bool {
        other.length >= self.length && self.contains(other.address)
    }
}

#[inline]
fn mask(length: u8) -> u32 {
    match length {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n.min(32))),
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.length)
    }
}

/// An inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (inclusive).
    pub last: u16,
}

impl PortRange {
    /// One port.
    pub const fn single(port: u16) -> Self {
        Self { first: port, last: port }
    }

    /// True when `port` is in the range.
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// What a policy rule or an SA covers, from our side's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Selector {
    /// IP protocol, `None` for any.
    pub protocol: Option<u8>,
    /// Our side: source of outbound packets, destination of inbound ones.
    pub local: Prefix,
    /// The peer's side: destination of outbound packets, source of inbound ones.
    pub remote: Prefix,
    /// Ports on our side, `None` for any (including packets without ports).
    pub local_ports: Option<PortRange>,
    /// Ports on the peer's side, `None` for any.
    pub remote_ports: Option<PortRange>,
}

impl Selector {
    /// Everything between two prefixes, any protocol and port: the usual site-to-site flow.
    pub fn between(local: Prefix, remote: Prefix) -> Self {
        Self { protocol: None, local, remote, local_ports: None, remote_ports: None }
    }

    /// Exactly one flow, host to host with its protocol and ports: what an SA negotiated
    /// for a single packet covers.
    pub fn for_flow(flow: &Flow) -> Self {
        Self {
            protocol: Some(flow.protocol),
            local: Prefix::host(flow.source),
            remote: Prefix::host(flow.destination),
            local_ports: flow.source_port.map(PortRange::single),
            remote_ports: flow.destination_port.map(PortRange::single),
        }
    }

    /// True when an outbound packet's flow is covered.
    #[inline]
    pub fn matches_outbound(&self, flow: &Flow) -> bool {
        self.matches(flow.source, flow.destination, flow.protocol, flow.source_port, flow.destination_port)
    }

    /// True when a decrypted inbound packet's flow is covered (RFC 4301 §5.2 step 4).
    #[inline]
    pub fn matches_inbound(&self, flow: &Flow) -> bool {
        self.matches(flow.destination, flow.source, flow.protocol, flow.destination_port, flow.source_port)
    }

    #[inline]
    fn matches(
        &self,
        local: Ipv4Addr,
        remote: Ipv4Addr,
        protocol: u8,
        local_port: Option<u16>,
        remote_port: Option<u16>,
    ) -> bool {
        // A TCP, UDP or SCTP packet without ports is a non-first fragment (module comment).
        let fragment = matches!(protocol, PROTOCOL_TCP | PROTOCOL_UDP | PROTOCOL_SCTP);
        let port_ok = |range: Option<PortRange>, port: Option<u16>| match (range, port) {
            (None, _) => true,
            (Some(range), Some(port)) => range.contains(port),
            (Some(_), None) => fragment,
        };
        self.protocol.is_none_or(|p| p == protocol)
            && self.local.contains(local)
            && self.remote.contains(remote)
            && port_ok(self.local_ports, local_port)
            && port_ok(self.remote_ports, remote_port)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.local)?;
        if let Some(p) = self.local_ports {
            write!(f, ":{}-{}", p.first, p.last)?;
        }
        write!(f, " -> {}", self.remote)?;
        if let Some(p) = self.remote_ports {
            write!(f, ":{}-{}", p.first, p.last)?;
        }
        match self.protocol {
            Some(p) => write!(f, " proto {p}"),
            None => f.write_str(" proto any"),
        }
    }
}

/// The fields of one IPv4 packet that policies look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// IP protocol.
    pub protocol: u8,
    /// Source address.
    pub source: Ipv4Addr,
    /// Destination address.
    pub destination: Ipv4Addr,
    /// Source port, for the first fragment of TCP, UDP and SCTP.
    pub source_port: Option<u16>,
    /// Destination port, likewise.
    pub destination_port: Option<u16>,
}

/// Why bytes are not an IPv4 packet a policy can be applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// Not IP version 4.
    #[error("IP version {0} is not supported")]
    NotIpv4(u8),
    /// Shorter than its header.
    #[error("IPv4 packet of {0} bytes is shorter than its header")]
    Truncated(usize),
    /// Header length below 20 bytes or total length outside the buffer.
    #[error("IPv4 header length {header_len} or total length {total_len} does not fit {len} bytes")]
    BadLength {
        /// IHL × 4.
        header_len: usize,
        /// Total Length field.
        total_len: usize,
        /// Bytes available.
        len: usize,
    },
}

impl Flow {
    /// Reads the flow of an IPv4 packet and returns it with the header length and total
    /// length. Trailing bytes after the total length (TFC padding, RFC 4303 §2.7, or a
    /// link's minimum frame) are allowed and ignored.
    #[inline]
    pub fn parse_ipv4(packet: &[u8]) -> Result<(Flow, usize, usize), FlowError> {
        let Some(&first) = packet.first() else {
            return Err(FlowError::Truncated(0));
        };
        if first >> 4 != 4 {
            return Err(FlowError::NotIpv4(first >> 4));
        }
        if packet.len() < 20 {
            return Err(FlowError::Truncated(packet.len()));
        }
        let header_len = usize::from(first & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
        if header_len < 20 || total_len < header_len || total_len > packet.len() {
            return Err(FlowError::BadLength { header_len, total_len, len: packet.len() });
        }
        let fragment_offset = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff;
        let protocol = packet[9];
        let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
        let destination = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        let (mut source_port, mut destination_port) = (None, None);
        if matches!(protocol, PROTOCOL_TCP | PROTOCOL_UDP | PROTOCOL_SCTP) && fragment_offset == 0 {
            if let Some(ports) =
                packet.get(header_len..header_len + 4).filter(|_| header_len + 4 <= total_len)
            {
                source_port = Some(u16::from_be_bytes([ports[0], ports[1]]));
                destination_port = Some(u16::from_be_bytes([ports[2], ports[3]]));
            }
        }
        Ok((Flow { protocol, source, destination, source_port, destination_port }, header_len, total_len))
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(p) = self.source_port {
            write!(f, ":{p}")?;
        }
        write!(f, " -> {}", self.destination)?;
        if let Some(p) = self.destination_port {
            write!(f, ":{p}")?;
        }
        write!(f, " proto {}", self.protocol)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal IPv4 packet: 20-byte header, then `payload`.
    pub(crate) fn ipv4_packet(
        protocol: u8,
        source: [u8; 4],
        destination: [u8; 4],
        payload: &[u8],
    ) -> Vec<u8> {
        let total = 20 + payload.len();
        let mut p = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, protocol, 0, 0];
        p.extend_from_slice(&source);
        p.extend_from_slice(&destination);
        p.extend_from_slice(payload);
        p
    }

    pub(crate) fn udp(sport: u16, dport: u16) -> Vec<u8> {
        let mut u = Vec::new();
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&[0, 12, 0, 0, b'd', b'a', b't', b'a']);
        u
    }

    #[test]
    fn prefixes() {
        let p = Prefix::new(Ipv4Addr::new(10, 1, 1, 77), 24);
        assert_eq!(p.address(), Ipv4Addr::new(10, 1, 1, 0));
        assert!(p.contains(Ipv4Addr::new(10, 1, 1, 255)));
        assert!(!p.contains(Ipv4Addr::new(10, 1, 2, 0)));
        assert!(Prefix::ANY.contains(Ipv4Addr::BROADCAST));
        assert!(Prefix::ANY.covers(&p));
        assert!(!p.covers(&Prefix::ANY));
        assert_eq!(
            Prefix::from_mask(Ipv4Addr::new(10, 2, 2, 0), Ipv4Addr::new(255, 255, 255, 0)),
            Prefix::new(Ipv4Addr::new(10, 2, 2, 0), 24)
        );
        assert_eq!(Prefix::host(Ipv4Addr::LOCALHOST).to_string(), "127.0.0.1/32");
        assert_eq!(Prefix::new(Ipv4Addr::LOCALHOST, 40).length(), 32);
    }

    #[test]
    fn parses_flows() {
        let packet = ipv4_packet(PROTOCOL_UDP, [10, 1, 1, 2], [10, 2, 2, 2], &udp(5000, 53));
        let (flow, header_len, total) = Flow::parse_ipv4(&packet).unwrap();
        assert_eq!((header_len, total), (20, packet.len()));
        assert_eq!(flow.source_port, Some(5000));
        assert_eq!(flow.destination_port, Some(53));
        assert_eq!(flow.to_string(), "10.1.1.2:5000 -> 10.2.2.2:53 proto 17");

        // ICMP: no ports. A non-first UDP fragment: no ports either.
        let icmp = ipv4_packet(1, [10, 1, 1, 2], [10, 2, 2, 2], &[8, 0, 0, 0]);
        assert_eq!(Flow::parse_ipv4(&icmp).unwrap().0.source_port, None);
        let mut fragment = packet.clone();
        fragment[7] = 10;
        assert_eq!(Flow::parse_ipv4(&fragment).unwrap().0.destination_port, None);

        assert_eq!(Flow::parse_ipv4(&[]), Err(FlowError::Truncated(0)));
        assert_eq!(Flow::parse_ipv4(&[0x60; 40]), Err(FlowError::NotIpv4(6)));
        assert_eq!(Flow::parse_ipv4(&packet[..19]), Err(FlowError::Truncated(19)));
        assert!(matches!(Flow::parse_ipv4(&packet[..25]), Err(FlowError::BadLength { .. })));
        let mut bad_ihl = packet.clone();
        bad_ihl[0] = 0x44;
        assert!(matches!(Flow::parse_ipv4(&bad_ihl), Err(FlowError::BadLength { .. })));
    }

    #[test]
    fn selectors_match_both_directions() {
        let local = Prefix::new(Ipv4Addr::new(10, 1, 1, 0), 24);
        let remote = Prefix::new(Ipv4Addr::new(10, 2, 2, 0), 24);
        let mut s = Selector::between(local, remote);
        let out = Flow::parse_ipv4(&ipv4_packet(PROTOCOL_UDP, [10, 1, 1, 2], [10, 2, 2, 2], &udp(5000, 53)))
            .unwrap()
            .0;
        let back = Flow::parse_ipv4(&ipv4_packet(PROTOCOL_UDP, [10, 2, 2, 2], [10, 1, 1, 2], &udp(53, 5000)))
            .unwrap()
            .0;
        assert!(s.matches_outbound(&out) && !s.matches_inbound(&out));
        assert!(s.matches_inbound(&back) && !s.matches_outbound(&back));
        s.protocol = Some(PROTOCOL_TCP);
        assert!(!s.matches_outbound(&out));
        s.protocol = Some(PROTOCOL_UDP);
        s.remote_ports = Some(PortRange::single(53));
        assert!(s.matches_outbound(&out) && s.matches_inbound(&back));
        s.remote_ports = Some(PortRange { first: 54, last: 100 });
        assert!(!s.matches_outbound(&out) && !s.matches_inbound(&back));
        // A UDP fragment after the first has no ports: it matches on addresses and protocol,
        // in both directions, never the other protocol's or other addresses' rule.
        let mut later = ipv4_packet(PROTOCOL_UDP, [10, 1, 1, 2], [10, 2, 2, 2], &udp(5000, 53));
        later[7] = 10;
        let later = Flow::parse_ipv4(&later).unwrap().0;
        assert!(s.matches_outbound(&later) && !s.matches_inbound(&later));
        let mut later_back = ipv4_packet(PROTOCOL_UDP, [10, 2, 2, 2], [10, 1, 1, 2], &udp(53, 5000));
        later_back[7] = 10;
        assert!(s.matches_inbound(&Flow::parse_ipv4(&later_back).unwrap().0));
        s.protocol = Some(PROTOCOL_TCP);
        assert!(!s.matches_outbound(&later));
        s.protocol = Some(PROTOCOL_UDP);
        let elsewhere = Flow { destination: Ipv4Addr::new(10, 2, 3, 2), ..later };
        assert!(!s.matches_outbound(&elsewhere));
        // A port range never matches a packet of a protocol without ports.
        s.protocol = None;
        s.remote_ports = Some(PortRange { first: 0, last: u16::MAX });
        let icmp = Flow::parse_ipv4(&ipv4_packet(1, [10, 1, 1, 2], [10, 2, 2, 2], &[8, 0, 0, 0])).unwrap().0;
        assert!(!s.matches_outbound(&icmp));
        assert_eq!(s.to_string(), "10.1.1.0/24 -> 10.2.2.0/24:0-65535 proto any");
    }
}
