//! Which destinations the policy entries applied to an interface route into the TUN, and
//! which `ip route-static` that makes superfluous (re-exported by the `validate` module, whose
//! `check` warns with it; the gateway holds routes back and keeps incomplete entries
//! fail-closed with it).

use std::net::Ipv4Addr;

use crate::model::{AclAction, AclProtocol, AclRule, Config, PolicyEntry};

/// The policy entry (`policy1 1`) of a policy group applied to an interface whose ACL
/// protects every destination of `route`: a permit rule whose destination covers the route's
/// prefix (isakmp entries and the templates they bind). Such traffic is routed into the TUN by
/// the daemon, so the static route is not installed (it would carry the traffic in clear if it
/// won, being as specific or more), and `check` says so. Entries count whether complete or
/// not: the daemon keeps an incomplete entry's prefixes fail-closed.
pub fn protecting_policy(config: &Config, route: &crate::model::StaticRoute) -> Option<String> {
    let mask = u32::from(crate::model::prefix_to_mask(route.prefix_len));
    let low = u32::from(route.destination) & mask;
    let high = low | !mask;
    let ranges = protected_ranges(config).into_iter().filter(|r| !r.policy_routed);
    ranges.into_iter().find(|r| r.low <= low && high <= r.high).map(|r| r.policy)
}

/// One destination range a policy entry applied to an interface routes into the TUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedRange {
    /// The policy entry, `policy1 1`.
    pub policy: String,
    /// True for an entry that binds a template (its routes come with the branches' flows).
    pub template: bool,
    /// The first address.
    pub low: u32,
    /// The last address.
    pub high: u32,
    /// True when the entry's ACL has deny rules: the range is policy-routed into the TUN
    /// ahead of the main table, and what a deny rule exempts is handed back to the main
    /// table, so a static route for the range is its clear path (installed, not superseded).
    pub policy_routed: bool,
}

impl ProtectedRange {
    /// The range as a prefix: its first address and length (a rule's wildcard is contiguous).
    pub fn prefix(&self) -> (Ipv4Addr, u8) {
        let size = (self.high - self.low).wrapping_add(1);
        let length = if size == 0 { 0 } else { 32 - size.trailing_zeros() as u8 };
        (Ipv4Addr::from(self.low), length)
    }
}

/// The destination ranges of the `permit ip` rules of every policy entry applied to an
/// interface: the daemon routes a rule's whole destination prefix into the TUN (or, while the
/// entry is incomplete, keeps it fail-closed). Left out, as the
/// daemon's routing leaves them out of the main table: the default route (`destination any`
/// or a /0; the operator's default route stays), and a range holding a peer's own
/// `remote-address` (policy-routed, ahead of the main table).
pub fn protected_ranges(config: &Config) -> Vec<ProtectedRange> {
    permit_ranges(config, |r| r.protocol == AclProtocol::Ip).into_iter().map(|(range, _)| range).collect()
}

/// The destination ranges and protocols of the `permit` rules with a protocol (`udp`, `icmp`,
/// …) of every isakmp policy entry applied to an interface, left out as in
/// [`protected_ranges`]: the daemon policy-routes each into the TUN by its protocol, ahead of
/// the main table; while the entry is incomplete the rule stays, so that traffic is dropped
/// rather than taking a static route in clear.
pub fn protocol_ranges(config: &Config) -> Vec<(ProtectedRange, u8)> {
    let ranges = permit_ranges(config, |r| r.protocol != AclProtocol::Ip);
    ranges.into_iter().filter(|(range, _)| !range.template).collect()
}

/// The ranges of the permit rules that `keep` keeps, with each rule's protocol number.
fn permit_ranges(config: &Config, keep: impl Fn(&AclRule) -> bool) -> Vec<(ProtectedRange, u8)> {
    let peers: Vec<u32> = config.ike_peers.values().filter_map(|p| p.remote_address).map(u32::from).collect();
    let mut ranges = Vec::new();
    for name in config.interfaces.values().filter_map(|i| i.ipsec_policy.as_ref()) {
        for (seq, entry) in config.ipsec_policies.get(name).into_iter().flatten() {
            let (acl, template) = match entry {
                PolicyEntry::Isakmp(s) => (s.acl, false),
                PolicyEntry::Template(t) => {
                    (config.policy_templates.get(t).and_then(|e| e.values().next()).and_then(|s| s.acl), true)
                }
            };
            let Some(acl) = acl.and_then(|n| config.acls.get(&n)) else { continue };
            let policy_routed = !template && acl.rules.values().any(|r| r.action == AclAction::Deny);
            // Only a rule for every protocol is routed as a whole prefix; a rule with a protocol is
            // policy-routed by protocol, ahead of the main table (a static route stays its clear path).
            for r in acl.rules.values().filter(|r| r.action == AclAction::Permit && keep(r)) {
                let Some((low, high)) = r.destination.range() else { continue };
                if (low, high) == (0, u32::MAX) || peers.iter().any(|a| low <= *a && *a <= high) {
                    continue;
                }
                let policy = format!("{name} {seq}");
                ranges.push((
                    ProtectedRange { policy, template, low, high, policy_routed },
                    r.protocol.number(),
                ));
            }
        }
    }
    ranges
}
