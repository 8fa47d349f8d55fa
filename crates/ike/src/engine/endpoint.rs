//! The engine: routes datagrams to IKE SAs by cookie, starts exchanges for acquires, runs
//! timers, and hands out what to send and what happened. It never touches a socket, a clock
//! or the system's random generator: time and randomness come in as arguments (DESIGN.md,
//! "The sans-IO engine"), the way quinn-proto's `Endpoint` works.
//!
//! Call order for a driver: after every `handle_*` call, drain [`Engine::poll_transmit`] and
//! [`Engine::poll_event`], then wait until [`Engine::poll_timeout`] (or the next input) and
//! call [`Engine::handle_timeout`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crypto::{HashAlgorithm, HashFunction, SecureRandom};
use isakmp::{Cookie, ExchangeType, Message};

use crate::commands::ErrorHistory;
use crate::config::{Config, ExchangeMode};
use crate::event::Acquire;
use crate::event::{ConnectionId, Event, Exchange, Failure, Transmit};
use crate::ike_sa::{IkeSa, Phase1};
use crate::sa::context::{Ctx, Output, ReceivedMessage};
use crate::sa::core::{Role, SaIdentity};

use super::census::{Census, Others};
use super::half_open::{self, HalfOpenTable};

/// Counters of what the engine refused, for `display ike statistics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Statistics {
    /// Datagrams that did not parse as ISAKMP.
    pub malformed: u64,
    /// Datagrams for no known SA.
    pub unknown_sa: u64,
    /// Half-open responder SAs evicted, oldest first, to keep within
    /// [`crate::Limits::half_open_memory_budget`]: a rising count means a flood of first messages.
    pub half_open_evicted: u64,
    /// First messages refused because their SA payload is larger than
    /// [`crate::Limits::max_first_sa_payload`].
    pub oversized_sa_payloads: u64,
    /// Fragments that arrived for no IKE SA, with fragmentation off, or whose partial message
    /// was discarded (too many, too large, inconsistent).
    pub fragments_discarded: u64,
    /// Authenticated-looking quick-mode and informational messages dropped because their
    /// message ID was used already on that IKE SA (replays).
    pub replays_dropped: u64,
    /// Message IDs an IKE SA forgot because it had remembered its maximum (4,096 per kind):
    /// replays of those are no longer recognised.
    pub message_ids_forgotten: u64,
    /// ESP or AH packets on an SPI we do not know, as the driver reported them
    /// ([`Engine::handle_unknown_spi`]).
    pub unknown_spi_reported: u64,
    /// N(INVALID-SPI) sent under an IKE SA in answer to those.
    pub invalid_spi_sent: u64,
    /// N(INVALID-COOKIE) sent in answer to IKE messages for unknown cookies.
    pub invalid_cookie_sent: u64,
    /// IKE SAs started because a configured peer used an SA we do not have (after a restart).
    pub recoveries_started: u64,
    /// Answers to unknown SPIs or cookies left out by the rate limits.
    pub answers_rate_limited: u64,
    /// Messages for a known IKE SA dropped because they could not be authenticated (did not
    /// decrypt, HASH or signature did not verify, error notify in clear): they never change
    /// an SA, and the exchange goes on.
    pub unauthenticated_dropped: u64,
    /// First aggressive-mode messages refused by the responder's rate limit
    /// ([`crate::Limits::aggressive_mode_responses_per_second`]).
    pub aggressive_mode_rate_limited: u64,
}

/// The half-open responder SAs at one moment ([`Engine::half_open`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HalfOpenUsage {
    /// How many there are.
    pub entries: usize,
    /// The bytes charged to them together.
    pub bytes: usize,
    /// The most they may hold together (`Limits::half_open_memory_budget`).
    pub budget: usize,
}

impl HalfOpenUsage {
    /// The most half-open SAs the budget holds: each is charged at least its fixed size and
    /// index entries (one larger than the whole budget is still kept).
    pub fn max_entries(&self) -> usize {
        (self.budget / half_open::ENTRY_OVERHEAD).max(1)
    }
}

