//! Aggressive mode with pre-shared keys, both roles (RFC 2409 §5 and §5.4): phase 1 in three
//! messages, with the identities in clear.
//!
//! ```text
//! Initiator                                   Responder
//! AM1 HDR, SA, KE, Ni, IDii             -->
//!                                       <--   AM2 HDR, SA, KE, Nr, IDir, HASH_R
//! AM3 HDR*, HASH_I                      -->
//! ```
//!
//! - **Proposals.** The Diffie-Hellman value travels in AM1, before any proposal is chosen, so
//!   every transform offered must use the KE's group: the initiator offers only the configured
//!   proposals whose group is the first proposal's (racoon.conf(5): "you must define the same
//!   DH group in each proposal"). The responder chooses as in main mode; a KE that does not
//!   fit the chosen group is refused by the DH validation (INVALID-KEY-INFORMATION).
//! - **Keys by identity.** IDii is in clear, so the responder picks the pre-shared key by the
//!   peer's identity ([`Config::peer_for_identity`]), falling back to the peer configured for
//!   the source address, whose `remote-id` is then checked as in main mode.
//! - **Refusal.** As responder, aggressive mode costs a Diffie-Hellman exchange (and a
//!   signature) for any AM1, and with pre-shared keys hands HASH_R, which can be
//!   brute-forced offline, to whoever sends one. It is answered only for a peer that accepts
//!   it ([`PeerConfig::accept_aggressive_mode`], `exchange-mode aggressive` or `auto`) and
//!   within the responder's rate limit (`rate_limit`); anything else is refused silently
//!   before any work (`Engine::new_responder`).
//! - **AM3.** RFC 2409 shows AM3 in clear; strongSwan and Libreswan encrypt it. We send it
//!   encrypted and accept both. It is encrypted under the initial IV `hash(g^xi | g^xr)`, and
//!   the phase-1 IV chain moves to its last ciphertext block on both sides (the responder
//!   after decrypting it), so quick-mode IVs derive from that block (vectors/README.md,
//!   "Phase-2 IV"). A cleartext AM3 leaves the chain at the initial IV, as racoon does.
//! - **Vendor IDs, NAT-T, INITIAL-CONTACT** (as main mode, `isakmp::capabilities`, `nat_t.rs`). AM1
//!   carries our Vendor IDs, AM2 the responder's answer to them, so both know the NAT-T
//!   dialect after AM2. RFC 3947 §3 puts NAT-D in AM2 and AM3; strongSwan sends the AM3 ones
//!   inside the encrypted AM3, and so do we. The initiator reads AM2's NAT-D and, when either
//!   side is behind a NAT (or the peer claims to be: strongSwan with userspace ESP always
//!   does), floats to UDP 4500 *before* AM3. RFC 3947 §4 would float only after AM3, but
//!   strongSwan sends AM3 on 4500 (`vectors/am-psk-fqdn.pcap`, frame 3) and hashes the 4500
//!   ports into AM3's NAT-D, so we follow the capture: AM3's NAT-D hash the addresses AM3
//!   travels on. The responder reads AM3's NAT-D against the addresses AM3 arrived on and
//!   follows a peer that floated (`SaCore::peer_authenticated`); a peer that floats only with
//!   quick mode is followed there. AM3 carries N(INITIAL-CONTACT) after the NAT-D on the
//!   first SA with a peer, as MM5 does; the responder acts on it once HASH_I verified.
//! - **Retransmission.** The initiator retransmits AM1 until AM2 arrives, and answers every
//!   repeat of the AM2 it accepted with its stored AM3 (`Flight::answer_every_repeat`). The
//!   responder never retransmits AM2 on a timer: AM1 has no cookie exchange before it, so a
//!   spoofed AM1 would make us send AM2 again and again to a victim (the amplification of
//!   CVE-2016-5361; Libreswan does not retransmit its first responder message either). It
//!   answers a repeated AM1 with the stored AM2 a few times. AM3 needs no answer, so its loss
//!   shows only when the initiator, believing phase 1 done, starts a quick mode: a quick-mode
//!   message arriving while we wait for AM3 draws the stored AM2 again, and the initiator's
//!   answer is AM3; its quick-mode retransmission then gets through. Such a message carries
//!   our responder cookie, which only went to the AM1's source in AM2, so an off-path
//!   attacker spoofing a victim cannot produce it; these answers are bounded by the
//!   retransmission count, as our own retransmissions would be.
//!
//! [`Config::peer_for_identity`]: crate::Config::peer_for_identity
//! [`PeerConfig::accept_aggressive_mode`]: crate::PeerConfig::accept_aggressive_mode

