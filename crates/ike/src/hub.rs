//! Hub limits (issue 13, finding 8): what a branch may make through a policy template.
//!
//! A template accepts any flow its ACL covers, and a template without an ACL any flow at all
//! (vrp-cli.md §2.7). Every branch authenticates with the template's key, so one branch must
//! not be able to take traffic that is not its own. The responder refuses a proposed flow
//! whose remote side (the branch's networks)
//!
//! - is every address: the hub would route all its traffic into the tunnel;
//! - contains one of the hub's own addresses (its interface addresses, every peer's
//!   `local_address`);
//! - overlaps a flow installed with another peer, or contains another peer's gateway address,
//!
//! unless the first ACL rule of the template that covers the flow names exactly that
//! destination as an address (`destination 0.0.0.0 255.255.255.255` rather than `any`): the
//! operator then asked for it. The refusal is answered with INVALID-ID-INFORMATION (RFC 2408
//! §3.14.1: the proxy identities are what is refused; strongSwan reports it and gives up the
//! CHILD_SA).
//!
//! Caps ([`HubLimits`]): IKE SAs, IPsec SA pairs and flows, per template and per peer. A peer
//! is one branch: the identity it authenticated with (several branches behind one NAT are
//! told apart; a branch whose address changes stays itself). A quick mode over a cap is
//! answered with NO-PROPOSAL-CHOSEN (IKEv1 has no "no additional SAs"); a rekey of a flow the
//! branch has (at most two pairs per flow) passes the IPsec SA caps, so a full hub keeps the
//! tunnels it has. A phase 1 over an IKE SA cap is deleted as soon as it completes (the
//! identity is known only then) and reported. Quick modes still waiting for QM3 are not
//! counted: at most `Limits::max_quick_modes_per_sa` more per IKE SA.
//!
//! The checks scan the engine's other IKE SAs and their pairs ([`OtherSas`]), once per QM1 of
//! a template and once per phase 1 of a template peer: linear in the SAs a hub holds, which
//! is what a quick mode also costs in key derivation at 100,000 flows.

use std::net::{IpAddr, Ipv4Addr};

use crate::config::{Addresses, Config, HubLimits, TrafficSelector};
use crate::failure::{FailureReason, FlowConflict, FlowRefusal, HubLimit, LimitRefusal, PolicyFailure};
use crate::identity::PeerIdentity;
use crate::proxy_id::covers;

/// One IKE SA as the checks see it.
pub(crate) struct SaSummary<'a> {
    /// Index of its peer in `Config::peers`.
    pub(crate) peer: usize,
    /// Phase 1 is complete.
    pub(crate) established: bool,
    /// The identity the peer authenticated with.
    pub(crate) identity: Option<&'a PeerIdentity>,
    /// The peer's gateway address.
    pub(crate) remote: IpAddr,
}

/// One installed IPsec SA pair: its policy index, its flow, and whether a newer pair for the
/// same flow replaced it (a rekey).
pub(crate) type PairSummary<'a> = (usize, &'a TrafficSelector, bool);

/// The engine's IKE SAs other than the one handling the message, lent to it through `Ctx`.
pub(crate) trait OtherSas {
    /// Calls `f` with each other IKE SA and its installed pairs.
    fn each(&self, f: &mut dyn FnMut(&SaSummary<'_>, &mut dyn Iterator<Item = PairSummary<'_>>));
}

/// The same branch: the same configured peer and the same authenticated identity (or, before
/// an identity is known, the same address).
fn same_branch(a: &SaSummary<'_>, b: &SaSummary<'_>) -> bool {
    a.peer == b.peer
        && match (a.identity, b.identity) {
            (Some(x), Some(y)) => x == y,
            _ => a.remote == b.remote,
        }
}

/// A branch for operator text: the configured peer's name and the identity or address.
pub(crate) fn describe(config: &Config, sa: &SaSummary<'_>) -> String {
    let name = config.peers.get(sa.peer).map_or("?", |p| p.name.as_str());
    match sa.identity {
        Some(id) => format!("peer {name} ({} {} at {})", id.kind.to_lowercase(), id.value, sa.remote),
        None => format!("peer {name} ({})", sa.remote),
    }
}

/// True when `side` contains `address` (an IPv4 address; the engine has no IPv6 flows yet).
fn contains_ip(side: &Addresses, address: IpAddr) -> bool {
    matches!(address, IpAddr::V4(a) if side.contains_address(a))
}

fn overlaps(a: &Addresses, b: &Addresses) -> bool {
    let ((a1, a2), (b1, b2)) = (a.bounds(), b.bounds());
    a1 <= b2 && b1 <= a2
}

/// What the proposing branch and the whole template hold under the template's policy.
#[derive(Default)]
struct Tally {
    template_pairs: usize,
    template_flows: usize,
    branch_pairs: usize,
    branch_flows: usize,
    /// The branch's pairs for exactly the proposed flow (a rekey when not zero).
    branch_same_flow: usize,
}

impl Tally {
    fn count(
        &mut self,
        (policy, selector, replaced): PairSummary<'_>,
        of: usize,
        flow: &TrafficSelector,
        mine: bool,
    ) {
        if policy != of {
            return;
        }
        self.template_pairs += 1;
        self.template_flows += usize::from(!replaced);
        if mine {
            self.branch_pairs += 1;
            self.branch_flows += usize::from(!replaced);
            self.branch_same_flow += usize::from(selector == flow);
        }
    }

