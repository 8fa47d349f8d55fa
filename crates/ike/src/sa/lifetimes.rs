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

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use isakmp::{Doi, Notification, NotifyType, Payload, ProtocolId};

use crate::config::{PolicyId, TrafficSelector};
use crate::event::{Acquire, ConnectionId, IpsecSaEnd, IpsecSaPair};
use crate::proposal::{IpsecChoice, IpsecSuite};
use crate::sa::context::Ctx;

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

impl crate::sa::lazy::Empty for Lifetimes {
    const EMPTY: &'static Self = &Self { pairs: Vec::new(), renew_at: None, renewal: Renewal::Idle };
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

/// `now + d`, saturating far in the future instead of overflowing.
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
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
pub(crate) fn track(lifetimes: &mut Lifetimes, policy: usize, pair: &IpsecSaPair, ctx: &mut Ctx<'_>) {
    let now = ctx.now;
    for old in lifetimes.pairs.iter_mut() {
        if old.policy == policy && old.selector == pair.selector {
            old.rekey = Rekey::Replaced;
        }
    }
    let soft_at = soft_deadline(now, pair.suite.lifetime, pair.initiator, ctx);
    // One pair per flow, two while one is rekeyed: room for one more, not the four a first
    // push makes room for (a hub holds one of these lists per branch).
    lifetimes.pairs.reserve_exact(1);
    lifetimes.pairs.push(InstalledPair {
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

/// Arms the renewal of an IKE SA of `lifetime` that was just established. The phase-1
/// initiator (`preferred`) renews first; the responder renews only if the initiator has not.
pub(crate) fn arm_renewal(lifetimes: &mut Lifetimes, lifetime: Duration, preferred: bool, ctx: &mut Ctx<'_>) {
    lifetimes.renew_at = Some(soft_deadline(ctx.now, lifetime, preferred, ctx));
    lifetimes.renewal = Renewal::Idle;
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
            // A duration of 0 sets no limit: it cannot shorten ours.
            ATTRIBUTE_LIFE_DURATION if value == 0 => {}
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
pub(crate) fn judge_usage(pair: &mut InstalledPair, bytes: u64, packets: u64, now: Instant) {
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
    fn life_attributes_of_zero_set_no_limit() {
        // Seconds 0 and kilobytes 0 (TV): neither may shorten ours.
        let data =
            [0x80, 0x01, 0x00, 0x01, 0x80, 0x02, 0x00, 0x00, 0x80, 0x01, 0x00, 0x02, 0x80, 0x02, 0x00, 0x00];
        assert_eq!(parse_life_attributes(&data), (None, None));
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