use crypto::key_schedule::NextIv;
use crypto::{CertificateSummary, DhError, DhPrivate, Digest};
use isakmp::{Cookie, ExchangeType, Identification, Message, NatDiscovery, NotifyType, Payload, PayloadType};

use crate::auth::{self, PeerProof};
use crate::config::{ExchangeMode, IkeProposal};
use crate::failure::{AuthenticationFailure, FailureReason, MalformedFailure, ProposalFailure};
use crate::identity::check_remote_identity;
use crate::nat_t;
use crate::proposal::{accept_phase1_reply, choose_phase1, phase1_offer, Phase1Mismatch};
use crate::sa::context::{Ctx, ReceivedMessage};
use crate::sa::core::{Phase1Step, Role, SaCore, SaIdentity};
use crate::sa::keys::{auth_input, Phase1Material, NONCE_LEN};
use crate::trace::{summarize, Direction, Step};
use crate::wire;
use crate::wire::{body_of, find_sa, initial_contact, ke_and_nonce, raw_body};
use isakmp::capabilities as vendor;

/// The aggressive-mode states. Each holds what the next message needs.
pub(crate) enum AggressiveState {
    /// We sent AM1.
    InitiatorWaitAm2(Box<InitiatorWaitAm2>),
    /// We sent AM2.
    ResponderWaitAm3(Box<ResponderWaitAm3>),
}

/// The initiator between AM1 and AM2.
pub(crate) struct InitiatorWaitAm2 {
    /// Body of our SA payload, which HASH_I and HASH_R cover.
    sai_b: Vec<u8>,
    /// The proposals we offered (all of the KE's group): the reply must be one of them.
    offered: Vec<IkeProposal>,
    dh: DhPrivate,
    ni: Vec<u8>,
    /// Body of our ID payload, for HASH_I.
    idii_b: Vec<u8>,
}

/// The responder between AM2 and AM3.
pub(crate) struct ResponderWaitAm3 {
    sai_b: Vec<u8>,
    /// The initiator's ID payload body as received, for HASH_I.
    idii_b: Vec<u8>,
    suite: IkeProposal,
    material: Box<Phase1Material>,
    /// How many times a quick mode arriving before AM3 has drawn AM2 again.
    am2_resent: u32,
}

