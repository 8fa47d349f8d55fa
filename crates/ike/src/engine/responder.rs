//! Responder admission and the first steps of a new IKE SA: which configured peer a first
//! message is for, admission by memory into the half-open table (`engine::half_open`: the
//! oldest half-open SAs make room, no newcomer is refused), and what follows when phase 1
//! completes (INITIAL-CONTACT's effect is `initial_contact`).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use isakmp::{Cookie, ExchangeType, Message, PayloadType};

use crate::engine::endpoint::Engine;
use crate::event::{Event, Exchange, Failure};
use crate::failure::{FailureReason, PolicyFailure};
use crate::ike_sa::{IkeSa, Phase1};
use crate::informational;
use crate::sa::context::ReceivedMessage;
use crate::sa::core::SaIdentity;

impl Engine {
    /// True when no established IKE SA with this peer exists: our next phase 1 with it then
    /// carries INITIAL-CONTACT (RFC 2407 §4.6.3.3), telling it to forget stale SAs.
    pub(super) fn first_contact(&self, peer: usize, remote: SocketAddr) -> bool {
        let ip = remote.ip();
        let first = !self.address_slots(peer, ip).any(|(_, sa)| sa.is_established());
        #[cfg(test)]
        assert_eq!(first, !self.peer_slots(peer).any(|(_, sa)| sa.remote.ip() == ip && sa.is_established()));
        first
    }

