//! The data plane as one sans-IO value: the SPD, the SA database and the acquire queues,
//! with RFC 4301 §5.1 (outbound) and §5.2 (inbound) processing on top of the per-SA seal and
//! open.
//!
//! Per-packet calls return outcomes that borrow the caller's buffer, as boringtun's
//! `TunnResult` does: [`DataPlane::seal`] → [`Outbound`], [`DataPlane::open`] → [`Inbound`].
//! Things the control plane must act on (acquires, traffic lifetime notices) come out of
//! [`DataPlane::poll_event`]. Nothing here reads a clock or a socket.
//!
//! The small helpers the packet paths call in the child modules (policy lookup, an entry's
//! size limit, its lifetime event) are `#[inline]`: a release build compiles modules into
//! separate codegen units, which would otherwise keep them out of line on every packet.
//!
//! SA pairs are installed from the IKE engine's `IpsecSaInstalled` event, converted by the
//! gateway into a [`SaPair`]: this crate does not depend on `ike`, so the data plane builds
//! and tests without the engine, and the engine's types can change without touching the
//! packet path. The conversion is a field-by-field copy: `policy` (the engine's `PolicyId`)
//! to the gateway's [`PolicyIndex`]; `selector` prefixes from the engine's `Subnet` masks via
//! [`Prefix::from_mask`](crate::Prefix::from_mask) and its protocol (0 = any); `suite` to
//! [`SaParams`](crate::SaParams) (cipher, integrity, mode, traffic lifetime via
//! [`TrafficLimits::from_kilobytes`](crate::TrafficLimits::from_kilobytes) with the
//! engine's rekey threshold, `IpsecSaPair::traffic_soft_bytes`, as the soft limit);
//! `udp_encapsulation.is_some()` to [`SaParams::udp_encapsulated`](crate::SaParams::udp_encapsulated); `local`, `remote`; and
//! `inbound` / `outbound` `EspKeys` via `SaKeys::from`.
//!
//! Make-before-break (RFC 4301 §4.4.2 rekeying): several SA pairs may serve one flow. Outbound
//! packets use the newest that is not expired; inbound packets are accepted on every
//! installed SA until the gateway removes the old one (on its delete or expiry).
//!
//! Acquire (§5.1, "no SA: ... invoke IKE"): a packet matching a `Protect` rule with no SA is
//! copied into a queue for that rule (at most [`DataPlaneConfig::queue_len`] packets, oldest
//! dropped first) and an [`Event::Acquire`] is raised once per queue. When a matching SA is
//! installed, the packets move to a ready list that [`DataPlane::poll_queued`] seals. If the
//! negotiation fails, the gateway calls [`DataPlane::abandon_acquire`], which drops the queue
//! so the next packet raises a fresh acquire. Queueing is the slow path: it copies and may
//! allocate (buffers are recycled); the protected fast path does neither.
//!
//! Modules, each with one job, imports pointing down: `policy` (SPD and SAD lookup), `queue`
//! (acquire queues and released packets), `outbound` / `inbound` (an installed pair's seal
//! and open glue over its `bundle` of SAs), `outcome` (what each call answers) and
//! `counters`; this file only routes a packet between them.

mod bundle;
mod counters;
mod inbound;
mod outbound;
mod outcome;
mod policy;
mod queue;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

use crypto::key_schedule::Spi;
use crypto::SecureRandom;

pub use self::counters::{InboundDrops, Statistics};
use self::inbound::InboundEntry;
pub use self::outcome::{Decision, Direction, DiscardReason, DropReason, Event, Inbound, Outbound, Send};
use self::policy::Databases;
pub use self::policy::{Protocols, SaPair};
use self::queue::{Queues, Released};
use crate::mtu::{self, IPV4_HEADER_LEN};
use crate::sa::ah::{InboundAh, OutboundAh};
use crate::sa::esp::{InboundSa, OutboundSa};
use crate::sa::{Counters, OpenError, SaError};
use crate::wire::ah::{self as ah_wire, packet_spi};
use crate::wire::esp::EspPacket;
use spd::Flow;
use spd::{Action, PolicyIndex, Rule, Spd};

/// Implementation limits of the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataPlaneConfig {
    /// Packets kept per acquire queue while an SA is negotiated.
    pub queue_len: usize,
    /// Spare packet buffers kept for reuse by the queues.
    pub spare_buffers: usize,
    /// MTU of the path to the peers: no outer packet (IPv4 header, UDP header when
    /// encapsulated, ESP) leaves bigger than this.
    pub path_mtu: u16,
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        Self { queue_len: 8, spare_buffers: 64, path_mtu: 1500 }
    }
}

