//! How quick modes end other than by completing: refused by the peer in an authenticated
//! error notification (RFC 2409 §5.7), or given up after their retransmissions and deadline.
//! Apart from `quick_mode` (the exchange itself) so that each file keeps to its budget; the
//! IKE SA calls these with its list of quick modes.

use crate::event::{Event, Exchange};
use crate::failure::{FailureReason, TimeoutFailure};
use crate::quick_mode::{QmState, QuickMode};
use crate::sa::context::Ctx;
use crate::sa::core::SaCore;
use crate::sa::flight::FlightTimeout;
use isakmp::Notification;

/// An authenticated error notification ends the quick mode it is about: the one whose SPI it
/// names, or the only one we initiated.
pub(crate) fn refused_by_peer(
    quick_modes: &mut Vec<QuickMode>,
    sa: &SaCore,
    notification: &Notification<'_>,
    ctx: &mut Ctx<'_>,
) {
    let waiting: Vec<usize> = quick_modes
        .iter()
        .enumerate()
        .filter(|(_, q)| matches!(q.state, QmState::InitiatorWaitQm2(_) | QmState::ResponderWaitQm3(_)))
        .map(|(i, _)| i)
        .collect();
    let by_spi = quick_modes.iter().position(|q| q.owns_spi(notification.spi));
    // INVALID-SPI names an SPI of an SA the peer does not know (`engine::recovery`): about a
    // quick mode only when it is one of that exchange's SPIs.
    if notification.notify_type == isakmp::NotifyType::InvalidSpi && by_spi.is_none() {
        return;
    }
    let index = by_spi.or(if let [only] = waiting[..] { Some(only) } else { None });
    let Some(index) = index else { return };
    let qm = quick_modes.remove(index);
    release_if_idle(quick_modes);
    ctx.out.events.extend(qm.unconfirmed(sa, ctx.config));
    let failure = sa.failure(
        Exchange::QuickMode,
        qm.state_name(),
        FailureReason::PeerNotified(notification.notify_type),
        ctx.config,
    );
    ctx.out.events.push_back(Event::Failed(failure));
}

/// Runs the quick modes' timers: retransmit, give up, or forget finished ones.
pub(crate) fn on_timeout(quick_modes: &mut Vec<QuickMode>, sa: &SaCore, ctx: &mut Ctx<'_>) {
    let now = ctx.now;
    let mut index = 0;
    while index < quick_modes.len() {
        let qm = &mut quick_modes[index];
        match qm.flight.on_timeout(now, ctx.config) {
            FlightTimeout::Resend(bytes) => {
                sa.transmit(bytes, ctx);
            }
            FlightTimeout::GiveUp { retransmissions, waited } => {
                let state = qm.state_name();
                ctx.out.events.extend(qm.unconfirmed(sa, ctx.config));
                // Kept, as finished, until its deadline: a late reply is then recognised by
                // its message ID and dropped, not taken for a new exchange under the wrong IV
                // (whose error notify could end an unrelated quick mode of the peer, such as
                // the rekey that replaces this one).
                qm.state = QmState::Done;
                let failure = sa.failure(
                    Exchange::QuickMode,
                    state,
                    FailureReason::Timeout(TimeoutFailure::NoAnswer { retransmissions, waited }),
                    ctx.config,
                );
                ctx.out.events.push_back(Event::Failed(failure));
            }
            FlightTimeout::Nothing => {}
        }
        let qm = &quick_modes[index];
        if qm.deadline <= now {
            let finished = matches!(qm.state, QmState::Done);
            let state = qm.state_name();
            ctx.out.events.extend(qm.unconfirmed(sa, ctx.config));
            quick_modes.remove(index);
            if !finished {
                let failure = sa.failure(
                    Exchange::QuickMode,
                    state,
                    FailureReason::Timeout(TimeoutFailure::NoAnswer {
                        retransmissions: ctx.config.limits.retransmit_count,
                        waited: ctx.config.limits.exchange_timeout,
                    }),
                    ctx.config,
                );
                ctx.out.events.push_back(Event::Failed(failure));
            }
            continue;
        }
        index += 1;
    }
    quick_modes.shrink_to_fit(); // An SA with no exchange under way holds no room for one.
}

/// Lets an SA's quick-mode list go once no exchange is under way, on every path that ends
/// one (a timer only runs while one is, so the timeout path alone would miss the others).
pub(crate) fn release_if_idle(quick_modes: &mut Vec<QuickMode>) {
    if quick_modes.is_empty() {
        *quick_modes = Vec::new();
    }
}
