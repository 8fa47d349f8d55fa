//! Configuration reload on the engine: the SAs whose configuration did not change stay,
//! renumbered; the others are deleted as `reset` does (module `reconfigure` compares the
//! configurations).

use std::time::Instant;

use crate::config::Config;
use crate::engine::endpoint::Engine;
use crate::event::{Event, Exchange, IkeSaEnd, IpsecSaEnd};
use crate::failure::{FailureReason, PolicyFailure};
use crate::lifetime::{end_ike_sa, end_pairs};
use crate::reconfigure::ConfigDiff;

impl Engine {
    /// Puts `config` in force. IKE SAs of unchanged peers and IPsec SAs of unchanged policy
    /// entries stay, renumbered; the others are deleted with Delete payloads to the peer and
    /// reported as [`crate::Event::IkeSaExpired`] / [`crate::Event::IpsecSaExpired`] with
    /// reason `Reconfigured`. Drain `poll_transmit` and `poll_event` afterwards, as after any
    /// other input. The returned diff tells the data plane how policy indices moved.
    ///
    /// `config` must be valid (the caller checked the whole file first): this call cannot
    /// fail, so a reload is applied entirely or, when the caller's checks refused it, not at
    /// all.
    pub fn reconfigure(&mut self, now: Instant, config: Config) -> ConfigDiff {
        let mark = self.out.events.len();
        let diff = ConfigDiff::between(&self.config, &config);
        // First, under the old configuration (its peer names, the SAs' keys): end what changed.
        for slot in 0..self.slots.len() {
            let Some(sa) = self.slots[slot].as_ref() else { continue };
            if diff.peer(sa.peer).is_none() {
                self.with_sa(slot, now, |sa, ctx| {
                    if !sa.is_established() {
                        let state = sa.phase1.name();
                        let failure = sa.failure(
                            sa.phase1_exchange(),
                            state,
                            FailureReason::Policy(PolicyFailure::Reconfigured),
                            ctx.config,
                        );
                        ctx.out.events.push_back(Event::Failed(failure));
                    }
                    end_ike_sa(sa, IkeSaEnd::Reconfigured, ctx);
                });
                self.reap(slot, now);
                continue;
            }
            self.with_sa(slot, now, |sa, ctx| {
                let (kept, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut sa.lifetimes.pairs)
                    .into_iter()
                    .partition(|p| diff.policy(p.policy).is_some());
                sa.lifetimes.pairs = kept;
                end_pairs(sa, gone, Some(IpsecSaEnd::Reconfigured), true, ctx);
                // Quick modes under way for a policy that changed: abandoned, and said so.
                let mut index = 0;
                while index < sa.quick_modes.len() {
                    let mut probe = |p: usize| diff.policy(p);
                    let serves_kept = sa.quick_modes[index].serves_policy(&mut probe);
                    if serves_kept {
                        index += 1;
                        continue;
                    }
                    let state = sa.quick_modes.remove(index).state_name();
                    let failure = sa.failure(
                        Exchange::QuickMode,
                        state,
                        FailureReason::Policy(PolicyFailure::Reconfigured),
                        ctx.config,
                    );
                    ctx.out.events.push_back(Event::Failed(failure));
                }
            });
        }
        // Then renumber what stays to the new configuration's indices.
        for sa in self.slots.iter_mut().flatten() {
            let Some(peer) = diff.peer(sa.peer) else { continue };
            sa.peer = peer;
            for pair in &mut sa.lifetimes.pairs {
                if let Some(policy) = diff.policy(pair.policy) {
                    pair.policy = policy;
                }
            }
            sa.quick_modes.retain_mut(|q| q.renumber_policy(|p| diff.policy(p)));
            crate::quick_mode_end::release_if_idle(&mut sa.quick_modes);
            sa.pending.retain_mut(|acquire| match diff.policy(acquire.policy) {
                Some(policy) => {
                    acquire.policy = policy;
                    true
                }
                None => false,
            });
        }
        self.install_config(config);
        for slot in 0..self.slots.len() {
            self.rearm(slot);
        }
        self.after_input(now, mark);
        diff
    }
}
