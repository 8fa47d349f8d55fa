//! Which prefixes and flows of a configuration are routed into the TUN, and which of its
//! `ip route-static` are installed; [`crate::os::routes`] and [`crate::os::static_routes`]
//! apply the plan.

use std::net::IpAddr;

use esp::{Prefix, Selector};

use super::convert::{peer_addresses, protocol_routed, selector, Denies};
use crate::os::routes::{GatewayFlows, Routes};
use crate::os::OsError;

/// The remote prefixes to route into the TUN at start: those of every policy but the
/// templates, whose routes come with their negotiated flows.
///
/// A prefix that contains a peer gateway's own address is left out, and so is a flow routed
/// by its protocol ([`protocol_routed`]): both are policy-routed instead ([`gateway_flows`]).
pub fn static_prefixes(config: &ike::Config, templates: &[bool], denies: &Denies) -> Vec<Prefix> {
    let peers = peer_addresses(config);
    let by_protocol = protocol_routed(config, templates, denies, false);
    config
        .policies
        .iter()
        .enumerate()
        .filter(|(index, _)| !templates.get(*index).copied().unwrap_or(false))
        .flat_map(|(_, p)| p.selectors.iter().map(selector))
        .filter(|s| !by_protocol.contains(&(s.remote, s.protocol)))
        .map(|s| s.remote)
        .filter(|remote| !peers.iter().any(|a| remote.contains(*a)))
        .collect()
}

/// The route into the TUN for a flow a branch negotiated through a template: its remote
/// prefix, but never the default route. The engine refuses a branch's 0.0.0.0/0 unless the
/// template's ACL names it (`ike::hub`); even then the hub's default route stays the
/// operator's (an `ip route-static`), since replacing it would send the hub's own IKE and
/// ESP into the tunnel.
pub fn template_route(remote: Prefix) -> Option<Prefix> {
    (remote.length() > 0).then_some(remote)
}

/// The flows of `config` whose remote prefix contains a peer gateway's own address (transport
/// mode between the gateways, or a tunnel covering them), with the peers concerned and the
/// source address for the gateway's own packets, then the flows routed by their protocol
/// ([`protocol_routed`]): the policy routing [`Routes::set_gateway_flows`] sets up for them.
pub fn gateway_flows(config: &ike::Config, templates: &[bool], denies: &Denies) -> GatewayFlows {
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
        flows: flows
            .iter()
            .map(|s| (s.remote, s.protocol))
            .chain(protocol_routed(config, templates, denies, false))
            .collect(),
        source,
    }
}

/// The remote ranges of the template policies: a fail-closed route an earlier run left for
/// a flow inside one is held at start ([`Routes::start`]), since the branch comes back.
pub fn template_prefixes(config: &ike::Config, templates: &[bool]) -> Vec<Prefix> {
    config
        .policies
        .iter()
        .enumerate()
        .filter(|(index, _)| templates.get(*index).copied().unwrap_or(false))
        .flat_map(|(_, p)| p.selectors.iter().map(|s| selector(s).remote))
        .collect()
}

/// Routes for every policy of `config` but the templates: [`static_prefixes`] in the main
/// table, and the flows to a peer gateway's own address by policy routing; what an earlier
/// run left is adopted.
pub fn routes_for_config(
    device: &str,
    config: &ike::Config,
    (templates, denies): (&[bool], &Denies),
) -> Result<Routes, OsError> {
    Routes::start(
        device,
        static_prefixes(config, templates, denies),
        &template_prefixes(config, templates),
        &gateway_flows(config, templates, denies),
    )
}

/// The protected prefixes of the policy entries of `typed` (the running configuration as
/// typed, inert objects included) that `applied` (its complete part, the one applied) does
/// not protect: an entry made incomplete at the console (its peer's key undone, its peer or
/// proposal gone). They stay fail-closed ([`Routes::hold`]): the traffic is dropped until
/// the entry is complete again, as a USG drops it for lack of an SA, and never falls back to
/// another route. A template entry's whole range is held so: no branch can come up meanwhile.
pub fn inert_prefixes(typed: &vrp::Config, applied: &vrp::Config) -> Vec<Prefix> {
    let complete = vrp::validate::protected_ranges(applied);
    let mut held: Vec<Prefix> = Vec::new();
    for range in vrp::validate::protected_ranges(typed).iter().filter(|r| !complete.contains(r)) {
        let (address, length) = range.prefix();
        let p = Prefix::new(address, length);
        if !held.contains(&p) {
            held.push(p);
        }
    }
    held
}