impl AggressiveState {
    /// The state name used in failure reports and displays.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::InitiatorWaitAm2(_) => "waiting for AM2",
            Self::ResponderWaitAm3(_) => "waiting for AM3",
        }
    }

    /// The heap bytes held (boxed state, payload bodies, nonce, keys), for the half-open charge.
    pub(crate) fn held_bytes(&self) -> usize {
        use {crate::sa::flight::heap_bytes, std::mem::size_of};
        let (boxed, bodies, more) = match self {
            Self::InitiatorWaitAm2(s) => {
                let offered = heap_bytes(s.offered.capacity() * size_of::<IkeProposal>());
                (size_of::<InitiatorWaitAm2>(), [&s.sai_b, &s.idii_b], offered + heap_bytes(s.ni.capacity()))
            }
            Self::ResponderWaitAm3(s) => {
                (size_of::<ResponderWaitAm3>(), [&s.sai_b, &s.idii_b], s.material.held_bytes())
            }
        };
        heap_bytes(boxed) + bodies.iter().map(|b| heap_bytes(b.capacity())).sum::<usize>() + more
    }

    /// True when `message` has the shape this state waits for: AM2 is cleartext with SA, KE and
    /// nonce; AM3 is encrypted or carries a HASH in clear. Anything else is stray and dropped
    /// without disturbing the exchange.
    pub(crate) fn expects(&self, message: &Message<'_>) -> bool {
        let has = |wanted: PayloadType| message.payloads().iter().any(|p| p.payload_type() == wanted);
        match self {
            Self::InitiatorWaitAm2(_) => {
                has(PayloadType::SecurityAssociation)
                    && has(PayloadType::KeyExchange)
                    && has(PayloadType::Nonce)
            }
            Self::ResponderWaitAm3(_) => message.encrypted_body().is_some() || has(PayloadType::Hash),
        }
    }

    /// Handles the message this state waits for ([`AggressiveState::expects`]), consuming
    /// the state. On error the exchange is over (the caller reports it).
    pub(crate) fn handle(
        self,
        sa: &mut SaCore,
        message: &Message<'_>,
        datagram: &[u8],
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<Phase1Step<Self>, FailureReason> {
        match self {
            Self::InitiatorWaitAm2(wait) => initiator_finish(sa, wait, message, datagram, digest, ctx),
            Self::ResponderWaitAm3(wait) => responder_finish(sa, wait, message, digest, ctx),
        }
    }

    /// A quick-mode message arrived. If we are an aggressive-mode responder still waiting for
    /// AM3, the initiator has finished phase 1 and AM3 was lost: answer with the stored AM2,
    /// which draws AM3 again (module doc, "Retransmission"). Returns true when the message was
    /// consumed so; it cannot be decrypted before AM3 anyway.
    pub(crate) fn quick_mode_before_am3(&mut self, sa: &SaCore, ctx: &mut Ctx<'_>) -> bool {
        let Self::ResponderWaitAm3(wait) = self else {
            return false;
        };
        if wait.am2_resent < ctx.config.limits.retransmit_count {
            wait.am2_resent += 1;
            if let Some(am2) = sa.flight.last_sent() {
                let am2 = am2.to_vec();
                sa.transmit(am2, ctx);
            }
        }
        true
    }
}

/// The authentication method of the first offered proposal: AM1 carries CRs when it is a
/// signature method.
fn group_method(offered: &[IkeProposal]) -> crate::config::AuthMethod {
    offered.first().map_or(crate::config::AuthMethod::PreSharedKey, |p| p.auth_method)
}

/// The proposals an aggressive-mode initiator offers: those sharing the first proposal's
/// Diffie-Hellman group, in order, since AM1's KE can only be of one group.
pub(crate) fn aggressive_proposals(proposals: &[IkeProposal]) -> Vec<IkeProposal> {
    let Some(first) = proposals.first() else { return Vec::new() };
    proposals.iter().filter(|p| p.group == first.group).copied().collect()
}

/// HASH_R as the responder puts it in AM2:
/// `prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)`.
pub(crate) fn am2_hash_r(
    material: &Phase1Material,
    cookie_i: Cookie,
    cookie_r: Cookie,
    sai_b: &[u8],
    idir_b: &[u8],
) -> Digest {
    material.skeyid.hash_r(&auth_input(material, cookie_i, cookie_r, sai_b), idir_b)
}

/// HASH_I as the initiator puts it in AM3:
/// `prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)`.
pub(crate) fn am3_hash_i(
    material: &Phase1Material,
    cookie_i: Cookie,
    cookie_r: Cookie,
    sai_b: &[u8],
    idii_b: &[u8],
) -> Digest {
    material.skeyid.hash_i(&auth_input(material, cookie_i, cookie_r, sai_b), idii_b)
}

