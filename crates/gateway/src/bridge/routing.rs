//! Which prefixes and flows of a configuration are routed into the TUN; [`crate::os::routes`]
//! applies the plan.

use std::net::{IpAddr, Ipv4Addr};

use esp::{Prefix, Selector};

use super::convert::selector;
use crate::os::routes::{GatewayFlows, Routes};
use crate::os::OsError;

/// The remote prefixes to route into the TUN at start: those of every policy but the
/// templates, whose routes come with their negotiated flows.
///
/// A prefix that contains a peer gateway's own address is left out: it is policy-routed
/// instead ([`gateway_flows`]).
pub fn static_prefixes(config: &ike::Config, templates: &[bool]) -> Vec<Prefix> {
    let peers = peer_addresses(config);
    config
        .policies
        .iter()
        .enumerate()
        .filter(|(index, _)| !templates.get(*index).copied().unwrap_or(false))
        .flat_map(|(_, p)| p.selectors.iter().map(|s| selector(s).remote))
        .filter(|remote| !peers.iter().any(|a| remote.contains(*a)))
        .collect()
}

/// The flows of `config` whose remote prefix contains a peer gateway's own address (transport
/// mode between the gateways, or a tunnel covering them), with the peers concerned and the
/// source address for the gateway's own packets: the policy routing
/// [`Routes::set_gateway_flows`] sets up for them.
pub fn gateway_flows(config: &ike::Config) -> GatewayFlows {
    let peers = peer_addresses(config);
    let selectors: Vec<Selector> =
        config.policies.iter().flat_map(|p| p.selectors.iter().map(selector)).collect();
    let flows: Vec<&Selector> =
        selectors.iter().filter(|s| peers.iter().any(|a| s.remote.contains(*a))).collect();
    let source = config
        .peers
        .iter()
        .find(|p| p.remote_address.is_some_and(|a| peers.iter().any(|q| IpAddr::V4(*q) == a)))
        .map(|p| p.local_address.to_string());
    GatewayFlows {
        peers: peers.iter().copied().filter(|a| flows.iter().any(|s| s.remote.contains(*a))).collect(),
        flows: flows.iter().map(|s| (s.remote, s.protocol)).collect(),
        source,
    }
}

/// Routes for every policy of `config` but the templates: [`static_prefixes`] in the main
/// table, and the flows to a peer gateway's own address by policy routing.
pub fn routes_for_config(device: &str, config: &ike::Config, templates: &[bool]) -> Result<Routes, OsError> {
    let mut routes = Routes::add(device, static_prefixes(config, templates))?;
    routes.set_gateway_flows(&gateway_flows(config))?;
    Ok(routes)
}

/// The peers' IPv4 gateway addresses.
fn peer_addresses(config: &ike::Config) -> Vec<Ipv4Addr> {
    config
        .peers
        .iter()
        .filter_map(|p| match p.remote_address {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        })
        .collect()
}
