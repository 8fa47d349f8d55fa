//! What happens when lifetimes run out, for one IKE SA: renewal requests, IPsec SA expiry
//! with Deletes, rekeying quick modes, and the end of the IKE SA itself. The lifetime state
//! and its arithmetic are in `sa::lifetimes`; what spans several IKE SAs is the engine's.

use std::net::SocketAddr;

use isakmp::{Delete, Doi, Payload, ProtocolId};

use crate::event::{Acquire, Event, IkeSaEnd, IpsecSaEnd};
use crate::ike_sa::{IkeSa, Phase1};
use crate::sa::context::Ctx;
use crate::sa::core::Role;
use crate::sa::lifetimes::{later, InstalledPair, Rekey, Renewal};

/// The IKE SA with a peer that new quick modes should use: the newest established one that
/// has not been superseded, else one we initiated that is still negotiating phase 1 (the
/// acquire waits for it; a responder SA not yet authenticated never holds traffic).
/// `of_peer` are the peer's slots (the engine's index); among several still negotiating, the
/// lowest slot wins, as before the index existed.
pub(crate) fn preferred_ike_sa(
    slots: &[Option<Box<IkeSa>>],
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
    // A responder SA whose peer has not authenticated yet is never chosen: anyone can make
    // one with a spoofed MM1, and traffic waiting on it would wait for a peer that may not
    // exist. Our own initiation starts beside it (RFC 2409 has no collision rule).
    candidates()
        .filter(|(_, sa)| sa.is_established() && sa.lifetimes.renewal != Renewal::Superseded)
        .max_by_key(|(_, sa)| sa.established_at)
        .or_else(|| candidates().find(|(_, sa)| !sa.is_established() && sa.role == Role::Initiator))
        .or_else(|| candidates().find(|(_, sa)| sa.is_established()))
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
/// hard expiry is the engine's (`Engine::lifetime_followups` in `engine/lifetimes.rs`), because it may hand the
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
    // Rebuilt only when a pair ends: the list keeps its exact size (`track`), and a timer
    // that ends nothing allocates nothing.
    if sa.lifetimes.pairs.iter().any(|p| p.hard_at <= now) {
        let (expired, live): (Vec<_>, Vec<_>) =
            std::mem::take(&mut sa.lifetimes.pairs).into_iter().partition(|p| p.hard_at <= now);
        sa.lifetimes.pairs = live;
        end_pairs(sa, expired, None, true, ctx);
    }

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
            ctx.out.tally.ipsec_rekeys += 1;
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
            IkeSaEnd::Lifetime | IkeSaEnd::LimitReached => IpsecSaEnd::IkeSaGone,
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
