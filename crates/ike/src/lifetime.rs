//! Lifetimes of IPsec SAs and of IKE SAs, and what happens when they run out.
//!
//! - IPsec SA life type and duration (RFC 2407 §4.5), negotiated as the shorter of both sides,
//!   and the RESPONDER-LIFETIME notification (RFC 2407 §4.6.3.1) by which a responder that
//!   chose a shorter lifetime tells the initiator so; the initiator adopts it (strongSwan's
//!   `apply_lifetimes()`, notes pitfalls 6 and 31).
//! - Rekeying an IPsec SA pair is a new quick mode for the same policy and flow (RFC 2409
//!   §5.5). The new pair is installed before the old one goes; the old one stays until its
//!   hard lifetime (strongSwan's IKEv1 default, `delete_rekeyed = no`: some peers keep using
//!   the old SA for a while), then it is deleted with a Delete payload (RFC 2408 §3.15,
//!   protocol ESP, our inbound SPI) in an informational exchange protected by HASH(1)
//!   (RFC 2409 §5.7).
//! - Traffic lifetimes (kilobytes) and ESP sequence numbers (RFC 4303 §3.3.3: a sender must
//!   not let the 32-bit counter cycle) are counted by the data plane, which reports totals
//!   through [`Engine::handle_sa_usage`]; the engine owns the thresholds, so the data plane
//!   needs no lifetime logic of its own.
//! - IKEv1 cannot rekey an IKE SA (notes pitfall 30): before it expires, a new main mode is
//!   run with the same peer, the IPsec SAs are adopted by the new IKE SA and keep working, and
//!   the old IKE SA is deleted at its hard lifetime with a Delete (protocol ISAKMP, SPI =
//!   CKY-I | CKY-R).
//!
//! Soft deadlines: the side that initiated the exchange (the "original initiator", as
//! strongSwan prefers) acts at 90 % of the lifetime minus up to 5 % of random jitter from the
//! engine's generator, so that many SAs made at once do not all rekey at once; the other
//! side acts only as a fallback, at 95–97 %, and only if nothing has replaced the SA by then.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use isakmp::{Delete, Doi, Notification, NotifyType, Payload, ProtocolId};

use crate::config::{PolicyId, TrafficSelector};
use crate::engine::Engine;
use crate::event::{ConnectionId, Event, IpsecSaPair};
use crate::ike_sa::{Ctx, IkeSa, Phase1, Role};
use crate::proposal::{IpsecChoice, IpsecSuite};
use crate::quick_mode::Acquire;

// Implementation constants.

/// Soft lifetime of the preferred side, in percent of the lifetime, before jitter.
const SOFT_PERCENT_PREFERRED: f64 = 90.0;
/// Largest jitter subtracted from the preferred side's soft lifetime, in percent.
const JITTER_PERCENT_PREFERRED: f64 = 5.0;
/// Soft lifetime of the fallback side (the responder), in percent, before jitter.
const SOFT_PERCENT_FALLBACK: f64 = 97.0;
/// Largest jitter subtracted from the fallback side's soft lifetime, in percent.
const JITTER_PERCENT_FALLBACK: f64 = 2.0;
/// Traffic soft limits, in percent of the kilobyte lifetime, for each side.
const TRAFFIC_SOFT_PERCENT_PREFERRED: u64 = 90;
const TRAFFIC_SOFT_PERCENT_FALLBACK: u64 = 95;
/// An outbound SA that has sent this many packets is rekeyed: 2^24 packets of margin before
/// the 32-bit sequence number would cycle (RFC 4303 §3.3.3; no extended sequence numbers).
pub const SEQUENCE_SOFT_LIMIT: u64 = u32::MAX as u64 - (1 << 24);
/// An outbound SA that has sent this many packets can send no more (RFC 4303 §3.3.3).
pub const SEQUENCE_HARD_LIMIT: u64 = u32::MAX as u64;

// Specification constants (RFC 2407 §4.5).

/// SA Life Type attribute.
const ATTRIBUTE_LIFE_TYPE: u16 = 1;
/// SA Life Duration attribute.
const ATTRIBUTE_LIFE_DURATION: u16 = 2;
/// Life type seconds.
const LIFE_TYPE_SECONDS: u16 = 1;
/// Life type kilobytes.
const LIFE_TYPE_KILOBYTES: u16 = 2;
/// Attributes read from one RESPONDER-LIFETIME at most (a bound on work, never reached by a
/// real peer, which sends two or four).
const MAX_NOTIFY_ATTRIBUTES: usize = 16;