/// Longest addition AH makes before a payload: the outer IPv4 header and the longest AH
/// header. [`DataPlane::seal`]'s output buffer needs this much more for AH pairs.
pub const MAX_AH_HEADROOM: usize = ah_wire::OUTER_HEADER_LEN + ah_wire::MAX_AH_LEN;

/// The SPD, the SAs and the acquire queues of one gateway.
pub struct DataPlane {
    config: DataPlaneConfig,
    databases: Databases,
    queues: Queues,
    events: VecDeque<Event>,
    statistics: Statistics,
}

impl core::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DataPlane")
            .field("rules", &self.databases.spd.rules().len())
            .field("inbound_sas", &self.databases.len())
            .field("queues", &self.queues.queued().1)
            .field("statistics", &self.statistics)
            .finish_non_exhaustive()
    }
}

impl DataPlane {
    /// A data plane with `spd` and no SAs.
    pub fn new(spd: Spd, config: DataPlaneConfig) -> Self {
        Self {
            config,
            databases: Databases::new(spd),
            queues: Queues::new(config.queue_len, config.spare_buffers),
            events: VecDeque::new(),
            statistics: Statistics::default(),
        }
    }

    /// Replaces the SPD (configuration reload). Installed SAs stay; queued packets are
    /// dropped, since rule indices change.
    pub fn replace_spd(&mut self, spd: Spd) {
        self.databases.spd = spd;
        self.statistics.queue_dropped += self.queues.clear() as u64;
    }

    /// Appends a rule to the SPD (lowest priority) without touching the acquire queues, and
    /// returns its index: a hub adds the flow a branch negotiated through a policy template
    /// when the pair is installed (the gateway's `data_path`).
    pub fn push_rule(&mut self, rule: Rule) -> usize {
        self.databases.spd.push(rule)
    }

    /// Removes the first SPD rule equal to `rule` (the SAs of a template flow are gone).
    /// Packets queued on that rule are dropped and counted; the queues of the rules after it
    /// follow their rules' new indices. Returns false when no rule is equal.
    pub fn remove_rule(&mut self, rule: &Rule) -> bool {
        let spd = &mut self.databases.spd;
        let Some(index) = spd.position(rule) else { return false };
        spd.remove(index);
        self.statistics.queue_dropped += self.queues.rule_removed(index) as u64;
        true
    }

    /// Follows a configuration reload in which policy entries moved or went: the SAs of
    /// policy `old` now belong to `renumber(old)`, and the SAs of a policy that maps to
    /// `None` are removed (the engine deleted them with the peer). Fragments waiting under a
    /// removed policy are dropped. Call with the new SPD ([`DataPlane::replace_spd`]), whose
    /// `Protect` actions use the new numbers. Returns how many pairs were removed.
    pub fn renumber_policies(&mut self, renumber: impl Fn(PolicyIndex) -> Option<PolicyIndex>) -> usize {
        self.statistics.queue_dropped += self.queues.renumber(&renumber) as u64;
        self.databases.renumber(&renumber)
    }

    /// The security policy database in force.
    pub fn spd(&self) -> &Spd {
        &self.databases.spd
    }

    /// The counters.
    pub fn statistics(&self) -> &Statistics {
        &self.statistics
    }

    /// The next event, if any. Drain after every call that takes a packet or an SA.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Installs a pair of SAs and releases the packets queued for its flow (see
    /// [`DataPlane::poll_queued`]). `rng` keys the CBC IV generator.
    pub fn install(&mut self, pair: SaPair<'_>, rng: &mut dyn SecureRandom) -> Result<(), SaError> {
        self.databases.install(&pair, false, rng)?;
        self.queues.release(pair.policy, &pair.selector);
        Ok(())
    }

    /// Installs a pair whose inbound SA opens at once and whose outbound SA seals only after
    /// [`DataPlane::release_outbound`]: a quick-mode responder between QM2 and QM3 (RFC 2409
    /// §5.5). Removing it by its inbound SPI removes both halves.
    pub fn install_inbound_first(
        &mut self,
        pair: SaPair<'_>,
        rng: &mut dyn SecureRandom,
    ) -> Result<(), SaError> {
        self.databases.install(&pair, true, rng)
    }

    /// Lets the outbound SA of the pair installed inbound-first under our SPI `spi` seal, and
    /// releases the packets queued for its flow. False when none is held under `spi`.
    pub fn release_outbound(&mut self, spi: Spi) -> bool {
        let Some((policy, selector)) = self.databases.release(spi) else { return false };
        self.queues.release(policy, &selector);
        true
    }