/// The IKEv1 engine. See the module documentation for the calling convention.
pub struct Engine {
    pub(crate) config: Config,
    pub(crate) rng: Box<dyn SecureRandom + Send>,
    pub(crate) slots: Vec<Option<Box<IkeSa>>>,
    pub(crate) free: Vec<usize>,
    /// Our cookie → slot.
    pub(crate) by_cookie: HashMap<Cookie, usize>,
    /// Connection ID → slot, for inputs from the data plane ([`Engine::handle_traffic`]);
    /// ordered, so that a page of the SA displays starts at its cursor
    /// ([`Engine::ike_sas_after`]).
    pub(crate) by_connection: BTreeMap<ConnectionId, usize>,
    /// (initiator cookie, peer) of SAs we answered, to recognise repeated MM1s / AM1s. Kept
    /// until the SA goes, so a late duplicate of the first message reaches the established SA
    /// (which drops it) instead of starting a second, half-open one.
    pub(crate) responder_first: HashMap<(Cookie, SocketAddr), usize>,
    /// Slots per configured peer (index in `Config::peers`), so that an acquire finds the
    /// peer's SA without scanning every SA.
    pub(crate) slots_by_peer: HashMap<usize, Vec<usize>>,
    /// The SAs indexed for the hub checks and the per-address searches (`engine::census`).
    pub(crate) census: Census,
    /// The first configured peer of each remote address (`Config::peer_for_address`, indexed).
    pub(crate) peer_by_address: HashMap<IpAddr, usize>,
    /// Policy indices per peer index (`Config::policies_of_peer`, indexed), lent to `Ctx`.
    pub(crate) policies_by_peer: Vec<Vec<usize>>,
    /// (deadline, slot, generation); stale entries are skipped, a live one may be early (`rearm`).
    pub(crate) timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    pub(crate) armed: Vec<Option<(Instant, u64)>>,
    pub(crate) generation: u64,
    pub(crate) next_connection: u64,
    /// The half-open responder SAs, oldest first, and their charges (`engine::half_open`).
    pub(crate) half_open: HalfOpenTable,
    pub(crate) out: Output,
    pub(crate) stats: Statistics,
    /// The last failures, for `display ike error-info`.
    pub(crate) errors: ErrorHistory,
    /// Wall-clock time at one monotonic instant, for certificate validity
    /// ([`Engine::set_wall_clock`]).
    pub(crate) wall_clock: Option<WallClock>,
    /// The rate limits of the answers to unknown SPIs and cookies (`engine::recovery`).
    pub(crate) recovery: crate::rate_limit::Recovery,
    /// The aggressive-mode responder's rate limit (`rate_limit`).
    pub(crate) aggressive_budget: crate::rate_limit::AggressiveBudget,
}

/// A wall-clock reading tied to a monotonic instant: the engine stays sans-IO and derives the
/// wall-clock time of any later `now` from it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    instant: Instant,
    unix_seconds: u64,
}

impl WallClock {
    pub(crate) fn at(self, now: Instant) -> u64 {
        match now.checked_duration_since(self.instant) {
            Some(later) => self.unix_seconds.saturating_add(later.as_secs()),
            None => self.unix_seconds.saturating_sub(self.instant.duration_since(now).as_secs()),
        }
    }
}

impl Engine {
    /// An engine with `config`, drawing cookies, nonces, SPIs and DH secrets from `rng`.
    pub fn new(config: Config, rng: Box<dyn SecureRandom + Send>) -> Self {
        let (peer_by_address, policies_by_peer) = config_indices(&config);
        Self {
            config,
            rng,
            slots: Vec::new(),
            free: Vec::new(),
            by_cookie: HashMap::new(),
            by_connection: BTreeMap::new(),
            responder_first: HashMap::new(),
            slots_by_peer: HashMap::new(),
            census: Census::default(),
            peer_by_address,
            policies_by_peer,
            timers: BinaryHeap::new(),
            armed: Vec::new(),
            generation: 0,
            next_connection: 1,
            half_open: HalfOpenTable::default(),
            out: Output::default(),
            stats: Statistics::default(),
            errors: ErrorHistory::default(),
            wall_clock: None,
            recovery: crate::rate_limit::Recovery::default(),
            aggressive_budget: crate::rate_limit::AggressiveBudget::default(),
        }
    }

    /// Tells the engine that `instant` is `unix_seconds` after the Unix epoch. Certificate
    /// validity (notBefore / notAfter, CRL dates) is checked at the wall-clock time derived
    /// from this reading and each handler's `now`; without it, signature authentication
    /// fails with [`|e| FailureReason::Authentication(AuthenticationFailure::CertificateUnavailable(e))`](crate::FailureReason) rather
    /// than guessing. The driver sets it at start (and may again after a clock step).
    pub fn set_wall_clock(&mut self, instant: Instant, unix_seconds: u64) {
        self.wall_clock = Some(WallClock { instant, unix_seconds });
    }

