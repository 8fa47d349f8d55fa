//! Hub limits (issue 13, finding 8; docs/DESIGN.md "Hub limits"): what the engine holds, shown
//! to the rules of crate `hub_limits`.

use hub_limits::{Holdings, Proposal, Range, Refusal};

use crate::config::{Config, TrafficSelector};
use crate::engine::census::{branch, pairs};
use crate::failure::{FailureReason, PolicyFailure};
use crate::proxy_id::covers;
use crate::sa::context::Ctx;
use crate::sa::core::SaCore;

impl hub_limits::Flow for TrafficSelector {
    fn remote(&self) -> Range {
        self.remote.bounds()
    }
}

/// Under test, every hub check is also answered by walking every SA (the holder's indices
/// set aside), and the two answers must agree: every engine test checks `engine::census`.
#[cfg(test)]
struct Walk<'a>(&'a dyn Holdings<TrafficSelector>);

#[cfg(test)]
impl Holdings<TrafficSelector> for Walk<'_> {
    fn each(&self, f: &mut dyn FnMut(&hub_limits::Branch<'_>, hub_limits::Pairs<'_, '_, TrafficSelector>)) {
        self.0.each(f)
    }
}

#[cfg(test)]
fn agree(indexed: &Admitted, walked: &Admitted) {
    let text = |a: &Admitted| a.as_ref().err().map(ToString::to_string);
    assert_eq!(text(indexed), text(walked), "the census and the walk disagree");
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
    let admitted =
        hub_limits::admit_flow(&proposal, &me, &names(config), ours.clone(), &mut pairs(sa), ctx.others)
            .map_err(refused);
    #[cfg(test)]
    {
        let walk = ctx.others.map(Walk);
        let others = walk.as_ref().map(|w| w as &dyn Holdings<TrafficSelector>);
        let walked = hub_limits::admit_flow(&proposal, &me, &names(config), ours, &mut pairs(sa), others);
        agree(&admitted, &walked.map_err(refused));
    }
    admitted
}

/// Checks that a phase 1 just completed with the peer of `sa` keeps the IKE SA caps of the
/// first template entry of its peer (other peers have none).
pub(crate) fn admit_ike_sa(config: &Config, others: &dyn Holdings<TrafficSelector>, sa: &SaCore) -> Admitted {
    let mut entries = config.policies.iter().filter(|p| p.peer == sa.peer);
    let Some((entry, t)) = entries.find_map(|p| Some((p, p.template.as_ref()?))) else { return Ok(()) };
    let me = branch(sa);
    let admitted = hub_limits::admit_ike_sa(&t.limits, entry.id.to_string(), &me, &names(config), others)
        .map_err(refused);
    #[cfg(test)]
    agree(
        &admitted,
        &hub_limits::admit_ike_sa(&t.limits, entry.id.to_string(), &me, &names(config), &Walk(others))
            .map_err(refused),
    );
    admitted
}
