//! The IKE SA caps of a policy template (`crate::hub`), checked when a responder's phase 1
//! completes: the branch's identity is known only then.

use std::time::Instant;

use crate::config::{ExchangeMode, HubLimits, PolicyId};
use crate::engine::endpoint::{summary, Engine, Others};
use crate::event::{Event, Exchange, IkeSaEnd};
use crate::lifetime::end_ike_sa;
use crate::sa::core::Role;
use crate::sa::lifetimes::Rekey;

/// What the branches of one policy template hold against its caps, for `display ipsec
/// statistics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateUsage {
    /// The template's policy entry.
    pub policy: PolicyId,
    /// Its caps.
    pub limits: HubLimits,
    /// Established IKE SAs of its peer.
    pub ike_sas: usize,
    /// Installed IPsec SA pairs under it.
    pub ipsec_sas: usize,
    /// Flows under it (pairs not replaced by a rekey).
    pub flows: usize,
    /// Distinct branches (identities) with an established IKE SA.
    pub peers: usize,
}

impl Engine {
    /// Usage against the caps of every policy template, in policy order.
    pub fn template_usage(&self) -> Vec<TemplateUsage> {
        let sas: Vec<_> = self.slots.iter().flatten().collect();
        let templates = self.config.policies.iter().enumerate();
        let templates = templates.filter_map(|(i, p)| Some((i, p, p.template.as_ref()?.limits)));
        templates
            .map(|(index, policy, limits)| {
                let of_peer: Vec<_> =
                    sas.iter().filter(|sa| sa.peer == policy.peer && sa.is_established()).collect();
                // A branch is its identity (its address when it has none), as for the caps.
                let mut identities: Vec<String> = of_peer
                    .iter()
                    .map(|sa| match &sa.remote_identity {
                        Some(id) => format!("{} {}", id.kind, id.value),
                        None => sa.remote.ip().to_string(),
                    })
                    .collect();
                identities.sort_unstable();
                identities.dedup();
                let pairs = sas.iter().flat_map(|sa| &sa.lifetimes.pairs).filter(|p| p.policy == index);
                let (ipsec_sas, flows) =
                    pairs.fold((0, 0), |(n, f), p| (n + 1, f + usize::from(p.rekey != Rekey::Replaced)));
                TemplateUsage {
                    policy: policy.id.clone(),
                    limits,
                    ike_sas: of_peer.len(),
                    ipsec_sas,
                    flows,
                    peers: identities.len(),
                }
            })
            .collect()
    }

    /// True when the IKE SA that just completed phase 1 in `slot` keeps its template's caps.
    /// Otherwise it is reported, deleted (a Delete goes to the branch) and removed.
    pub(super) fn keeps_ike_sa_caps(&mut self, slot: usize, now: Instant) -> bool {
        let Some(sa) = self.slots.get(slot).and_then(Option::as_ref) else { return false };
        if sa.role != Role::Responder {
            return true;
        }
        let others = Others { earlier: &self.slots[..slot], later: &self.slots[slot + 1..] };
        let Err(reason) = crate::hub::admit_ike_sa(&self.config, &others, &summary(sa)) else { return true };
        self.with_sa(slot, now, |sa, ctx| {
            let exchange = match sa.mode {
                ExchangeMode::Aggressive => Exchange::AggressiveMode,
                ExchangeMode::Main => Exchange::MainMode,
            };
            let failure = sa.failure(exchange, "established", reason, ctx.config);
            ctx.out.events.push_back(Event::Failed(failure));
            end_ike_sa(sa, IkeSaEnd::LimitReached, ctx);
        });
        self.reap(slot, now);
        false
    }
}
