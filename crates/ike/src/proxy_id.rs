//! Quick-mode proxy identities (RFC 2409 §5.5, RFC 2407 §4.6.2): the IDci / IDcr payloads
//! that name the flow an IPsec SA pair protects, and whether a policy's ACL covers a flow a
//! peer proposes.

use std::net::{IpAddr, Ipv4Addr};

use isakmp::{Identification, Identity};

use crate::config::{Addresses, Subnet, TrafficSelector};

/// The proxy identity of one side of a flow: ID_IPV4_ADDR for a host, ID_IPV4_ADDR_SUBNET for
/// a prefix, ID_IPV4_ADDR_RANGE for a range; protocol and port (0 = any) as given.
pub(crate) fn side_id(addresses: &Addresses, protocol: u8, port: Option<u16>) -> Identification<'static> {
    let identity = match *addresses {
        Addresses::Subnet(s) if s.mask == Ipv4Addr::BROADCAST => Identity::Ipv4Addr(s.address),
        Addresses::Subnet(s) => Identity::Ipv4Subnet { address: s.address, mask: s.mask },
        Addresses::Range { start, end } => Identity::Ipv4Range { start, end },
    };
    Identification { protocol, port: port.unwrap_or(0), identity }
}

/// The addresses a proxy identity names (a range that is exactly a prefix becomes that
/// prefix); IPv6 is not supported yet.
pub(crate) fn id_addresses(id: &Identification<'_>) -> Option<Addresses> {
    match id.identity {
        Identity::Ipv4Addr(address) => Some(Subnet { address, mask: Ipv4Addr::BROADCAST }.into()),
        Identity::Ipv4Subnet { address, mask } => {
            let subnet = Subnet { address: Ipv4Addr::from(u32::from(address) & u32::from(mask)), mask };
            // A non-contiguous mask names no prefix.
            (u32::from(mask).leading_ones() + u32::from(mask).trailing_zeros() == 32).then_some(subnet.into())
        }
        Identity::Ipv4Range { start, end } => (start <= end).then(|| Addresses::range(start, end)),
        _ => None,
    }
}

/// The proxy identity of a single host address (IPv6 is not supported yet).
pub(crate) fn host_addresses(address: IpAddr) -> Option<Addresses> {
    match address {
        IpAddr::V4(a) => Some(Subnet { address: a, mask: Ipv4Addr::BROADCAST }.into()),
        IpAddr::V6(_) => None,
    }
}

/// A port of a proxy identity: 0 means any.
pub(crate) fn port(port: u16) -> Option<u16> {
    (port != 0).then_some(port)
}

/// True when a rule of ours (`rule`, from our side) covers the flow the peer proposed: the
/// proposal mirrors the rule or lies inside it (the USG rule for templates and responders).
/// Addresses (prefixes or ranges) must lie inside the rule's; a rule's port must be the
/// proposed one, and a rule without a port allows any.
pub(crate) fn covers(rule: &TrafficSelector, proposed: &TrafficSelector) -> bool {
    let port_ok = |rule: Option<u16>, proposed: Option<u16>| rule.is_none() || rule == proposed;
    (rule.protocol == 0 || rule.protocol == proposed.protocol)
        && rule.local.contains(&proposed.local)
        && rule.remote.contains(&proposed.remote)
        && port_ok(rule.local_port, proposed.local_port)
        && port_ok(rule.remote_port, proposed.remote_port)
}