/// The policy-routed flows (`ip rule … lookup 4500`) of the policy entries of `typed` that
/// `applied` does not have (inert, as for [`inert_prefixes`]): their rules stay, so that
/// traffic keeps reaching the data plane, which has no rule for it and drops it, instead of
/// taking the main table's static route in clear. That is a rule by protocol for each permit
/// rule with a protocol, and a rule for the whole prefix of an entry with deny rules (whose
/// static routes inside the prefix are installed as the deny rules' clear path, and would
/// otherwise win over the inert entry's unreachable route).
pub fn inert_flows(typed: &vrp::Config, applied: &vrp::Config) -> Vec<(Prefix, Option<u8>)> {
    let prefix = |range: &vrp::validate::ProtectedRange| Prefix::new(range.prefix().0, range.prefix().1);
    let complete = vrp::validate::protocol_ranges(applied);
    let inert = vrp::validate::protocol_ranges(typed).into_iter().filter(|r| !complete.contains(r));
    let by_protocol = inert.map(|(range, protocol)| (prefix(&range), Some(protocol)));
    let routed = vrp::validate::protected_ranges(applied);
    let whole = vrp::validate::protected_ranges(typed).into_iter();
    let whole =
        whole.filter(|r| r.policy_routed && !r.template && !routed.contains(r)).map(|r| (prefix(&r), None));
    by_protocol.chain(whole).fold(Vec::new(), |mut all, flow| {
        if !all.contains(&flow) {
            all.push(flow);
        }
        all
    })
}

