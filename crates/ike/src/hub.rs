//! Hub limits (issue 13, finding 8; docs/DESIGN.md "Hub limits"): what the engine holds, shown
//! to the rules of crate `hub_limits`.

use hub_limits::{Branch, Holdings, Pairs, Proposal, Range, Refusal};

use crate::config::{Config, TrafficSelector};
use crate::failure::{FailureReason, PolicyFailure};
use crate::proxy_id::covers;
use crate::sa::context::Ctx;
use crate::sa::core::SaCore;
use crate::sa::lifetimes::Rekey;

impl hub_limits::Flow for TrafficSelector {
    fn remote(&self) -> Range {
        self.remote.bounds()
    }
}

/// An IKE SA's peer as the checks see it.
fn branch(sa: &SaCore) -> Branch<'_> {
    let identity = sa.remote_identity.as_ref().map(|id| (id.kind.as_str(), id.value.as_str()));
    Branch { peer: sa.peer, established: sa.established_at.is_some(), identity, remote: sa.remote.ip() }
}

/// An IKE SA's installed pairs as the checks see them.
fn pairs(sa: &SaCore) -> impl Iterator<Item = (usize, &TrafficSelector, bool)> {
    sa.lifetimes.pairs.iter().map(|p| (p.policy, &p.selector, p.rekey == Rekey::Replaced))
}

/// The IKE SAs before and after one slot (`T` is the engine's SA), lent to its handler.
pub(crate) struct Others<'s, T>(pub(crate) &'s [Option<T>], pub(crate) &'s [Option<T>]);

impl<T: std::ops::Deref<Target = SaCore>> Holdings<TrafficSelector> for Others<'_, T> {
    fn each(&self, f: &mut dyn FnMut(&Branch<'_>, Pairs<'_, '_, TrafficSelector>)) {
        for sa in self.0.iter().chain(self.1).flatten() {
            f(&branch(sa), &mut pairs(sa));
        }
    }
}

type Admitted = Result<(), FailureReason>;

fn names(config: &Config) -> impl Fn(usize) -> String + '_ {
    |peer| config.peers.get(peer).map_or_else(|| "?".to_owned(), |p| p.name.clone())
}

fn refused(refusal: Refusal) -> FailureReason {
    FailureReason::Policy(match refusal {
        Refusal::Flow(r) => PolicyFailure::FlowRefused(r),
        Refusal::Limit(r) => PolicyFailure::LimitReached(r),
    })
}

/// Checks a flow that the peer of `sa` proposed for `policy`, when that policy comes from a
/// template: its conflicts, then the caps.
pub(crate) fn admit_flow(sa: &SaCore, policy: usize, flow: &TrafficSelector, ctx: &Ctx<'_>) -> Admitted {
    let config = ctx.config;
    let Some((entry, template)) = config.policies.get(policy).and_then(|p| Some((p, p.template.as_ref()?)))
    else {
        return Ok(());
    };
    // Only the first ACL rule covering the flow, naming exactly its destination, allows it.
    let rule = entry.selectors.iter().zip(&template.explicit_destinations).find(|(s, _)| covers(s, flow));
    let explicit = rule.is_some_and(|(s, named)| *named && s.remote == flow.remote);
    let proposal =
        Proposal { policy: (policy, entry.id.to_string()), flow, explicit, limits: template.limits };
    let ours = config.own_addresses.iter().copied().chain(config.peers.iter().map(|p| p.local_address));
    let me = branch(sa);
    hub_limits::admit_flow(&proposal, &me, &names(config), ours, &mut pairs(sa), ctx.others).map_err(refused)
}

/// Checks that a phase 1 just completed with the peer of `sa` keeps the IKE SA caps of the
/// first template entry of its peer (other peers have none).
pub(crate) fn admit_ike_sa(config: &Config, others: &dyn Holdings<TrafficSelector>, sa: &SaCore) -> Admitted {
    let mut entries = config.policies.iter().filter(|p| p.peer == sa.peer);
    let Some((entry, t)) = entries.find_map(|p| Some((p, p.template.as_ref()?))) else { return Ok(()) };
    let me = branch(sa);
    hub_limits::admit_ike_sa(&t.limits, entry.id.to_string(), &me, &names(config), others).map_err(refused)
}