/// AM3: HASH_I (then `rest`, e.g. NAT-D payloads) encrypted under the phase-1 chain, which
/// starts at the initial IV and then moves to AM3's last block.
#[cfg(test)] // the known-answer tests seal a strongSwan AM3 again; the engine uses `seal_am3_payloads`
pub(crate) fn seal_am3(
    cookie_i: Cookie,
    cookie_r: Cookie,
    hash_i: &[u8],
    rest: &[Payload<'_>],
    material: &mut Phase1Material,
) -> Vec<u8> {
    seal_am3_payloads(cookie_i, cookie_r, &[Payload::Hash(hash_i)], rest, material)
}

/// AM3 with the given proof payloads (`HASH_I`, or `[CERT], SIG_I`) first, then `rest`.
pub(crate) fn seal_am3_payloads(
    cookie_i: Cookie,
    cookie_r: Cookie,
    proof: &[Payload<'_>],
    rest: &[Payload<'_>],
    material: &mut Phase1Material,
) -> Vec<u8> {
    let mut payloads = proof.to_vec();
    payloads.extend(rest.iter().cloned());
    let first = payloads.first().map_or(PayloadType::Hash, Payload::payload_type);
    let mut chain = Vec::new();
    isakmp::emit_payload_chain(&payloads, &mut chain);
    let header = wire::header(cookie_i, cookie_r, ExchangeType::Aggressive, 0);
    wire::encrypted(header, first, chain, &material.key, &mut material.iv)
}

/// What a verified AM3 told the responder besides HASH_I.
#[derive(Debug)]
pub(crate) struct OpenedAm3 {
    /// The IV the phase-1 chain moves to (none for a cleartext AM3); the caller moves it once
    /// it has accepted the message.
    pub(crate) next_iv: Option<NextIv>,
    /// The proof that HASH_I or the signature over it verified.
    pub(crate) proof: PeerProof,
    /// The initiator's verified certificate, under signature authentication.
    pub(crate) certificate: Option<CertificateSummary>,
    /// The initiator's NAT-D payloads, in order: (draft payload number, hash). Owned, since
    /// they live in the decrypted plaintext.
    pub(crate) nat_d: Vec<(bool, Vec<u8>)>,
    /// AM3 carried N(INITIAL-CONTACT) (RFC 2407 §4.6.3.3).
    pub(crate) initial_contact: bool,
    /// Its payloads for the message trace.
    pub(crate) summary: Option<String>,
}

impl OpenedAm3 {
    /// The NAT-D payloads again, for [`IkeSa::detect_nat`].
    pub(crate) fn nat_d_payloads(&self) -> Vec<Payload<'_>> {
        self.nat_d
            .iter()
            .map(|(draft, hash)| Payload::NatDiscovery(NatDiscovery { draft: *draft, hash }))
            .collect()
    }
}

/// Opens AM3 (encrypted, or in clear) and checks HASH_I in constant time. Returns the IV the
/// phase-1 chain moves to, the proof of the check, and the NAT-D and INITIAL-CONTACT it
/// carried; the chain itself is left alone until the caller has accepted the message.
pub(crate) fn open_am3(
    message: &Message<'_>,
    material: &Phase1Material,
    cookie_i: Cookie,
    cookie_r: Cookie,
    sai_b: &[u8],
    idii_b: &[u8],
) -> Result<OpenedAm3, FailureReason> {
    open_am3_with(message, material, |payloads| {
        let hash = find_hash(payloads).ok_or(FailureReason::missing_payload("HASH_I"))?;
        let input = auth_input(material, cookie_i, cookie_r, sai_b);
        Ok((auth::verify_psk_hash(material, &input, idii_b, hash, true, "HASH_I")?, None))
    })
}

/// Opens AM3 and checks the initiator's proof with `check` (HASH_I, or certificate and
/// signature), as [`open_am3`] describes.
pub(crate) fn open_am3_with(
    message: &Message<'_>,
    material: &Phase1Material,
    check: impl FnOnce(&[Payload<'_>]) -> Result<(PeerProof, Option<CertificateSummary>), FailureReason>,
) -> Result<OpenedAm3, FailureReason> {
    let encrypted = message.encrypted_body().is_some();
    let verify = |payloads: &[Payload<'_>], next_iv: Option<NextIv>| {
        let (proof, certificate) = check(payloads)?;
        let nat_d = payloads
            .iter()
            .filter_map(|p| match p {
                Payload::NatDiscovery(d) => Some((d.draft, d.hash.to_vec())),
                _ => None,
            })
            .collect();
        let initial_contact = payloads
            .iter()
            .any(|p| matches!(p, Payload::Notification(n) if n.notify_type == NotifyType::InitialContact));
        // Summarized whether or not tracing is on: one short string per phase 1, and the
        // decrypted payloads are gone once this returns.
        let summary = Some(summarize(Step::Aggressive(3), encrypted, payloads));
        Ok(OpenedAm3 { next_iv, proof, certificate, nat_d, initial_contact, summary })
    };
    match message.encrypted_body() {
        Some(ciphertext) => {
            let decrypted = wire::decrypt(ciphertext, &material.key, &material.iv)?;
            // Garbage under keys derived from our pre-shared key almost always means the
            // initiator derived other keys.
            let (payloads, _) =
                wire::parse_chain(message.first_payload(), &decrypted.plaintext).map_err(|_| {
                    FailureReason::Authentication(AuthenticationFailure::KeysDiffer { message: "AM3" })
                })?;
            verify(&payloads, Some(decrypted.next_iv))
        }
        None => verify(message.payloads(), None),
    }
}

fn find_identification<'m, 'a>(payloads: &'m [Payload<'a>]) -> Option<&'m Identification<'a>> {
    payloads.iter().find_map(|p| match p {
        Payload::Identification(id) => Some(id),
        _ => None,
    })
}

fn find_hash<'a>(payloads: &[Payload<'a>]) -> Option<&'a [u8]> {
    payloads.iter().find_map(|p| match p {
        Payload::Hash(h) => Some(*h),
        _ => None,
    })
}

