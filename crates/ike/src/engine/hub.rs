//! The IKE SA caps of a policy template (`crate::hub`), checked when a responder's phase 1
//! completes: the branch's identity is known only then.

use std::time::Instant;

use crate::config::ExchangeMode;
use crate::engine::endpoint::{summary, Engine, Others};
use crate::event::{Event, Exchange, IkeSaEnd};
use crate::lifetime::end_ike_sa;
use crate::sa::core::Role;

impl Engine {
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