/// The configuration's `ip route-static`, as [`crate::os::static_routes`] installs them: the
/// interface a route names mapped to its Linux device (`--interface-map`), and each route an
/// IPsec policy's TUN route supersedes marked so (`vrp::validate::protecting_policy`).
pub fn static_routes(
    config: &vrp::Config,
    map: &crate::load::InterfaceMap,
) -> Vec<crate::os::static_routes::StaticRoute> {
    config
        .routes
        .iter()
        .map(|r| {
            let on_link = config.interfaces.iter().find(|(_, i)| {
                i.address.is_some_and(|a| Prefix::new(a.address, a.prefix_len).contains(r.next_hop))
            });
            crate::os::static_routes::StaticRoute {
                destination: Prefix::new(r.destination, r.prefix_len),
                next_hop: r.next_hop,
                device: r.interface.as_deref().map(|name| map.linux_name(name).to_owned()),
                interface: r
                    .interface
                    .clone()
                    .or_else(|| on_link.map(|(name, _)| name.clone()))
                    .unwrap_or_default(),
                preference: r.preference,
                superseded_by: vrp::validate::protecting_policy(config, r),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    /// The flow of a packet from 10.1.1.2 port 5000 to 10.2.2.2 port `dport` over `protocol`.
    fn packet(protocol: u8, dport: u16) -> esp::Flow {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, protocol, 0, 0, 10, 1, 1, 2, 10, 2, 2, 2];
        p.extend_from_slice(&[0x13, 0x88]);
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0, 8, 0, 0]);
        esp::Flow::parse_ipv4(&p).unwrap().0
    }

    /// FW_A's engine configuration, with ACL 3001's rule replaced by `rule`.
    fn fw_a_with_rule(rule: &str) -> ike::Config {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fw_a.cfg");
        let text = std::fs::read_to_string(path).unwrap();
        let text =
            text.replace(" rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255", rule);
        let parsed = vrp::parse("fw_a.cfg", &text).unwrap();
        crate::engine_config::engine_config(&parsed.config).unwrap()
    }

    /// A template flow never brings a default route, whatever the engine let through.
    #[test]
    fn a_template_flow_never_routes_the_default_route() {
        assert_eq!(template_route(Prefix::ANY), None);
        let branch = Prefix::new(Ipv4Addr::new(10, 2, 1, 0), 24);
        assert_eq!(template_route(branch), Some(branch));
        assert_eq!(
            template_route(Prefix::new(Ipv4Addr::new(128, 0, 0, 0), 1)),
            Some(Prefix::new(Ipv4Addr::new(128, 0, 0, 0), 1))
        );
    }

    /// A policy entry made inert at the console (its peer's key undone) keeps its protected
    /// prefix fail-closed, and the article's static route toward it stays held back.
    #[test]
    fn an_inert_entrys_prefix_stays_fail_closed_and_its_static_route_held_back() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fw_a.cfg");
        let text = std::fs::read_to_string(path).unwrap().replace(" pre-shared-key tiandihui2\n", "");
        let typed = vrp::parse("fw_a.cfg", &text).unwrap().config;
        let p = Prefix::new(Ipv4Addr::new(10, 2, 2, 0), 24);
        assert_eq!(inert_prefixes(&typed, &vrp::inert::split(&typed).0), [p]);
        assert!(inert_prefixes(&typed, &typed).is_empty(), "complete: routed into the TUN");
        let routes = static_routes(&typed, &crate::load::InterfaceMap::default());
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].superseded_by.as_deref(), Some("policy1 1"));
    }

    /// Review finding: an entry with deny rules made inert keeps the policy rule of its whole
    /// prefix, so that a static route inside the prefix (installed as the deny rules' clear
    /// path) cannot carry the traffic its permit rule protects in clear while it is inert.
    #[test]
    fn an_inert_entry_with_deny_rules_keeps_its_whole_prefix_policy_routed() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fw_a.cfg");
        let permit = " rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255";
        let deny =
            " rule 1 deny udp source 10.1.1.0 0.0.0.255 destination 10.2.2.53 0 destination-port eq 53";
        let text = std::fs::read_to_string(path).unwrap().replace(permit, &format!("{deny}\n{permit}"));
        let complete = vrp::parse("fw_a.cfg", &text).unwrap().config;
        let inert_text = text.replace(" pre-shared-key tiandihui2\n", "");
        let typed = vrp::parse("fw_a.cfg", &inert_text).unwrap().config;
        let p = Prefix::new(Ipv4Addr::new(10, 2, 2, 0), 24);
        assert_eq!(inert_flows(&typed, &vrp::inert::split(&typed).0), [(p, None)]);
        assert!(inert_flows(&complete, &complete).is_empty(), "complete: its rules come with the entry");
    }

    /// A tunnel between inside networks is routed in the main table; no policy rule.
    #[test]
    fn inside_prefixes_are_plain_routes() {
        let config =
            fw_a_with_rule(" rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255");
        assert_eq!(static_prefixes(&config, &[], &[]), [Prefix::new(Ipv4Addr::new(10, 2, 2, 0), 24)]);
        assert_eq!(
            gateway_flows(&config, &[], &[]),
            GatewayFlows { peers: vec![], flows: vec![], source: Some("192.0.2.1".into()) }
        );
        assert!(static_prefixes(&config, &[true], &[]).is_empty(), "a template's flows come when negotiated");
    }

    /// A flow to the peer gateway's own address (GRE between the gateways) is policy-routed:
    /// the peer's own traffic stays in the main table, the flow keeps its protocol, and the
    /// gateway's own packets take its public address.
    #[test]
    fn a_flow_to_the_peer_itself_is_policy_routed() {
        let config = fw_a_with_rule(" rule 5 permit gre source 192.0.2.1 0 destination 192.0.2.2 0");
        assert!(static_prefixes(&config, &[], &[]).is_empty());
        let plan = gateway_flows(&config, &[], &[]);
        assert_eq!(plan.peers, [Ipv4Addr::new(192, 0, 2, 2)]);
        assert_eq!(plan.flows, [(Prefix::new(Ipv4Addr::new(192, 0, 2, 2), 32), Some(47))]);
        assert_eq!(plan.source.as_deref(), Some("192.0.2.1"));
    }

    /// Issue 15: a rule with a protocol and a port is routed by its protocol, not by a route
    /// for its whole remote prefix; a rule for every protocol to an overlapping prefix keeps
    /// the prefix route (it takes everything to the TUN anyway), and the SPD hands back what
    /// reaches the data plane by the protocol route and no rule protects.
    #[test]
    fn a_port_specific_rule_is_routed_by_its_protocol() {
        let l2tp = " rule 5 permit udp source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255 destination-port eq 1701";
        let config = fw_a_with_rule(l2tp);
        let net = Prefix::new(Ipv4Addr::new(10, 2, 2, 0), 24);
        assert!(static_prefixes(&config, &[], &[]).is_empty());
        assert_eq!(gateway_flows(&config, &[], &[]).flows, [(net, Some(17))]);
        assert!(
            gateway_flows(&config, &[true], &[]).flows.is_empty(),
            "a template's flows come when negotiated"
        );
        let (spd, _) = super::super::convert::spd(&config, &[], &[]);
        assert!(matches!(spd.lookup(&packet(17, 1701)).1, esp::Action::Protect(_)));
        assert!(spd.leaves_in_clear(&packet(17, 9999)));
        assert!(!spd.leaves_in_clear(&packet(6, 9999)), "TCP never reaches the data plane by that route");

        let both = fw_a_with_rule(&format!(
            "{l2tp}\n rule 10 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.0.0 0.0.255.255"
        ));
        assert_eq!(static_prefixes(&both, &[], &[]), [net, Prefix::new(Ipv4Addr::new(10, 2, 0, 0), 16)]);
        assert!(gateway_flows(&both, &[], &[]).flows.is_empty());
        assert!(!super::super::convert::spd(&both, &[], &[]).0.leaves_in_clear(&packet(17, 9999)));
    }

    /// Issue 15: a deny rule before a permit rule is a `Bypass` rule in the SPD, in rule order;
    /// the permit rule's whole prefix is policy-routed (not a main-table route), what the deny
    /// rule exempts is handed back to the clear path, and the static route toward the prefix is
    /// installed as that clear path.
    #[test]
    fn a_deny_rule_exempts_its_traffic_in_rule_order() {
        let deny = " rule 1 deny udp source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255 destination-port eq 9999";
        let permit = " rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255";
        let late = " rule 9 deny icmp source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fw_a.cfg");
        let text =
            std::fs::read_to_string(path).unwrap().replace(permit, &format!("{deny}\n{permit}\n{late}"));
        let typed = vrp::parse("fw_a.cfg", &text).unwrap().config;
        let config = crate::engine_config::engine_config(&typed).unwrap();
        let denies = crate::engine_config::deny_rules(&typed, &config);
        assert_eq!(denies[0].iter().map(|(before, _)| *before).collect::<Vec<_>>(), [0, 1]);
        let (spd, selectors) = super::super::convert::spd(&config, &[], &denies);
        let actions: Vec<esp::Action> = spd.rules().iter().map(|r| r.action).collect();
        let protect = esp::Action::Protect(esp::PolicyIndex(0));
        assert_eq!(actions, [esp::Action::Bypass, protect, esp::Action::Bypass]);
        assert_eq!(selectors.len(), 3);
        assert_eq!(spd.lookup(&packet(17, 9999)), (Some(0), esp::Action::Bypass));
        assert_eq!(spd.lookup(&packet(17, 53)).1, protect);
        assert_eq!(spd.lookup(&packet(1, 0)).1, protect, "the permit rule comes first for ICMP");
        assert!(spd.leaves_in_clear(&packet(17, 9999)));
        let net = Prefix::new(Ipv4Addr::new(10, 2, 2, 0), 24);
        assert!(static_prefixes(&config, &[], &denies).is_empty());
        assert_eq!(gateway_flows(&config, &[], &denies).flows, [(net, None)]);
        let routes = static_routes(&typed, &crate::load::InterfaceMap::default());
        assert_eq!(routes[0].superseded_by, None, "the clear path of what the deny rule exempts");
        // Without the deny rules, as before.
        assert_eq!(static_prefixes(&config, &[], &[]), [net]);
        assert!(!super::super::convert::spd(&config, &[], &[]).0.leaves_in_clear(&packet(17, 9999)));
    }
}