/// A new SA in aggressive mode, in a placeholder state the caller replaces.
fn new_aggressive(identity: SaIdentity, role: Role, cookies: (Cookie, Cookie), ctx: &mut Ctx<'_>) -> SaCore {
    let mut sa = SaCore::new(identity, role, cookies, ctx);
    sa.mode = ExchangeMode::Aggressive;
    sa
}

/// The header of our aggressive-mode messages (message ID 0).
fn header(sa: &SaCore) -> isakmp::Header {
    wire::header(sa.cookie_i, sa.cookie_r, ExchangeType::Aggressive, 0)
}

/// Starts aggressive mode as initiator: AM1 with SA, KE, Ni and IDii.
pub(crate) fn initiate(
    identity: SaIdentity,
    ctx: &mut Ctx<'_>,
) -> Result<(SaCore, AggressiveState), FailureReason> {
    let peer = identity.peer;
    let offered = aggressive_proposals(&ctx.config.peers[peer].proposals);
    let Some(group) = offered.first().map(|p| p.group) else {
        return Err(FailureReason::Proposal(ProposalFailure::Phase1(Phase1Mismatch {
            offered: Vec::new(),
            accepted: Vec::new(),
        })));
    };
    let cookie_i = ctx.random_cookie();
    let mut sa = new_aggressive(identity, Role::Initiator, (cookie_i, Cookie::default()), ctx);
    let dh = DhPrivate::generate(group, ctx.rng).map_err(FailureReason::from)?;
    let ni = ctx.random_bytes(NONCE_LEN);
    let offer = phase1_offer(&offered);
    let mut sai_b = Vec::new();
    offer.emit(&mut sai_b);
    let id = sa.local_identification(ctx.config);
    let mut idii_b = Vec::new();
    id.emit(&mut idii_b);
    let mut payloads = vec![
        Payload::SecurityAssociation(offer),
        Payload::KeyExchange(dh.public_value()),
        Payload::Nonce(&ni),
        Payload::Identification(id),
    ];
    payloads.extend(auth::certificate_requests(&ctx.config.peers[peer], group_method(&offered)));
    // AM1 is our only chance to announce DPD and NAT-T (strongSwan's order: VIDs last).
    payloads.extend(vendor::our_vendor_ids(
        ctx.config.peers[peer].nat_traversal,
        ctx.config.limits.fragmentation,
    ));
    sa.trace(ctx, Direction::Sent, Step::Aggressive(1), 0, false, &payloads);
    let am1 = wire::cleartext(header(&sa), payloads);
    sa.send(am1, true, ctx);
    let state =
        AggressiveState::InitiatorWaitAm2(Box::new(InitiatorWaitAm2 { sai_b, offered, dh, ni, idii_b }));
    Ok((sa, state))
}