/// Why our side ended an IPsec SA pair, carried by [`Event::IpsecSaExpired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpsecSaEnd {
    /// Its hard lifetime in seconds passed.
    Lifetime,
    /// Its traffic lifetime (kilobytes) is used up.
    Traffic,
    /// Its outbound sequence numbers are used up.
    SequenceNumbers,
    /// `reset ipsec sa` or `reset ike sa`.
    Reset,
    /// The IKE SA that managed it is gone and no newer one with the peer took it over.
    IkeSaGone,
    /// A configuration reload changed or removed its policy or peer
    /// ([`crate::Engine::reconfigure`]).
    Reconfigured,
}

/// Why our side ended an IKE SA, carried by [`Event::IkeSaExpired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IkeSaEnd {
    /// Its hard lifetime passed.
    Lifetime,
    /// `reset ike sa`.
    Reset,
    /// A configuration reload changed or removed its peer ([`crate::Engine::reconfigure`]).
    Reconfigured,
}

/// Where the rekey of one pair stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rekey {
    /// Not due yet.
    Idle,
    /// A quick mode was started; tried again at `retry_at` if nothing replaced the pair.
    Started { retry_at: Instant },
    /// A newer pair for the same policy and flow is installed.
    Replaced,
}

/// One installed pair of IPsec SAs and its lifetime.
#[derive(Debug, Clone)]
pub(crate) struct InstalledPair {
    pub(crate) policy: usize,
    pub(crate) policy_id: PolicyId,
    pub(crate) selector: TrafficSelector,
    pub(crate) suite: IpsecSuite,
    pub(crate) inbound_spi: u32,
    pub(crate) outbound_spi: u32,
    /// Our AH SPI, for AH and AH+ESP (for AH alone the same as `inbound_spi`).
    pub(crate) ah_inbound_spi: Option<u32>,
    /// The peer's AH SPI, likewise.
    pub(crate) ah_outbound_spi: Option<u32>,
    /// We initiated its quick mode, so we are the side that rekeys it first.
    pub(crate) initiator: bool,
    pub(crate) installed_at: Instant,
    pub(crate) soft_at: Instant,
    pub(crate) hard_at: Instant,
    /// Why it ends at `hard_at` (traffic and sequence limits bring `hard_at` forward).
    pub(crate) hard_reason: IpsecSaEnd,
    /// The larger of the byte totals the data plane reported for its two SAs.
    pub(crate) bytes: u64,
    pub(crate) rekey: Rekey,
}

/// Where the renewal of an IKE SA stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Renewal {
    /// Not due yet (or not established).
    #[default]
    Idle,
    /// The soft lifetime passed; the engine starts a new main mode.
    Requested,
    /// A new main mode was started; if no newer IKE SA has taken over by `retry_at` (the
    /// main mode failed), the renewal is requested again.
    Started { retry_at: Instant },
    /// A newer IKE SA with the same peer took over the IPsec SAs; this one waits for its
    /// hard lifetime and is then deleted.
    Superseded,
}

/// The lifetime state of one IKE SA: its renewal and the IPsec SA pairs it manages.
#[derive(Debug, Default)]
pub(crate) struct Lifetimes {
    pub(crate) pairs: Vec<InstalledPair>,
    pub(crate) renew_at: Option<Instant>,
    pub(crate) renewal: Renewal,
}

impl Lifetimes {
    /// The earliest lifetime deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let pairs = self.pairs.iter().flat_map(|p| {
            let soft = match p.rekey {
                Rekey::Idle => Some(p.soft_at),
                Rekey::Started { retry_at } => Some(retry_at),
                Rekey::Replaced => None,
            };
            [soft, Some(p.hard_at)]
        });
        let renewal_retry = match self.renewal {
            Renewal::Started { retry_at } => Some(retry_at),
            _ => None,
        };
        pairs.chain([self.renew_at, renewal_retry]).flatten().min()
    }

    /// True when a live pair that is not being replaced serves `acquire`'s flow.
    pub(crate) fn serves(&self, acquire: &Acquire, now: Instant) -> bool {
        self.pairs.iter().any(|p| {
            p.policy == acquire.policy
                && p.selector == acquire.selector
                && p.hard_at > now
                && p.rekey != Rekey::Replaced
        })
    }
}

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

/// `now + d`, saturating far in the future instead of overflowing.
fn later(now: Instant, d: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);
    now.checked_add(d).or_else(|| now.checked_add(CENTURY)).unwrap_or(now)
}

