//! One IKE SA and its phase-1 exchange: main mode with pre-shared keys, both roles
//! (RFC 2409 §5 and §5.4). Aggressive mode (RFC 2409 §5.4, three messages) lives in
//! [`crate::aggressive_mode`] and shares the SA, the key derivation and the established state.
//!
//! ```text
//! Initiator                          Responder
//! MM1 HDR, SA                 -->
//!                             <--    MM2 HDR, SA
//! MM3 HDR, KE, Ni             -->
//!                             <--    MM4 HDR, KE, Nr
//! MM5 HDR*, IDii, HASH_I      -->
//!                             <--    MM6 HDR*, IDir, HASH_R
//! ```
//!
//! The initiator drives retransmission; the responder answers a repeated request with its
//! stored reply, without new computation, a bounded number of times. The responder chooses
//! the pre-shared key by the peer's address (the identity is encrypted in MM5), which is the
//! only choice main mode allows (notes pitfall 15).

use std::net::SocketAddr;
use std::time::Instant;

use crypto::key_schedule::NextIv;
use crypto::{DhPrivate, SecretBytes};
use isakmp::{Cookie, ExchangeType, Message, Payload, PayloadType};

use crate::aggressive_mode::AggressiveState;
use crate::config::IkeProposal;
use crate::event::Acquire;
use crate::event::ClearReason;
use crate::event::Transmit;
use crate::event::{ConnectionId, Event, FailureReason, Phase1KeyLog};
use crate::identity::{check_remote_identity, PeerIdentity};
use crate::informational::{self, Outcome, Phase1View};
use crate::nat_t::{self};
use crate::proposal::{accept_phase1_reply, choose_phase1, phase1_offer};
use crate::quick_mode::QuickMode;
use crate::quick_mode::{self, QuickModeSa};
use crate::sa::context::Ctx;
use crate::sa::core::{Role, SaCore};
use crate::sa::flight::FlightTimeout;
use crate::sa::keys::{Phase1Material, NONCE_LEN};
use crate::signature_auth::{self, PeerProof};
use crate::trace::{traced, Direction, Step};
use crate::vendor::{self};
use crate::wire::{self, body_of, find_sa, initial_contact, ke_and_nonce, raw_body};
use std::ops::{Deref, DerefMut};

/// The phase-1 states. Each holds what the next step needs and nothing more.
pub(crate) enum Phase1 {
    InitiatorWaitMm2 {
        sai_b: Vec<u8>,
    },
    InitiatorWaitMm4 {
        sai_b: Vec<u8>,
        suite: IkeProposal,
        dh: DhPrivate,
        ni: Vec<u8>,
    },
    InitiatorWaitMm6 {
        sai_b: Vec<u8>,
        suite: IkeProposal,
        material: Box<Phase1Material>,
    },
    ResponderWaitMm3 {
        sai_b: Vec<u8>,
        suite: IkeProposal,
    },
    ResponderWaitMm5 {
        sai_b: Vec<u8>,
        suite: IkeProposal,
        material: Box<Phase1Material>,
    },
    /// Aggressive mode in progress (either role); it ends in `Established` too.
    Aggressive(AggressiveState),
    Established {
        suite: IkeProposal,
        material: Box<Phase1Material>,
        expires_at: Instant,
        /// The peer's HASH_I / HASH_R or signature checked out: no SA is established without it.
        _authenticated: PeerProof,
    },
    /// Left behind by a failed transition; the engine removes the SA.
    Failed,
}

