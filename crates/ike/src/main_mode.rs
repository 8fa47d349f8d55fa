//! Main mode (RFC 2409 §5, §5.4 with signatures), both roles: six messages, the identities
//! encrypted.
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
//! Each state of [`MainMode`] holds what the next message needs and nothing more; a message
//! consumes the state and yields the next one or the established SA ([`Phase1Step`]). The
//! initiator drives retransmission; the responder answers a repeated request with its stored
//! reply, without new computation, a bounded number of times (the SA core's flight). The
//! responder chooses the pre-shared key by the peer's address (the identity is encrypted in
//! MM5), which is the only choice main mode allows (notes pitfall 15).

use crypto::key_schedule::NextIv;
use crypto::DhPrivate;
use isakmp::{Cookie, ExchangeType, Message, Payload, PayloadType};

use crate::auth::{self, PeerProof};
use crate::config::IkeProposal;
use crate::failure::{AuthenticationFailure, FailureReason, MalformedFailure};
use crate::identity::check_remote_identity;
use crate::nat_t;
use crate::proposal::{accept_phase1_reply, choose_phase1, phase1_offer};
use crate::sa::context::{Ctx, ReceivedMessage};
use crate::sa::core::{Phase1Step, Role, SaCore, SaIdentity};
use crate::sa::keys::{Phase1Material, NONCE_LEN};
use crate::sa::unauthenticated::Rejected;
use crate::trace::{traced, Direction, Step};
use crate::wire::{self, body_of, find_sa, initial_contact, ke_and_nonce, raw_body};
use isakmp::capabilities as vendor;

/// The main-mode states. Each holds what the next step needs and nothing more.
pub(crate) enum MainMode {
    InitiatorWaitMm2 { sai_b: Vec<u8> },
    InitiatorWaitMm4 { sai_b: Vec<u8>, suite: IkeProposal, dh: Box<DhPrivate>, ni: Vec<u8> },
    InitiatorWaitMm6 { sai_b: Vec<u8>, suite: IkeProposal, material: Box<Phase1Material> },
    ResponderWaitMm3 { sai_b: Vec<u8>, suite: IkeProposal },
    ResponderWaitMm5 { sai_b: Vec<u8>, suite: IkeProposal, material: Box<Phase1Material> },
}

impl MainMode {
    /// The state name used in failure reports.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::InitiatorWaitMm2 { .. } => "waiting for MM2",
            Self::InitiatorWaitMm4 { .. } => "waiting for MM4",
            Self::InitiatorWaitMm6 { .. } => "waiting for MM6",
            Self::ResponderWaitMm3 { .. } => "waiting for MM3",
            Self::ResponderWaitMm5 { .. } => "waiting for MM5",
        }
    }

    /// The heap bytes held (SA payload body, nonce, keys), for the half-open charge.
    pub(crate) fn held_bytes(&self) -> usize {
        use crate::sa::flight::heap_bytes;
        let (sai_b, more) = match self {
            Self::InitiatorWaitMm2 { sai_b } | Self::ResponderWaitMm3 { sai_b, .. } => (sai_b, 0),
            Self::InitiatorWaitMm4 { sai_b, ni, .. } => (sai_b, heap_bytes(ni.capacity())),
            Self::InitiatorWaitMm6 { sai_b, material, .. }
            | Self::ResponderWaitMm5 { sai_b, material, .. } => (sai_b, material.held_bytes()),
        };
        heap_bytes(sai_b.capacity()) + more
    }

    /// The keys of an initiator that sent MM5: the peer may answer it with an encrypted error
    /// (informational) under them.
    pub(crate) fn awaiting_mm6(&self) -> Option<&Phase1Material> {
        match self {
            Self::InitiatorWaitMm6 { material, .. } => Some(material),
            _ => None,
        }
    }

    /// True when `message` has the shape the current state waits for: an SA (MM2), KE and
    /// nonce (MM3, MM4), or an encrypted body (MM5, MM6).
    pub(crate) fn expects(&self, message: &Message<'_>) -> bool {
        let has = |wanted: PayloadType| message.payloads().iter().any(|p| p.payload_type() == wanted);
        match self {
            Self::InitiatorWaitMm2 { .. } => has(PayloadType::SecurityAssociation),
            Self::InitiatorWaitMm4 { .. } | Self::ResponderWaitMm3 { .. } => {
                has(PayloadType::KeyExchange) && has(PayloadType::Nonce)
            }
            Self::InitiatorWaitMm6 { .. } | Self::ResponderWaitMm5 { .. } => {
                message.encrypted_body().is_some()
            }
        }
    }

    /// Handles the message this state waits for ([`MainMode::expects`]), consuming the state.
    /// On error the exchange is over (the caller reports it).
    pub(crate) fn handle(
        self,
        sa: &mut SaCore,
        message: &Message<'_>,
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<Phase1Step<Self>, FailureReason> {
        match self {
            Self::InitiatorWaitMm2 { sai_b } => initiator_mm2(sa, sai_b, message, digest, ctx),
            Self::InitiatorWaitMm4 { sai_b, suite, dh, ni } => {
                initiator_mm4(sa, sai_b, suite, *dh, ni, message, digest, ctx)
            }
            Self::InitiatorWaitMm6 { sai_b, suite, material } => {
                initiator_mm6(sa, sai_b, suite, material, message, digest, ctx)
            }
            Self::ResponderWaitMm3 { sai_b, suite } => responder_mm3(sa, sai_b, suite, message, digest, ctx),
            Self::ResponderWaitMm5 { sai_b, suite, material } => {
                responder_mm5(sa, sai_b, suite, material, message, digest, ctx)
            }
        }
    }
}