/// A uniform fraction in `[0, 1)` from the engine's generator.
fn random_fraction(ctx: &mut Ctx<'_>) -> f64 {
    let mut bytes = [0u8; 4];
    ctx.rng.fill(&mut bytes);
    f64::from(u32::from_be_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

/// The soft deadline of something that lives `lifetime` from `now`.
fn soft_deadline(now: Instant, lifetime: Duration, preferred: bool, ctx: &mut Ctx<'_>) -> Instant {
    let (base, spread) = if preferred {
        (SOFT_PERCENT_PREFERRED, JITTER_PERCENT_PREFERRED)
    } else {
        (SOFT_PERCENT_FALLBACK, JITTER_PERCENT_FALLBACK)
    };
    let percent = base - spread * random_fraction(ctx);
    later(now, lifetime.mul_f64(percent / 100.0))
}

/// Records a pair that was just installed on `sa`: older pairs for the same policy and flow
/// are now replaced, and the new one gets its deadlines.
pub(crate) fn track(sa: &mut IkeSa, policy: usize, pair: &IpsecSaPair, ctx: &mut Ctx<'_>) {
    let now = ctx.now;
    for old in sa.lifetimes.pairs.iter_mut() {
        if old.policy == policy && old.selector == pair.selector {
            old.rekey = Rekey::Replaced;
        }
    }
    let soft_at = soft_deadline(now, pair.suite.lifetime, pair.initiator, ctx);
    sa.lifetimes.pairs.push(InstalledPair {
        policy,
        policy_id: pair.policy.clone(),
        selector: pair.selector,
        suite: pair.suite,
        inbound_spi: pair.inbound.spi().0,
        outbound_spi: pair.outbound.spi().0,
        ah_inbound_spi: pair.ah.as_ref().map(|ah| ah.inbound.spi().0),
        ah_outbound_spi: pair.ah.as_ref().map(|ah| ah.outbound.spi().0),
        initiator: pair.initiator,
        installed_at: now,
        soft_at,
        hard_at: later(now, pair.suite.lifetime),
        hard_reason: IpsecSaEnd::Lifetime,
        bytes: 0,
        rekey: Rekey::Idle,
    });
}

/// Arms the renewal of an IKE SA that was just established. The phase-1 initiator renews
/// first; the responder renews only if the initiator has not.
pub(crate) fn arm_ike_sa(sa: &mut IkeSa, ctx: &mut Ctx<'_>) {
    let Phase1::Established { suite, .. } = &sa.phase1 else { return };
    let lifetime = suite.lifetime;
    sa.lifetimes.renew_at = Some(soft_deadline(ctx.now, lifetime, sa.role == Role::Initiator, ctx));
    sa.lifetimes.renewal = Renewal::Idle;
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
        crate::informational::send_protected(sa, &deletes, ctx);
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
        crate::informational::send_protected(sa, &[Payload::Delete(delete)], ctx);
        ctx.out.events.push_back(Event::IkeSaExpired {
            connection: sa.connection,
            peer: sa.peer_config(ctx.config).name.clone(),
            remote: sa.remote,
            reason,
        });
    }
    sa.phase1 = Phase1::Failed;
}

/// Reads the lifetimes of a RESPONDER-LIFETIME notification in `payloads` (RFC 2407
/// §4.6.3.1: its data is a list of SA Life Type / SA Life Duration attributes) and returns
/// `suite` with the shorter of each. Malformed data is ignored: the notification only ever
/// shortens a lifetime, so ignoring it is the safe reading.
pub(crate) fn adopt_responder_lifetime(suite: IpsecSuite, payloads: &[Payload<'_>]) -> IpsecSuite {
    let notified = payloads.iter().find_map(|p| match p {
        Payload::Notification(n)
            if n.notify_type == NotifyType::ResponderLifetime
                && matches!(n.protocol, ProtocolId::Esp | ProtocolId::Ah | ProtocolId::Isakmp) =>
        {
            Some(n.data)
        }
        _ => None,
    });
    let Some(data) = notified else { return suite };
    let (seconds, kilobytes) = parse_life_attributes(data);
    IpsecSuite {
        lifetime: seconds.map_or(suite.lifetime, |s| suite.lifetime.min(Duration::from_secs(s))),
        lifetime_kilobytes: match (suite.lifetime_kilobytes, kilobytes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        ..suite
    }
}

/// The seconds and kilobytes of an SA Life Type / Duration attribute list. Reads TV and TLV
/// attributes with bounds checks; stops at the first malformed one.
fn parse_life_attributes(mut data: &[u8]) -> (Option<u64>, Option<u64>) {
    let (mut seconds, mut kilobytes) = (None, None);
    let mut life_type = LIFE_TYPE_SECONDS;
    for _ in 0..MAX_NOTIFY_ATTRIBUTES {
        let Some((&[t0, t1, v0, v1], rest)) = data.split_first_chunk::<4>() else { break };
        let raw_type = u16::from_be_bytes([t0, t1]);
        let (value, rest) = if raw_type & 0x8000 != 0 {
            (u64::from(u16::from_be_bytes([v0, v1])), rest)
        } else {
            let len = usize::from(u16::from_be_bytes([v0, v1]));
            let Some(bytes) = rest.get(..len) else { break };
            if len == 0 || len > 8 {
                break;
            }
            let value = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            (value, rest.get(len..).unwrap_or_default())
        };
        data = rest;
        match raw_type & 0x7fff {
            ATTRIBUTE_LIFE_TYPE => life_type = u16::try_from(value).unwrap_or(0),
            ATTRIBUTE_LIFE_DURATION if life_type == LIFE_TYPE_SECONDS => seconds = Some(value),
            ATTRIBUTE_LIFE_DURATION if life_type == LIFE_TYPE_KILOBYTES => kilobytes = Some(value),
            _ => {}
        }
    }
    (seconds, kilobytes)
}

/// The data of the RESPONDER-LIFETIME a quick-mode responder sends in QM2 when the lifetime
/// it chose (the shorter of both) is shorter than what the initiator offered, so that the
/// initiator does not keep using an SA we have already deleted. `None` when the offer stands.
pub(crate) fn responder_lifetime_data(choice: &IpsecChoice) -> Option<Vec<u8>> {
    let offered = choice.offered().suite()?;
    let shorter_time = choice.suite.lifetime < offered.lifetime;
    let shorter_traffic = match (choice.suite.lifetime_kilobytes, offered.lifetime_kilobytes) {
        (Some(ours), Some(theirs)) => ours < theirs,
        (Some(_), None) => true,
        _ => false,
    };
    if !shorter_time && !shorter_traffic {
        return None;
    }
    let mut data = Vec::new();
    let mut push = |attribute_type: u16, value: u64| {
        isakmp::Attribute::number(attribute_type, value).emit(&mut data);
    };
    push(ATTRIBUTE_LIFE_TYPE, u64::from(LIFE_TYPE_SECONDS));
    push(ATTRIBUTE_LIFE_DURATION, choice.suite.lifetime.as_secs());
    if let Some(kb) = choice.suite.lifetime_kilobytes {
        push(ATTRIBUTE_LIFE_TYPE, u64::from(LIFE_TYPE_KILOBYTES));
        push(ATTRIBUTE_LIFE_DURATION, kb);
    }
    Some(data)
}

/// The RESPONDER-LIFETIME notification carrying `data`, naming our inbound SPI.
pub(crate) fn responder_lifetime_notify<'a>(
    protocol: ProtocolId,
    spi: &'a [u8],
    data: &'a [u8],
) -> Payload<'a> {
    Payload::Notification(Notification {
        doi: Doi::Ipsec,
        protocol,
        spi,
        notify_type: NotifyType::ResponderLifetime,
        data,
    })
}

/// Applies the data plane's totals to a pair: `bytes` the larger of its two SAs', `packets`
/// those sent on its outbound SA (inbound counts say nothing of our sequence numbers).
fn judge_usage(pair: &mut InstalledPair, bytes: u64, packets: u64, now: Instant) {
    pair.bytes = pair.bytes.max(bytes);
    if let Some(kb) = pair.suite.lifetime_kilobytes {
        let limit = kb.saturating_mul(1024);
        if pair.bytes >= limit {
            pair.hard_at = pair.hard_at.min(now);
            pair.hard_reason = IpsecSaEnd::Traffic;
        } else if pair.bytes >= traffic_soft_bytes(kb, pair.initiator) {
            pair.soft_at = pair.soft_at.min(now);
        }
    }
    if packets >= SEQUENCE_HARD_LIMIT {
        pair.hard_at = pair.hard_at.min(now);
        pair.hard_reason = IpsecSaEnd::SequenceNumbers;
    } else if packets >= SEQUENCE_SOFT_LIMIT {
        pair.soft_at = pair.soft_at.min(now);
    }
}

/// The byte count at which the engine rekeys a pair with a traffic lifetime of `kilobytes`:
/// 90 % on the side that initiated it, 95 % on the other (the fallback).
fn traffic_soft_bytes(kilobytes: u64, initiator: bool) -> u64 {
    let percent = if initiator { TRAFFIC_SOFT_PERCENT_PREFERRED } else { TRAFFIC_SOFT_PERCENT_FALLBACK };
    kilobytes.saturating_mul(1024) / 100 * percent
}

impl crate::event::IpsecSaPair {
    /// The byte count at which the engine will rekey this pair, when it has a traffic
    /// lifetime. A data plane that raises its soft-limit notice here (and reports usage at
    /// once, [`crate::Engine::handle_sa_usage`]) lets the engine act on that report; a notice
    /// any earlier is judged too early, and the next report may come only after the hard limit
    /// has stopped the traffic.
    pub fn traffic_soft_bytes(&self) -> Option<u64> {
        self.suite.lifetime_kilobytes.map(|kb| traffic_soft_bytes(kb, self.initiator))
    }
}

/// What the data plane reports about one of its SAs, as running totals since install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SaUsage {
    /// Bytes protected or accepted by this SA.
    pub bytes: u64,
    /// Packets sent on it (for an outbound SA: its last sequence number).
    pub packets: u64,
}