    /// Turns the key log on or off (off when the engine is made). When on, every
    /// [`Event::IkeSaEstablished`] carries a [`crate::Phase1KeyLog`] with the SA's Ka, for a
    /// driver that writes Wireshark decryption records (`keysteward run --key-log`). Off, the
    /// engine never hands out phase-1 keys: a switch in the engine rather than a filter in
    /// the driver, so that a driver that did not ask cannot leak what it never receives.
    /// ESP keys are always in [`Event::IpsecSaInstalled`]: the data plane needs them.
    pub fn set_key_log(&mut self, enabled: bool) {
        self.out.key_log = enabled;
    }

    /// Turns message traces on or off (off when the engine is made). When on, every IKE
    /// message of main, aggressive and quick mode that the engine sends or accepts yields a
    /// [`crate::MessageTrace`] (step and payloads, with what was inside encrypted ones), for
    /// [`Engine::poll_message_trace`]; off, none is built.
    pub fn set_message_trace(&mut self, enabled: bool) {
        self.out.trace = enabled;
        if !enabled {
            self.out.traces.clear();
        }
    }

    /// The next traced message, in the order the engine sent or accepted them.
    #[must_use]
    pub fn poll_message_trace(&mut self) -> Option<crate::MessageTrace> {
        self.out.traces.pop_front()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn statistics(&self) -> Statistics {
        self.stats
    }

    /// The half-open responder SAs (not yet authenticated) and their charges against
    /// [`crate::Limits::half_open_memory_budget`], for `display ike statistics`.
    pub fn half_open(&self) -> HalfOpenUsage {
        HalfOpenUsage {
            entries: self.half_open.len(),
            bytes: self.half_open.bytes(),
            budget: self.config.limits.half_open_memory_budget,
        }
    }

    /// The next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.out.events.pop_front()?;
        self.out.tally.event(&event);
        Some(event)
    }

    /// When [`Engine::handle_timeout`] must be called next (it may be called earlier).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The data plane saw traffic for `acquire` and has no SA for it: negotiate one. An
    /// acquire for a flow that a live pair or a quick mode under way already serves is a
    /// no-op, so the data plane may repeat it while traffic waits.
    pub fn handle_acquire(&mut self, now: Instant, acquire: Acquire) {
        let mark = self.out.events.len();
        self.acquire(now, acquire);
        self.after_input(now, mark);
    }

    pub(super) fn acquire(&mut self, now: Instant, acquire: Acquire) {
        if self.flow_served(&acquire, now) {
            return;
        }
        let Some(policy) = self.config.policies.get(acquire.policy) else { return };
        let peer_index = policy.peer;
        let peer = &self.config.peers[peer_index];
        let Some(remote_ip) = peer.remote_address else { return };
        let remote = SocketAddr::new(remote_ip, 500);
        let local = SocketAddr::new(peer.local_address, 500);
        let mode = peer.exchange_mode;
        // The newest established IKE SA with the peer, else one still negotiating phase 1. By
        // address, not port: after a NAT-T float the SA talks to port 4500.
        let existing = crate::lifetime::preferred_ike_sa(
            &self.slots,
            self.slots_of_peer(peer_index),
            peer_index,
            remote,
        );
        match existing {
            Some(slot) => {
                let established = self.slots[slot].as_deref().is_some_and(IkeSa::is_established);
                if established {
                    self.with_sa(slot, now, |sa, ctx| {
                        if let Err(reason) = sa.start_quick_mode(acquire, ctx) {
                            let failure = sa.failure(Exchange::QuickMode, "starting", reason, ctx.config);
                            ctx.out.events.push_back(Event::Failed(failure));
                        }
                    });
                } else if let Some(sa) = self.slots[slot].as_mut() {
                    if !sa.pending.contains(&acquire) {
                        sa.pending.push(acquire);
                    }
                }
            }
            None => {
                let Some(slot) = self.initiate_phase1(now, peer_index, mode, local, remote) else { return };
                if let Some(sa) = self.slots[slot].as_mut() {
                    sa.pending.push(acquire);
                }
            }
        }
    }

