//! What happens when lifetimes run out, for one IKE SA: renewal requests, IPsec SA expiry
//! with Deletes, rekeying quick modes, and the end of the IKE SA itself. The lifetime state
//! and its arithmetic are in `sa::lifetimes`; what spans several IKE SAs is the engine's.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use isakmp::{Delete, Doi, Payload, ProtocolId};

use crate::config::PolicyId;
use crate::engine::Engine;
use crate::event::{Acquire, Event, IkeSaEnd, IpsecSaEnd};
use crate::ike_sa::{IkeSa, Phase1};
use crate::sa::context::Ctx;
use crate::sa::core::Role;
use crate::sa::lifetimes::{
    judge_usage, later, InstalledPair, IpsecSaState, IpsecSaView, Rekey, Renewal, SaUsage,
};

/// The IKE SA with a peer that new quick modes should use: the newest established one that
/// has not been superseded, else one still negotiating phase 1 (the acquire waits for it).
/// `of_peer` are the peer's slots (the engine's index); among several still negotiating, the
/// lowest slot wins, as before the index existed.
pub(crate) fn preferred_ike_sa(
    slots: &[Option<IkeSa>],
    of_peer: &[usize],
    peer: usize,
    remote: SocketAddr,
) -> Option<usize> {
    let mut of_peer = of_peer.to_vec();
    of_peer.sort_unstable();
    let candidates = || {
        of_peer.iter().filter_map(|&slot| Some((slot, slots.get(slot)?.as_ref()?))).filter(|(_, sa)| {
            sa.peer == peer && sa.remote.ip() == remote.ip() && !matches!(sa.phase1, Phase1::Failed)
        })
    };
    candidates()
        .filter(|(_, sa)| sa.is_established() && sa.lifetimes.renewal != Renewal::Superseded)
        .max_by_key(|(_, sa)| sa.established_at)
        .or_else(|| candidates().find(|(_, sa)| !sa.is_established()))
        .or_else(|| candidates().next())
        .map(|(slot, _)| slot)
}

/// Arms the renewal of an IKE SA that was just established (`sa::lifetimes::arm_renewal`).
pub(crate) fn arm_ike_sa(sa: &mut IkeSa, ctx: &mut Ctx<'_>) {
    let Phase1::Established(established) = &sa.phase1 else { return };
    let lifetime = established.suite.lifetime;
    let preferred = sa.role == Role::Initiator;
    crate::sa::lifetimes::arm_renewal(&mut sa.lifetimes, lifetime, preferred, ctx);
}

/// Runs the lifetime timers of `sa` that are due: IKE SA renewal requests, IPsec SA hard
/// expiry (Delete sent, event) and soft expiry (a rekeying quick mode). The IKE SA's own
/// hard expiry is the engine's ([`Engine::lifetime_followups`]), because it may hand the
/// pairs to another IKE SA first.
pub(crate) fn on_timeout(sa: &mut IkeSa, ctx: &mut Ctx<'_>) {
    if !sa.is_established() {
        return;
    }
    let now = ctx.now;
    if sa.lifetimes.renew_at.is_some_and(|at| at <= now) {
        sa.lifetimes.renew_at = None;
        if sa.lifetimes.renewal == Renewal::Idle {
            sa.lifetimes.renewal = Renewal::Requested;
        }
    }
    if matches!(sa.lifetimes.renewal, Renewal::Started { retry_at } if retry_at <= now) {
        sa.lifetimes.renewal = Renewal::Requested;
    }
    let (expired, live): (Vec<_>, Vec<_>) =
        std::mem::take(&mut sa.lifetimes.pairs).into_iter().partition(|p| p.hard_at <= now);
    sa.lifetimes.pairs = live;
    end_pairs(sa, expired, None, true, ctx);

    let retry_at = later(now, ctx.config.limits.exchange_timeout);
    let mut rekeys = Vec::new();
    for pair in sa.lifetimes.pairs.iter_mut() {
        let due = match pair.rekey {
            Rekey::Idle => pair.soft_at <= now,
            Rekey::Started { retry_at } => retry_at <= now,
            Rekey::Replaced => false,
        };
        if due {
            pair.rekey = Rekey::Started { retry_at };
            rekeys.push(Acquire { policy: pair.policy, selector: pair.selector });
        }
    }
    for acquire in rekeys {
        if let Err(reason) = sa.start_quick_mode(acquire, ctx) {
            let failure = sa.failure(crate::event::Exchange::QuickMode, "rekeying", reason, ctx.config);
            ctx.out.events.push_back(Event::Failed(failure));
        }
    }
}

