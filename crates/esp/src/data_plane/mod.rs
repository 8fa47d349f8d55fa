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
//! Two sides, so that sealing and opening can run on two threads that never take the same
//! lock (issue 16): the [`SealPlane`] holds the SPD, the outbound SAs (whose sequence numbers
//! only the sealing thread moves), the acquire queues and the outbound counters; the
//! [`OpenPlane`] holds the inbound SAs with their replay windows and the inbound counters.
//! A negotiated pair is built first ([`SaPair::build`], keys scheduled with no side
//! touched), its inbound half installed on the opening side, then its outbound half on the
//! sealing side (so the peer's answers to our first packets find their SA); a pair goes in
//! the other order (no packet is sealed on an SA whose inbound half is gone). [`DataPlane`]
//! is both sides in one value, for a caller with one thread (tests, benchmarks, fuzzing).
//!
//! Modules, each with one job, imports pointing down: `seal` and `open` (the two sides),
//! `policy` (SPD and SAD lookup, a pair built), `queue` (acquire queues and released packets),
//! `outbound` / `inbound` (an installed pair's seal and open glue over its `bundle` of SAs),
//! `outcome` (what each call answers), `config` and `counters`; this file puts the two sides
//! together.

mod bundle;
mod config;
mod counters;
mod inbound;
mod open;
mod outbound;
mod outcome;
mod policy;
mod queue;
mod seal;

use std::net::IpAddr;

use crypto::key_schedule::Spi;
use crypto::SecureRandom;

pub use self::config::{DataPlaneConfig, MAX_AH_HEADROOM};
pub use self::counters::{InboundDrops, Statistics};
pub use self::open::OpenPlane;
pub use self::outcome::{Decision, Direction, DiscardReason, DropReason, Event, Inbound, Outbound, Send};
pub use self::policy::{BuiltPair, OutboundHalf, Protocols, SaPair};
pub use self::seal::SealPlane;
use crate::sa::ah::{InboundAh, OutboundAh};
use crate::sa::esp::{InboundSa, OutboundSa};
use crate::sa::{Counters, SaError};
use spd::Flow;
use spd::{PolicyIndex, Rule, Spd};

/// Both sides of one gateway's data plane in one value (see the module documentation).
pub struct DataPlane {
    seal: SealPlane,
    open: OpenPlane,
}

impl core::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DataPlane")
            .field("rules", &self.seal.spd().rules().len())
            .field("inbound_sas", &self.open.len())
            .field("queued", &self.seal.queued_packets())
            .field("statistics", &self.statistics())
            .finish_non_exhaustive()
    }
}

impl DataPlane {
    /// A data plane with `spd` and no SAs.
    pub fn new(spd: Spd, config: DataPlaneConfig) -> Self {
        Self { seal: SealPlane::new(spd, config), open: OpenPlane::default() }
    }

    /// The two sides, for a sealing and an opening thread.
    pub fn into_sides(self) -> (SealPlane, OpenPlane) {
        (self.seal, self.open)
    }

    /// The sealing side.
    pub fn seal_side(&mut self) -> &mut SealPlane {
        &mut self.seal
    }

    /// The opening side.
    pub fn open_side(&mut self) -> &mut OpenPlane {
        &mut self.open
    }

    /// See [`SealPlane::replace_spd`].
    pub fn replace_spd(&mut self, spd: Spd) {
        self.seal.replace_spd(spd);
    }

    /// See [`SealPlane::push_rule`].
    pub fn push_rule(&mut self, rule: Rule) -> usize {
        self.seal.push_rule(rule)
    }

    /// See [`SealPlane::remove_rule`].
    pub fn remove_rule(&mut self, rule: &Rule) -> bool {
        self.seal.remove_rule(rule)
    }

    /// Follows a configuration reload in which policy entries moved or went: the SAs of
    /// policy `old` now belong to `renumber(old)`, and the SAs of a policy that maps to
    /// `None` are removed (the engine deleted them with the peer). Fragments waiting under a
    /// removed policy are dropped. Call with the new SPD ([`DataPlane::replace_spd`]), whose
    /// `Protect` actions use the new numbers. Returns how many pairs were removed.
    pub fn renumber_policies(&mut self, renumber: impl Fn(PolicyIndex) -> Option<PolicyIndex>) -> usize {
        let removed = self.seal.renumber_policies(&renumber);
        self.open.renumber_policies(renumber);
        removed
    }

    /// The security policy database in force.
    pub fn spd(&self) -> &Spd {
        self.seal.spd()
    }

    /// The counters of both sides.
    pub fn statistics(&self) -> Statistics {
        self.seal.statistics().with_inbound(self.open.statistics())
    }