    /// Starts phase 1 with a peer as initiator, in a new slot, in the peer's exchange mode;
    /// `None` when aggressive mode could not start (reported as a failure).
    pub(crate) fn initiate_phase1(
        &mut self,
        now: Instant,
        peer_index: usize,
        mode: ExchangeMode,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<usize> {
        let connection = self.next_connection();
        let first_contact = self.first_contact(peer_index, remote);
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.armed.push(None);
            self.slots.len() - 1
        });
        let identity = SaIdentity { connection, peer: peer_index, local, remote };
        let mut ctx = self.ctx(now, None);
        let mut sa = match mode {
            ExchangeMode::Main => IkeSa::initiate(identity, &mut ctx),
            ExchangeMode::Aggressive => match IkeSa::initiate_aggressive(identity, &mut ctx) {
                Ok(sa) => sa,
                Err(reason) => {
                    self.free.push(slot);
                    self.out.events.push_back(Event::Failed(Failure {
                        peer: Some(self.config.peers[peer_index].name.clone()),
                        remote,
                        exchange: Exchange::AggressiveMode,
                        state: "starting",
                        reason,
                        unauthenticated: false,
                    }));
                    return None;
                }
            },
        };
        sa.send_initial_contact = first_contact;
        self.by_cookie.insert(sa.our_cookie(), slot);
        self.by_connection.insert(connection, slot);
        self.slots_by_peer.entry(peer_index).or_default().push(slot);
        self.slots[slot] = Some(Box::new(sa));
        self.rearm(slot);
        Some(slot)
    }

    /// The slots of a configured peer's SAs (any state), from the index.
    pub(crate) fn slots_of_peer(&self, peer_index: usize) -> &[usize] {
        self.slots_by_peer.get(&peer_index).map_or(&[][..], Vec::as_slice)
    }

    /// After every input: failures go to the error history.
    pub(crate) fn after_input(&mut self, now: Instant, mark: usize) {
        self.record_failures(now, mark);
    }

    /// A datagram arrived from `remote` to `local`, on UDP 500 or 4500. On 4500 the driver
    /// strips the 4-byte zero non-ESP marker first (RFC 3948 §2.2) and hands ESP-in-UDP to the
    /// data plane instead; a NAT keepalive (one 0xFF byte) may be passed here or dropped, it
    /// is ignored either way. The addresses matter: NAT detection hashes them, and after the
    /// NAT-T float the peer's address and port are taken from authenticated messages.
    pub fn handle_datagram(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, datagram: &[u8]) {
        let mark = self.out.events.len();
        self.datagram(now, local, remote, datagram);
        self.after_input(now, mark);
    }

    pub(super) fn datagram(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, datagram: &[u8]) {
        if datagram == crate::nat_t::KEEPALIVE {
            return;
        }
        let message = match Message::parse(datagram) {
            Ok(m) => m,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        let digest = digest_of(datagram);
        let header = message.header;
        let received = Some((local, remote));
        let fragment = isakmp::fragmentation::fragment_of(&message);
        let Some(slot) = self.route(&message, remote) else {
            if fragment.is_some() {
                // Reassembly only for an IKE SA that exists: no state for unknown cookies.
                self.stats.fragments_discarded += 1;
                return;
            }
            let first_message =
                matches!(header.exchange_type, ExchangeType::IdentityProtection | ExchangeType::Aggressive);
            if first_message && header.responder_cookie.is_zero() {
                let first = ReceivedMessage { message: &message, datagram, digest };
                self.new_responder(now, local, remote, first);
            } else {
                self.stats.unknown_sa += 1;
                self.unknown_cookies(now, local, remote, &message, datagram.len());
            }
            return;
        };
        if let Some(fragment) = fragment {
            self.fragment(
                slot,
                now,
                local,
                remote,
                fragment,
                (header.initiator_cookie, header.responder_cookie),
            );
            return;
        }
        match header.exchange_type {
            ExchangeType::IdentityProtection | ExchangeType::Aggressive => {
                let mut established = false;
                self.with_sa_received(slot, now, received, |sa, ctx| {
                    let state = sa.phase1.name();
                    let result = if header.exchange_type == ExchangeType::Aggressive {
                        sa.handle_aggressive_mode(&message, datagram, digest, ctx)
                    } else {
                        sa.handle_main_mode(&message, digest, ctx)
                    };
                    match result {
                        Ok(done) => established = done,
                        Err(reason) => sa.fail_phase1(state, reason, ctx),
                    }
                });
                if established {
                    self.phase1_done(slot, now);
                }
            }
            ExchangeType::QuickMode => self.with_sa_received(slot, now, received, |sa, ctx| {
                if sa.quick_mode_before_am3(ctx) {
                    return;
                }
                if let Err((reason, state)) = sa.handle_quick_mode(&message, digest, ctx) {
                    sa.notify_failure(&reason, ctx);
                    let failure = sa.failure(Exchange::QuickMode, state, reason, ctx.config);
                    ctx.out.events.push_back(Event::Failed(failure));
                }
            }),
            ExchangeType::Informational => {
                let mark = self.out.events.len();
                self.with_sa_received(slot, now, received, |sa, ctx| sa.handle_informational(&message, ctx));
                self.forget_deleted_pairs(slot, mark);
                self.initial_contact(slot, now);
            }
            _ => self.stats.unknown_sa += 1,
        }
        self.reap(slot, now);
        self.fit_half_open(Some(slot), now); // a half-open SA holding more now makes older ones go
    }

    /// A fragment for the SA in `slot`: stored, and when it completes a message, that message
    /// is handled as if it had arrived whole (`isakmp::fragmentation`).
    pub(super) fn fragment(
        &mut self,
        slot: usize,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        fragment: &isakmp::Fragment<'_>,
        cookies: (isakmp::Cookie, isakmp::Cookie),
    ) {
        let limits = self.config.limits;
        let Some(sa) = self.slots.get_mut(slot).and_then(Option::as_mut) else { return };
        if !limits.fragmentation {
            self.stats.fragments_discarded += 1;
            return;
        }
        let outcome = sa.reassembly.add(fragment, cookies, now, &limits.fragments());
        self.rearm(slot);
        match outcome {
            isakmp::fragmentation::Reassembled::Pending => {}
            isakmp::fragmentation::Reassembled::Discarded(_) => self.stats.fragments_discarded += 1,
            isakmp::fragmentation::Reassembled::Complete(message) => {
                // The whole message must be of this SA and not itself a fragment (no nesting).
                let fits = Message::parse(&message).is_ok_and(|m| {
                    isakmp::fragmentation::fragment_of(&m).is_none()
                        && (m.header.initiator_cookie, m.header.responder_cookie) == cookies
                });
                if fits {
                    self.datagram(now, local, remote, &message);
                } else {
                    self.stats.fragments_discarded += 1;
                }
            }
        }
        self.fit_half_open(Some(slot), now); // fragments held count too
    }

    /// The data plane received traffic on an IPsec SA negotiated by `connection` (see
    /// [`crate::IpsecSaPair::connection`]): the peer is alive, so dead peer detection stays
    /// quiet (RFC 3706 §5.3, R-U-THERE only on an idle tunnel). Calling it once per second per
    /// SA with traffic is enough; it costs a hash lookup. Unknown connections are ignored.
    pub fn handle_traffic(&mut self, now: Instant, connection: ConnectionId) {
        let Some(&slot) = self.by_connection.get(&connection) else { return };
        if let Some(sa) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            sa.dpd.heard(now);
        }
        self.rearm(slot);
    }

    /// Runs every timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mark = self.out.events.len();
        while let Some(Reverse((at, slot, generation))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.armed.get(slot).copied().flatten() != Some((at, generation)) {
                continue; // stale
            }
            self.armed[slot] = None;
            // The entry stood for a later deadline (`rearm` let it): queue it there.
            match self.slots[slot].as_deref().and_then(IkeSa::next_deadline) {
                Some(later) if later > now => self.queue(slot, later),
                _ => self.run_sa_timers(slot, now),
            }
        }
        self.after_input(now, mark);
    }

    pub(super) fn next_connection(&mut self) -> ConnectionId {
        let id = ConnectionId(self.next_connection);
        self.next_connection += 1;
        id
    }

    /// Finds the SA a message belongs to.
    pub(super) fn route(&self, message: &Message<'_>, remote: SocketAddr) -> Option<usize> {
        let (i, r) = (message.header.initiator_cookie, message.header.responder_cookie);
        if r.is_zero() {
            if let Some(&slot) = self.responder_first.get(&(i, remote)) {
                return Some(slot);
            }
        } else if let Some(&slot) = self.by_cookie.get(&r) {
            if self.slots[slot].as_ref().is_some_and(|sa| sa.role == Role::Responder && sa.cookie_i == i) {
                return Some(slot);
            }
        }
        let &slot = self.by_cookie.get(&i)?;
        let sa = self.slots[slot].as_ref()?;
        (sa.role == Role::Initiator && (sa.cookie_r.is_zero() || sa.cookie_r == r || r.is_zero()))
            .then_some(slot)
    }

    /// Runs `f` on the SA in `slot` with a context, then re-arms its timer.
    pub(crate) fn with_sa(&mut self, slot: usize, now: Instant, f: impl FnOnce(&mut IkeSa, &mut Ctx<'_>)) {
        self.with_sa_received(slot, now, None, f);
    }

    /// [`Engine::with_sa`] for a datagram that arrived on `received` (local, remote).
    pub(super) fn with_sa_received(
        &mut self,
        slot: usize,
        now: Instant,
        received: Option<(SocketAddr, SocketAddr)>,
        f: impl FnOnce(&mut IkeSa, &mut Ctx<'_>),
    ) {
        let (slots, census, ctx) = self.slots_and_ctx(now, received);
        let (earlier, rest) = slots.split_at_mut(slot.min(slots.len()));
        let Some((Some(sa), later)) = rest.split_first_mut() else { return };
        let others = Others { earlier, later, census };
        let mut ctx = Ctx { others: Some(&others), ..ctx };
        let before = (sa.replays_dropped(), sa.message_ids_forgotten(), sa.unauthenticated.count());
        f(sa, &mut ctx);
        let after = (sa.replays_dropped(), sa.message_ids_forgotten(), sa.unauthenticated.count());
        self.stats.replays_dropped += after.0 - before.0;
        self.stats.message_ids_forgotten += after.1 - before.1;
        self.stats.unauthenticated_dropped += after.2 - before.2;
        self.rearm(slot);
    }

    /// A handler's context ([`Ctx`]) for an input at `now` (a datagram that arrived on
    /// `received`, or none), beside the SA slots. It is built only here: borrowing the
    /// engine's fields one by one lets the slots be lent mutably next to it, so that
    /// [`Engine::with_sa_received`] can hand a handler its SA and the context at once.
    fn slots_and_ctx(
        &mut self,
        now: Instant,
        received: Option<(SocketAddr, SocketAddr)>,
    ) -> (&mut [Option<Box<IkeSa>>], &Census, Ctx<'_>) {
        let ctx = Ctx {
            config: &self.config,
            policies_by_peer: &self.policies_by_peer,
            rng: &mut *self.rng,
            now,
            out: &mut self.out,
            received,
            unix_time: self.wall_clock.map(|clock| clock.at(now)),
            others: None,
        };
        (&mut self.slots, &self.census, ctx)
    }

    /// [`Engine::slots_and_ctx`] for a handler that is given no SA from a slot (one that
    /// starts a new SA).
    pub(super) fn ctx(&mut self, now: Instant, received: Option<(SocketAddr, SocketAddr)>) -> Ctx<'_> {
        self.slots_and_ctx(now, received).2
    }

    /// Re-arms the timer of the SA in `slot` after anything touched it; charges it anew if it
    /// is half-open.
    pub(crate) fn rearm(&mut self, slot: usize) {
        self.census.refresh(slot, self.slots.get(slot).and_then(Option::as_deref).map(|sa| &**sa));
        if self.half_open.contains(slot) {
            if let Some(sa) = self.slots[slot].as_ref() {
                self.half_open.recharge(slot, half_open::charge(sa));
            }
        }
        let deadline = self.slots[slot].as_deref().and_then(IkeSa::next_deadline);
        match deadline {
            // An entry queued at or before the deadline stands for it (`handle_timeout` moves it
            // on when due early): a re-arm leaves a stale entry only if the deadline came nearer.
            Some(at) if self.armed[slot].is_some_and(|(queued, _)| queued <= at) => {}
            Some(at) => self.queue(slot, at),
            None => self.armed[slot] = None,
        }
    }

    /// Queues the SA in `slot` at `at` (its earlier entry goes stale); a full queue drops its
    /// stale entries first, and grows only when live ones fill three quarters of it.
    fn queue(&mut self, slot: usize, at: Instant) {
        let capacity = self.timers.capacity();
        if self.timers.len() == capacity && capacity >= 64 {
            let armed = &self.armed;
            self.timers
                .retain(|Reverse((at, slot, g))| armed.get(*slot).copied().flatten() == Some((*at, *g)));
            if self.timers.len() > capacity / 4 * 3 {
                self.timers.reserve(capacity);
            }
        }
        self.generation += 1;
        self.armed[slot] = Some((at, self.generation));
        self.timers.push(Reverse((at, slot, self.generation)));
    }

    /// Removes the SA in `slot` if it failed or expired; the IPsec SAs it still manages end
    /// with it (`Engine::release_pairs`).
    pub(crate) fn reap(&mut self, slot: usize, now: Instant) {
        let Some(sa) = self.slots[slot].as_ref() else { return };
        if !matches!(sa.phase1, Phase1::Failed) {
            return;
        }
        self.release_pairs(slot, now);
        if let Some(sa) = self.slots[slot].take() {
            self.census.refresh(slot, None);
            self.by_cookie.remove(&sa.our_cookie());
            self.by_connection.remove(&sa.connection);
            // The key is the address of the first message: `remote` may have moved with NAT-T.
            if sa.role == Role::Responder {
                self.responder_first.remove(&(sa.cookie_i, sa.initial_remote));
            }
            // An established SA left the half-open table in `phase1_done`.
            self.half_open.remove(slot);
            if let Some(slots) = self.slots_by_peer.get_mut(&sa.peer) {
                slots.retain(|&s| s != slot);
                if slots.is_empty() {
                    self.slots_by_peer.remove(&sa.peer);
                }
            }
            self.armed[slot] = None;
            self.free.push(slot);
        }
    }

    /// Bytes the engine holds on behalf of its peers and its driver, which inputs can make
    /// grow: datagrams not yet taken by [`Engine::poll_transmit`], the last message of every
    /// phase-1 and quick-mode exchange (kept to retransmit it and to answer repeats), partial
    /// messages under fragment reassembly, and acquires waiting for phase 1. Keys, states and
    /// indices are not counted: their size per SA is fixed. The engine fuzz target and its
    /// replay test (`crates/ike/tests/engine_fuzz_replay.rs`) assert that this stays within a
    /// bound derived from [`crate::Limits`], whatever arrives.
    pub fn buffered_bytes(&self) -> usize {
        let queued: usize = self.out.transmits.iter().map(|t| t.payload.len()).sum();
        let held: usize = self
            .slots
            .iter()
            .flatten()
            .map(|sa| {
                let flights = std::iter::once(&sa.flight)
                    .chain(sa.quick_modes.iter().map(|qm| &qm.flight))
                    .map(|flight| flight.last_sent().map_or(0, <[u8]>::len))
                    .sum::<usize>();
                flights + sa.reassembly.buffered() + sa.pending.len() * std::mem::size_of::<Acquire>()
            })
            .sum();
        queued + held
    }
}