/// Ends `pairs`: a Delete for their inbound SPIs when `send_delete` (and the IKE SA can
/// still protect it), and one [`Event::IpsecSaExpired`] each. `reason` overrides each pair's
/// own reason.
pub(crate) fn end_pairs(
    sa: &IkeSa,
    pairs: Vec<InstalledPair>,
    reason: Option<IpsecSaEnd>,
    send_delete: bool,
    ctx: &mut Ctx<'_>,
) {
    if pairs.is_empty() {
        return;
    }
    if send_delete {
        // One Delete per protocol: ESP SPIs, and the AH SPIs of AH and AH+ESP pairs.
        let esp: Vec<[u8; 4]> = pairs
            .iter()
            .filter(|p| p.suite.proposal.protocols.esp().is_some())
            .map(|p| p.inbound_spi.to_be_bytes())
            .collect();
        let ah: Vec<[u8; 4]> = pairs.iter().filter_map(|p| p.ah_inbound_spi).map(u32::to_be_bytes).collect();
        let deletes: Vec<Payload<'_>> = [(ProtocolId::Esp, &esp), (ProtocolId::Ah, &ah)]
            .into_iter()
            .filter(|(_, spis)| !spis.is_empty())
            .map(|(protocol, spis)| {
                Payload::Delete(Delete {
                    doi: Doi::Ipsec,
                    protocol,
                    spi_size: 4,
                    spis: spis.iter().map(|s| &s[..]).collect(),
                })
            })
            .collect();
        sa.send_protected(&deletes, ctx);
    }
    for pair in pairs {
        ctx.out.events.push_back(Event::IpsecSaExpired {
            connection: sa.connection,
            peer: sa.peer_config(ctx.config).name.clone(),
            policy: pair.policy_id,
            inbound_spi: pair.inbound_spi,
            outbound_spi: pair.outbound_spi,
            reason: reason.unwrap_or(pair.hard_reason),
        });
    }
}

/// Ends an IKE SA on our side: Deletes for the IPsec SAs it still manages, then a Delete for
/// itself (protocol ISAKMP, SPI = CKY-I | CKY-R), the events, and the mark that makes the
/// engine remove it. An SA still negotiating phase 1 is simply abandoned.
pub(crate) fn end_ike_sa(sa: &mut IkeSa, reason: IkeSaEnd, ctx: &mut Ctx<'_>) {
    if sa.is_established() {
        let pairs = std::mem::take(&mut sa.lifetimes.pairs);
        let pair_reason = match reason {
            IkeSaEnd::Lifetime => IpsecSaEnd::IkeSaGone,
            IkeSaEnd::Reset => IpsecSaEnd::Reset,
            IkeSaEnd::Reconfigured => IpsecSaEnd::Reconfigured,
        };
        end_pairs(sa, pairs, Some(pair_reason), true, ctx);
        let mut spi = [0u8; 16];
        spi[..8].copy_from_slice(&sa.cookie_i.0);
        spi[8..].copy_from_slice(&sa.cookie_r.0);
        let delete = Delete { doi: Doi::Ipsec, protocol: ProtocolId::Isakmp, spi_size: 16, spis: vec![&spi] };
        sa.send_protected(&[Payload::Delete(delete)], ctx);
        ctx.out.events.push_back(Event::IkeSaExpired {
            connection: sa.connection,
            peer: sa.peer_config(ctx.config).name.clone(),
            remote: sa.remote,
            reason,
        });
    }
    sa.phase1 = Phase1::Failed;
}

impl Engine {
    /// The installed IPsec SA pairs, for `display ipsec sa`; `now` gives remaining lifetimes.
    pub fn ipsec_sas(&self, now: Instant) -> impl Iterator<Item = IpsecSaView> + '_ {
        self.slots.iter().flatten().flat_map(move |sa| {
            sa.lifetimes.pairs.iter().map(move |p| IpsecSaView {
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
            })
        })
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
        if let Phase1::Established(established) = &sa.phase1 {
            if established.expires_at <= now {
                if let Some(to) = self.successor(slot) {
                    self.adopt(slot, to);
                }
                self.with_sa(slot, now, |sa, ctx| end_ike_sa(sa, IkeSaEnd::Lifetime, ctx));
                return;
            }
        }
        if sa.lifetimes.renewal == Renewal::Requested {
            let (peer, local, remote) = (sa.peer, sa.local, sa.remote);
            let newer_exists = self.siblings(slot).into_iter().any(|other| {
                self.slots[other].as_ref().is_some_and(|s| {
                    !matches!(s.phase1, Phase1::Failed)
                        && s.lifetimes.renewal != Renewal::Superseded
                        && (!s.is_established() || s.established_at > sa.established_at)
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

    /// The other SAs (any state) with the same configured peer and address as the one in
    /// `slot`, from the engine's per-peer index.
    fn siblings(&self, slot: usize) -> Vec<usize> {
        let Some(sa) = self.slots.get(slot).and_then(Option::as_ref) else { return Vec::new() };
        self.slots_of_peer(sa.peer)
            .iter()
            .copied()
            .filter(|&other| other != slot)
            .filter(|&other| {
                self.slots
                    .get(other)
                    .and_then(Option::as_ref)
                    .is_some_and(|s| s.remote.ip() == sa.remote.ip())
            })
            .collect()
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
            .filter(|&other| self.slots[other].as_ref().is_some_and(IkeSa::is_established))
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
        self.slots_of_peer(peer).iter().filter_map(|&slot| self.slots.get(slot)?.as_ref()).any(|sa| {
            sa.lifetimes.serves(acquire, now) || sa.quick_modes.iter().any(|q| q.acquire() == Some(acquire))
        })
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
}
