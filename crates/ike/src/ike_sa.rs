//! One IKE SA: its core (`sa::core`, which no exchange owns) composed with the states of the
//! exchanges running on it — the phase-1 exchange ([`Phase1`]: main mode, aggressive mode, or
//! established) and the quick modes under way. It dispatches each message to its exchange,
//! which consumes its state and returns the next one (`main_mode`, `aggressive_mode`,
//! `quick_mode`, `informational`); it runs the SA's timers (`sa::timer`) and ends the SA on a
//! failure. The engine routes datagrams to it and never looks inside an exchange.

use std::time::Instant;

use isakmp::{Message, Payload};

use crate::aggressive_mode::{self, AggressiveState};
use crate::config::IkeProposal;
use crate::event::Acquire;
use crate::event::ClearReason;
use crate::event::Event;
use crate::event::Exchange;
use crate::event::Transmit;
use crate::failure::{FailureReason, TimeoutFailure};
use crate::informational::{self, Outcome, Phase1View};
use crate::main_mode::{self, MainMode};
use crate::quick_mode::QuickMode;
use crate::quick_mode::QuickModeSa;
use crate::quick_mode_end;
use crate::sa::context::{Ctx, ReceivedMessage};
use crate::sa::core::{Established, Phase1Step, SaCore, SaIdentity};
use crate::sa::flight::FlightTimeout;
use crate::sa::keys::Phase1Material;
use crate::sa::timer::Timer;
use std::ops::{Deref, DerefMut};

/// The phase-1 states. Each holds what the next step needs and nothing more.
pub(crate) enum Phase1 {
    /// Main mode in progress (either role).
    Main(MainMode),
    /// Aggressive mode in progress (either role).
    Aggressive(AggressiveState),
    /// Phase 1 is complete: the keys that protect quick modes and informationals.
    Established(Established),
    /// Left behind by a failed transition; the engine removes the SA.
    Failed,
}

impl Phase1 {
    /// The state name used in failure reports.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Main(state) => state.name(),
            Self::Aggressive(state) => state.name(),
            Self::Established(_) => "established",
            Self::Failed => "failed",
        }
    }
}

/// One IKE SA: its core (which no exchange owns) and the states of the exchanges running on
/// it, the phase-1 exchange and the quick modes. Handlers take the core and their own state
/// apart; everything outside the exchanges reads the core through `Deref`, since an SA *is* its
/// core plus what is being negotiated.
pub(crate) struct IkeSa {
    pub(crate) core: SaCore,
    pub(crate) phase1: Phase1,
    pub(crate) quick_modes: Vec<QuickMode>,
}

impl Deref for IkeSa {
    type Target = SaCore;
    fn deref(&self) -> &SaCore {
        &self.core
    }
}

impl DerefMut for IkeSa {
    fn deref_mut(&mut self) -> &mut SaCore {
        &mut self.core
    }
}

impl IkeSa {
    /// The phase-1 keys, once established.
    pub(crate) fn established_keys(&self) -> Option<&Phase1Material> {
        match &self.phase1 {
            Phase1::Established(established) => Some(&established.material),
            _ => None,
        }
    }

    /// The heap bytes held beyond its own size (phase-1 state, kept message, fragments, waiting
    /// acquires, quick modes): what the half-open table charges (`engine::half_open`).
    pub(crate) fn held_bytes(&self) -> usize {
        use {crate::sa::flight::heap_bytes, std::mem::size_of};
        let phase1 = match &self.phase1 {
            Phase1::Main(state) => state.held_bytes(),
            Phase1::Aggressive(state) => state.held_bytes(),
            Phase1::Established(established) => established.material.held_bytes(),
            Phase1::Failed => 0,
        };
        phase1
            + self.flight.held_bytes()
            + self.reassembly.held_bytes()
            + heap_bytes(self.pending.capacity() * size_of::<Acquire>())
            + heap_bytes(self.quick_modes.capacity() * size_of::<QuickMode>())
    }

