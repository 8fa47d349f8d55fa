//! From the engine's types to the data plane's: traffic selectors, the SPD of a
//! configuration, and a negotiated pair of SAs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use esp::{
    Action, PolicyIndex, Prefix, Protocols, Rule, SaKeys, SaPair, SaParams, Selector, Spd, TrafficLimits,
};
use ike::{IpsecSaPair, TrafficSelector};

/// Converts an engine prefix to the data plane's. The data plane has prefixes only: an
/// address range (which only a peer can propose; [`super::Bridge::install`] refuses pairs with
/// one) becomes the smallest prefix that covers it.
fn prefix(addresses: &ike::Addresses) -> Prefix {
    match addresses {
        ike::Addresses::Subnet(subnet) => Prefix::from_mask(subnet.address, subnet.mask),
        ike::Addresses::Range { start, end } => {
            let length = (u32::from(*start) ^ u32::from(*end)).leading_zeros() as u8;
            Prefix::new(*start, length)
        }
    }
}

/// Converts an engine traffic selector (protocol 0 = any, ports `None` = any) to the data
/// plane's.
pub fn selector(ts: &TrafficSelector) -> Selector {
    let mut s = Selector::between(prefix(&ts.local), prefix(&ts.remote));
    s.protocol = (ts.protocol != 0).then_some(ts.protocol);
    s.local_ports = ts.local_port.map(esp::PortRange::single);
    s.remote_ports = ts.remote_port.map(esp::PortRange::single);
    s
}

/// Why the data plane cannot carry a negotiated pair, if it cannot.
pub(super) fn unsupported_pair(pair: &IpsecSaPair) -> Option<&'static str> {
    if pair.suite.proposal.protocols.ah().is_some() && pair.ah.is_none() {
        return Some("the engine reported an AH suite without AH keys");
    }
    if pair.suite.proposal.protocols.ah().is_some() && pair.udp_encapsulation.is_some() {
        return Some("AH cannot cross a NAT (UDP encapsulation is for ESP only)");
    }
    if pair.selector.local.subnet().is_none() || pair.selector.remote.subnet().is_none() {
        return Some("the data plane cannot match an address range that is not a prefix");
    }
    None
}

/// The peers' IPv4 gateway addresses.
pub(super) fn peer_addresses(config: &ike::Config) -> Vec<Ipv4Addr> {
    let addresses = config.peers.iter().filter_map(|p| p.remote_address);
    addresses.filter_map(|a| if let IpAddr::V4(a) = a { Some(a) } else { None }).collect()
}

/// The rules of each policy (same index as the engine's) that come before each of its permit
/// rules: its ACL's `deny` rules, with the number of permit rules before each
/// ([`crate::engine_config::deny_rules`]).
pub type Denies = [Vec<(usize, Selector)>];

/// The flows policy-routed into the TUN ahead of the main table, whose packets that no rule
/// protects the data plane hands back to the clear path (docs/DESIGN.md "Rules with protocol
/// and ports", "Deny rules"), among the rules of every policy but the templates: by protocol
/// ([`esp::protocol_routed`]; those toward a peer gateway's own address only if
/// `toward_peers`, `routing::gateway_flows` routes them), and the whole remote prefixes of the
/// permit rules of a policy with deny rules (protocol `None`).
pub fn protocol_routed(
    config: &ike::Config,
    templates: &[bool],
    denies: &Denies,
    toward_peers: bool,
) -> Vec<(Prefix, Option<u8>)> {
    let ours = |(i, _): &(usize, &ike::PolicyConfig)| !templates.get(*i).copied().unwrap_or(false);
    let policies = config.policies.iter().enumerate().filter(ours);
    let selectors: Vec<Selector> =
        policies.clone().flat_map(|(_, p)| p.selectors.iter().map(selector)).collect();
    let routed = esp::protocol_routed(&selectors, &peer_addresses(config), toward_peers);
    let mut flows: Vec<(Prefix, Option<u8>)> =
        routed.into_iter().map(|(p, protocol)| (p, Some(protocol))).collect();
    let peers = peer_addresses(config);
    for (_, policy) in policies.filter(|(i, _)| denies.get(*i).is_some_and(|d| !d.is_empty())) {
        let whole = policy.selectors.iter().map(selector).filter(|s| s.protocol.is_none());
        for s in whole.filter(|s| !peers.iter().any(|a| s.remote.contains(*a))) {
            if !flows.contains(&(s.remote, None)) {
                flows.push((s.remote, None));
            }
        }
    }
    flows
}

