//! Hub limits (issue 13, finding 8; docs/DESIGN.md "Hub limits"): what the engine holds, shown
//! to the rules of crate `hub_limits` for a flow a branch proposes through a template (answered
//! with INVALID-ID-INFORMATION on a conflict, NO-PROPOSAL-CHOSEN over a cap) and for a phase 1
//! of a template's peer (deleted over an IKE SA cap). A branch is the identity it
//! authenticated with. The checks scan the engine's other IKE SAs ([`OtherSas`]) once per QM1
//! of a template and once per phase 1 of a template peer.

use hub_limits::{Branch, FlowCheck, FlowRefusal, HubLimit, LimitRefusal, Tally};

use crate::config::{Config, PolicyConfig, TrafficSelector};
use crate::failure::{FailureReason, PolicyFailure};
use crate::proxy_id::covers;

/// One installed IPsec SA pair: its policy index, its flow, and whether a newer pair for the
/// same flow replaced it (a rekey).
pub(crate) type PairSummary<'a> = (usize, &'a TrafficSelector, bool);

/// The engine's IKE SAs other than the one handling the message, lent to it through `Ctx`.
pub(crate) trait OtherSas {
    /// Calls `f` with each other IKE SA and its installed pairs.
    fn each(&self, f: &mut dyn FnMut(&Branch<'_>, &mut dyn Iterator<Item = PairSummary<'_>>));
}

/// A branch for operator text: the configured peer's name and the identity or address.
fn describe(config: &Config, sa: &Branch<'_>) -> String {
    sa.describe(config.peers.get(sa.peer).map_or("?", |p| p.name.as_str()))
}

fn over_cap(config: &Config, me: &Branch<'_>, entry: &PolicyConfig, cap: (HubLimit, usize)) -> FailureReason {
    let (branch, policy) = (describe(config, me), entry.id.to_string());
    FailureReason::Policy(PolicyFailure::LimitReached(Box::new(LimitRefusal {
        branch,
        limit: cap.0,
        max: cap.1,
        policy,
    })))
}

/// Checks a flow `flow` a branch (`me`, holding the pairs `mine`) proposed for `policy`, when
/// that policy comes from a template: conflicts first, then the caps.
pub(crate) fn admit_flow(
    config: &Config,
    others: Option<&dyn OtherSas>,
    me: &Branch<'_>,
    mine: &mut dyn Iterator<Item = PairSummary<'_>>,
    policy: usize,
    flow: &TrafficSelector,
) -> Result<(), FailureReason> {
    let Some(entry) = config.policies.get(policy) else { return Ok(()) };
    let Some(template) = &entry.template else { return Ok(()) };
    // Only the first ACL rule covering the flow, naming exactly its destination, allows it.
    let rule = entry.selectors.iter().zip(&template.explicit_destinations).find(|(s, _)| covers(s, flow));
    let explicit = rule.is_some_and(|(s, named)| *named && s.remote == flow.remote);
    let ours = config.own_addresses.iter().copied().chain(config.peers.iter().map(|p| p.local_address));
    let mut check = FlowCheck::new(flow.remote.bounds(), explicit, ours);
    let mut tally = Tally::default();
    for (_, selector, replaced) in mine.filter(|pair| pair.0 == policy) {
        tally.pair(true, selector == flow, replaced);
    }
    others.into_iter().for_each(|others| {
        others.each(&mut |sa, pairs| {
            let mine = sa.same(me);
            // Authenticated peers only: a spoofed first message must not block a branch's flow.
            if !mine && sa.established && sa.remote != me.remote {
                check.other_peer(sa.remote, || describe(config, sa));
            }
            for (p, selector, replaced) in pairs {
                if !mine {
                    check.other_flow(selector.remote.bounds(), || {
                        (describe(config, sa), selector.to_string())
                    });
                }
                if p == policy {
                    tally.pair(mine, selector == flow, replaced);
                }
            }
        });
    });
    if let Some(conflict) = check.conflict() {
        let (branch, flow, policy) = (describe(config, me), flow.to_string(), entry.id.to_string());
        let refusal = FlowRefusal { branch, flow, conflict, policy };
        return Err(FailureReason::Policy(PolicyFailure::FlowRefused(Box::new(refusal))));
    }
    match tally.exceeded(&template.limits) {
        Some(cap) => Err(over_cap(config, me, entry, cap)),
        None => Ok(()),
    }
}

/// Checks that a phase 1 just completed with `me` keeps its template's IKE SA caps (the
/// first template entry of its peer, in policy order; other peers have none).
pub(crate) fn admit_ike_sa(
    config: &Config,
    others: &dyn OtherSas,
    me: &Branch<'_>,
) -> Result<(), FailureReason> {
    let entry = config.policies.iter().find(|p| p.peer == me.peer && p.template.is_some());
    let Some((entry, limits)) = entry.and_then(|p| Some((p, p.template.as_ref()?.limits))) else {
        return Ok(());
    };
    let (mut total, mut branch) = (1, 1);
    others.each(&mut |sa, _| {
        if sa.peer == me.peer && sa.established {
            total += 1;
            branch += usize::from(sa.same(me));
        }
    });
    match limits.ike_sa_cap(branch, total) {
        Some(cap) => Err(over_cap(config, me, entry, cap)),
        None => Ok(()),
    }
}