impl Phase1 {
    /// The state name used in failure reports.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::InitiatorWaitMm2 { .. } => "waiting for MM2",
            Self::InitiatorWaitMm4 { .. } => "waiting for MM4",
            Self::InitiatorWaitMm6 { .. } => "waiting for MM6",
            Self::ResponderWaitMm3 { .. } => "waiting for MM3",
            Self::ResponderWaitMm5 { .. } => "waiting for MM5",
            Self::Aggressive(state) => state.name(),
            Self::Established { .. } => "established",
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
            Phase1::Established { material, .. } => Some(material),
            _ => None,
        }
    }

    /// This SA as quick mode sees it: core, keys and the quick modes under way.
    fn quick_mode_sa(&mut self) -> QuickModeSa<'_> {
        let keys = match &self.phase1 {
            Phase1::Established { material, .. } => Some(&**material),
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
            Phase1::Established { material, .. } => Phase1View::Established(material),
            Phase1::Failed => Phase1View::Failed,
            Phase1::InitiatorWaitMm6 { material, .. } => {
                Phase1View::Running { exchange, state: self.phase1.name(), awaiting_mm6: Some(material) }
            }
            running => Phase1View::Running { exchange, state: running.name(), awaiting_mm6: None },
        };
        let quick_modes = &mut self.quick_modes;
        let outcome = informational::handle(&mut self.core, view, message, ctx, |sa, notification, ctx| {
            quick_mode::refused_by_peer(quick_modes, sa, notification, ctx)
        });
        if outcome == Outcome::EndIkeSa {
            self.phase1 = Phase1::Failed;
        }
    }

    /// Runs the DPD timer of an established SA; clears it when the peer is dead (then true).
    fn dpd_timeout(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let Phase1::Established { material, .. } = &self.phase1 else { return false };
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
        quick_mode::on_timeout(&mut self.quick_modes, &self.core, ctx);
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
                let failure = self.failure(
                    self.phase1_exchange(),
                    state,
                    FailureReason::TimedOut { retransmissions, waited },
                    ctx.config,
                );
                ctx.out.events.push_back(Event::Failed(failure));
                self.phase1 = Phase1::Failed;
                return false;
            }
            _ => {}
        }
        match &self.phase1 {
            Phase1::Established { expires_at, .. } if *expires_at <= now => {
                // Hard lifetime: the engine hands its IPsec SAs on and deletes it
                // (`Engine::lifetime_followups`); renewal came before (`lifetime::on_timeout`).
                return false;
            }
            Phase1::Established { .. } => {
                if self.dpd_timeout(ctx) {
                    return false;
                }
                if self.nat.keepalive_due(now) {
                    ctx.out.transmits.push_back(Transmit::keepalive(self.local, self.remote));
                }
            }
            Phase1::Failed => {}
            _ if self.phase1_deadline <= now => {
                let state = self.phase1.name();
                let waited =
                    now.saturating_duration_since(self.phase1_deadline - ctx.config.limits.exchange_timeout);
                let failure = self.failure(
                    self.phase1_exchange(),
                    state,
                    FailureReason::TimedOut { retransmissions: 0, waited },
                    ctx.config,
                );
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

    /// A new SA in a placeholder phase-1 state that the caller replaces at once
    /// ([`SaCore::new`]).
    pub(crate) fn new(
        connection: ConnectionId,
        role: Role,
        peer: usize,
        addresses: (SocketAddr, SocketAddr),
        cookies: (Cookie, Cookie),
        ctx: &mut Ctx<'_>,
    ) -> Self {
        let core = SaCore::new(connection, role, peer, addresses, cookies, ctx);
        Self { core, phase1: Phase1::Failed, quick_modes: Vec::new() }
    }

    /// The negotiated phase-1 suite, once established.
    pub(crate) fn suite(&self) -> Option<IkeProposal> {
        match &self.phase1 {
            Phase1::Established { suite, .. } => Some(*suite),
            _ => None,
        }
    }

    pub(crate) fn is_established(&self) -> bool {
        matches!(self.phase1, Phase1::Established { .. })
    }

    /// Starts main mode as initiator: MM1.
    pub(crate) fn initiate(
        connection: ConnectionId,
        peer: usize,
        local: SocketAddr,
        remote: SocketAddr,
        ctx: &mut Ctx<'_>,
    ) -> Self {
        let cookie_i = ctx.random_cookie();
        let offer = phase1_offer(&ctx.config.peers[peer].proposals);
        let mut sai_b = Vec::new();
        offer.emit(&mut sai_b);
        let mut payloads = vec![Payload::SecurityAssociation(offer)];
        payloads.extend(vendor::our_vendor_ids(
            ctx.config.peers[peer].nat_traversal,
            ctx.config.limits.fragmentation,
        ));
        let summary = traced(ctx.out.trace, Step::MainMode(1), false, &payloads);
        let mm1 = wire::cleartext(
            wire::header(cookie_i, Cookie::default(), ExchangeType::IdentityProtection, 0),
            payloads,
        );
        let mut sa =
            Self::new(connection, Role::Initiator, peer, (local, remote), (cookie_i, Cookie::default()), ctx);
        sa.phase1 = Phase1::InitiatorWaitMm2 { sai_b };
        sa.trace_summary(ctx, Direction::Sent, Step::MainMode(1), 0, summary);
        sa.send(mm1, true, ctx);
        sa
    }

    /// Answers MM1 as responder: chooses a proposal and sends MM2.
    #[allow(clippy::too_many_arguments)] // the SA's identity plus the message in three forms
    pub(crate) fn respond(
        connection: ConnectionId,
        peer: usize,
        local: SocketAddr,
        remote: SocketAddr,
        message: &Message<'_>,
        datagram: &[u8],
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<Self, FailureReason> {
        let offer = find_sa(message.payloads()).ok_or(FailureReason::MissingPayload("SA"))?;
        let choice = choose_phase1(offer, &ctx.config.peers[peer].proposals)
            .map_err(FailureReason::Phase1ProposalMismatch)?;
        let sai_b = raw_body(message.first_payload(), body_of(datagram), PayloadType::SecurityAssociation)
            .ok_or(FailureReason::MissingPayload("SA"))?
            .to_vec();
        let cookie_r = ctx.random_cookie();
        let cookie_i = message.header.initiator_cookie;
        let mut sa = Self::new(connection, Role::Responder, peer, (local, remote), (cookie_i, cookie_r), ctx);
        sa.phase1 = Phase1::ResponderWaitMm3 { sai_b, suite: choice.suite };
        sa.learn_capabilities(message.payloads(), ctx.config);
        sa.trace(ctx, Direction::Received, Step::MainMode(1), 0, false, message.payloads());
        let mut payloads = vec![Payload::SecurityAssociation(choice.reply)];
        payloads.extend(vendor::responder_vendor_ids(sa.nat.version, sa.fragments_to_peer(ctx.config)));
        sa.trace(ctx, Direction::Sent, Step::MainMode(2), 0, false, &payloads);
        let mm2 =
            wire::cleartext(wire::header(cookie_i, cookie_r, ExchangeType::IdentityProtection, 0), payloads);
        sa.flight.received(digest);
        sa.send(mm2, false, ctx);
        Ok(sa)
    }

    /// Handles a main-mode message for this SA. `Ok(true)` means phase 1 just completed.
    pub(crate) fn handle_main_mode(
        &mut self,
        message: &Message<'_>,
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<bool, FailureReason> {
        if let Some(repeat) = self.flight.repeat(&digest) {
            if let Some(bytes) = repeat {
                self.transmit(bytes, ctx);
            }
            return Ok(false);
        }
        if !self.expects(message) {
            // A late duplicate of an earlier message, or one out of place: dropped without
            // disturbing the exchange, so a stray datagram cannot end a negotiation.
            return Ok(false);
        }
        match std::mem::replace(&mut self.phase1, Phase1::Failed) {
            Phase1::InitiatorWaitMm2 { sai_b } => {
                let reply = find_sa(message.payloads()).ok_or(FailureReason::MissingPayload("SA"))?;
                let suite = accept_phase1_reply(reply, &self.peer_config(ctx.config).proposals)
                    .map_err(FailureReason::Phase1ProposalMismatch)?;
                if message.header.responder_cookie.is_zero() {
                    return Err(FailureReason::MissingPayload("responder cookie"));
                }
                self.cookie_r = message.header.responder_cookie;
                self.learn_capabilities(message.payloads(), ctx.config);
                self.trace(ctx, Direction::Received, Step::MainMode(2), 0, false, message.payloads());
                let dh =
                    DhPrivate::generate(suite.group, ctx.rng).map_err(FailureReason::InvalidKeyExchange)?;
                let ni = ctx.random_bytes(NONCE_LEN);
                let nat_d = self.nat_discovery(suite.hash);
                let mut payloads = vec![Payload::KeyExchange(dh.public_value()), Payload::Nonce(&ni)];
                payloads.extend(signature_auth::certificate_requests(
                    self.peer_config(ctx.config),
                    suite.auth_method,
                ));
                if let Some((version, hashes)) = &nat_d {
                    payloads.extend(nat_t::discovery_payloads(*version, hashes));
                }
                self.trace(ctx, Direction::Sent, Step::MainMode(3), 0, false, &payloads);
                let mm3 = wire::cleartext(self.header(0), payloads);
                self.flight.received(digest);
                self.send(mm3, true, ctx);
                self.phase1 = Phase1::InitiatorWaitMm4 { sai_b, suite, dh, ni };
                Ok(false)
            }
            Phase1::InitiatorWaitMm4 { sai_b, suite, dh, ni } => {
                let (g_xr, nr) = ke_and_nonce(message.payloads())?;
                let shared = dh.shared_secret(g_xr).map_err(FailureReason::InvalidKeyExchange)?;
                let mut material =
                    self.derive(&suite, &ni, nr, shared.expose(), dh.public_value(), g_xr, ctx);
                self.detect_nat(message.payloads(), suite.hash, ctx);
                self.float_if_nat_detected(ctx.now);
                self.trace(ctx, Direction::Received, Step::MainMode(4), 0, false, message.payloads());
                self.peer_asked_certificate |= signature_auth::peer_requested_certificate(message.payloads());
                let id = self.local_identification(ctx.config);
                let mut idii_b = Vec::new();
                id.emit(&mut idii_b);
                let input = self.auth_input(&material, &sai_b);
                let hash_i = signature_auth::signed_hash(&suite, &material, &input, &idii_b, true);
                let cookies = self.cookie_pair();
                let signed = signature_auth::sign_if_signature(
                    &suite,
                    self.peer_config(ctx.config),
                    &hash_i,
                    self.peer_asked_certificate,
                )?;
                let mut payloads = vec![Payload::Identification(id)];
                match &signed {
                    Some((certificate, signature)) => {
                        payloads.extend(signature_auth::proof_payloads(*certificate, signature))
                    }
                    None => payloads.push(Payload::Hash(&hash_i)),
                }
                if self.send_initial_contact {
                    payloads.push(initial_contact(&cookies));
                }
                self.trace(ctx, Direction::Sent, Step::MainMode(5), 0, true, &payloads);
                let mut chain = Vec::new();
                isakmp::emit_payload_chain(&payloads, &mut chain);
                let mm5 = wire::encrypted(
                    self.header(0),
                    PayloadType::Identification,
                    chain,
                    &material.key,
                    &mut material.iv,
                );
                self.flight.received(digest);
                self.send(mm5, true, ctx);
                self.phase1 = Phase1::InitiatorWaitMm6 { sai_b, suite, material: Box::new(material) };
                Ok(false)
            }
            Phase1::InitiatorWaitMm6 { sai_b, suite, mut material } => {
                let (next_iv, proof, _, identity, summary) =
                    self.open_identity_message(message, &material, &sai_b, &suite, ctx, false)?;
                material.iv.advance(next_iv);
                self.remote_identity = Some(identity);
                self.peer_authenticated(false, ctx);
                self.trace_summary(ctx, Direction::Received, Step::MainMode(6), 0, summary);
                self.flight.received(digest);
                self.flight.settle();
                self.establish(suite, material, proof, ctx);
                Ok(true)
            }
            Phase1::ResponderWaitMm3 { sai_b, suite } => {
                let (g_xi, ni) = ke_and_nonce(message.payloads())?;
                let dh =
                    DhPrivate::generate(suite.group, ctx.rng).map_err(FailureReason::InvalidKeyExchange)?;
                let shared = dh.shared_secret(g_xi).map_err(FailureReason::InvalidKeyExchange)?;
                let nr = ctx.random_bytes(NONCE_LEN);
                let material = self.derive(&suite, ni, &nr, shared.expose(), g_xi, dh.public_value(), ctx);
                self.detect_nat(message.payloads(), suite.hash, ctx);
                self.trace(ctx, Direction::Received, Step::MainMode(3), 0, false, message.payloads());
                let nat_d = self.nat_discovery(suite.hash);
                self.peer_asked_certificate |= signature_auth::peer_requested_certificate(message.payloads());
                let mut payloads = vec![Payload::KeyExchange(dh.public_value()), Payload::Nonce(&nr)];
                payloads.extend(signature_auth::certificate_requests(
                    self.peer_config(ctx.config),
                    suite.auth_method,
                ));
                if let Some((version, hashes)) = &nat_d {
                    payloads.extend(nat_t::discovery_payloads(*version, hashes));
                }
                self.trace(ctx, Direction::Sent, Step::MainMode(4), 0, false, &payloads);
                let mm4 = wire::cleartext(self.header(0), payloads);
                self.flight.received(digest);
                self.send(mm4, false, ctx);
                self.phase1 = Phase1::ResponderWaitMm5 { sai_b, suite, material: Box::new(material) };
                Ok(false)
            }
            Phase1::ResponderWaitMm5 { sai_b, suite, mut material } => {
                let (next_iv, proof, initial_contact, identity, summary) =
                    self.open_identity_message(message, &material, &sai_b, &suite, ctx, true)?;
                let id = self.local_identification(ctx.config);
                let mut idir_b = Vec::new();
                id.emit(&mut idir_b);
                let input = self.auth_input(&material, &sai_b);
                let hash_r = signature_auth::signed_hash(&suite, &material, &input, &idir_b, false);
                let signed = signature_auth::sign_if_signature(
                    &suite,
                    self.peer_config(ctx.config),
                    &hash_r,
                    self.peer_asked_certificate,
                )?;
                material.iv.advance(next_iv);
                self.remote_identity = Some(identity);
                self.peer_authenticated(false, ctx);
                self.trace_summary(ctx, Direction::Received, Step::MainMode(5), 0, summary);
                self.initial_contact_received = initial_contact;
                let mut payloads = vec![Payload::Identification(id)];
                match &signed {
                    Some((certificate, signature)) => {
                        payloads.extend(signature_auth::proof_payloads(*certificate, signature))
                    }
                    None => payloads.push(Payload::Hash(&hash_r)),
                }
                self.trace(ctx, Direction::Sent, Step::MainMode(6), 0, true, &payloads);
                let mut chain = Vec::new();
                isakmp::emit_payload_chain(&payloads, &mut chain);
                let mm6 = wire::encrypted(
                    self.header(0),
                    PayloadType::Identification,
                    chain,
                    &material.key,
                    &mut material.iv,
                );
                self.flight.received(digest);
                self.send(mm6, false, ctx);
                self.establish(suite, material, proof, ctx);
                Ok(true)
            }
            aggressive @ Phase1::Aggressive(_) => {
                // A main-mode message for an aggressive-mode SA: out of place, dropped.
                self.phase1 = aggressive;
                Ok(false)
            }
            established @ Phase1::Established { .. } => {
                // A main-mode message that is not a repeat of the last one: stray or forged.
                self.phase1 = established;
                Ok(false)
            }
            Phase1::Failed => Ok(false),
        }
    }

    /// True when `message` has the shape the current state waits for: an SA (MM2), KE and
    /// nonce (MM3, MM4), or an encrypted body (MM5, MM6).
    fn expects(&self, message: &Message<'_>) -> bool {
        let has = |wanted: PayloadType| message.payloads().iter().any(|p| p.payload_type() == wanted);
        match self.phase1 {
            Phase1::InitiatorWaitMm2 { .. } => has(PayloadType::SecurityAssociation),
            Phase1::InitiatorWaitMm4 { .. } | Phase1::ResponderWaitMm3 { .. } => {
                has(PayloadType::KeyExchange) && has(PayloadType::Nonce)
            }
            Phase1::InitiatorWaitMm6 { .. } | Phase1::ResponderWaitMm5 { .. } => {
                message.encrypted_body().is_some()
            }
            Phase1::Aggressive(_) | Phase1::Established { .. } | Phase1::Failed => false,
        }
    }

    fn header(&self, message_id: u32) -> isakmp::Header {
        wire::header(self.cookie_i, self.cookie_r, ExchangeType::IdentityProtection, message_id)
    }

    /// Decrypts MM5 or MM6, checks the peer's HASH and identity. Returns the IV to move to
    /// (the chain moves only once everything checked out), the proof of the HASH check,
    /// whether the message carried INITIAL-CONTACT (RFC 2407 §4.6.3.3), the peer's identity,
    /// and its payloads for the message trace when that is on (they live in the plaintext
    /// only here).
    fn open_identity_message(
        &mut self,
        message: &Message<'_>,
        material: &Phase1Material,
        sai_b: &[u8],
        suite: &IkeProposal,
        ctx: &Ctx<'_>,
        from_initiator: bool,
    ) -> Result<(NextIv, PeerProof, bool, PeerIdentity, Option<String>), FailureReason> {
        let config = ctx.config;
        let ciphertext = message.encrypted_body().ok_or(FailureReason::Undecryptable)?;
        let decrypted = wire::decrypt(ciphertext, &material.key, &material.iv)?;
        let first = message.first_payload();
        let which = if from_initiator { "MM5" } else { "MM6" };
        // Garbage after decryption under keys derived from our pre-shared key almost always
        // means the peer derived other keys.
        let (payloads, _) = wire::parse_chain(first, &decrypted.plaintext)
            .map_err(|_| FailureReason::KeysDiffer { message: which })?;
        let id = payloads
            .iter()
            .find_map(|p| match p {
                Payload::Identification(id) => Some(id),
                _ => None,
            })
            .ok_or(FailureReason::MissingPayload("ID"))?;
        let id_b = raw_body(first, &decrypted.plaintext, PayloadType::Identification)
            .ok_or(FailureReason::MissingPayload("ID"))?
            .to_vec();
        let input = self.auth_input(material, sai_b);
        let which = if from_initiator { "HASH_I" } else { "HASH_R" };
        let proof = if suite.auth_method.is_signature() {
            let hash = signature_auth::signed_hash(suite, material, &input, &id_b, from_initiator);
            let (proof, certificate) = signature_auth::verify_peer(
                self.peer_config(config),
                suite,
                &payloads,
                id,
                &hash,
                which,
                ctx.unix_time,
            )?;
            self.peer_certificate = Some(certificate);
            proof
        } else {
            let hash = payloads
                .iter()
                .find_map(|p| match p {
                    Payload::Hash(h) => Some(*h),
                    _ => None,
                })
                .ok_or(FailureReason::MissingPayload("HASH"))?;
            let verified = if from_initiator {
                material.skeyid.verify_hash_i(&input, &id_b, hash)
            } else {
                material.skeyid.verify_hash_r(&input, &id_b, hash)
            };
            PeerProof::Hash(verified.map_err(|_| FailureReason::AuthenticationFailed { hash: which })?)
        };
        check_remote_identity(self.peer_config(config), id)?;
        let initial_contact = payloads.iter().any(
            |p| matches!(p, Payload::Notification(n) if n.notify_type == isakmp::NotifyType::InitialContact),
        );
        let step = Step::MainMode(if from_initiator { 5 } else { 6 });
        let summary = traced(ctx.out.trace, step, true, &payloads);
        Ok((decrypted.next_iv, proof, initial_contact, PeerIdentity::of(&id.identity), summary))
    }

    pub(crate) fn establish(
        &mut self,
        suite: IkeProposal,
        material: Box<Phase1Material>,
        proof: PeerProof,
        ctx: &mut Ctx<'_>,
    ) {
        self.established_at = Some(ctx.now);
        self.dpd_config = self.peer_config(ctx.config).dpd.filter(|_| self.peer_capabilities.dpd);
        self.dpd.heard(ctx.now);
        let expires_at = ctx.now + suite.lifetime;
        let key_log = ctx.out.key_log.then(|| Phase1KeyLog {
            cookie_i: self.cookie_i.0,
            cookie_r: self.cookie_r.0,
            ka: SecretBytes::from_slice(material.key.expose()),
        });
        ctx.out.events.push_back(Event::IkeSaEstablished {
            connection: self.connection,
            peer: self.peer_config(ctx.config).name.clone(),
            remote: self.remote,
            suite,
            initiator: self.role == Role::Initiator,
            key_log,
        });
        self.phase1 = Phase1::Established { suite, material, expires_at, _authenticated: proof };
    }

    /// The earliest time this SA needs the engine's timer (`on_sa_timeout` in `engine.rs`).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let phase1 = match &self.phase1 {
            Phase1::Established { expires_at, .. } => Some(*expires_at),
            Phase1::Failed => None,
            _ => Some(self.phase1_deadline),
        };
        let established = self.is_established();
        let dpd = if established { self.dpd.deadline(self.dpd_config.as_ref()) } else { None };
        let keepalive = if established { self.nat.next_keepalive } else { None };
        [phase1, self.flight.retransmit_at(), dpd, keepalive, self.reassembly.deadline()]
            .into_iter()
            .chain(self.quick_modes.iter().map(QuickMode::next_deadline))
            .chain([self.lifetimes.next_deadline()])
            .flatten()
            .min()
    }
}
