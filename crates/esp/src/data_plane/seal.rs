//! The sealing side of the data plane (RFC 4301 §5.1): the SPD, the outbound SAs with their
//! sequence numbers, the acquire queues and the outbound counters. Owned by the thread that
//! seals (behind a lock of its own, which the opening thread never takes); SAs arrive as the
//! outbound half of a [`BuiltPair`](crate::BuiltPair).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

use crypto::key_schedule::Spi;

use super::config::DataPlaneConfig;
use super::counters::Statistics;
use super::outcome::{Decision, Direction, DiscardReason, Event, Outbound};
use super::policy::{OutboundHalf, SealDatabase};
use super::queue::{Queues, Released};
use crate::mtu::{self, IPV4_HEADER_LEN};
use crate::sa::ah::OutboundAh;
use crate::sa::esp::OutboundSa;
use crate::sa::Counters;
use spd::keyed::IndexMap;
use spd::Flow;
use spd::{Action, PolicyIndex, Rule, Spd};

/// The SPD, the outbound SAs and the acquire queues of one gateway.
pub struct SealPlane {
    config: DataPlaneConfig,
    databases: SealDatabase,
    queues: Queues,
    /// Outbound halves held until the peer confirms their pair (a quick-mode responder
    /// between QM2 and QM3, RFC 2409 §5.5), by their pair's inbound SPI.
    held: IndexMap<Spi, OutboundHalf>,
    events: VecDeque<Event>,
    statistics: Statistics,
}

impl SealPlane {
    /// A sealing side with `spd` and no SAs.
    pub fn new(spd: Spd, config: DataPlaneConfig) -> Self {
        Self {
            config,
            databases: SealDatabase::new(spd),
            queues: Queues::new(config.queue_len, config.spare_buffers),
            held: IndexMap::default(),
            events: VecDeque::new(),
            statistics: Statistics::default(),
        }
    }

    /// Replaces the SPD (configuration reload). Installed SAs stay; queued packets are
    /// dropped, since rule indices change.
    pub fn replace_spd(&mut self, spd: Spd) {
        *self.databases.spd_mut() = spd;
        self.statistics.queue_dropped += self.queues.clear() as u64;
    }

    /// Appends a rule to the SPD (lowest priority) without touching the acquire queues, and
    /// returns its index: a hub adds the flow a branch negotiated through a policy template
    /// when the pair is installed.
    pub fn push_rule(&mut self, rule: Rule) -> usize {
        self.databases.spd_mut().push(rule)
    }

    /// Removes the first SPD rule equal to `rule` (the SAs of a template flow are gone).
    /// Packets queued on that rule are dropped and counted; the queues of the rules after it
    /// follow their rules' new indices. Returns false when no rule is equal.
    pub fn remove_rule(&mut self, rule: &Rule) -> bool {
        let spd = self.databases.spd_mut();
        let Some(index) = spd.position(rule) else { return false };
        spd.remove(index);
        self.statistics.queue_dropped += self.queues.rule_removed(index) as u64;
        true
    }

    /// The outbound side of [`DataPlane::renumber_policies`](crate::DataPlane::renumber_policies).
    pub fn renumber_policies(&mut self, renumber: impl Fn(PolicyIndex) -> Option<PolicyIndex>) -> usize {
        self.statistics.queue_dropped += self.queues.renumber(&renumber) as u64;
        self.held.retain(|_, half| renumber(half.policy).map(|new| half.policy = new).is_some());
        self.databases.renumber(&renumber)
    }

    /// The security policy database in force.
    pub fn spd(&self) -> &Spd {
        self.databases.spd()
    }

    /// The outbound counters (the inbound ones are the [`OpenPlane`](crate::OpenPlane)'s).
    pub fn statistics(&self) -> &Statistics {
        &self.statistics
    }

    /// The next event (acquires, outbound lifetime notices), if any. Drain after every call
    /// that takes a packet or an SA.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Installs the outbound half of a pair (after its inbound half went to the opening
    /// side) and releases the packets queued for its flow (see [`SealPlane::poll_queued`]).
    pub fn install(&mut self, half: OutboundHalf) {
        let OutboundHalf { entry, policy, selector } = half;
        self.databases.install(policy, selector, entry);
        for flow in self.queues.release(policy, &selector) {
            // What the pair does not cover still waits: its acquire, unless a held pair covers it.
            if let (Decision::Acquire { policy, rule, selector }, _) = self.databases.decide(&flow) {
                if !self.held_covers(policy, &flow) {
                    self.statistics.acquires += 1;
                    self.events.push_back(Event::Acquire { policy, rule, selector, flow });
                }
            }
        }
    }