/// Answers AM1 as responder (the engine has already decided to accept aggressive mode
/// and chosen `peer`): checks the proposal and identity before any Diffie-Hellman work,
/// then sends AM2.
pub(crate) fn respond(
    identity: SaIdentity,
    received: ReceivedMessage<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(SaCore, AggressiveState), FailureReason> {
    let ReceivedMessage { message, datagram, digest } = received;
    let peer = identity.peer;
    let payloads = message.payloads();
    let offer = find_sa(payloads).ok_or(FailureReason::missing_payload("SA"))?;
    let choice = choose_phase1(offer, &ctx.config.peers[peer].proposals).map_err(FailureReason::from)?;
    let (g_xi, ni) = ke_and_nonce(payloads)?;
    let id = find_identification(payloads).ok_or(FailureReason::missing_payload("ID"))?;
    check_remote_identity(&ctx.config.peers[peer], id)?;
    let first = message.first_payload();
    let body = body_of(datagram);
    let sai_b = raw_body(first, body, PayloadType::SecurityAssociation)
        .ok_or(FailureReason::missing_payload("SA"))?
        .to_vec();
    let idii_b = raw_body(first, body, PayloadType::Identification)
        .ok_or(FailureReason::missing_payload("ID"))?
        .to_vec();

    let cookie_r = ctx.random_cookie();
    let cookie_i = message.header.initiator_cookie;
    let mut sa = new_aggressive(identity, Role::Responder, (cookie_i, cookie_r), ctx);
    sa.learn_capabilities(payloads, ctx.config);
    sa.identified(&id.identity);
    sa.trace(ctx, Direction::Received, Step::Aggressive(1), 0, false, payloads);
    let suite = choice.suite;
    check_ke_length(&suite, g_xi)?;
    let dh = DhPrivate::generate(suite.group, ctx.rng).map_err(FailureReason::from)?;
    let shared = dh.shared_secret(g_xi).map_err(FailureReason::from)?;
    let nr = ctx.random_bytes(NONCE_LEN);
    let material =
        sa.derive(&suite, ni, &nr, shared.expose(), g_xi, dh.public_value(), Some(&id.identity), ctx);
    sa.peer_asked_certificate = auth::peer_requested_certificate(payloads);
    let id_r = sa.local_identification(ctx.config);
    let mut idir_b = Vec::new();
    id_r.emit(&mut idir_b);
    let hash_r = if suite.auth_method.is_signature() {
        let input = auth_input(&material, cookie_i, cookie_r, &sai_b);
        auth::signed_hash(&suite, &material, &input, &idir_b, false)
    } else {
        am2_hash_r(&material, cookie_i, cookie_r, &sai_b, &idir_b)
    };
    let signed =
        auth::sign_if_signature(&suite, &ctx.config.peers[peer], &hash_r, sa.peer_asked_certificate)?;
    // NAT-D over the addresses AM1 arrived on: the initiator compares them with the ones
    // it sent from (RFC 3947 §3.2).
    let nat_d = sa.nat_discovery(suite.hash);
    // strongSwan's order: SA KE Nr IDir VIDs NAT-D NAT-D HASH_R (am-psk-fqdn.pcap frame 2).
    let mut payloads = vec![
        Payload::SecurityAssociation(choice.reply),
        Payload::KeyExchange(dh.public_value()),
        Payload::Nonce(&nr),
        Payload::Identification(id_r),
    ];
    payloads.extend(vendor::responder_vendor_ids(sa.nat.version, sa.fragments_to_peer(ctx.config)));
    if let Some((version, hashes)) = &nat_d {
        payloads.extend(nat_t::discovery_payloads(*version, hashes));
    }
    match &signed {
        Some((certificate, signature)) => {
            let proof = auth::proof_payloads(*certificate, signature);
            // CERT, then our CRs (we want the initiator's certificate in AM3), then SIG.
            let (sig, cert) = proof.split_last().map_or((None, &[][..]), |(s, c)| (Some(s.clone()), c));
            payloads.extend(cert.iter().cloned());
            payloads.extend(auth::certificate_requests(&ctx.config.peers[peer], suite.auth_method));
            payloads.extend(sig);
        }
        None => payloads.push(Payload::Hash(&hash_r)),
    }
    sa.trace(ctx, Direction::Sent, Step::Aggressive(2), 0, false, &payloads);
    let am2 = wire::cleartext(header(&sa), payloads);
    sa.flight.received(digest);
    // No timer-driven retransmission of AM2 (module doc, "Retransmission").
    sa.send(am2, false, ctx);
    let state = AggressiveState::ResponderWaitAm3(Box::new(ResponderWaitAm3 {
        sai_b,
        idii_b,
        suite,
        material: Box::new(material),
        am2_resent: 0,
    }));
    Ok((sa, state))
}

/// A KE of another group than the chosen transform's is refused before any DH work.
fn check_ke_length(suite: &IkeProposal, g_xi: &[u8]) -> Result<(), FailureReason> {
    if g_xi.len() == suite.group.public_len() {
        return Ok(());
    }
    Err(FailureReason::Malformed(MalformedFailure::KeyExchange(DhError::WrongLength {
        group: suite.group,
        expected: suite.group.public_len(),
        actual: g_xi.len(),
    })))
}

/// AM2 arrived: checks the responder's choice, KE and HASH_R (or signature) and derives the
/// keys. Every failure here is before the proof verified: the AM2 is anyone's.
fn verify_am2<'m>(
    sa: &mut SaCore,
    wait: &InitiatorWaitAm2,
    message: &'m Message<'_>,
    datagram: &[u8],
    ctx: &mut Ctx<'_>,
) -> Result<(IkeProposal, Phase1Material, PeerProof, &'m Identification<'m>), FailureReason> {
    let payloads = message.payloads();
    let reply = find_sa(payloads).ok_or(FailureReason::missing_payload("SA"))?;
    let suite = accept_phase1_reply(reply, &wait.offered).map_err(FailureReason::from)?;
    if message.header.responder_cookie.is_zero() {
        return Err(FailureReason::missing_payload("responder cookie"));
    }
    let (g_xr, nr) = ke_and_nonce(payloads)?;
    let id = find_identification(payloads).ok_or(FailureReason::missing_payload("ID"))?;
    let idir_b = raw_body(message.first_payload(), body_of(datagram), PayloadType::Identification)
        .ok_or(FailureReason::missing_payload("ID"))?;
    sa.cookie_r = message.header.responder_cookie;
    sa.learn_capabilities(payloads, ctx.config);
    let shared = wait.dh.shared_secret(g_xr).map_err(FailureReason::from)?;
    let material = sa.derive(&suite, &wait.ni, nr, shared.expose(), wait.dh.public_value(), g_xr, None, ctx);
    sa.peer_asked_certificate = auth::peer_requested_certificate(payloads);
    let proof = if suite.auth_method.is_signature() {
        let input = sa.auth_input(&material, &wait.sai_b);
        let hash_r = auth::signed_hash(&suite, &material, &input, idir_b, false);
        let (proof, certificate) = auth::verify_peer(
            sa.peer_config(ctx.config),
            &suite,
            payloads,
            id,
            &hash_r,
            "HASH_R",
            ctx.unix_time,
        )?;
        sa.peer_certificate = Some(Box::new(certificate));
        proof
    } else {
        let hash = find_hash(payloads).ok_or(FailureReason::missing_payload("HASH_R"))?;
        let input = sa.auth_input(&material, &wait.sai_b);
        auth::verify_psk_hash(&material, &input, idir_b, hash, false, "HASH_R")?
    };
    Ok((suite, material, proof, id))
}

