//! Quick-mode proxy identities (RFC 2409 §5.5, RFC 2407 §4.6.2): the IDci / IDcr payloads
//! that name the flow an IPsec SA pair protects, and whether a policy's ACL covers a flow a
//! peer proposes.

use std::net::{IpAddr, Ipv4Addr};

use isakmp::{Identification, Identity};

use crate::config::{Addresses, Subnet, TrafficSelector};
use crate::failure::{FailureReason, IdentityFailure};

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

/// The flow a quick-mode initiator proposes with its IDci and IDcr, from our side (`remote` is
/// the peer's gateway, `local` ours); without proxy identities the flow is between the two
/// gateways (RFC 2409 §5.5). Refused when the identities name no flow we can protect.
pub(crate) fn proposed_selector(
    ids: &[&Identification<'_>],
    remote: IpAddr,
    local: IpAddr,
) -> Result<TrafficSelector, FailureReason> {
    let (peer_side, our_side, protocol, peer_port, our_port) = match ids {
        [] => (host_addresses(remote), host_addresses(local), Some(0), 0, 0),
        // Both identities name the same flow, so the same protocol (RFC 2407 §4.6.2).
        [ci, cr] => (
            id_addresses(ci),
            id_addresses(cr),
            (ci.protocol == cr.protocol).then_some(ci.protocol),
            ci.port,
            cr.port,
        ),
        _ => return Err(FailureReason::missing_payload("IDci and IDcr (exactly two ID payloads)")),
    };
    let (Some(peer_side), Some(our_side), Some(protocol)) = (peer_side, our_side, protocol) else {
        let proposed = describe_flow(ids, remote, local);
        return Err(FailureReason::Identity(IdentityFailure::ProxyIdNotAllowed { proposed }));
    };
    Ok(TrafficSelector {
        protocol,
        local: our_side,
        remote: peer_side,
        local_port: port(our_port),
        remote_port: port(peer_port),
    })
}

/// The proposed flow for failure reports: `IDci -> IDcr` with protocol and port when given.
pub(crate) fn describe_flow(ids: &[&Identification<'_>], remote: IpAddr, local: IpAddr) -> String {
    match ids {
        [ci, cr] => {
            let side = |id: &Identification<'_>| {
                let mut text = crate::identity::describe_identity(&id.identity);
                if id.protocol != 0 || id.port != 0 {
                    text.push_str(&format!(" proto {} port {}", id.protocol, id.port));
                }
                text
            };
            format!("{} -> {}", side(ci), side(cr))
        }
        _ => format!("{remote} -> {local}"),
    }
}

/// Checks that a quick-mode responder echoed the proxy identities of our `flow` in QM2 (or
/// sent none): anything else is a flow we did not ask for (RFC 2409 §5.5).
pub(crate) fn check_echoed(
    echoed: &[&Identification<'_>],
    flow: &TrafficSelector,
) -> Result<(), FailureReason> {
    let ours = [
        side_id(&flow.local, flow.protocol, flow.local_port),
        side_id(&flow.remote, flow.protocol, flow.remote_port),
    ];
    let echoed_ok = match echoed {
        [] => true,
        [ci, cr] => **ci == ours[0] && **cr == ours[1],
        _ => false,
    };
    if echoed_ok {
        return Ok(());
    }
    let proposed = echoed
        .iter()
        .map(|id| crate::identity::describe_identity(&id.identity))
        .collect::<Vec<_>>()
        .join(" -> ");
    Err(FailureReason::Identity(IdentityFailure::ProxyIdNotAllowed {
        proposed: format!("{proposed} (QM2 changed our {flow})"),
    }))
}