    /// Whether a held pair of `policy` covers `flow`: it is negotiated, only its QM3 is on
    /// the way, and its release lets the flow's packets go; an acquire would start a second pair.
    fn held_covers(&self, policy: PolicyIndex, flow: &Flow) -> bool {
        self.held.values().any(|h| h.policy == policy && h.selector.matches_outbound(flow))
    }

    /// Holds the outbound half of a pair whose inbound half is installed: it seals only after
    /// [`SealPlane::release_outbound`] (a quick-mode responder between QM2 and QM3).
    pub fn hold(&mut self, half: OutboundHalf) {
        self.held.insert(half.entry.inbound_spi, half);
    }

    /// Installs the held outbound half of the pair with our SPI `spi` and releases the
    /// packets queued for its flow. False when none is held under `spi`.
    pub fn release_outbound(&mut self, spi: Spi) -> bool {
        let Some(half) = self.held.remove(&spi) else { return false };
        self.install(half);
        true
    }

    /// Removes the outbound half (installed or held) of the pair whose inbound SA has our
    /// SPI `spi`: no packet is sealed with it from now on. Returns false if there is none.
    pub fn remove_by_inbound_spi(&mut self, spi: Spi) -> bool {
        let held = self.held.remove(&spi);
        if let Some(half) = &held {
            // Packets that waited for it raised no acquire (see `seal`): drop them, so that
            // the next packet raises one.
            self.abandon_acquire(half.policy);
        }
        self.databases.remove(spi) || held.is_some()
    }

    /// Our SPI of the pair whose outbound SA goes to `remote` under the peer's SPI `spi`
    /// (what a Delete payload names; peers choose SPIs, so the address disambiguates).
    pub fn inbound_spi_of(&self, remote: IpAddr, spi: Spi) -> Option<Spi> {
        self.databases.inbound_spi_of(remote, spi)
    }

    /// Drops the packets waiting for `policy` (its negotiation failed or was given up), so
    /// the next packet raises a fresh acquire. Returns how many were dropped.
    pub fn abandon_acquire(&mut self, policy: PolicyIndex) -> usize {
        let dropped = self.queues.abandon(policy);
        self.statistics.queue_dropped += dropped as u64;
        dropped
    }

    /// Packets waiting in acquire queues.
    pub fn queued_packets(&self) -> usize {
        self.queues.queued().0
    }

    /// The outbound decision for a flow without touching any state: which SA would protect
    /// it, or whether it needs an acquire, passes in clear or is dropped. For `display`,
    /// tests and callers that want to decide before reading the whole packet.
    pub fn decide(&self, flow: &Flow) -> Decision {
        self.databases.decide(flow).0
    }