/// AM2 arrived: once it verified ([`verify_am2`]; one that does not is dropped and the SA
/// left as it was, for the responder's repeat of AM2 to repair), checks the responder's
/// identity and sends AM3; established.
fn initiator_finish(
    sa: &mut SaCore,
    wait: Box<InitiatorWaitAm2>,
    message: &Message<'_>,
    datagram: &[u8],
    digest: [u8; 32],
    ctx: &mut Ctx<'_>,
) -> Result<Phase1Step<AggressiveState>, FailureReason> {
    let saved = (sa.cookie_r, sa.peer_capabilities, sa.nat.version, sa.peer_asked_certificate);
    let (suite, mut material, proof, id) = match verify_am2(sa, &wait, message, datagram, ctx) {
        Ok(verified) => verified,
        Err(reason) => {
            (sa.cookie_r, sa.peer_capabilities, sa.nat.version, sa.peer_asked_certificate) = saved;
            return Ok(Phase1Step::Dropped(AggressiveState::InitiatorWaitAm2(wait), reason));
        }
    };
    let payloads = message.payloads();
    check_remote_identity(sa.peer_config(ctx.config), id)?;
    sa.identified(&id.identity);
    sa.trace(ctx, Direction::Received, Step::Aggressive(2), 0, false, payloads);
    // Only now that HASH_R verified may AM2's NAT-D move us (module doc): to 4500 before
    // AM3, as strongSwan does, and AM3's NAT-D then hash the addresses AM3 travels on.
    sa.detect_nat(payloads, suite.hash, ctx);
    sa.float_if_nat_detected(ctx.now);
    let hash_i = if suite.auth_method.is_signature() {
        let input = sa.auth_input(&material, &wait.sai_b);
        auth::signed_hash(&suite, &material, &input, &wait.idii_b, true)
    } else {
        am3_hash_i(&material, sa.cookie_i, sa.cookie_r, &wait.sai_b, &wait.idii_b)
    };
    let signed =
        auth::sign_if_signature(&suite, sa.peer_config(ctx.config), &hash_i, sa.peer_asked_certificate)?;
    let nat_d = sa.nat_discovery(suite.hash);
    let cookies = sa.cookie_pair();
    let mut rest = Vec::new();
    if let Some((version, hashes)) = &nat_d {
        rest.extend(nat_t::discovery_payloads(*version, hashes));
    }
    if sa.send_initial_contact {
        rest.push(initial_contact(&cookies));
    }
    let proof_payloads = match &signed {
        Some((certificate, signature)) => auth::proof_payloads(*certificate, signature),
        None => vec![Payload::Hash(&hash_i)],
    };
    if ctx.out.trace {
        let mut sent = proof_payloads.clone();
        sent.extend(rest.iter().cloned());
        sa.trace(ctx, Direction::Sent, Step::Aggressive(3), 0, true, &sent);
    }
    let am3 = seal_am3_payloads(sa.cookie_i, sa.cookie_r, &proof_payloads, &rest, &mut material);
    sa.flight.received(digest);
    sa.flight.answer_every_repeat();
    sa.send(am3, false, ctx);
    Ok(Phase1Step::Established(sa.establish(suite, Box::new(material), proof, ctx)))
}