    /// This SA as quick mode sees it: core, keys and the quick modes under way.
    fn quick_mode_sa(&mut self) -> QuickModeSa<'_> {
        let keys = match &self.phase1 {
            Phase1::Established(established) => Some(&*established.material),
            _ => None,
        };
        QuickModeSa { core: &mut self.core, keys, quick_modes: &mut self.quick_modes }
    }

    /// Sends `payloads` in a protected informational exchange (nothing before phase 1 is
    /// established).
    pub(crate) fn send_protected(&self, payloads: &[Payload<'_>], ctx: &mut Ctx<'_>) {
        informational::send_protected(&self.core, self.established_keys(), payloads, ctx);
    }

    /// Sends the notification for a quick-mode `reason` under this SA's protection.
    pub(crate) fn notify_failure(&self, reason: &FailureReason, ctx: &mut Ctx<'_>) {
        informational::notify_failure(&self.core, self.established_keys(), reason, ctx);
    }

    /// Handles an informational message; an error or Delete from the peer may end this SA.
    pub(crate) fn handle_informational(&mut self, message: &Message<'_>, ctx: &mut Ctx<'_>) {
        let exchange = self.phase1_exchange();
        let view = match &self.phase1 {
            Phase1::Established(established) => Phase1View::Established(&established.material),
            Phase1::Failed => Phase1View::Failed,
            Phase1::Main(state) => {
                Phase1View::Running { exchange, state: state.name(), awaiting_mm6: state.awaiting_mm6() }
            }
            running => Phase1View::Running { exchange, state: running.name(), awaiting_mm6: None },
        };
        let quick_modes = &mut self.quick_modes;
        let outcome = informational::handle(&mut self.core, view, message, ctx, |sa, notification, ctx| {
            quick_mode_end::refused_by_peer(quick_modes, sa, notification, ctx)
        });
        if outcome == Outcome::EndIkeSa {
            self.phase1 = Phase1::Failed;
        }
    }

    /// Runs the DPD timer of an established SA; clears it when the peer is dead (then true).
    fn dpd_timeout(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let Phase1::Established(Established { material, .. }) = &self.phase1 else { return false };
        match informational::dpd_timeout(&mut self.core, material, ctx) {
            Some(reason) => {
                self.declare_dead(reason, ctx);
                true
            }
            None => false,
        }
    }

    /// Clears `sa` after DPD found its peer dead.
    fn declare_dead(&mut self, reason: ClearReason, ctx: &mut Ctx<'_>) {
        ctx.out.events.push_back(Event::SasCleared {
            connection: self.connection,
            peer: self.peer_config(ctx.config).name.clone(),
            remote: self.remote,
            reason,
        });
        self.phase1 = Phase1::Failed;
    }

    /// Runs every timer of this SA (early runs are harmless: each checks its own deadline).
    /// Returns false when the SA ended or reached its hard lifetime; the caller then runs no
    /// lifetime timers for it.
    pub(crate) fn on_timeout(&mut self, ctx: &mut Ctx<'_>) -> bool {
        if !self.phase1_timeout(ctx) {
            return false;
        }
        quick_mode_end::on_timeout(&mut self.quick_modes, &self.core, ctx);
        true
    }

    /// Runs the phase-1 timers: fragments, retransmission, the exchange deadline, and once
    /// established DPD and NAT keepalives. Returns false when the SA ended or reached its hard
    /// lifetime, so that nothing else of it runs now.
    fn phase1_timeout(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let now = ctx.now;
        // A message whose fragments did not all arrive in time: its pieces are freed.
        self.reassembly.expire(now);
        // Phase-1 retransmission and deadline.
        match self.flight.on_timeout(now, ctx.config) {
            FlightTimeout::Resend(bytes) => self.transmit(bytes, ctx),
            FlightTimeout::GiveUp { retransmissions, waited } if !self.is_established() => {
                let state = self.phase1.name();
                let reason = self.gave_up(retransmissions, waited);
                let failure = self.failure(self.phase1_exchange(), state, reason, ctx.config);
                ctx.out.events.push_back(Event::Failed(failure));
                self.phase1 = Phase1::Failed;
                return false;
            }
            _ => {}
        }
        match &self.phase1 {
            Phase1::Established(_) if self.timers.is_due(Timer::HardLifetime, now) => {
                // Hard lifetime: the engine hands its IPsec SAs on and deletes it
                // (`Engine::lifetime_followups`); renewal came before (`lifetime::on_timeout`).
                return false;
            }
            Phase1::Established(_) => {
                if self.timers.is_due(Timer::Phase1Deadline, now) {
                    self.timers.stop(Timer::Phase1Deadline);
                    self.flight.forget_sent();
                }
                if self.dpd_timeout(ctx) {
                    return false;
                }
                if self.nat.keepalive_due(now) {
                    ctx.out.transmits.push_back(Transmit::keepalive(self.local, self.remote));
                }
            }
            Phase1::Failed => {}
            _ if self.timers.is_due(Timer::Phase1Deadline, now) => {
                let state = self.phase1.name();
                // Armed `exchange_timeout` after phase 1 began.
                let waited = now.saturating_duration_since(self.started_at);
                let reason = self.gave_up(0, waited);
                let failure = self.failure(self.phase1_exchange(), state, reason, ctx.config);
                ctx.out.events.push_back(Event::Failed(failure));
                self.phase1 = Phase1::Failed;
                return false;
            }
            _ => {}
        }
        true
    }

    /// Ends phase 1 with `reason`: tells the peer when that is allowed, reports, and marks the SA
    /// for removal.
    /// Phase 1 failed in `state`: the peer is told in clear (no keys are trusted yet) and the SA
    /// ends.
    pub(crate) fn fail_phase1(&mut self, state: &'static str, reason: FailureReason, ctx: &mut Ctx<'_>) {
        informational::notify_unauthenticated(
            self.local,
            self.remote,
            self.cookie_i,
            self.cookie_r,
            &reason,
            ctx,
        );
        let failure = self.failure(self.phase1_exchange(), state, reason, ctx.config);
        ctx.out.events.push_back(Event::Failed(failure));
        self.phase1 = Phase1::Failed;
    }

    /// Starts main mode as initiator: MM1.
    pub(crate) fn initiate(identity: SaIdentity, ctx: &mut Ctx<'_>) -> Self {
        ctx.out.tally.started(Exchange::MainMode);
        let (core, state) = main_mode::initiate(identity, ctx);
        Self { core, phase1: Phase1::Main(state), quick_modes: Vec::new() }
    }

    /// Answers MM1 as responder: chooses a proposal and sends MM2.
    pub(crate) fn respond(
        identity: SaIdentity,
        received: ReceivedMessage<'_>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Self, FailureReason> {
        ctx.out.tally.started(Exchange::MainMode);
        let (core, state) = main_mode::respond(identity, received, ctx)?;
        Ok(Self { core, phase1: Phase1::Main(state), quick_modes: Vec::new() })
    }

    /// A repeat of the last phase-1 message we accepted is answered from memory (the flight);
    /// true when `digest` was one.
    fn answered_repeat(&mut self, digest: &[u8; 32], ctx: &mut Ctx<'_>) -> bool {
        let Some(repeat) = self.flight.repeat(digest) else { return false };
        if let Some(bytes) = repeat {
            self.transmit(bytes, ctx);
        }
        true
    }

    /// Takes the state out for a consuming transition, then puts the next one in: the
    /// exchange's own state or, once complete, `Established`. True when phase 1 just
    /// completed. On error phase 1 stays `Failed`.
    fn settle<S>(
        &mut self,
        step: Result<Phase1Step<S>, FailureReason>,
        wrap: impl FnOnce(S) -> Phase1,
    ) -> Result<bool, FailureReason> {
        match step? {
            Phase1Step::Wait(next) => {
                self.phase1 = wrap(next);
                Ok(false)
            }
            Phase1Step::Established(established) => {
                self.phase1 = Phase1::Established(established);
                Ok(true)
            }
            Phase1Step::Dropped(unchanged, reason) => {
                self.phase1 = wrap(unchanged);
                let state = self.phase1.name();
                if self.core.unauthenticated.dropped(state, reason.clone(), true) {
                    // The peer keeps sending what we cannot authenticate: that is its answer.
                    self.core.unauthenticated.take_last();
                    return Err(reason);
                }
                Ok(false)
            }
        }
    }

    /// Why phase 1 gave up after `retransmissions` in `waited`: no answer, or only answers
    /// that could not be authenticated (then the last one's reason, the likely cause).
    fn gave_up(&mut self, retransmissions: u32, waited: std::time::Duration) -> FailureReason {
        FailureReason::Timeout(match self.core.unauthenticated.take_last() {
            Some((_, last)) => {
                TimeoutFailure::OnlyUnauthenticated { retransmissions, waited, last: Box::new(last) }
            }
            None => TimeoutFailure::NoAnswer { retransmissions, waited },
        })
    }

    /// Handles a main-mode message for this SA. `Ok(true)` means phase 1 just completed.
    pub(crate) fn handle_main_mode(
        &mut self,
        message: &Message<'_>,
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<bool, FailureReason> {
        if self.answered_repeat(&digest, ctx) {
            return Ok(false);
        }
        // A late duplicate of an earlier message, one out of place, or a main-mode message
        // for an aggressive-mode or established SA: dropped without disturbing the exchange,
        // so a stray datagram cannot end a negotiation.
        let Phase1::Main(state) = &self.phase1 else { return Ok(false) };
        if !state.expects(message) {
            return Ok(false);
        }
        let Phase1::Main(state) = std::mem::replace(&mut self.phase1, Phase1::Failed) else {
            return Ok(false);
        };
        let step = state.handle(&mut self.core, message, digest, ctx);
        let done = self.settle(step, Phase1::Main);
        if let Ok(true) = done {
            ctx.out.tally.established(Exchange::MainMode);
        }
        done
    }

    /// Starts aggressive mode as initiator: AM1.
    pub(crate) fn initiate_aggressive(
        identity: SaIdentity,
        ctx: &mut Ctx<'_>,
    ) -> Result<Self, FailureReason> {
        ctx.out.tally.started(Exchange::AggressiveMode);
        let (core, state) = aggressive_mode::initiate(identity, ctx)?;
        Ok(Self { core, phase1: Phase1::Aggressive(state), quick_modes: Vec::new() })
    }

    /// Answers AM1 as responder (the engine has already decided to accept aggressive mode).
    pub(crate) fn respond_aggressive(
        identity: SaIdentity,
        received: ReceivedMessage<'_>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Self, FailureReason> {
        ctx.out.tally.started(Exchange::AggressiveMode);
        let (core, state) = aggressive_mode::respond(identity, received, ctx)?;
        Ok(Self { core, phase1: Phase1::Aggressive(state), quick_modes: Vec::new() })
    }

    /// Handles an aggressive-mode message for this SA. `Ok(true)` means phase 1 just
    /// completed.
    pub(crate) fn handle_aggressive_mode(
        &mut self,
        message: &Message<'_>,
        datagram: &[u8],
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<bool, FailureReason> {
        if self.answered_repeat(&digest, ctx) {
            return Ok(false);
        }
        // Established, failed, or a main-mode SA: a stray or forged message.
        let Phase1::Aggressive(state) = &self.phase1 else { return Ok(false) };
        if !state.expects(message) {
            return Ok(false);
        }
        let Phase1::Aggressive(state) = std::mem::replace(&mut self.phase1, Phase1::Failed) else {
            return Ok(false);
        };
        let step = state.handle(&mut self.core, message, datagram, digest, ctx);
        let done = self.settle(step, Phase1::Aggressive);
        if let Ok(true) = done {
            ctx.out.tally.established(Exchange::AggressiveMode);
        }
        done
    }

    /// A quick-mode message arrived while an aggressive-mode responder waits for AM3
    /// ([`AggressiveState::quick_mode_before_am3`]); true when it was consumed so.
    pub(crate) fn quick_mode_before_am3(&mut self, ctx: &mut Ctx<'_>) -> bool {
        match &mut self.phase1 {
            Phase1::Aggressive(state) => state.quick_mode_before_am3(&self.core, ctx),
            _ => false,
        }
    }

    /// Starts a quick mode for `acquire` on this established SA: QM1.
    pub(crate) fn start_quick_mode(
        &mut self,
        acquire: Acquire,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), FailureReason> {
        self.quick_mode_sa().start(acquire, ctx)
    }

    /// Handles a quick-mode message. On failure returns the reason and the state it was in;
    /// the quick mode is then forgotten.
    pub(crate) fn handle_quick_mode(
        &mut self,
        message: &Message<'_>,
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<(), (FailureReason, &'static str)> {
        self.quick_mode_sa().handle(message, digest, ctx)
    }

    /// The negotiated phase-1 suite, once established.
    pub(crate) fn suite(&self) -> Option<IkeProposal> {
        match &self.phase1 {
            Phase1::Established(established) => Some(established.suite),
            _ => None,
        }
    }

    pub(crate) fn is_established(&self) -> bool {
        matches!(self.phase1, Phase1::Established(_))
    }

    /// Every deadline of this SA by name (`sa::timer`): phase 1's own (its deadline while it
    /// runs, the hard lifetime once established), the flight's retransmission, DPD and NAT-T
    /// keepalives once established, fragment reassembly, the quick modes and the lifetimes.
    pub(crate) fn deadlines(&self) -> impl Iterator<Item = (Timer, Instant)> + '_ {
        let established = self.is_established();
        let phase1 = match &self.phase1 {
            Phase1::Failed => None,
            _ => self.timers.get(Timer::Phase1Deadline).map(|at| (Timer::Phase1Deadline, at)),
        };
        let lifetime = self.timers.get(Timer::HardLifetime).filter(|_| established);
        let dpd = if established { self.dpd.deadline(self.dpd_config.as_deref()) } else { None };
        let keepalive = if established { self.nat.next_keepalive } else { None };
        let named = [
            (Timer::HardLifetime, lifetime),
            (Timer::Retransmit, self.flight.retransmit_at()),
            (Timer::Dpd, dpd),
            (Timer::Keepalive, keepalive),
            (Timer::Fragments, self.reassembly.deadline()),
            (Timer::Lifetimes, self.lifetimes.next_deadline()),
        ];
        let quick_modes = self.quick_modes.iter().map(|q| (Timer::QuickMode, q.next_deadline()));
        phase1
            .into_iter()
            .chain(named.into_iter().chain(quick_modes).filter_map(|(timer, at)| Some((timer, at?))))
    }

    /// The earliest time this SA needs the engine's timer ([`IkeSa::on_timeout`]).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines().map(|(_, at)| at).min()
    }
}
