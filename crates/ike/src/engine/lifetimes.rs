//! What lifetimes need beyond one IKE SA: the data plane's usage reports, the IPsec SA view
//! for `display ipsec sa`, the renewal of IKE SAs by a new main mode and the handover of
//! IPsec SAs to the newer IKE SA (module `lifetime` does what one SA does alone), and whether
//! a new IKE SA from a branch keeps its template's caps (module `hub`).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::census::Others;
use crate::config::{ExchangeMode, PolicyId};
use crate::engine::endpoint::Engine;
use crate::event::{Acquire, ConnectionId, Event, Exchange, IkeSaEnd, IpsecSaEnd};
use crate::hub::admit_ike_sa;
use crate::ike_sa::{IkeSa, Phase1};
use crate::lifetime::{arm_ike_sa, end_ike_sa, end_pairs, on_timeout};
use crate::sa::core::Role;
use crate::sa::lifetimes::{
    judge_usage, later, InstalledPair, IpsecSaState, IpsecSaView, Rekey, Renewal, SaUsage,
};
use crate::sa::timer::Timer;

impl Engine {
    /// What the exchanges did since the engine started: started, established, failed by
    /// reason, rekeys, DPD (counted as the events are polled; they only grow).
    pub fn exchange_counts(&self) -> crate::ExchangeCounts {
        self.out.tally
    }

    /// The IKE SAs and IPsec SA pairs by state, in one pass over the SAs (for the metrics: no
    /// display rows are built).
    pub fn sa_counts(&self, now: Instant) -> crate::SaCounts {
        let mut counts = crate::SaCounts::default();
        for sa in self.slots.iter().flatten() {
            match sa.phase1 {
                Phase1::Established(_) => counts.ike_established += 1,
                Phase1::Failed => {}
                _ => counts.ike_negotiating += 1,
            }
            for p in &sa.lifetimes.pairs {
                match p.rekey {
                    Rekey::Idle if p.soft_at > now => counts.ipsec_ready += 1,
                    Rekey::Idle | Rekey::Started { .. } => counts.ipsec_rekeying += 1,
                    Rekey::Replaced => counts.ipsec_replaced += 1,
                }
            }
        }
        counts
    }