    /// Removes the pair whose inbound SA has our SPI `spi`. Returns false if there is none.
    pub fn remove_by_inbound_spi(&mut self, spi: Spi) -> bool {
        self.databases.remove_by_inbound_spi(spi)
    }

    /// Removes the pair whose outbound SA goes to `remote` under the peer's SPI `spi` (what
    /// a Delete payload names; peers choose SPIs, so the address disambiguates). Returns
    /// false if there is none.
    pub fn remove_by_outbound_spi(&mut self, remote: IpAddr, spi: Spi) -> bool {
        let inbound_spi = self.databases.inbound_spi_of(remote, spi);
        inbound_spi.is_some_and(|spi| self.databases.remove_by_inbound_spi(spi))
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
    /// [`MAX_TAILROOM`](crate::MAX_TAILROOM) bytes, plus [`MAX_AH_HEADROOM`] for AH pairs, and at least
    /// [`MAX_ICMP_LEN`](crate::mtu::MAX_ICMP_LEN)), pass in clear, queue, or drop. A tunnel
    /// packet too big for [`DataPlaneConfig::path_mtu`] is answered with ICMP when DF is set
    /// and fragmented otherwise; when a `Send` says `pending`, drain
    /// [`DataPlane::poll_queued`].
    pub fn seal<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Outbound<'o> {
        self.seal_within(packet, out, false)
    }

    /// [`DataPlane::seal`] for a datagram reassembled from inner fragments (docs/DESIGN.md,
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
        let (decision, index) = self.databases.decide(&flow);
        let policy = match decision {
            Decision::Protect { policy, .. } => policy,
            Decision::Acquire { policy, rule, selector } => {
                let (opened, dropped) = self.queues.enqueue(policy, rule, packet, whole);
                self.statistics.queued += 1;
                self.statistics.queue_dropped += u64::from(dropped);
                if opened {
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
    /// is none left. Call after [`DataPlane::install`] until it returns `None`. A released
    /// packet that no longer finds an SA (removed meanwhile) is queued again or dropped.
    /// `out` needs room for [`DataPlane::next_queued_len`] like [`DataPlane::seal`]'s.
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

    /// The length of the next packet [`DataPlane::poll_queued`] seals, if any (a datagram
    /// queued by `seal_whole` can be longer than the caller's usual buffer).
    pub fn next_queued_len(&self) -> Option<usize> {
        self.queues.next_ready_len()
    }

    /// RFC 4301 §5.2 for one ESP packet from the peer (the payload of an IP protocol 50
    /// packet, or of a UDP/4500 datagram after the caller stripped the UDP header): SA by
    /// SPI, open into `out` (which needs `esp.len()` bytes), then the inbound policy check.
    pub fn open<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Inbound<'o> {
        let spi = EspPacket::new_checked(packet).ok().map(|packet| packet.spi());
        self.open_on(spi, false, |entry| entry.open_esp(|esp| esp.open(packet, out)))
    }

    /// As [`DataPlane::open`], decrypting in place in `buf`, which holds exactly the ESP
    /// packet. On a drop the buffer's contents are unspecified.
    pub fn open_in_place<'b>(&mut self, buf: &'b mut [u8]) -> Inbound<'b> {
        let spi = EspPacket::new_checked(&*buf).ok().map(|packet| packet.spi());
        self.open_on(spi, false, |entry| entry.open_esp(|esp| esp.open_in_place(buf)))
    }

