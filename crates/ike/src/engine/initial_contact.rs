//! INITIAL-CONTACT (RFC 2407 §4.6.3.3) by identity, as strongSwan's `check_uniqueness` with
//! `force_replace` reads it: it clears older SAs between the same pair of phase-1 identities,
//! never those of other identities behind the same address (branches behind one carrier
//! NAT), a half-open SA, one established after the new one began, or one on which the peer
//! runs a quick mode; our quick modes on a cleared SA move to the new one (DESIGN.md).

use std::time::Instant;

use crate::engine::endpoint::Engine;
use crate::event::{Acquire, ClearReason, Event, Exchange};
use crate::identity::IdentityKey;
use crate::ike_sa::{IkeSa, Phase1};
use crate::quick_mode::QmState;

impl Engine {
    /// If the SA in `slot` just received an authenticated INITIAL-CONTACT, removes the other
    /// IKE SAs between the same pair of identities (see the module documentation), and tells
    /// the data plane to drop their IPsec SAs.
    pub(super) fn initial_contact(&mut self, slot: usize, now: Instant) {
        let Some(sa) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return };
        if !std::mem::take(&mut sa.initial_contact_received) {
            return;
        }
        let Some(sa) = self.slots[slot].as_ref() else { return };
        let (peer, replaced_by, started) = (sa.peer, sa.connection, sa.started_at);
        let pair = (self.local_identity(sa), sa.remote_identity_key.clone());
        // The candidates: the SAs with the same authenticated identity, from the census (on a
        // hub every branch is the same peer; a walk of the peer's SAs would visit them all).
        let candidates: Vec<(usize, &IkeSa)> = match super::census::identity_hash(sa) {
            Some(id) => {
                let slots = self.census.with_identity(peer, id).iter();
                let found = slots.filter_map(|&i| Some((i, self.slots.get(i)?.as_deref()?)));
                let mut found: Vec<(usize, &IkeSa)> = found.filter(|(_, o)| o.peer == peer).collect();
                // Oldest first, as the per-peer index lists them.
                found.sort_unstable_by_key(|(_, o)| o.connection);
                found
            }
            None => self.peer_slots(peer).collect(),
        };
        let stale: Vec<usize> = candidates
            .into_iter()
            .filter(|(i, old)| {
                *i != slot
                    && old.is_established()
                    && old.established_at.is_some_and(|at| at <= started)
                    && !peer_running_quick_mode(old)
                    && old.remote_identity_key == pair.1
                    && self.local_identity(old) == pair.0
            })
            .map(|(i, _)| i)
            .collect();
        let mut moved: Vec<Acquire> = Vec::new();
        for old in stale {
            if let Some(sa) = self.slots[old].as_mut() {
                self.out.events.push_back(Event::SasCleared {
                    connection: sa.connection,
                    peer: self.config.peers[sa.peer].name.clone(),
                    remote: sa.remote,
                    reason: ClearReason::InitialContact { replaced_by },
                });
                moved.extend(sa.quick_modes.iter().filter_map(|qm| qm.acquire().cloned()));
                sa.phase1 = Phase1::Failed;
            }
            self.reap(old, now);
        }
        // Our quick modes on the cleared SAs: the peer forgot them; negotiate their flows on
        // the SA that replaced them (unless it already waits to, or another SA serves them).
        moved.retain(|acquire| !self.flow_served(acquire, now));
        self.with_sa(slot, now, |sa, ctx| {
            for acquire in moved {
                if sa.pending.contains(&acquire) {
                    continue;
                }
                if let Err(reason) = sa.start_quick_mode(acquire, ctx) {
                    let failure = sa.failure(Exchange::QuickMode, "starting", reason, ctx.config);
                    ctx.out.events.push_back(Event::Failed(failure));
                }
            }
        });
    }

    /// Our phase-1 identity on `sa`, as bytes.
    fn local_identity(&self, sa: &IkeSa) -> IdentityKey {
        IdentityKey::of(&sa.local_identification(&self.config).identity)
    }
}

/// True when the peer started a quick mode on `sa` that is still running.
fn peer_running_quick_mode(sa: &IkeSa) -> bool {
    sa.quick_modes.iter().any(|qm| matches!(qm.state, QmState::ResponderWaitQm3(_)))
}