/// The state of an IPsec SA pair, as `display ipsec sa` flags show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpsecSaState {
    /// In use; not yet due for a rekey.
    Ready,
    /// Past its soft lifetime; a new pair is being negotiated.
    Rekeying,
    /// A newer pair serves the flow; this one stays until its hard lifetime.
    Replaced,
}

/// A read-only view of one IPsec SA pair, for `display ipsec sa [brief]`.
#[derive(Debug, Clone)]
pub struct IpsecSaView {
    /// The IKE SA that manages it.
    pub connection: ConnectionId,
    /// The peer's configured name.
    pub peer: String,
    /// Our gateway address.
    pub local: SocketAddr,
    /// The peer's gateway address.
    pub remote: SocketAddr,
    /// The policy entry it serves.
    pub policy: PolicyId,
    /// The protected flow, from our side.
    pub selector: TrafficSelector,
    /// Algorithms, mode, PFS and negotiated lifetimes.
    pub suite: IpsecSuite,
    /// The SPI of the SA from the peer (we chose it).
    pub inbound_spi: u32,
    /// The SPI of the SA to the peer (it chose it).
    pub outbound_spi: u32,
    /// For AH and AH+ESP: the AH SPIs, inbound (ours) and outbound (the peer's). For AH
    /// alone they equal `inbound_spi` and `outbound_spi`.
    pub ah_spis: Option<(u32, u32)>,
    /// True when we initiated its quick mode.
    pub initiator: bool,
    /// When it was installed.
    pub installed_at: Instant,
    /// Time left before its hard lifetime.
    pub remaining: Duration,
    /// Kilobytes left before its traffic lifetime, if it has one.
    pub remaining_kilobytes: Option<u64>,
    /// Rekey state.
    pub state: IpsecSaState,
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
        self.with_sa(slot, now, crate::engine::on_sa_timeout);
        self.lifetime_followups(slot, now);
        self.reap(slot, now);
    }

    /// What lifetimes need beyond one SA: at an IKE SA's hard lifetime, its IPsec SAs go to a
    /// newer IKE SA with the same peer (if any) before it is deleted; at its soft lifetime a
    /// new main mode is started.
    pub(crate) fn lifetime_followups(&mut self, slot: usize, now: Instant) {
        let Some(sa) = self.slots.get(slot).and_then(Option::as_ref) else { return };
        if let Phase1::Established { expires_at, .. } = &sa.phase1 {
            if *expires_at <= now {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn life_attributes_read_tv_and_tlv_forms() {
        // Seconds 600 (TV), kilobytes 4608000 (TLV, 4 bytes).
        let data = [
            0x80, 0x01, 0x00, 0x01, 0x80, 0x02, 0x02, 0x58, 0x80, 0x01, 0x00, 0x02, 0x00, 0x02, 0x00, 0x04,
            0x00, 0x46, 0x50, 0x00,
        ];
        assert_eq!(parse_life_attributes(&data), (Some(600), Some(4_608_000)));
    }

    #[test]
    fn life_attributes_survive_truncation_and_absurd_lengths() {
        assert_eq!(parse_life_attributes(&[]), (None, None));
        assert_eq!(parse_life_attributes(&[0x80, 0x02, 0x00]), (None, None));
        // TLV duration claiming 9 bytes: refused, nothing read after it.
        let data = [0x00, 0x02, 0x00, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(parse_life_attributes(&data), (None, None));
        // TLV whose length runs past the end.
        assert_eq!(parse_life_attributes(&[0x00, 0x02, 0x00, 0x04, 1]), (None, None));
    }
}