    /// RFC 4301 §5.1 for one IPv4 packet from the inside: SPD lookup, then seal into `out`
    /// (which needs `packet.len()` + [`MAX_HEADROOM`](crate::MAX_HEADROOM) +
    /// [`MAX_TAILROOM`](crate::MAX_TAILROOM) bytes, plus [`MAX_AH_HEADROOM`](crate::MAX_AH_HEADROOM) for AH pairs, and at least
    /// [`MAX_ICMP_LEN`](crate::mtu::MAX_ICMP_LEN)), pass in clear, queue, or drop. A tunnel
    /// packet too big for [`DataPlaneConfig::path_mtu`] is answered with ICMP when DF is set
    /// and fragmented otherwise; when a `Send` says `pending`, drain
    /// [`SealPlane::poll_queued`].
    pub fn seal<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Outbound<'o> {
        self.seal_within(packet, out, false)
    }

    /// [`SealPlane::seal`] for a datagram reassembled from inner fragments (docs/DESIGN.md,
    /// "Fragments"): sealed whole into one ESP packet, which the kernel fragments outside, so
    /// the peer opens the datagram with its ports, also when it waited for an acquire.
    /// `out` needs room for all of it.
    pub fn seal_whole<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Outbound<'o> {
        self.seal_within(packet, out, true)
    }

    fn seal_within<'o>(&mut self, packet: &[u8], out: &'o mut [u8], whole: bool) -> Outbound<'o> {
        let path_mtu = if whole { u16::MAX } else { self.config.path_mtu };
        let (flow, header_len, total_len) = match Flow::parse_ipv4(packet) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.statistics.outbound_malformed += 1;
                return Outbound::Discard(DiscardReason::Malformed(e));
            }
        };
        let packet = &packet[..total_len];
        let (decision, index) = self.databases.decide_cached(&flow);
        let policy = match decision {
            Decision::Protect { policy, .. } => policy,
            Decision::Acquire { policy, rule, selector } => {
                let (opened, dropped) = self.queues.enqueue(policy, rule, packet, whole);
                self.statistics.queued += 1;
                self.statistics.queue_dropped += u64::from(dropped);
                // A held pair covers the flow: it is negotiated, only its QM3 is on the way
                // (the peer's packets on it opened, and this may be the answer to one), and
                // its release lets the queue go; an acquire now would start a second pair.
                if opened && !self.held_covers(policy, &flow) {
                    self.statistics.acquires += 1;
                    self.events.push_back(Event::Acquire { policy, rule, selector, flow });
                }
                return Outbound::Queued;
            }
            Decision::Bypass => {
                self.statistics.bypassed += 1;
                return Outbound::Bypass;
            }
            Decision::Discard => {
                self.statistics.outbound_policy_discards += 1;
                return Outbound::Discard(DiscardReason::Policy);
            }
        };
        let Some(entry) = self.databases.outbound_mut(policy, index) else {
            // `decide` just found it; unreachable, but never panic on this path.
            self.statistics.outbound_seal_errors += 1;
            return Outbound::Discard(DiscardReason::Policy);
        };
        match entry.max_inner(path_mtu) {
            Some(max_inner) if packet.len() > max_inner => {
                self.too_big(policy, index, header_len, packet, max_inner, out)
            }
            _ => self.seal_with(policy, index, flow.protocol, header_len, packet, out),
        }
    }

    /// A tunnel-mode packet bigger than the path allows after encapsulation: ICMP back to
    /// the sender if DF is set, otherwise fragments sealed one by one (see [`crate::mtu`]).
    fn too_big<'o>(
        &mut self,
        policy: PolicyIndex,
        index: usize,
        header_len: usize,
        packet: &[u8],
        max_inner: usize,
        out: &'o mut [u8],
    ) -> Outbound<'o> {
        let mtu = u16::try_from(max_inner).unwrap_or(u16::MAX);
        let Some(entry) = self.databases.outbound_at(policy, index) else {
            return Outbound::Discard(DiscardReason::TooBig { mtu });
        };
        let (local, serial) = (entry.local.ip(), entry.serial);
        if mtu::dont_fragment(packet) {
            self.statistics.too_big += 1;
            let source = match local {
                IpAddr::V4(address) => address,
                IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            return match mtu::frag_needed(packet, source, mtu, out) {
                Some(len) => Outbound::TooBig { icmp: &out[..len], mtu },
                None => Outbound::Discard(DiscardReason::TooBig { mtu }),
            };
        }
        let Some(first) = self.queues.fragment(packet, header_len, max_inner, (policy, serial)) else {
            self.statistics.too_big += 1;
            return Outbound::Discard(DiscardReason::TooBig { mtu });
        };
        self.statistics.fragmented += 1;
        let outcome = self.seal_with(policy, index, 0, header_len, &first, out);
        self.queues.recycle(first);
        outcome
    }

    /// Seals `packet` with the outbound SA at `index` of `policy`'s list.
    fn seal_with<'o>(
        &mut self,
        policy: PolicyIndex,
        index: usize,
        protocol: u8,
        header_len: usize,
        packet: &[u8],
        out: &'o mut [u8],
    ) -> Outbound<'o> {
        let pending = self.queues.has_ready();
        let Some(entry) = self.databases.outbound_mut(policy, index) else {
            self.statistics.outbound_seal_errors += 1;
            return Outbound::Discard(DiscardReason::Policy);
        };
        let result = entry.seal(protocol, header_len, packet, out, pending);
        // `if let`, not `extend`: an `extend` call per packet for an event that is almost never there.
        if let Some(event) = entry.sa.lifetime_event(Direction::Outbound, entry.remote) {
            self.events.push_back(event);
        }
        match result {
            Ok(send) => {
                self.statistics.sealed += 1;
                self.statistics.sealed_bytes += packet.len() as u64;
                Outbound::Send(send)
            }
            Err(e) => {
                self.statistics.outbound_seal_errors += 1;
                Outbound::Discard(DiscardReason::Seal(e))
            }
        }
    }

    /// Seals the next packet released from an acquire queue into `out`; `None` when there
    /// is none left. Call after [`SealPlane::install`] until it returns `None`. A released
    /// packet that no longer finds an SA (removed meanwhile) is queued again or dropped.
    /// `out` needs room for [`SealPlane::next_queued_len`] like [`SealPlane::seal`]'s.
    pub fn poll_queued<'o>(&mut self, out: &'o mut [u8]) -> Option<Outbound<'o>> {
        while let Some(Released { packet, sa, whole }) = self.queues.pop_ready() {
            if let Some((policy, serial)) = sa {
                // A fragment goes out on the SA chosen for its whole packet, never through a
                // new lookup: a non-first fragment has no ports and could match another rule.
                let Some(index) = self.databases.outbound_by_serial(policy, serial) else {
                    self.statistics.queue_dropped += 1;
                    self.queues.recycle(packet);
                    continue;
                };
                let outcome = self.seal_with(policy, index, 0, IPV4_HEADER_LEN, &packet, out);
                self.queues.recycle(packet);
                return Some(outcome);
            }
            // Re-run the whole outbound path: the SPD may have changed since it was queued.
            // Sealing needs `out` for the outcome, so a non-`Send` outcome is decided on a
            // dry path first to keep the borrow simple.
            let (flow, ..) = match Flow::parse_ipv4(&packet) {
                Ok(parsed) => parsed,
                Err(_) => {
                    self.queues.recycle(packet);
                    continue;
                }
            };
            if !matches!(self.decide(&flow), Decision::Protect { .. }) {
                // Queue again (or count as dropped) through the normal path.
                let mut scratch = [0u8; 0];
                let outcome = self.seal_within(&packet, &mut scratch, whole);
                if !matches!(outcome, Outbound::Queued) {
                    self.statistics.queue_dropped += 1;
                }
                self.queues.recycle(packet);
                continue;
            }
            let outcome = self.seal_within(&packet, out, whole);
            self.queues.recycle(packet);
            return Some(outcome);
        }
        None
    }

    /// The length of the next packet [`SealPlane::poll_queued`] seals, if any (a datagram
    /// queued by `seal_whole` can be longer than the caller's usual buffer).
    pub fn next_queued_len(&self) -> Option<usize> {
        self.queues.next_ready_len()
    }

    /// RFC 4301 §5.2 for a packet that arrived from outside in clear (not ESP): true when
    /// policy lets it through, false when a `Protect` or `Discard` rule covers it (traffic
    /// that should have been protected must not be accepted in clear). Counts refusals.
    pub fn accept_clear(&mut self, packet: &[u8]) -> bool {
        let allowed = match Flow::parse_ipv4(packet) {
            Ok((flow, ..)) => matches!(self.databases.spd().lookup_inbound(&flow).1, Action::Bypass),
            Err(_) => false,
        };
        if !allowed {
            self.statistics.inbound_clear_refused += 1;
        }
        allowed
    }

    /// Every outbound ESP SA of `policy`, oldest first.
    pub fn outbound_sas(&self, policy: PolicyIndex) -> impl Iterator<Item = &OutboundSa> {
        self.databases.outbound(policy).filter_map(|e| e.sa.esp.as_ref())
    }

    /// Every outbound AH SA of `policy`, oldest first.
    pub fn outbound_ah_sas(&self, policy: PolicyIndex) -> impl Iterator<Item = &OutboundAh> {
        self.databases.outbound(policy).filter_map(|e| e.sa.ah.as_deref())
    }

    /// Traffic of the pair whose outbound SA (ESP, or AH alone) has the peer's SPI `spi` on
    /// `policy`: its counters and last sequence number, for lifetime reports.
    pub fn outbound_usage(&self, policy: PolicyIndex, spi: Spi) -> Option<(Counters, u32)> {
        let entry = self.databases.outbound_unordered(policy).find(|e| e.sa.spi() == spi)?;
        Some((entry.sa.counters()?, entry.last_sequence()?))
    }

    /// Traffic of the outbound SA of the pair with our SPI `spi` (its counters and last
    /// sequence number): found by our SPI, which is unique, in constant time, where
    /// [`SealPlane::outbound_usage`] searches the policy's SAs for the peer's SPI.
    pub fn pair_outbound_usage(&self, spi: Spi) -> Option<(Counters, u32)> {
        let entry = self.databases.outbound_of_pair(spi)?;
        Some((entry.sa.counters()?, entry.last_sequence()?))
    }
}