/// Starts main mode as initiator: MM1.
pub(crate) fn initiate(identity: SaIdentity, ctx: &mut Ctx<'_>) -> (SaCore, MainMode) {
    let peer = identity.peer;
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
    let mut sa = SaCore::new(identity, Role::Initiator, (cookie_i, Cookie::default()), ctx);
    sa.trace_summary(ctx, Direction::Sent, Step::MainMode(1), 0, summary);
    sa.send(mm1, true, ctx);
    (sa, MainMode::InitiatorWaitMm2 { sai_b })
}

/// Answers MM1 as responder: chooses a proposal and sends MM2.
pub(crate) fn respond(
    identity: SaIdentity,
    received: ReceivedMessage<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(SaCore, MainMode), FailureReason> {
    let ReceivedMessage { message, datagram, digest } = received;
    let peer = identity.peer;
    let offer = find_sa(message.payloads()).ok_or(FailureReason::missing_payload("SA"))?;
    let choice = choose_phase1(offer, &ctx.config.peers[peer].proposals).map_err(FailureReason::from)?;
    let sai_b = raw_body(message.first_payload(), body_of(datagram), PayloadType::SecurityAssociation)
        .ok_or(FailureReason::missing_payload("SA"))?
        .to_vec();
    let cookie_r = ctx.random_cookie();
    let cookie_i = message.header.initiator_cookie;
    let mut sa = SaCore::new(identity, Role::Responder, (cookie_i, cookie_r), ctx);
    sa.learn_capabilities(message.payloads(), ctx.config);
    sa.trace(ctx, Direction::Received, Step::MainMode(1), 0, false, message.payloads());
    let mut payloads = vec![Payload::SecurityAssociation(choice.reply)];
    payloads.extend(vendor::responder_vendor_ids(sa.nat.version, sa.fragments_to_peer(ctx.config)));
    sa.trace(ctx, Direction::Sent, Step::MainMode(2), 0, false, &payloads);
    let mm2 =
        wire::cleartext(wire::header(cookie_i, cookie_r, ExchangeType::IdentityProtection, 0), payloads);
    sa.flight.received(digest);
    sa.send(mm2, false, ctx);
    Ok((sa, MainMode::ResponderWaitMm3 { sai_b, suite: choice.suite }))
}

/// MM2 arrived: the responder's choice and cookie. Sends MM3 (KE, Ni).
fn initiator_mm2(
    sa: &mut SaCore,
    sai_b: Vec<u8>,
    message: &Message<'_>,
    digest: [u8; 32],
    ctx: &mut Ctx<'_>,
) -> Result<Phase1Step<MainMode>, FailureReason> {
    let reply = find_sa(message.payloads()).ok_or(FailureReason::missing_payload("SA"))?;
    let suite =
        accept_phase1_reply(reply, &sa.peer_config(ctx.config).proposals).map_err(FailureReason::from)?;
    if message.header.responder_cookie.is_zero() {
        return Err(FailureReason::missing_payload("responder cookie"));
    }
    sa.cookie_r = message.header.responder_cookie;
    sa.learn_capabilities(message.payloads(), ctx.config);
    sa.trace(ctx, Direction::Received, Step::MainMode(2), 0, false, message.payloads());
    let dh = DhPrivate::generate(suite.group, ctx.rng).map_err(FailureReason::from)?;
    let ni = ctx.random_bytes(NONCE_LEN);
    let nat_d = sa.nat_discovery(suite.hash);
    let mut payloads = vec![Payload::KeyExchange(dh.public_value()), Payload::Nonce(&ni)];
    payloads.extend(auth::certificate_requests(sa.peer_config(ctx.config), suite.auth_method));
    if let Some((version, hashes)) = &nat_d {
        payloads.extend(nat_t::discovery_payloads(*version, hashes));
    }
    sa.trace(ctx, Direction::Sent, Step::MainMode(3), 0, false, &payloads);
    let mm3 = wire::cleartext(header(sa), payloads);
    sa.flight.received(digest);
    sa.send(mm3, true, ctx);
    Ok(Phase1Step::Wait(MainMode::InitiatorWaitMm4 { sai_b, suite, dh: Box::new(dh), ni }))
}

/// MM4 arrived: the responder's KE and Nr. Derives the keys, sends MM5 (IDii, HASH_I or
/// signature).
#[allow(clippy::too_many_arguments)] // the four fields of the consumed state, then the message
fn initiator_mm4(
    sa: &mut SaCore,
    sai_b: Vec<u8>,
    suite: IkeProposal,
    dh: DhPrivate,
    ni: Vec<u8>,
    message: &Message<'_>,
    digest: [u8; 32],
    ctx: &mut Ctx<'_>,
) -> Result<Phase1Step<MainMode>, FailureReason> {
    let (g_xr, nr) = ke_and_nonce(message.payloads())?;
    let shared = dh.shared_secret(g_xr).map_err(FailureReason::from)?;
    let mut material = sa.derive(&suite, &ni, nr, shared.expose(), dh.public_value(), g_xr, None, ctx);
    sa.detect_nat(message.payloads(), suite.hash, ctx);
    sa.float_if_nat_detected(ctx.now);
    sa.trace(ctx, Direction::Received, Step::MainMode(4), 0, false, message.payloads());
    sa.peer_asked_certificate |= auth::peer_requested_certificate(message.payloads());
    let id = sa.local_identification(ctx.config);
    let mut idii_b = Vec::new();
    id.emit(&mut idii_b);
    let input = sa.auth_input(&material, &sai_b);
    let hash_i = auth::signed_hash(&suite, &material, &input, &idii_b, true);
    let cookies = sa.cookie_pair();
    let signed =
        auth::sign_if_signature(&suite, sa.peer_config(ctx.config), &hash_i, sa.peer_asked_certificate)?;
    let mut payloads = vec![Payload::Identification(id)];
    match &signed {
        Some((certificate, signature)) => payloads.extend(auth::proof_payloads(*certificate, signature)),
        None => payloads.push(Payload::Hash(&hash_i)),
    }
    if sa.send_initial_contact {
        payloads.push(initial_contact(&cookies));
    }
    sa.trace(ctx, Direction::Sent, Step::MainMode(5), 0, true, &payloads);
    let mut chain = Vec::new();
    isakmp::emit_payload_chain(&payloads, &mut chain);
    let mm5 =
        wire::encrypted(header(sa), PayloadType::Identification, chain, &material.key, &mut material.iv);
    sa.flight.received(digest);
    sa.send(mm5, true, ctx);
    Ok(Phase1Step::Wait(MainMode::InitiatorWaitMm6 { sai_b, suite, material: Box::new(material) }))
}

/// MM6 arrived: checks the responder's HASH_R (or signature) and identity; established.
fn initiator_mm6(
    sa: &mut SaCore,
    sai_b: Vec<u8>,
    suite: IkeProposal,
    mut material: Box<Phase1Material>,
    message: &Message<'_>,
    digest: [u8; 32],
    ctx: &mut Ctx<'_>,
) -> Result<Phase1Step<MainMode>, FailureReason> {
    let opened = open_identity_message(sa, message, &material, &sai_b, &suite, ctx, false);
    let (next_iv, proof, _, summary) = match opened {
        Ok(opened) => opened,
        Err(Rejected::Authenticated(reason)) => return Err(reason),
        Err(Rejected::Unauthenticated(reason)) => {
            let state = MainMode::InitiatorWaitMm6 { sai_b, suite, material };
            return Ok(Phase1Step::Dropped(state, reason));
        }
    };
    material.iv.advance(next_iv);
    sa.peer_authenticated(false, ctx);
    sa.trace_summary(ctx, Direction::Received, Step::MainMode(6), 0, summary);
    sa.flight.received(digest);
    sa.flight.settle();
    Ok(Phase1Step::Established(sa.establish(suite, material, proof, ctx)))
}

/// MM3 arrived: the initiator's KE and Ni. Derives the keys, sends MM4 (KE, Nr).
fn responder_mm3(
    sa: &mut SaCore,
    sai_b: Vec<u8>,
    suite: IkeProposal,
    message: &Message<'_>,
    digest: [u8; 32],
    ctx: &mut Ctx<'_>,
) -> Result<Phase1Step<MainMode>, FailureReason> {
    let (g_xi, ni) = ke_and_nonce(message.payloads())?;
    let dh = DhPrivate::generate(suite.group, ctx.rng).map_err(FailureReason::from)?;
    let shared = dh.shared_secret(g_xi).map_err(FailureReason::from)?;
    let nr = ctx.random_bytes(NONCE_LEN);
    let material = sa.derive(&suite, ni, &nr, shared.expose(), g_xi, dh.public_value(), None, ctx);
    sa.detect_nat(message.payloads(), suite.hash, ctx);
    sa.trace(ctx, Direction::Received, Step::MainMode(3), 0, false, message.payloads());
    let nat_d = sa.nat_discovery(suite.hash);
    sa.peer_asked_certificate |= auth::peer_requested_certificate(message.payloads());
    let mut payloads = vec![Payload::KeyExchange(dh.public_value()), Payload::Nonce(&nr)];
    payloads.extend(auth::certificate_requests(sa.peer_config(ctx.config), suite.auth_method));
    if let Some((version, hashes)) = &nat_d {
        payloads.extend(nat_t::discovery_payloads(*version, hashes));
    }
    sa.trace(ctx, Direction::Sent, Step::MainMode(4), 0, false, &payloads);
    let mm4 = wire::cleartext(header(sa), payloads);
    sa.flight.received(digest);
    sa.send(mm4, false, ctx);
    Ok(Phase1Step::Wait(MainMode::ResponderWaitMm5 { sai_b, suite, material: Box::new(material) }))
}

/// MM5 arrived: checks the initiator's HASH_I (or signature) and identity, sends MM6;
/// established.
fn responder_mm5(
    sa: &mut SaCore,
    sai_b: Vec<u8>,
    suite: IkeProposal,
    mut material: Box<Phase1Material>,
    message: &Message<'_>,
    digest: [u8; 32],
    ctx: &mut Ctx<'_>,
) -> Result<Phase1Step<MainMode>, FailureReason> {
    let opened = open_identity_message(sa, message, &material, &sai_b, &suite, ctx, true);
    let (next_iv, proof, initial_contact, summary) = match opened {
        Ok(opened) => opened,
        Err(Rejected::Authenticated(reason)) => return Err(reason),
        Err(Rejected::Unauthenticated(reason)) => {
            let state = MainMode::ResponderWaitMm5 { sai_b, suite, material };
            return Ok(Phase1Step::Dropped(state, reason));
        }
    };
    let id = sa.local_identification(ctx.config);
    let mut idir_b = Vec::new();
    id.emit(&mut idir_b);
    let input = sa.auth_input(&material, &sai_b);
    let hash_r = auth::signed_hash(&suite, &material, &input, &idir_b, false);
    let signed =
        auth::sign_if_signature(&suite, sa.peer_config(ctx.config), &hash_r, sa.peer_asked_certificate)?;
    material.iv.advance(next_iv);
    sa.peer_authenticated(false, ctx);
    sa.trace_summary(ctx, Direction::Received, Step::MainMode(5), 0, summary);
    sa.initial_contact_received = initial_contact;
    let mut payloads = vec![Payload::Identification(id)];
    match &signed {
        Some((certificate, signature)) => payloads.extend(auth::proof_payloads(*certificate, signature)),
        None => payloads.push(Payload::Hash(&hash_r)),
    }
    sa.trace(ctx, Direction::Sent, Step::MainMode(6), 0, true, &payloads);
    let mut chain = Vec::new();
    isakmp::emit_payload_chain(&payloads, &mut chain);
    let mm6 =
        wire::encrypted(header(sa), PayloadType::Identification, chain, &material.key, &mut material.iv);
    sa.flight.received(digest);
    sa.send(mm6, false, ctx);
    Ok(Phase1Step::Established(sa.establish(suite, material, proof, ctx)))
}

/// The header of our main-mode messages (message ID 0).
fn header(sa: &SaCore) -> isakmp::Header {
    wire::header(sa.cookie_i, sa.cookie_r, ExchangeType::IdentityProtection, 0)
}

/// Decrypts MM5 or MM6, checks the peer's HASH and identity (which the SA then records). A failure before the HASH (or
/// signature) verified is [`Rejected::Unauthenticated`]: the message is dropped and the
/// exchange waits for the peer's retransmission. Returns the IV to move to
/// (the chain moves only once everything checked out), the proof of the HASH check,
/// whether the message carried INITIAL-CONTACT (RFC 2407 §4.6.3.3), and its payloads for the message trace when that is on (they live in the plaintext
/// only here).
fn open_identity_message(
    sa: &mut SaCore,
    message: &Message<'_>,
    material: &Phase1Material,
    sai_b: &[u8],
    suite: &IkeProposal,
    ctx: &Ctx<'_>,
    from_initiator: bool,
) -> Result<(NextIv, PeerProof, bool, Option<String>), Rejected> {
    let config = ctx.config;
    let ciphertext =
        message.encrypted_body().ok_or(FailureReason::Malformed(MalformedFailure::Undecryptable))?;
    let decrypted = wire::decrypt(ciphertext, &material.key, &material.iv)?;
    let first = message.first_payload();
    let which = if from_initiator { "MM5" } else { "MM6" };
    // Garbage after decryption under keys derived from our pre-shared key almost always
    // means the peer derived other keys.
    let (payloads, _) = wire::parse_chain(first, &decrypted.plaintext)
        .map_err(|_| FailureReason::Authentication(AuthenticationFailure::KeysDiffer { message: which }))?;
    let id = payloads
        .iter()
        .find_map(|p| match p {
            Payload::Identification(id) => Some(id),
            _ => None,
        })
        .ok_or(FailureReason::missing_payload("ID"))?;
    let id_b = raw_body(first, &decrypted.plaintext, PayloadType::Identification)
        .ok_or(FailureReason::missing_payload("ID"))?
        .to_vec();
    let input = sa.auth_input(material, sai_b);
    let which = if from_initiator { "HASH_I" } else { "HASH_R" };
    let proof = if suite.auth_method.is_signature() {
        let hash = auth::signed_hash(suite, material, &input, &id_b, from_initiator);
        let (proof, certificate) =
            auth::verify_peer(sa.peer_config(config), suite, &payloads, id, &hash, which, ctx.unix_time)?;
        sa.peer_certificate = Some(Box::new(certificate));
        proof
    } else {
        let hash = payloads
            .iter()
            .find_map(|p| match p {
                Payload::Hash(h) => Some(*h),
                _ => None,
            })
            .ok_or(FailureReason::missing_payload("HASH"))?;
        auth::verify_psk_hash(material, &input, &id_b, hash, from_initiator, which)?
    };
    // Authentic from here on: a refusal ends the exchange.
    check_remote_identity(sa.peer_config(config), id).map_err(Rejected::Authenticated)?;
    let initial_contact = payloads.iter().any(
        |p| matches!(p, Payload::Notification(n) if n.notify_type == isakmp::NotifyType::InitialContact),
    );
    let step = Step::MainMode(if from_initiator { 5 } else { 6 });
    let summary = traced(ctx.out.trace, step, true, &payloads);
    sa.identified(&id.identity);
    Ok((decrypted.next_iv, proof, initial_contact, summary))
}