    /// RFC 4301 §5.2 for one IPv4 packet of protocol 51 (AH) from the peer, header
    /// included (as a raw socket reads it): SA by AH SPI, ICV over the header with its
    /// mutable fields zeroed, then for AH+ESP the ESP packet inside, then the inbound
    /// policy check. `out` needs `packet.len()` bytes.
    pub fn open_ah<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Inbound<'o> {
        let available = out.len();
        let Some(out) = out.get_mut(..packet.len()) else {
            let needed = packet.len();
            return self.finish(Err(DropReason::Open(OpenError::BufferTooSmall { needed, available })));
        };
        out.copy_from_slice(packet);
        self.open_ah_in_place(out)
    }

    /// As [`DataPlane::open_ah`], in place in `buf`, which holds exactly the IPv4 packet.
    pub fn open_ah_in_place<'b>(&mut self, buf: &'b mut [u8]) -> Inbound<'b> {
        self.open_on(packet_spi(buf), true, |entry| entry.open_ah(buf))
    }

    /// Opens on the pair of our SPI `spi` (our AH SPI when `ah`; `None` when the packet is
    /// too short to carry one), reports the pair's lifetime notice and counts the outcome.
    fn open_on<'o>(
        &mut self,
        spi: Option<Spi>,
        ah: bool,
        open: impl FnOnce(&mut InboundEntry) -> Result<Inbound<'o>, DropReason>,
    ) -> Inbound<'o> {
        let Some(spi) = spi else { return self.finish(Err(DropReason::Truncated)) };
        let entry = if ah { self.databases.inbound_by_ah_spi(spi) } else { self.databases.inbound_mut(spi) };
        let Some(entry) = entry else { return self.finish(Err(DropReason::UnknownSpi(spi))) };
        let result = open(entry);
        // `if let`, not `extend`: an `extend` call per packet for an event that is almost never there.
        if let Some(event) = entry.sa.lifetime_event(Direction::Inbound, entry.remote) {
            self.events.push_back(event);
        }
        self.finish(result)
    }

    /// Counts an inbound outcome.
    fn finish<'o>(&mut self, result: Result<Inbound<'o>, DropReason>) -> Inbound<'o> {
        match result {
            Ok(deliver) => {
                self.statistics.opened += 1;
                if let Inbound::Deliver { packet, .. } = &deliver {
                    self.statistics.opened_bytes += packet.len() as u64;
                }
                deliver
            }
            Err(reason) => {
                self.statistics.inbound.count(&reason);
                Inbound::Drop(reason)
            }
        }
    }

    /// RFC 4301 §5.2 for a packet that arrived from outside in clear (not ESP): true when
    /// policy lets it through, false when a `Protect` or `Discard` rule covers it (traffic
    /// that should have been protected must not be accepted in clear). Counts refusals.
    pub fn accept_clear(&mut self, packet: &[u8]) -> bool {
        let allowed = match Flow::parse_ipv4(packet) {
            Ok((flow, ..)) => matches!(self.databases.spd.lookup_inbound(&flow).1, Action::Bypass),
            Err(_) => false,
        };
        if !allowed {
            self.statistics.inbound_clear_refused += 1;
        }
        allowed
    }

    /// The inbound ESP SA of the pair with our SPI `spi`, for `display ipsec sa`.
    pub fn inbound_sa(&self, spi: Spi) -> Option<&InboundSa> {
        self.databases.inbound(spi)?.sa.esp.as_ref()
    }

    /// The inbound AH SA of the pair with our SPI `spi` (the ESP SPI for AH+ESP, the AH SPI
    /// for AH alone).
    pub fn inbound_ah_sa(&self, spi: Spi) -> Option<&InboundAh> {
        self.databases.inbound(spi)?.sa.ah.as_ref()
    }

    /// Every outbound ESP SA of `policy`, oldest first.
    pub fn outbound_sas(&self, policy: PolicyIndex) -> impl Iterator<Item = &OutboundSa> {
        self.databases.outbound(policy).filter_map(|e| e.sa.esp.as_ref())
    }

    /// True when an inbound AH SA has our AH SPI `spi` (alone or in an AH+ESP pair).
    pub fn knows_ah_spi(&self, spi: Spi) -> bool {
        self.databases.knows_ah_spi(spi)
    }

    /// Every outbound AH SA of `policy`, oldest first.
    pub fn outbound_ah_sas(&self, policy: PolicyIndex) -> impl Iterator<Item = &OutboundAh> {
        self.databases.outbound(policy).filter_map(|e| e.sa.ah.as_ref())
    }

    /// Traffic of the pair whose outbound SA (ESP, or AH alone) has the peer's SPI `spi` on
    /// `policy`: its counters and last sequence number, for lifetime reports.
    pub fn outbound_usage(&self, policy: PolicyIndex, spi: Spi) -> Option<(Counters, u32)> {
        let entry = self.databases.outbound_unordered(policy).find(|e| e.sa.spi() == spi)?;
        Some((entry.sa.counters()?, entry.last_sequence()?))
    }

    /// Traffic of the outbound SA of the pair with our SPI `spi` (its counters and last
    /// sequence number): found by our SPI, which is unique, in constant time, where
    /// [`DataPlane::outbound_usage`] searches the policy's SAs for the peer's SPI.
    pub fn pair_outbound_usage(&self, spi: Spi) -> Option<(Counters, u32)> {
        let entry = self.databases.outbound_of_pair(spi)?;
        Some((entry.sa.counters()?, entry.last_sequence()?))
    }

    /// Traffic of the pair with our SPI `spi` (ESP, or AH alone).
    pub fn inbound_usage(&self, spi: Spi) -> Option<Counters> {
        self.databases.inbound(spi)?.sa.counters()
    }
}

#[cfg(test)]
mod tests;