    /// The first cap the proposed flow would exceed.
    fn exceeded(&self, limits: &HubLimits) -> Option<(HubLimit, usize)> {
        let rekey = self.branch_same_flow > 0;
        if !rekey && self.branch_flows >= limits.per_peer_flows {
            return Some((HubLimit::PerPeerFlows, limits.per_peer_flows));
        }
        if !rekey && self.template_flows >= limits.flows {
            return Some((HubLimit::Flows, limits.flows));
        }
        if rekey && self.branch_same_flow < 2 {
            return None;
        }
        if self.branch_pairs >= limits.per_peer_ipsec_sas {
            return Some((HubLimit::PerPeerIpsecSas, limits.per_peer_ipsec_sas));
        }
        (self.template_pairs >= limits.ipsec_sas).then_some((HubLimit::IpsecSas, limits.ipsec_sas))
    }
}

/// Checks a flow `flow` a branch (`me`, holding the pairs `mine`) proposed for `policy`, when
/// that policy comes from a template: conflicts first, then the caps.
pub(crate) fn admit_flow(
    config: &Config,
    others: Option<&dyn OtherSas>,
    me: &SaSummary<'_>,
    mine: &mut dyn Iterator<Item = PairSummary<'_>>,
    policy: usize,
    flow: &TrafficSelector,
) -> Result<(), FailureReason> {
    let Some(entry) = config.policies.get(policy) else { return Ok(()) };
    let Some(template) = &entry.template else { return Ok(()) };
    let refused = |conflict| {
        let (branch, flow, policy) = (describe(config, me), flow.to_string(), entry.id.to_string());
        Err(FailureReason::Policy(PolicyFailure::FlowRefused(Box::new(FlowRefusal {
            branch,
            flow,
            conflict,
            policy,
        }))))
    };
    let rule = entry.selectors.iter().zip(&template.explicit_destinations).find(|(s, _)| covers(s, flow));
    let explicit = rule.is_some_and(|(s, named)| *named && s.remote == flow.remote);
    let everything = Addresses::range(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST);
    if !explicit && flow.remote.contains(&everything) {
        return refused(FlowConflict::DefaultRoute);
    }
    let ours = config.own_addresses.iter().copied().chain(config.peers.iter().map(|p| p.local_address));
    if let Some(address) = ours.filter(|_| !explicit).find(|a| contains_ip(&flow.remote, *a)) {
        return refused(FlowConflict::OwnAddress(address));
    }
    let mut tally = Tally::default();
    for pair in mine {
        tally.count(pair, policy, flow, true);
    }
    let mut conflict = None;
    if let Some(others) = others {
        others.each(&mut |sa, pairs| {
            let mine = same_branch(sa, me);
            // Authenticated peers only: a spoofed first message must not block a branch's flow.
            let other = !mine && sa.established && sa.remote != me.remote;
            if other && !explicit && contains_ip(&flow.remote, sa.remote) {
                let peer = describe(config, sa);
                conflict.get_or_insert(FlowConflict::PeerAddress { peer, address: sa.remote });
            }
            for pair in pairs {
                if !mine && !explicit && conflict.is_none() && overlaps(&pair.1.remote, &flow.remote) {
                    let (peer, flow) = (describe(config, sa), pair.1.to_string());
                    conflict = Some(FlowConflict::PeerFlow { peer, flow });
                }
                tally.count(pair, policy, flow, mine);
            }
        });
    }
    if let Some(conflict) = conflict {
        return refused(conflict);
    }
    match tally.exceeded(&template.limits) {
        Some((limit, max)) => {
            Err(FailureReason::Policy(PolicyFailure::LimitReached(Box::new(LimitRefusal {
                branch: describe(config, me),
                limit,
                max,
                policy: entry.id.to_string(),
            }))))
        }
        None => Ok(()),
    }
}

/// Checks that a phase 1 just completed with `me` keeps its template's IKE SA caps (the
/// first template entry of its peer, in policy order; other peers have none).
pub(crate) fn admit_ike_sa(
    config: &Config,
    others: &dyn OtherSas,
    me: &SaSummary<'_>,
) -> Result<(), FailureReason> {
    let template = config.policies.iter().find(|p| p.peer == me.peer && p.template.is_some());
    let Some((entry, limits)) = template.and_then(|p| Some((p, p.template.as_ref()?.limits))) else {
        return Ok(());
    };
    let (mut total, mut branch) = (1, 1);
    others.each(&mut |sa, _| {
        if sa.peer == me.peer && sa.established {
            total += 1;
            branch += usize::from(same_branch(sa, me));
        }
    });
    let exceeded = if branch > limits.per_peer_ike_sas {
        Some((HubLimit::PerPeerIkeSas, limits.per_peer_ike_sas))
    } else {
        (total > limits.ike_sas).then_some((HubLimit::IkeSas, limits.ike_sas))
    };
    match exceeded {
        Some((limit, max)) => {
            Err(FailureReason::Policy(PolicyFailure::LimitReached(Box::new(LimitRefusal {
                branch: describe(config, me),
                limit,
                max,
                policy: entry.id.to_string(),
            }))))
        }
        None => Ok(()),
    }
}