/// The indices the engine keeps over its configuration: the first peer of each remote
/// address, and the policies of each peer.
fn config_indices(config: &Config) -> (HashMap<IpAddr, usize>, Vec<Vec<usize>>) {
    let mut peer_by_address = HashMap::new();
    for (index, peer) in config.peers.iter().enumerate() {
        if let Some(address) = peer.remote_address {
            peer_by_address.entry(address).or_insert(index);
        }
    }
    let mut policies_by_peer = vec![Vec::new(); config.peers.len()];
    for (index, policy) in config.policies.iter().enumerate() {
        if let Some(policies) = policies_by_peer.get_mut(policy.peer) {
            policies.push(index);
        }
    }
    (peer_by_address, policies_by_peer)
}

impl Engine {
    /// Puts `config` in force and rebuilds every index over it and over the SAs' peer
    /// numbers (`reconfigure`, which has already renumbered the SAs that stay).
    pub(crate) fn install_config(&mut self, config: Config) {
        let (peer_by_address, policies_by_peer) = config_indices(&config);
        self.config = config;
        self.peer_by_address = peer_by_address;
        self.policies_by_peer = policies_by_peer;
        self.slots_by_peer.clear();
        self.census = Census::default();
        for (slot, sa) in self.slots.iter().enumerate() {
            self.census.refresh(slot, sa.as_deref().map(|sa| &**sa));
            if let Some(sa) = sa {
                self.slots_by_peer.entry(sa.peer).or_default().push(slot);
            }
        }
    }
}

/// The digest by which repeats of a message are recognised.
fn digest_of(datagram: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&HashAlgorithm::Sha256.digest(&[datagram]));
    out
}