    /// The SAs of configured peer `peer` at remote address `ip` that are established, ours
    /// or hold acquires (not a half-open responder's), oldest first as in the per-peer index:
    /// through the census, not a walk of the peer's SAs (on a hub, every branch's).
    pub(crate) fn address_slots(
        &self,
        peer: usize,
        ip: IpAddr,
    ) -> impl Iterator<Item = (usize, &IkeSa)> + '_ {
        let found = self.census.at_address(peer, ip).iter();
        let found = found.filter_map(|&slot| Some((slot, self.slots.get(slot)?.as_deref()?)));
        let mut found: Vec<(usize, &IkeSa)> =
            found.filter(|(_, sa)| sa.peer == peer && sa.remote.ip() == ip).collect();
        found.sort_unstable_by_key(|(_, sa)| sa.connection);
        found.into_iter()
    }

    /// The SAs of configured peer `peer`, through the per-peer index.
    pub(super) fn peer_slots(&self, peer: usize) -> impl Iterator<Item = (usize, &IkeSa)> + '_ {
        self.slots_by_peer
            .get(&peer)
            .into_iter()
            .flatten()
            .filter_map(|&slot| Some((slot, self.slots.get(slot)?.as_deref()?)))
            .filter(move |(_, sa)| sa.peer == peer)
    }

    /// An MM1 or AM1 for no known SA: the accept/refuse decision point, taken before any
    /// Diffie-Hellman work.
    pub(super) fn new_responder(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        received: ReceivedMessage<'_>,
    ) {
        let message = received.message;
        let aggressive = message.header.exchange_type == ExchangeType::Aggressive;
        let (exchange, state) = if aggressive {
            (Exchange::AggressiveMode, "waiting for AM1")
        } else {
            (Exchange::MainMode, "waiting for MM1")
        };
        let refuse = |reason, peer: Option<usize>, engine: &mut Self| {
            let peer = peer.map(|p| engine.config.peers[p].name.clone());
            let failure = Failure { peer, remote, exchange, state, reason, unauthenticated: true };
            engine.out.events.push_back(Event::Failed(failure));
        };
        let Some(peer) = self.admit(now, &received, remote, aggressive, refuse) else { return };
        let connection = self.next_connection();
        let identity = SaIdentity { connection, peer, local, remote };
        let mut ctx = self.ctx(now, Some((local, remote)));
        let responded = if aggressive {
            IkeSa::respond_aggressive(identity, received, &mut ctx)
        } else {
            IkeSa::respond(identity, received, &mut ctx)
        };
        match responded {
            Ok(sa) => {
                let slot = self.free.pop().unwrap_or_else(|| {
                    self.slots.push(None);
                    self.armed.push(None);
                    self.slots.len() - 1
                });
                self.by_cookie.insert(sa.our_cookie(), slot);
                self.by_connection.insert(sa.connection, slot);
                self.responder_first.insert((sa.cookie_i, remote), slot);
                self.slots_by_peer.entry(peer).or_default().push(slot);
                self.half_open.admit(slot, super::half_open::charge(&sa));
                self.slots[slot] = Some(Box::new(sa));
                self.rearm(slot);
                self.fit_half_open(Some(slot), now);
            }
            Err(reason) => {
                informational::notify_unauthenticated(
                    local,
                    remote,
                    message.header.initiator_cookie,
                    Cookie::default(),
                    &reason,
                    &mut ctx,
                );
                ctx.out.events.push_back(Event::Failed(Failure {
                    peer: Some(ctx.config.peers[peer].name.clone()),
                    remote,
                    exchange,
                    state,
                    reason,
                    unauthenticated: true,
                }));
            }
        }
    }

    /// The peer a first message (MM1 / AM1) is for: in aggressive mode by the identity in
    /// clear (the key is chosen by it, notes pitfall 15), else by the address; an address no
    /// peer names falls to the template peer, if there is one.
    fn responder_peer(&self, message: &Message<'_>, remote: SocketAddr, aggressive: bool) -> Option<usize> {
        if !aggressive {
            // Main mode shows no identity before the key is needed: the address decides.
            return self.peer_by_address.get(&remote.ip()).copied().or_else(|| self.config.template_peer());
        }
        let identity = message.payloads().iter().find_map(|p| match p {
            isakmp::Payload::Identification(id) => Some(&id.identity),
            _ => None,
        });
        identity
            .and_then(|identity| self.config.peer_for_identity(identity, remote.ip()))
            .or_else(|| self.peer_by_address.get(&remote.ip()).copied())
            .or_else(|| self.config.template_peer())
    }

    /// Responder admission, before any work: aggressive mode only where accepted and within its
    /// rate limit, an SA payload a half-open SA may keep, a configured peer (no cap by count or
    /// address). A refusal is reported with `refuse` (reason, peer selected), with no reply.
    fn admit(
        &mut self,
        now: Instant,
        received: &ReceivedMessage<'_>,
        remote: SocketAddr,
        aggressive: bool,
        refuse: impl Fn(FailureReason, Option<usize>, &mut Self),
    ) -> Option<usize> {
        let ReceivedMessage { message, datagram, .. } = *received;
        let peer = self.responder_peer(message, remote, aggressive);
        if aggressive {
            if let Err(reason) = self.admit_aggressive(now, peer, remote) {
                refuse(FailureReason::Policy(reason), peer, self);
                return None;
            }
        }
        // The SA payload's body is kept until the hashes (HASH_I, HASH_R) are computed.
        let sa_payload = crate::wire::raw_body(
            message.first_payload(),
            crate::wire::body_of(datagram),
            PayloadType::SecurityAssociation,
        )
        .map_or(0, <[u8]>::len);
        let limit = self.config.limits.max_first_sa_payload;
        if sa_payload > limit {
            self.stats.oversized_sa_payloads += 1;
            refuse(
                FailureReason::Policy(PolicyFailure::SaPayloadTooLarge { size: sa_payload, limit }),
                peer,
                self,
            );
            return None;
        }
        if peer.is_none() {
            refuse(FailureReason::Policy(PolicyFailure::UnknownPeer), None, self);
        }
        if let Some(reason) = peer.and_then(|p| self.not_in_user_table(p, message, remote, aggressive)) {
            refuse(FailureReason::Policy(reason), peer, self);
            return None;
        }
        peer
    }

    /// A peer with a user table (`PeerConfig::site_keys`) answers only the sites in it: main
    /// mode looks the site up by source address, aggressive mode by the identity in AM1.
    fn not_in_user_table(
        &self,
        peer: usize,
        message: &Message<'_>,
        remote: SocketAddr,
        aggressive: bool,
    ) -> Option<PolicyFailure> {
        let config = &self.config.peers[peer];
        if config.site_keys.is_empty() {
            return None;
        }
        let identity = message.payloads().iter().find_map(|p| match p {
            isakmp::Payload::Identification(id) => Some(&id.identity),
            _ => None,
        });
        match (aggressive, identity) {
            (false, _) if config.site_key(remote.ip(), None).is_none() => {
                Some(PolicyFailure::NotInUserTable { site: format!("address {}", remote.ip()) })
            }
            (true, Some(identity)) if config.site_key(remote.ip(), Some(identity)).is_none() => {
                let site = format!("identity {}", crate::identity::describe_identity(identity));
                Some(PolicyFailure::NotInUserTable { site })
            }
            _ => None,
        }
    }

    /// An AM1 is answered only for a peer that accepts aggressive mode
    /// (`PeerConfig::accept_aggressive_mode`, from `exchange-mode aggressive` or `auto`), with
    /// pre-shared keys and signatures alike; an AM1 that selects no peer is refused as well,
    /// without telling why. Then within the responder's rate limit (`rate_limit`).
    fn admit_aggressive(
        &mut self,
        now: Instant,
        peer: Option<usize>,
        remote: SocketAddr,
    ) -> Result<(), PolicyFailure> {
        if !peer.is_some_and(|p| self.config.peers[p].accept_aggressive_mode) {
            let offers_psk = peer.is_none_or(|p| {
                self.config.peers[p].proposals.iter().any(|proposal| !proposal.auth_method.is_signature())
            });
            // With a pre-shared key the refusal also names the offline brute-force risk.
            return Err(if offers_psk {
                PolicyFailure::AggressiveModePskRefused
            } else {
                PolicyFailure::AggressiveModeNotConfigured
            });
        }
        if !self.aggressive_budget.take(remote.ip(), now, &self.config.limits) {
            self.stats.aggressive_mode_rate_limited += 1;
            return Err(PolicyFailure::AggressiveModeRateLimited);
        }
        Ok(())
    }

    /// Phase 1 completed on `slot`: start the quick modes that were waiting for it.
    pub(super) fn phase1_done(&mut self, slot: usize, now: Instant) {
        // Authenticated: no longer half-open. The first-message route stays until the SA goes
        // (see `responder_first`).
        self.half_open.remove(slot);
        self.initial_contact(slot, now);
        if !self.keeps_ike_sa_caps(slot, now) {
            return;
        }
        // Traffic that waits for phase 1 with this peer on another SA of ours still
        // negotiating goes through whichever SA is up first: this one.
        let waiting = self.waiting_elsewhere(slot);
        self.with_sa(slot, now, |sa, ctx| {
            sa.pending.extend(waiting);
            for acquire in std::mem::take(&mut sa.pending) {
                if let Err(reason) = sa.start_quick_mode(acquire, ctx) {
                    let failure = sa.failure(Exchange::QuickMode, "starting", reason, ctx.config);
                    ctx.out.events.push_back(Event::Failed(failure));
                }
            }
        });
        self.ike_sa_established(slot, now);
    }

    /// The acquires waiting on the other SAs, still negotiating phase 1, with the same peer
    /// and address as the SA in `slot`, taken from them (that SA just came up and serves them).
    fn waiting_elsewhere(&mut self, slot: usize) -> Vec<crate::event::Acquire> {
        let Some(sa) = self.slots.get(slot).and_then(Option::as_ref) else { return Vec::new() };
        let (peer, ip) = (sa.peer, sa.remote.ip());
        let others = self.address_slots(peer, ip).filter(|(other, s)| *other != slot && !s.is_established());
        let others: Vec<usize> = others.map(|(o, _)| o).collect();
        let slots = &mut self.slots;
        others
            .iter()
            .flat_map(|&o| slots[o].as_mut().map(|sa| std::mem::take(&mut sa.pending)))
            .flatten()
            .collect()
    }

    /// Evicts the oldest half-open SAs (never `keep`) until the table is within its budget,
    /// silently: each is counted, not logged (a flood would make every one a line). A real
    /// peer's retransmitted MM1 is admitted anew; later in the exchange it starts over.
    pub(super) fn fit_half_open(&mut self, keep: Option<usize>, now: Instant) {
        while self.half_open.bytes() > self.config.limits.half_open_memory_budget {
            let Some(oldest) = self.half_open.oldest_except(keep) else { break };
            match self.slots.get_mut(oldest).and_then(Option::as_mut) {
                Some(sa) => sa.phase1 = Phase1::Failed,
                None => {
                    self.half_open.remove(oldest);
                    continue;
                }
            }
            self.stats.half_open_evicted += 1;
            self.reap(oldest, now);
        }
    }
}