/// The SPD of the engine's policies: in policy and rule order, one `Protect` rule per ACL
/// permit rule and one `Bypass` rule per deny rule (`denies`), and `Bypass` for the rest
/// (VRP's default). Template policies (`templates[i]` true) get no static rule: their flows
/// are added as branches negotiate them. The flows routed in ahead of the main table
/// ([`protocol_routed`]) fall back to the clear path. Returns the engine selector of each
/// rule too, so an acquire raised on rule `i` names the engine's policy and flow.
pub fn spd(config: &ike::Config, templates: &[bool], denies: &Denies) -> (Spd, Vec<TrafficSelector>) {
    let mut rules = Vec::new();
    let mut selectors = Vec::new();
    let any = ike::Subnet::new(Ipv4Addr::UNSPECIFIED, 0);
    for (index, policy) in config.policies.iter().enumerate() {
        if templates.get(index).copied().unwrap_or(false) {
            continue;
        }
        let denies = denies.get(index).map_or(&[][..], Vec::as_slice);
        for position in 0..=policy.selectors.len() {
            for (_, deny) in denies.iter().filter(|(before, _)| *before == position) {
                rules.push(Rule { selector: *deny, action: Action::Bypass });
                selectors.push(TrafficSelector::between(any, any)); // never acquired
            }
            if let Some(ts) = policy.selectors.get(position) {
                rules.push(Rule { selector: selector(ts), action: Action::Protect(PolicyIndex(index)) });
                selectors.push(*ts);
            }
        }
    }
    let fallback = protocol_routed(config, templates, denies, true);
    (Spd::new(rules, Action::Bypass).with_clear_fallback(fallback), selectors)
}

/// The data plane's form of a negotiated pair for engine policy `policy`: the algorithms,
/// mode, traffic limits and outer addresses (UDP 4500 ports when encapsulated). `None` for an
/// AH+ESP suite the engine reported without AH keys ([`unsupported_pair`] refuses it first).
pub(super) fn sa_pair(pair: &IpsecSaPair, policy: PolicyIndex) -> Option<SaPair<'_>> {
    let (protocols, (encryption, integrity)) = match (pair.suite.proposal.protocols, &pair.ah) {
        (ike::IpsecProtocols::Esp { encryption, integrity }, _) => (Protocols::Esp, (encryption, integrity)),
        // AH alone: the pair's keys are the AH SAs'; the ESP algorithms are not used.
        (ike::IpsecProtocols::Ah { integrity }, _) => {
            (Protocols::Ah(integrity), (esp::EspCipher::Null, Some(integrity)))
        }
        (ike::IpsecProtocols::AhEsp { ah_integrity, esp_encryption, esp_integrity }, Some(ah)) => (
            Protocols::AhEsp {
                integrity: ah_integrity,
                inbound: SaKeys::from(&ah.inbound),
                outbound: SaKeys::from(&ah.outbound),
            },
            (esp_encryption, esp_integrity),
        ),
        (ike::IpsecProtocols::AhEsp { .. }, None) => return None,
    };
    let mut params = SaParams::new(encryption, integrity);
    params.mode = match pair.suite.proposal.mode {
        ike::EncapsulationMode::Tunnel => esp::Mode::Tunnel,
        ike::EncapsulationMode::Transport => esp::Mode::Transport,
    };
    params.udp_encapsulated = pair.udp_encapsulation.is_some();
    if let (Some(kilobytes), Some(soft)) = (pair.suite.lifetime_kilobytes, pair.traffic_soft_bytes()) {
        params.limits = TrafficLimits::from_kilobytes(kilobytes, soft);
    }
    let (local, remote) = match pair.udp_encapsulation {
        Some(udp) => (
            SocketAddr::new(pair.local.ip(), udp.local_port),
            SocketAddr::new(pair.remote.ip(), udp.remote_port),
        ),
        None => (pair.local, pair.remote),
    };
    Some(SaPair {
        policy,
        selector: selector(&pair.selector),
        params,
        local,
        remote,
        inbound: SaKeys::from(&pair.inbound),
        outbound: SaKeys::from(&pair.outbound),
        protocols,
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    /// FW_A's ACL 3001 becomes one `Protect` rule of policy 0, whose acquire names the
    /// engine's selector; other traffic bypasses.
    #[test]
    fn reference_spd_protects_the_acl_flow() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fw_a.cfg");
        let config = vrp::load_file(&path, None).unwrap().config.unwrap();
        let engine = crate::engine_config::engine_config(&config).unwrap();
        let (spd, selectors) = spd(&engine, &[], &[]);
        assert_eq!(spd.rules().len(), 1);
        assert_eq!(selectors, engine.policies[0].selectors);
        let rule = spd.rules()[0];
        assert_eq!(rule.action, Action::Protect(PolicyIndex(0)));
        assert_eq!(rule.selector.local, Prefix::new(Ipv4Addr::new(10, 1, 1, 0), 24));
        assert_eq!(rule.selector.remote, Prefix::new(Ipv4Addr::new(10, 2, 2, 0), 24));
        assert_eq!(rule.selector.protocol, None);
    }

    /// Ports carry over to the data plane's selector; a range widens to its covering prefix.
    #[test]
    fn engine_selectors_with_ports_and_ranges_convert() {
        let ts = TrafficSelector {
            protocol: 6,
            local: ike::Addresses::range(Ipv4Addr::new(10, 1, 1, 10), Ipv4Addr::new(10, 1, 1, 20)),
            remote: ike::Subnet::new(Ipv4Addr::new(10, 2, 2, 0), 24).into(),
            local_port: None,
            remote_port: Some(443),
        };
        let s = selector(&ts);
        assert_eq!(s.protocol, Some(6));
        assert_eq!(s.local, Prefix::new(Ipv4Addr::new(10, 1, 1, 0), 27));
        assert_eq!(s.remote, Prefix::new(Ipv4Addr::new(10, 2, 2, 0), 24));
        assert_eq!((s.local_ports, s.remote_ports), (None, Some(esp::PortRange::single(443))));
    }
}