    /// The installed IPsec SA pairs, for `display ipsec sa`; `now` gives remaining lifetimes.
    pub fn ipsec_sas(&self, now: Instant) -> impl Iterator<Item = IpsecSaView> + '_ {
        self.slots
            .iter()
            .flatten()
            .flat_map(move |sa| sa.lifetimes.pairs.iter().map(move |p| self.pair_view(sa, p, now)))
    }

    /// The installed IPsec SA pairs by conn-id and inbound SPI, from the first after `after`
    /// (all of them when `None`): a page of `display ipsec sa brief` walks its own pairs
    /// after one O(log N) step to its cursor.
    pub fn ipsec_sas_after(
        &self,
        now: Instant,
        after: Option<(ConnectionId, u32)>,
    ) -> impl Iterator<Item = IpsecSaView> + '_ {
        // The SA of the cursor itself may hold pairs after the cursor's SPI.
        let from = after.and_then(|(c, _)| c.0.checked_sub(1)).map(ConnectionId);
        self.sas_after(from).flat_map(move |sa| {
            let mut pairs: Vec<&InstalledPair> = sa
                .lifetimes
                .pairs
                .iter()
                .filter(|p| after.is_none_or(|a| (sa.connection, p.inbound_spi) > a))
                .collect();
            pairs.sort_unstable_by_key(|p| p.inbound_spi);
            pairs.into_iter().map(move |p| self.pair_view(sa, p, now))
        })
    }

    fn pair_view(&self, sa: &IkeSa, p: &InstalledPair, now: Instant) -> IpsecSaView {
        IpsecSaView {
            connection: sa.connection,
            peer: sa.peer_config(&self.config).name.clone(),
            local: sa.local,
            remote: sa.remote,
            policy: p.policy_id.clone(),
            selector: p.selector,
            suite: p.suite,
            inbound_spi: p.inbound_spi,
            outbound_spi: p.outbound_spi,
            ah_spis: p.ah_inbound_spi.zip(p.ah_outbound_spi),
            initiator: p.initiator,
            installed_at: p.installed_at,
            remaining: p.hard_at.saturating_duration_since(now),
            remaining_kilobytes: p.suite.lifetime_kilobytes.map(|kb| kb.saturating_sub(p.bytes / 1024)),
            state: match p.rekey {
                Rekey::Idle if p.soft_at > now => IpsecSaState::Ready,
                Rekey::Idle | Rekey::Started { .. } => IpsecSaState::Rekeying,
                Rekey::Replaced => IpsecSaState::Replaced,
            },
        }
    }

    /// The installed IPsec SA pairs and the lines `display ipsec sa brief` gives them (two
    /// a protocol: AH and ESP each one line a direction), for its header, without building
    /// a view of any.
    pub fn ipsec_sa_lines(&self) -> (usize, usize) {
        let mut totals = (0, 0);
        for p in self.slots.iter().flatten().flat_map(|sa| &sa.lifetimes.pairs) {
            let protocols = &p.suite.proposal.protocols;
            totals.0 += 1;
            let ah = protocols.ah().is_some() && p.ah_inbound_spi.zip(p.ah_outbound_spi).is_some();
            totals.1 += 2 * (usize::from(ah) + usize::from(protocols.esp().is_some()));
        }
        totals
    }

    /// The data plane's running totals per SA, each report naming an inbound or outbound SPI.
    /// Traffic lifetimes and sequence-number exhaustion are judged here: past the soft limit
    /// the pair is rekeyed, past the hard limit it is deleted (Delete sent,
    /// [`Event::IpsecSaExpired`]). Totals rather than increments, so a lost or repeated
    /// report does no harm; reports for unknown SPIs are ignored. One call walks the SA table
    /// once, so the data plane should batch its periodic reports (and may send a single one
    /// at once when an SA crosses a threshold it tracks itself).
    pub fn handle_sa_usage(&mut self, now: Instant, reports: &[(u32, SaUsage)]) {
        let mark = self.out.events.len();
        let by_spi: std::collections::HashMap<u32, SaUsage> = reports.iter().copied().collect();
        let mut touched = Vec::new();
        for (slot, sa) in self.slots.iter_mut().enumerate() {
            let Some(sa) = sa.as_mut() else { continue };
            let mut any = false;
            for pair in sa.lifetimes.pairs.iter_mut() {
                let inbound = by_spi.get(&pair.inbound_spi);
                let outbound = by_spi.get(&pair.outbound_spi);
                if inbound.is_none() && outbound.is_none() {
                    continue;
                }
                any = true;
                let bytes = inbound.iter().chain(outbound.iter()).map(|u| u.bytes).max().unwrap_or(0);
                let packets = outbound.map_or(0, |u| u.packets);
                judge_usage(pair, bytes, packets, now);
            }
            if any {
                touched.push(slot);
            }
        }
        for slot in touched {
            self.run_sa_timers(slot, now);
        }
        self.after_input(now, mark);
    }

    /// Runs every timer of the SA in `slot` (early runs are harmless: each checks its own
    /// deadline), then what only the engine can do, then removes it if it ended.
    pub(crate) fn run_sa_timers(&mut self, slot: usize, now: Instant) {
        self.with_sa(slot, now, |sa, ctx| {
            if sa.on_timeout(ctx) {
                on_timeout(sa, ctx);
            }
        });
        self.lifetime_followups(slot, now);
        self.reap(slot, now);
    }

    /// What lifetimes need beyond one SA: at an IKE SA's hard lifetime, its IPsec SAs go to a
    /// newer IKE SA with the same peer (if any) before it is deleted; at its soft lifetime a
    /// new main mode is started.
    pub(crate) fn lifetime_followups(&mut self, slot: usize, now: Instant) {
        let Some(sa) = self.slots.get(slot).and_then(Option::as_ref) else { return };
        if sa.is_established() && sa.timers.is_due(Timer::HardLifetime, now) {
            if let Some(to) = self.successor(slot) {
                self.adopt(slot, to);
            }
            self.with_sa(slot, now, |sa, ctx| end_ike_sa(sa, IkeSaEnd::Lifetime, ctx));
            return;
        }
        if sa.lifetimes.renewal == Renewal::Requested {
            let (peer, local, remote) = (sa.peer, sa.local, sa.remote);
            // A newer SA, or one of ours still negotiating, renews it already. A responder SA
            // whose peer has not authenticated does not: anyone can make one with a spoofed
            // MM1, and renewal must not wait for a peer that may not exist.
            let newer_exists = self.siblings(slot).into_iter().any(|other| {
                self.slots[other].as_ref().is_some_and(|s| {
                    !matches!(s.phase1, Phase1::Failed)
                        && s.lifetimes.renewal != Renewal::Superseded
                        && if s.is_established() {
                            s.established_at > sa.established_at
                        } else {
                            s.role == crate::sa::core::Role::Initiator
                        }
                })
            });
            let retry_at = later(now, self.config.limits.exchange_timeout);
            if let Some(sa) = self.slots[slot].as_mut() {
                sa.lifetimes.renewal = Renewal::Started { retry_at };
            }
            self.rearm(slot);
            if !newer_exists {
                // Phase 1 always starts on UDP 500, whatever port the old SA moved to.
                let local = SocketAddr::new(local.ip(), 500);
                let remote = SocketAddr::new(remote.ip(), 500);
                // The peer's configured exchange (main mode, or aggressive where configured).
                let mode = self.config.peers.get(peer).map(|p| p.exchange_mode).unwrap_or_default();
                self.out.tally.ike_rekeys += 1;
                let _ = self.initiate_phase1(now, peer, mode, local, remote);
            }
        }
    }

    /// The newest other established IKE SA with the same peer that is not expiring now.
    fn successor(&self, slot: usize) -> Option<usize> {
        self.siblings(slot)
            .into_iter()
            .filter_map(|other| Some((other, self.slots.get(other)?.as_ref()?)))
            .filter(|(_, s)| s.is_established() && s.lifetimes.renewal != Renewal::Superseded)
            .max_by_key(|(_, s)| s.established_at)
            .map(|(other, _)| other)
    }

    /// The other SAs with the same configured peer and address as the one in `slot`, oldest
    /// first, that are established or ours (every caller wants one of those; a half-open
    /// responder SA is neither), from the census.
    fn siblings(&self, slot: usize) -> Vec<usize> {
        let Some(sa) = self.slots.get(slot).and_then(Option::as_ref) else { return Vec::new() };
        let found = self.address_slots(sa.peer, sa.remote.ip()).map(|(other, _)| other);
        found.filter(|&other| other != slot).collect()
    }

    /// Moves the IPsec SA pairs of the IKE SA in `from` to the one in `to` (strongSwan's
    /// `adopt_children_job`): they keep working, and are rekeyed and deleted through `to`.
    fn adopt(&mut self, from: usize, to: usize) {
        let pairs = match self.slots.get_mut(from).and_then(Option::as_mut) {
            Some(sa) => std::mem::take(&mut sa.lifetimes.pairs),
            None => return,
        };
        if let Some(sa) = self.slots.get_mut(to).and_then(Option::as_mut) {
            sa.lifetimes.pairs.extend(pairs);
        }
        self.rearm(from);
        self.rearm(to);
    }

    /// A new IKE SA with a peer completed: it takes over the IPsec SAs of the older IKE SAs
    /// with that peer, which stop renewing and wait for their hard lifetime; its own renewal
    /// is armed.
    pub(crate) fn ike_sa_established(&mut self, slot: usize, now: Instant) {
        self.with_sa(slot, now, arm_ike_sa);
        let older: Vec<usize> = self
            .siblings(slot)
            .into_iter()
            .filter(|&other| self.slots[other].as_deref().is_some_and(IkeSa::is_established))
            .collect();
        for from in older {
            if let Some(sa) = self.slots[from].as_mut() {
                sa.lifetimes.renewal = Renewal::Superseded;
                sa.lifetimes.renew_at = None;
            }
            self.adopt(from, slot);
        }
    }

    /// Before an IKE SA is removed for any other reason than its lifetime (the peer deleted
    /// it, it failed, or — later — DPD found the peer dead or an INITIAL-CONTACT replaced
    /// it): the IPsec SAs it still manages end with it ([`IpsecSaEnd::IkeSaGone`]; no Delete,
    /// as the IKE SA that could protect one is what went away). They are not handed to a
    /// newer IKE SA here: a renewal hands them over when the new IKE SA is established
    /// ([`Engine::ike_sa_established`]) and at the old one's hard lifetime, and in the other
    /// cases the peer has lost or abandoned them.
    pub(crate) fn release_pairs(&mut self, slot: usize, now: Instant) {
        let has_pairs =
            self.slots.get(slot).and_then(Option::as_ref).is_some_and(|sa| !sa.lifetimes.pairs.is_empty());
        if !has_pairs {
            return;
        }
        self.with_sa(slot, now, |sa, ctx| {
            let pairs = std::mem::take(&mut sa.lifetimes.pairs);
            end_pairs(sa, pairs, Some(IpsecSaEnd::IkeSaGone), false, ctx);
        });
    }

    /// The peer deleted IPsec SAs (the events from `mark` on, after an informational message
    /// on the SA in `slot`): they leave our table, whichever IKE SA with that peer manages
    /// them now.
    pub(crate) fn forget_deleted_pairs(&mut self, slot: usize, mark: usize) {
        let spis: Vec<u32> = self
            .out
            .events
            .iter()
            .skip(mark)
            .filter_map(|e| match e {
                Event::IpsecSaDeleted { spis, .. } => Some(spis.iter().copied()),
                _ => None,
            })
            .flatten()
            .collect();
        if spis.is_empty() {
            return;
        }
        for slot in std::iter::once(slot).chain(self.siblings(slot)) {
            if let Some(sa) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                sa.lifetimes.pairs.retain(|p| !spis.contains(&p.outbound_spi));
            }
            self.rearm(slot);
        }
    }

    /// True when a live pair or a quick mode under way already serves `acquire`'s flow with
    /// the peer, so a repeated acquire (traffic keeps arriving) starts nothing new.
    pub(crate) fn flow_served(&self, acquire: &Acquire, now: Instant) -> bool {
        let Some(peer) = self.config.policies.get(acquire.policy).map(|p| p.peer) else { return false };
        self.slots_of_peer(peer)
            .iter()
            .filter_map(|&slot| self.slots.get(slot)?.as_ref())
            .any(|sa| sa.lifetimes.serves(acquire, now) || sa.quick_modes.iter().any(|q| q.serves(acquire)))
    }

    /// Pairs matching a `reset ipsec sa` filter end on our side: Deletes sent, events.
    pub(crate) fn reset_pairs(&mut self, now: Instant, remote: Option<IpAddr>, policy: Option<&PolicyId>) {
        for slot in 0..self.slots.len() {
            self.with_sa(slot, now, |sa, ctx| {
                if remote.is_some_and(|r| r != sa.remote.ip()) {
                    return;
                }
                let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut sa.lifetimes.pairs)
                    .into_iter()
                    .partition(|p| policy.is_none_or(|id| *id == p.policy_id));
                sa.lifetimes.pairs = kept;
                end_pairs(sa, gone, Some(IpsecSaEnd::Reset), true, ctx);
            });
        }
    }

    /// True when the IKE SA that just completed phase 1 in `slot` keeps its template's caps.
    /// Otherwise it is reported, deleted (a Delete goes to the branch) and removed.
    pub(super) fn keeps_ike_sa_caps(&mut self, slot: usize, now: Instant) -> bool {
        // Only branches are capped: our own initiations follow our configuration.
        let Some(sa) = self.slots[slot].as_ref().filter(|sa| sa.role == Role::Responder) else { return true };
        let others =
            Others { earlier: &self.slots[..slot], later: &self.slots[slot + 1..], census: &self.census };
        let Err(reason) = admit_ike_sa(&self.config, &others, sa) else { return true };
        self.with_sa(slot, now, |sa, ctx| {
            let aggressive = sa.mode == ExchangeMode::Aggressive;
            let exchange = if aggressive { Exchange::AggressiveMode } else { Exchange::MainMode };
            ctx.out.events.push_back(Event::Failed(sa.failure(exchange, "established", reason, ctx.config)));
            end_ike_sa(sa, IkeSaEnd::LimitReached, ctx);
        });
        self.reap(slot, now);
        false
    }
}