    /// The next event, if any (the sealing side's first). Drain after every call that takes
    /// a packet or an SA.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.seal.poll_event().or_else(|| self.open.poll_event())
    }

    /// Installs a pair of SAs, inbound half first, and releases the packets queued for its
    /// flow (see [`DataPlane::poll_queued`]). `rng` draws the CBC IV nonce.
    pub fn install(&mut self, pair: SaPair<'_>, rng: &mut dyn SecureRandom) -> Result<(), SaError> {
        let outbound = self.open.install(pair.build(rng)?)?;
        self.seal.install(outbound);
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
        let outbound = self.open.install(pair.build(rng)?)?;
        self.seal.hold(outbound);
        Ok(())
    }

    /// See [`SealPlane::release_outbound`].
    pub fn release_outbound(&mut self, spi: Spi) -> bool {
        self.seal.release_outbound(spi)
    }

    /// Removes the pair whose inbound SA has our SPI `spi`, outbound half first. Returns
    /// false if there is none.
    pub fn remove_by_inbound_spi(&mut self, spi: Spi) -> bool {
        let outbound = self.seal.remove_by_inbound_spi(spi);
        self.open.remove_by_inbound_spi(spi) || outbound
    }

    /// Removes the pair whose outbound SA goes to `remote` under the peer's SPI `spi` (what
    /// a Delete payload names; peers choose SPIs, so the address disambiguates). Returns
    /// false if there is none.
    pub fn remove_by_outbound_spi(&mut self, remote: IpAddr, spi: Spi) -> bool {
        let inbound_spi = self.seal.inbound_spi_of(remote, spi);
        inbound_spi.is_some_and(|spi| self.remove_by_inbound_spi(spi))
    }

    /// See [`SealPlane::abandon_acquire`].
    pub fn abandon_acquire(&mut self, policy: PolicyIndex) -> usize {
        self.seal.abandon_acquire(policy)
    }

    /// Packets waiting in acquire queues.
    pub fn queued_packets(&self) -> usize {
        self.seal.queued_packets()
    }

    /// See [`SealPlane::decide`].
    pub fn decide(&self, flow: &Flow) -> Decision {
        self.seal.decide(flow)
    }

    /// See [`SealPlane::seal`].
    pub fn seal<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Outbound<'o> {
        self.seal.seal(packet, out)
    }

    /// See [`SealPlane::seal_whole`].
    pub fn seal_whole<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Outbound<'o> {
        self.seal.seal_whole(packet, out)
    }

    /// See [`SealPlane::poll_queued`].
    pub fn poll_queued<'o>(&mut self, out: &'o mut [u8]) -> Option<Outbound<'o>> {
        self.seal.poll_queued(out)
    }

    /// See [`SealPlane::next_queued_len`].
    pub fn next_queued_len(&self) -> Option<usize> {
        self.seal.next_queued_len()
    }

    /// See [`OpenPlane::open`].
    pub fn open<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Inbound<'o> {
        self.open.open(packet, out)
    }

    /// See [`OpenPlane::open_in_place`].
    pub fn open_in_place<'b>(&mut self, buf: &'b mut [u8]) -> Inbound<'b> {
        self.open.open_in_place(buf)
    }

    /// See [`OpenPlane::open_ah`].
    pub fn open_ah<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Inbound<'o> {
        self.open.open_ah(packet, out)
    }

    /// See [`OpenPlane::open_ah_in_place`].
    pub fn open_ah_in_place<'b>(&mut self, buf: &'b mut [u8]) -> Inbound<'b> {
        self.open.open_ah_in_place(buf)
    }

    /// See [`SealPlane::accept_clear`].
    pub fn accept_clear(&mut self, packet: &[u8]) -> bool {
        self.seal.accept_clear(packet)
    }

    /// See [`OpenPlane::inbound_sa`].
    pub fn inbound_sa(&self, spi: Spi) -> Option<&InboundSa> {
        self.open.inbound_sa(spi)
    }

    /// See [`OpenPlane::inbound_ah_sa`].
    pub fn inbound_ah_sa(&self, spi: Spi) -> Option<&InboundAh> {
        self.open.inbound_ah_sa(spi)
    }

    /// See [`SealPlane::outbound_sas`].
    pub fn outbound_sas(&self, policy: PolicyIndex) -> impl Iterator<Item = &OutboundSa> {
        self.seal.outbound_sas(policy)
    }

    /// See [`OpenPlane::knows_ah_spi`].
    pub fn knows_ah_spi(&self, spi: Spi) -> bool {
        self.open.knows_ah_spi(spi)
    }

    /// See [`SealPlane::outbound_ah_sas`].
    pub fn outbound_ah_sas(&self, policy: PolicyIndex) -> impl Iterator<Item = &OutboundAh> {
        self.seal.outbound_ah_sas(policy)
    }

    /// See [`SealPlane::outbound_usage`].
    pub fn outbound_usage(&self, policy: PolicyIndex, spi: Spi) -> Option<(Counters, u32)> {
        self.seal.outbound_usage(policy, spi)
    }

    /// See [`SealPlane::pair_outbound_usage`].
    pub fn pair_outbound_usage(&self, spi: Spi) -> Option<(Counters, u32)> {
        self.seal.pair_outbound_usage(spi)
    }

    /// See [`OpenPlane::inbound_usage`].
    pub fn inbound_usage(&self, spi: Spi) -> Option<Counters> {
        self.open.inbound_usage(spi)
    }
}

#[cfg(test)]
mod tests;