/// AM3 arrived: checks the initiator's HASH_I (or signature), NAT-D and INITIAL-CONTACT;
/// established.
fn responder_finish(
    sa: &mut SaCore,
    wait: Box<ResponderWaitAm3>,
    message: &Message<'_>,
    digest: [u8; 32],
    ctx: &mut Ctx<'_>,
) -> Result<Phase1Step<AggressiveState>, FailureReason> {
    let opened = if wait.suite.auth_method.is_signature() {
        let input = auth_input(&wait.material, sa.cookie_i, sa.cookie_r, &wait.sai_b);
        let hash_i = auth::signed_hash(&wait.suite, &wait.material, &input, &wait.idii_b, true);
        let id = Identification::parse_body(&wait.idii_b).map_err(FailureReason::from)?;
        let peer = sa.peer_config(ctx.config);
        open_am3_with(message, &wait.material, |payloads| {
            let (proof, certificate) =
                auth::verify_peer(peer, &wait.suite, payloads, &id, &hash_i, "HASH_I", ctx.unix_time)?;
            Ok((proof, Some(certificate)))
        })
    } else {
        open_am3(message, &wait.material, sa.cookie_i, sa.cookie_r, &wait.sai_b, &wait.idii_b)
    };
    // AM3 that does not decrypt or verify is anyone's: dropped, and the initiator's repeat
    // (drawn by its quick mode, module doc) repairs a corrupted one.
    let opened = match opened {
        Ok(opened) => opened,
        Err(reason) => return Ok(Phase1Step::Dropped(AggressiveState::ResponderWaitAm3(wait), reason)),
    };
    let ResponderWaitAm3 { suite, mut material, .. } = *wait;
    if opened.certificate.is_some() {
        sa.peer_certificate = opened.certificate.clone().map(Box::new);
    }
    // AM3's NAT-D against the addresses it arrived on (4500 if the initiator
    // floated, as strongSwan does), then follow the peer there.
    sa.detect_nat(&opened.nat_d_payloads(), suite.hash, ctx);
    sa.peer_authenticated(false, ctx);
    sa.trace_summary(ctx, Direction::Received, Step::Aggressive(3), 0, opened.summary.clone());
    sa.initial_contact_received = opened.initial_contact;
    if let Some(next_iv) = opened.next_iv {
        material.iv.advance(next_iv);
    }
    sa.flight.finished(digest);
    sa.flight.settle();
    Ok(Phase1Step::Established(sa.establish(suite, material, opened.proof, ctx)))
}
