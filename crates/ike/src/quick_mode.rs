//! Quick mode (RFC 2409 §5.5): three messages under the protection of an established IKE SA,
//! making a pair of one-way IPsec SAs keyed from SKEYID_d, optionally with a fresh
//! Diffie-Hellman exchange (PFS).
//!
//! ```text
//! Initiator                                   Responder
//! QM1 HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr]  -->
//!                                  <--  QM2 HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr]
//! QM3 HDR*, HASH(3)                            -->
//! ```
//!
//! Each quick mode has its own Message ID, IV chain and retransmission state, so several run
//! at once on one IKE SA. The responder retransmits QM2 until QM3 arrives (a lost QM3 would
//! otherwise leave it without SAs the initiator already uses); the initiator answers a
//! repeated QM2 with its stored QM3. A finished quick mode answers repeats until its
//! deadline; after that its message ID is still remembered by the IKE SA (`sa::seen`), so
//! a replay of any of its messages is dropped and counted, never taken for a new QM1.

use std::ops::{Deref, DerefMut};
use std::time::Instant;

use crypto::key_schedule::{
    EspKeyLengths, ExchangeIvChain, HashVerified, KeymatInput, MessageId, NextIv, Spi,
};
use crypto::{DhPrivate, SecretBytes};
use isakmp::{
    ExchangeType, Identification, Message, Payload, PayloadType, Proposal, ProtocolId, SecurityAssociation,
    SIT_IDENTITY_ONLY,
};

use crate::config::{EncapsulationMode, PolicyConfig, TrafficSelector};
use crate::event::{Acquire, AhSaKeys, Event, IpsecSaPair, UdpEncapsulation};
use crate::failure::{AuthenticationFailure, FailureReason, IdentityFailure, MalformedFailure};
use crate::nat_t;
use crate::proposal::{choose_ipsec, quick_mode_offer, IpsecChoice, IpsecSuite, OurSpis};
use crate::proxy_id::{check_echoed, covers, describe_flow, proposed_selector, side_id};
use crate::sa::context::Ctx;
use crate::sa::core::SaCore;
use crate::sa::flight::Flight;
use crate::sa::keys::{Phase1Material, NONCE_LEN};
use crate::sa::unauthenticated::Rejected;
use crate::trace::{Direction, Step};
use crate::wire;
use crate::wire::find_sa;

/// One quick-mode exchange in progress (or just finished, kept to answer repeats).
pub(crate) struct QuickMode {
    pub(crate) message_id: u32,
    pub(crate) state: QmState,
    pub(crate) flight: Flight,
    pub(crate) deadline: Instant,
}

/// What the initiator remembers between QM1 and QM2.
pub(crate) struct InitiatorWait {
    acquire: Acquire,
    iv: ExchangeIvChain,
    ni: Vec<u8>,
    dh: Option<DhPrivate>,
    our_spis: OurSpis,
    offered: Vec<IpsecSuite>,
}

/// What the responder remembers between QM2 and QM3.
pub(crate) struct ResponderWait {
    policy: usize,
    selector: TrafficSelector,
    iv: ExchangeIvChain,
    ni: Vec<u8>,
    nr: Vec<u8>,
    pfs_secret: Option<SecretBytes>,
    our_spis: OurSpis,
    choice: IpsecChoice,
    /// The pair's inbound and outbound SPIs, installed inbound-first with QM2.
    spis: (u32, u32),
}

pub(crate) enum QmState {
    InitiatorWaitQm2(Box<InitiatorWait>),
    ResponderWaitQm3(Box<ResponderWait>),
    /// Finished; kept until the deadline so repeats of the peer's last message are answered.
    Done,
}

impl QuickMode {
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [Some(self.deadline), self.flight.retransmit_at()].into_iter().flatten().min()
    }

    /// The SPIs we put in our proposals (ESP's and AH's), while the exchange runs.
    pub(crate) fn our_spis(&self) -> Option<&OurSpis> {
        match &self.state {
            QmState::InitiatorWaitQm2(w) => Some(&w.our_spis),
            QmState::ResponderWaitQm3(w) => Some(&w.our_spis),
            QmState::Done => None,
        }
    }

    /// True when `spi` is one of the SPIs we put in our proposals, while the exchange runs.
    pub(crate) fn owns_spi(&self, spi: &[u8]) -> bool {
        self.our_spis().is_some_and(|s| s.esp == spi || s.ah == spi)
    }

    /// The flow this exchange negotiates, when we initiated it and it is still running.
    pub(crate) fn acquire(&self) -> Option<&Acquire> {
        match &self.state {
            QmState::InitiatorWaitQm2(w) => Some(&w.acquire),
            _ => None,
        }
    }

    /// True when this exchange will make a pair for `acquire`'s flow: ours, or the peer's
    /// waiting for QM3 (traffic back waits for it rather than starting another).
    pub(crate) fn serves(&self, acquire: &Acquire) -> bool {
        match &self.state {
            QmState::InitiatorWaitQm2(w) => w.acquire == *acquire,
            QmState::ResponderWaitQm3(w) => w.policy == acquire.policy && w.selector == acquire.selector,
            QmState::Done => false,
        }
    }

    /// True when this exchange is finished or serves a policy for which `kept` gives a new
    /// index (a configuration reload keeps it).
    pub(crate) fn serves_policy(&self, kept: &mut impl FnMut(usize) -> Option<usize>) -> bool {
        match &self.state {
            QmState::InitiatorWaitQm2(w) => kept(w.acquire.policy).is_some(),
            QmState::ResponderWaitQm3(w) => kept(w.policy).is_some(),
            QmState::Done => true,
        }
    }

    /// Follows a configuration reload: the policy index this exchange serves becomes
    /// `renumber(old)`. Returns false when its policy was changed or removed, so that the
    /// caller abandons the exchange (a finished one has no policy and always stays).
    pub(crate) fn renumber_policy(&mut self, renumber: impl Fn(usize) -> Option<usize>) -> bool {
        let policy = match &mut self.state {
            QmState::InitiatorWaitQm2(w) => &mut w.acquire.policy,
            QmState::ResponderWaitQm3(w) => &mut w.policy,
            QmState::Done => return true,
        };
        match renumber(*policy) {
            Some(new) => {
                *policy = new;
                true
            }
            None => false,
        }
    }

    /// When this is a responder's quick mode still waiting for QM3: the event that takes
    /// back the pair the data plane holds since QM2, for an exchange that ends here.
    pub(crate) fn unconfirmed(&self, sa: &SaCore, config: &crate::Config) -> Option<Event> {
        let QmState::ResponderWaitQm3(wait) = &self.state else { return None };
        Some(Event::IpsecSaExpired {
            connection: sa.connection,
            peer: sa.peer_config(config).name.clone(),
            policy: config.policies.get(wait.policy)?.id.clone(),
            inbound_spi: wait.spis.0,
            outbound_spi: wait.spis.1,
            reason: crate::event::IpsecSaEnd::Unconfirmed,
        })
    }

    pub(crate) fn state_name(&self) -> &'static str {
        match self.state {
            QmState::InitiatorWaitQm2(_) => "waiting for QM2",
            QmState::ResponderWaitQm3(_) => "waiting for QM3",
            QmState::Done => "done",
        }
    }
}

/// What a quick mode runs on: the IKE SA's core, its phase-1 keys once established, and the
/// quick modes under way, borrowed apart from the IKE SA (`IkeSa::quick_mode_sa`) so that
/// this module never sees a phase-1 state. Reads and writes of the core go through `Deref`.
pub(crate) struct QuickModeSa<'s> {
    pub(crate) core: &'s mut SaCore,
    /// The phase-1 keys; `None` before phase 1 is established (nothing can be protected).
    pub(crate) keys: Option<&'s Phase1Material>,
    pub(crate) quick_modes: &'s mut Vec<QuickMode>,
}

impl Deref for QuickModeSa<'_> {
    type Target = SaCore;
    fn deref(&self) -> &SaCore {
        self.core
    }
}

impl DerefMut for QuickModeSa<'_> {
    fn deref_mut(&mut self) -> &mut SaCore {
        self.core
    }
}

/// The suites a policy accepts, in its order.
pub(crate) fn policy_suites(policy: &PolicyConfig) -> Vec<IpsecSuite> {
    policy
        .proposals
        .iter()
        .map(|p| IpsecSuite {
            proposal: *p,
            pfs: policy.pfs,
            lifetime: policy.lifetime,
            lifetime_kilobytes: policy.lifetime_kilobytes,
        })
        .collect()
}

fn esp_key_lengths(suite: &IpsecSuite) -> EspKeyLengths {
    let Some((encryption, integrity)) = suite.proposal.protocols.esp() else {
        return EspKeyLengths { encryption_key_len: 0, salt_len: 0, integrity_key_len: 0 };
    };
    let salt_len = if encryption.is_aead() { 4 } else { 0 };
    EspKeyLengths {
        encryption_key_len: encryption.key_len() - salt_len,
        salt_len,
        integrity_key_len: integrity.map_or(0, |i| i.key_len()),
    }
}

fn ah_key_lengths(integrity: crypto::Integrity) -> EspKeyLengths {
    EspKeyLengths { encryption_key_len: 0, salt_len: 0, integrity_key_len: integrity.key_len() }
}

fn random_spi(ctx: &mut Ctx<'_>) -> [u8; 4] {
    loop {
        let mut spi = [0u8; 4];
        ctx.rng.fill(&mut spi);
        // SPIs 1..=255 are reserved by IANA (RFC 4303 §2.1) and 0 means none.
        if u32::from_be_bytes(spi) > 255 {
            return spi;
        }
    }
}

/// A payload of a kind, or a "missing payload" failure.
macro_rules! find_payload {
    ($payloads:expr, $variant:ident, $name:literal) => {
        $payloads
            .iter()
            .find_map(|p| match p {
                Payload::$variant(v) => Some(v),
                _ => None,
            })
            .ok_or(FailureReason::missing_payload($name))
    };
}

/// The proxy identities (IDci, IDcr) of a quick-mode message, in order.
fn identifications<'m, 'a>(payloads: &'m [Payload<'a>]) -> Vec<&'m Identification<'a>> {
    payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Identification(id) => Some(id),
            _ => None,
        })
        .collect()
}

/// The responder's half of PFS: with a group, our KE and the shared secret with the
/// initiator's KE (RFC 2409 §5.5).
fn responder_pfs(
    group: Option<crypto::DhGroup>,
    payloads: &[Payload<'_>],
    ctx: &mut Ctx<'_>,
) -> Result<(Option<DhPrivate>, Option<SecretBytes>), FailureReason> {
    let Some(group) = group else { return Ok((None, None)) };
    let ke = find_payload!(payloads, KeyExchange, "KE")?;
    let dh = DhPrivate::generate(group, ctx.rng).map_err(FailureReason::from)?;
    let secret = dh.shared_secret(ke).map_err(FailureReason::from)?;
    Ok((Some(dh), Some(secret)))
}

/// QM2's RESPONDER-LIFETIME notifications, one per protocol of the choice, when the lifetime
/// we chose (`data`) is shorter than the offer.
fn responder_lifetime_notifies<'a>(
    choice: &IpsecChoice,
    our_spis: &'a OurSpis,
    data: Option<&'a [u8]>,
) -> Vec<Payload<'a>> {
    let Some(data) = data else { return Vec::new() };
    choice
        .parts
        .iter()
        .map(|part| {
            crate::sa::lifetimes::responder_lifetime_notify(part.protocol, our_spis.of(part.protocol), data)
        })
        .collect()
}

/// QM2's SA payload: the chosen proposal with every protocol of it (AH+ESP keeps both), each
/// with our SPI.
fn reply_sa<'a>(choice: &'a IpsecChoice, our_spis: &'a OurSpis) -> SecurityAssociation<'a> {
    SecurityAssociation {
        situation: SIT_IDENTITY_ONLY,
        proposals: choice
            .parts
            .iter()
            .map(|part| Proposal {
                number: choice.proposal_number,
                protocol: part.protocol,
                spi: our_spis.of(part.protocol),
                transforms: vec![part.transform.clone()],
            })
            .collect(),
    }
}

impl QuickModeSa<'_> {
    fn qm_header(&self, message_id: u32) -> isakmp::Header {
        wire::header(self.cookie_i, self.cookie_r, ExchangeType::QuickMode, message_id)
    }

    fn new_message_id(&self, ctx: &mut Ctx<'_>) -> u32 {
        loop {
            let mut id = [0u8; 4];
            ctx.rng.fill(&mut id);
            let id = u32::from_be_bytes(id);
            if id != 0
                && !self.quick_mode_seen.contains(id)
                && self.quick_modes.iter().all(|q| q.message_id != id)
            {
                return id;
            }
        }
    }

    /// Starts a quick mode for `acquire` on this established SA: QM1.
    pub(crate) fn start(&mut self, acquire: Acquire, ctx: &mut Ctx<'_>) -> Result<(), FailureReason> {
        let message_id = self.new_message_id(ctx);
        let Some(material) = self.keys else { return Ok(()) };
        self.quick_mode_seen.first_time(message_id);
        ctx.out.tally.started(crate::event::Exchange::QuickMode);
        let policy = &ctx.config.policies[acquire.policy];
        let udp = self.nat.encapsulation();
        let mut offered = policy_suites(policy);
        if udp.is_some() && offered.iter().any(|s| s.proposal.protocols.ah().is_none()) {
            // AH protects the outer addresses a NAT rewrites and has no UDP encapsulation
            // (RFC 3948 covers ESP only): behind a NAT offer only the suites without it.
            offered.retain(|s| s.proposal.protocols.ah().is_none());
        }
        let our_spis = OurSpis { esp: random_spi(ctx), ah: random_spi(ctx) };
        let ni = ctx.random_bytes(NONCE_LEN);
        let dh = match policy.pfs {
            Some(group) => Some(DhPrivate::generate(group, ctx.rng).map_err(FailureReason::from)?),
            None => None,
        };
        let sa = quick_mode_offer(&offered, &our_spis, udp);
        let mut rest = vec![Payload::SecurityAssociation(sa), Payload::Nonce(&ni)];
        if let Some(dh) = &dh {
            rest.push(Payload::KeyExchange(dh.public_value()));
        }
        let flow = &acquire.selector;
        rest.push(Payload::Identification(side_id(&flow.local, flow.protocol, flow.local_port)));
        rest.push(Payload::Identification(side_id(&flow.remote, flow.protocol, flow.remote_port)));
        if let Some(version) = udp {
            if offered.iter().any(|s| s.proposal.mode == EncapsulationMode::Transport) {
                // RFC 3947 §5.2: transport mode through a NAT needs the original addresses for
                // the checksum fix-up: ours (NAT-OAi) and the responder's as we see it.
                rest.extend(nat_t::original_addresses(version, self.local.ip(), self.remote.ip()));
            }
        }
        self.trace_hash_first(ctx, Direction::Sent, Step::Quick(1), message_id, &rest);
        let (mut chain, range) = wire::chain_with_hash_placeholder(material.hash.output_len(), &rest);
        let hash1 = material.skeyid_a.quick_mode_hash_1(MessageId(message_id), &chain[range.end..]);
        chain[range].copy_from_slice(&hash1);
        let mut iv = material.iv.exchange_chain(material.hash, MessageId(message_id));
        let qm1 =
            wire::encrypted(self.qm_header(message_id), PayloadType::Hash, chain, &material.key, &mut iv);
        let mut flight = Flight::new(ctx.now);
        flight.sent(&qm1, true, ctx.now, ctx.config);
        self.transmit(qm1, ctx);
        let wait = InitiatorWait { acquire, iv, ni, dh, our_spis, offered };
        self.quick_modes.reserve_exact(1); // Room for one, not four (issue 16: memory per SA).
        self.quick_modes.push(QuickMode {
            message_id,
            state: QmState::InitiatorWaitQm2(Box::new(wait)),
            flight,
            deadline: ctx.now + ctx.config.limits.exchange_timeout,
        });
        Ok(())
    }

    /// Handles a quick-mode message. On failure returns the reason and the state it was in;
    /// the quick mode is then forgotten.
    pub(crate) fn handle(
        &mut self,
        message: &Message<'_>,
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<(), (FailureReason, &'static str)> {
        let message_id = message.header.message_id.0;
        let index = self.quick_modes.iter().position(|q| q.message_id == message_id);
        let Some(index) = index else {
            if self.quick_mode_seen.contains(message_id) {
                // A quick mode that is over (its repeats are no longer answered): a replay.
                self.quick_mode_seen.dropped_replay();
                return Ok(());
            }
            if self.quick_modes.len() >= ctx.config.limits.max_quick_modes_per_sa {
                // Dropped before any work: a peer cannot make us hold unbounded state.
                return Ok(());
            }
            return match self.respond_quick_mode(message, digest, ctx) {
                Ok(()) => Ok(()),
                Err(Rejected::Authenticated(reason)) => Err((reason, "waiting for QM1")),
                Err(Rejected::Unauthenticated(reason)) => {
                    self.unauthenticated.dropped("waiting for QM1", reason, false);
                    Ok(())
                }
            };
        };
        let qm = &mut self.quick_modes[index];
        if let Some(repeat) = qm.flight.repeat(&digest) {
            if let Some(bytes) = repeat {
                ctx.out.transmits.push_back(crate::event::Transmit::isakmp(self.local, self.remote, bytes));
            }
            return Ok(());
        }
        let state_name = qm.state_name();
        if let Err(reason) = self.authentic(&self.quick_modes[index].state, message) {
            // Anyone's: dropped, and the quick mode waits for the peer's retransmission.
            self.unauthenticated.dropped(state_name, reason, false);
            return Ok(());
        }
        let qm = &mut self.quick_modes[index];
        let state = std::mem::replace(&mut qm.state, QmState::Done);
        let result = match state {
            QmState::InitiatorWaitQm2(wait) => self.initiator_finish(index, *wait, message, digest, ctx),
            QmState::ResponderWaitQm3(wait) => self.responder_finish(index, *wait, message, digest, ctx),
            QmState::Done => Ok(()),
        };
        if let Err(e) = result {
            self.quick_modes.remove(index);
            if self.quick_modes.is_empty() {
                *self.quick_modes = Vec::new(); // as quick_mode_end::release_if_idle
            }
            return Err((e, state_name));
        }
        Ok(())
    }

    /// Whether QM2 or QM3 for a quick mode in `state` decrypts under its IV and its HASH(2)
    /// or HASH(3) verifies, checked before the state is consumed: one that does not is
    /// dropped without ending the quick mode (RFC 2409 §5.5 gives a corrupted message no
    /// power over the exchange; the peer retransmits). The message is decrypted again by the
    /// handler, which costs a block cipher pass over a short message.
    fn authentic(&self, state: &QmState, message: &Message<'_>) -> Result<(), FailureReason> {
        let Some(material) = self.keys else { return Ok(()) };
        let (iv, hash_name) = match state {
            QmState::InitiatorWaitQm2(wait) => (&wait.iv, "HASH(2)"),
            QmState::ResponderWaitQm3(wait) => (&wait.iv, "HASH(3)"),
            QmState::Done => return Ok(()),
        };
        let message_id = MessageId(message.header.message_id.0);
        let ciphertext =
            message.encrypted_body().ok_or(FailureReason::Malformed(MalformedFailure::Undecryptable))?;
        let decrypted = wire::decrypt(ciphertext, &material.key, iv)?;
        let (payloads, chain_len) = wire::parse_chain(message.first_payload(), &decrypted.plaintext)?;
        let Some(Payload::Hash(hash)) = payloads.first() else {
            return Err(FailureReason::Malformed(MalformedFailure::MissingPayload(hash_name)));
        };
        let verified = match state {
            QmState::InitiatorWaitQm2(wait) => {
                let after = wire::after_hash(&decrypted.plaintext, hash.len(), chain_len);
                material.skeyid_a.verify_quick_mode_hash_2(message_id, &wait.ni, after, hash).is_ok()
            }
            QmState::ResponderWaitQm3(wait) => {
                material.skeyid_a.verify_quick_mode_hash_3(message_id, &wait.ni, &wait.nr, hash).is_ok()
            }
            QmState::Done => true,
        };
        if verified {
            Ok(())
        } else {
            Err(FailureReason::Authentication(AuthenticationFailure::InvalidHash { hash: hash_name }))
        }
    }

    fn initiator_finish(
        &mut self,
        index: usize,
        wait: InitiatorWait,
        message: &Message<'_>,
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<(), FailureReason> {
        let material = self.keys.ok_or(FailureReason::Malformed(MalformedFailure::Undecryptable))?;
        let message_id = message.header.message_id.0;
        let ciphertext =
            message.encrypted_body().ok_or(FailureReason::Malformed(MalformedFailure::Undecryptable))?;
        let decrypted = wire::decrypt(ciphertext, &material.key, &wait.iv)?;
        let (payloads, chain_len) = wire::parse_chain(message.first_payload(), &decrypted.plaintext)?;
        let Some(Payload::Hash(hash)) = payloads.first() else {
            return Err(FailureReason::Malformed(MalformedFailure::MissingPayload("HASH(2)")));
        };
        let after = wire::after_hash(&decrypted.plaintext, hash.len(), chain_len);
        let proof = material
            .skeyid_a
            .verify_quick_mode_hash_2(MessageId(message_id), &wait.ni, after, hash)
            .map_err(|_| {
                FailureReason::Authentication(AuthenticationFailure::InvalidHash { hash: "HASH(2)" })
            })?;
        self.peer_authenticated(true, ctx);
        self.trace(ctx, Direction::Received, Step::Quick(2), message_id, true, &payloads);
        let material = self.keys.ok_or(FailureReason::Malformed(MalformedFailure::Undecryptable))?;
        let reply = find_sa(&payloads).ok_or(FailureReason::missing_payload("SA"))?;
        let choice = choose_ipsec(reply, &wait.offered).map_err(FailureReason::from)?;
        let suite = crate::sa::lifetimes::adopt_responder_lifetime(choice.suite, &payloads);
        // RFC 2409 §5.5: the responder echoes the proxy identities; anything else is a flow we
        // did not ask for, and installing it would protect the wrong traffic.
        check_echoed(&identifications(&payloads), &wait.acquire.selector)?;
        let nr = *find_payload!(payloads, Nonce, "NONCE")?;
        let pfs_secret = match &wait.dh {
            Some(dh) => {
                let ke = find_payload!(payloads, KeyExchange, "KE")?;
                Some(dh.shared_secret(ke).map_err(FailureReason::from)?)
            }
            None => None,
        };
        let mut iv = wait.iv;
        iv.advance(decrypted.next_iv);
        let hash3 = material.skeyid_a.quick_mode_hash_3(MessageId(message_id), &wait.ni, nr);
        let mut chain = Vec::new();
        isakmp::emit_payload_chain(&[Payload::Hash(&hash3)], &mut chain);
        let qm3 =
            wire::encrypted(self.qm_header(message_id), PayloadType::Hash, chain, &material.key, &mut iv);
        let pair = self.install(
            wait.acquire.policy,
            wait.acquire.selector,
            &IpsecChoice { suite, ..choice },
            Keymat { pfs_secret: pfs_secret.as_ref(), ni: &wait.ni, nr, our_spis: &wait.our_spis },
            true,
            proof,
            ctx,
        )?;
        let qm = &mut self.quick_modes[index];
        qm.flight.received(digest);
        qm.flight.answer_every_repeat();
        qm.flight.sent(&qm3, false, ctx.now, ctx.config);
        qm.deadline = ctx.now + ctx.config.limits.exchange_timeout;
        self.trace(ctx, Direction::Sent, Step::Quick(3), message_id, true, &[Payload::Hash(&hash3)]);
        self.transmit(qm3, ctx);
        crate::sa::lifetimes::track(&mut self.lifetimes, wait.acquire.policy, &pair, ctx);
        ctx.out.events.push_back(Event::IpsecSaInstalled(Box::new(pair)));
        Ok(())
    }

    /// QM1 of a new quick mode: nothing in it is looked at before it decrypts and its HASH(1)
    /// verifies; until then a failure is [`Rejected::Unauthenticated`] (dropped, counted),
    /// afterwards [`Rejected::Authenticated`] (refused with a notify).
    fn respond_quick_mode(
        &mut self,
        message: &Message<'_>,
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<(), Rejected> {
        let Some(material) = self.keys else { return Ok(()) };
        let message_id = message.header.message_id.0;
        let ciphertext =
            message.encrypted_body().ok_or(FailureReason::Malformed(MalformedFailure::Undecryptable))?;
        let iv = material.iv.exchange_chain(material.hash, MessageId(message_id));
        let decrypted = wire::decrypt(ciphertext, &material.key, &iv)?;
        let (payloads, chain_len) = wire::parse_chain(message.first_payload(), &decrypted.plaintext)?;
        let Some(Payload::Hash(hash)) = payloads.first() else {
            return Err(FailureReason::Malformed(MalformedFailure::MissingPayload("HASH(1)")).into());
        };
        let after = wire::after_hash(&decrypted.plaintext, hash.len(), chain_len);
        // Nothing in QM1 is looked at before its HASH(1) checks out.
        let hash1_verified =
            material.skeyid_a.verify_quick_mode_hash_1(MessageId(message_id), after, hash).map_err(|_| {
                FailureReason::Authentication(AuthenticationFailure::InvalidHash { hash: "HASH(1)" })
            })?;
        // Authentic, so its ID is recorded: a copy after this quick mode is over is dropped.
        self.quick_mode_seen.first_time(message_id);
        ctx.out.tally.started(crate::event::Exchange::QuickMode);
        let opened = (message_id, digest, iv, decrypted.next_iv);
        self.answer_quick_mode(&payloads, opened, hash1_verified, ctx).map_err(Rejected::Authenticated)
    }

    /// Answers an authentic QM1 (`opened`: its message ID, digest, the exchange's IV and the
    /// IV to move to; `hash1`: its HASH(1) checked out) with QM2, and hands the pair's
    /// inbound SA to the data plane at once ([`Event::IpsecSaInbound`]).
    fn answer_quick_mode(
        &mut self,
        payloads: &[Payload<'_>],
        (message_id, digest, mut iv, next_iv): (u32, [u8; 32], ExchangeIvChain, NextIv),
        hash1: HashVerified,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), FailureReason> {
        self.peer_authenticated(true, ctx);
        self.trace(ctx, Direction::Received, Step::Quick(1), message_id, true, payloads);
        let Some(material) = self.keys else { return Ok(()) };
        let offer = find_sa(payloads).ok_or(FailureReason::missing_payload("SA"))?;
        let ni = find_payload!(payloads, Nonce, "NONCE")?.to_vec();
        let ids = identifications(payloads);
        let (remote, local) = (self.remote.ip(), self.local.ip());
        let describe = || describe_flow(&ids, remote, local);
        let selector = proposed_selector(&ids, remote, local)?;
        let policy = ctx
            .policies_of_peer(self.peer)
            .find(|(_, p)| p.selectors.iter().any(|s| covers(s, &selector)))
            .map(|(i, _)| i)
            .ok_or_else(|| {
                FailureReason::Identity(IdentityFailure::ProxyIdNotAllowed { proposed: describe() })
            })?;
        crate::hub::admit_flow(self, policy, &selector, ctx)?;
        let suites = policy_suites(&ctx.config.policies[policy]);
        let choice = choose_ipsec(offer, &suites).map_err(FailureReason::from)?;
        let (dh, pfs_secret) = responder_pfs(choice.suite.pfs, payloads, ctx)?;
        iv.advance(next_iv);
        let our_spis = OurSpis { esp: random_spi(ctx), ah: random_spi(ctx) };
        let nr = ctx.random_bytes(NONCE_LEN);
        let reply = reply_sa(&choice, &our_spis);
        let mut rest = vec![Payload::SecurityAssociation(reply), Payload::Nonce(&nr)];
        if let Some(dh) = &dh {
            rest.push(Payload::KeyExchange(dh.public_value()));
        }
        rest.extend(ids.iter().map(|id| Payload::Identification((*id).clone())));
        if let Some(version) = self.nat.encapsulation() {
            if choice.suite.proposal.mode == EncapsulationMode::Transport {
                // RFC 3947 §5.2: NAT-OAi is the initiator's address as we see it, NAT-OAr ours.
                rest.extend(nat_t::original_addresses(version, self.remote.ip(), self.local.ip()));
            }
        }
        let responder_lifetime = crate::sa::lifetimes::responder_lifetime_data(&choice);
        rest.extend(responder_lifetime_notifies(&choice, &our_spis, responder_lifetime.as_deref()));
        let (mut chain, range) = wire::chain_with_hash_placeholder(material.hash.output_len(), &rest);
        let hash2 = material.skeyid_a.quick_mode_hash_2(MessageId(message_id), &ni, &chain[range.end..]);
        chain[range].copy_from_slice(&hash2);
        let qm2 =
            wire::encrypted(self.qm_header(message_id), PayloadType::Hash, chain, &material.key, &mut iv);
        let mut flight = Flight::new(ctx.now);
        flight.received(digest);
        flight.sent(&qm2, true, ctx.now, ctx.config);
        self.trace_hash_first(ctx, Direction::Sent, Step::Quick(2), message_id, &rest);
        let wait = ResponderWait { policy, selector, iv, ni, nr, pfs_secret, our_spis, choice, spis: (0, 0) };
        let wait = self.install_inbound_first(wait, hash1, ctx)?;
        self.transmit(qm2, ctx);
        let deadline = ctx.now + ctx.config.limits.exchange_timeout;
        let state = QmState::ResponderWaitQm3(Box::new(wait));
        self.quick_modes.reserve_exact(1); // Room for one, not four (issue 16: memory per SA).
        self.quick_modes.push(QuickMode { message_id, state, flight, deadline });
        Ok(())
    }

    /// RFC 2409 §5.5 lets a responder use its inbound SA once it sends QM2, its outbound only
    /// after QM3; the initiator sends on the pair as soon as it has QM2, often before QM3
    /// reaches us. So the pair goes to the data plane with QM2 ([`Event::IpsecSaInbound`],
    /// outbound held) and with QM3 ([`Event::IpsecSaInstalled`]); an exchange that ends
    /// without QM3 takes it back ([`QuickMode::unconfirmed`]).
    fn install_inbound_first(
        &mut self,
        mut wait: ResponderWait,
        hash1: HashVerified,
        ctx: &mut Ctx<'_>,
    ) -> Result<ResponderWait, FailureReason> {
        let keymat = Keymat {
            pfs_secret: wait.pfs_secret.as_ref(),
            ni: &wait.ni,
            nr: &wait.nr,
            our_spis: &wait.our_spis,
        };
        let pair = self.install(wait.policy, wait.selector, &wait.choice, keymat, false, hash1, ctx)?;
        wait.spis = (pair.inbound.spi().0, pair.outbound.spi().0);
        ctx.out.events.push_back(Event::IpsecSaInbound(Box::new(pair)));
        Ok(wait)
    }

    fn responder_finish(
        &mut self,
        index: usize,
        wait: ResponderWait,
        message: &Message<'_>,
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<(), FailureReason> {
        let material = self.keys.ok_or(FailureReason::Malformed(MalformedFailure::Undecryptable))?;
        let message_id = message.header.message_id.0;
        let ciphertext =
            message.encrypted_body().ok_or(FailureReason::Malformed(MalformedFailure::Undecryptable))?;
        let decrypted = wire::decrypt(ciphertext, &material.key, &wait.iv)?;
        let (payloads, _) = wire::parse_chain(message.first_payload(), &decrypted.plaintext)?;
        let Some(Payload::Hash(hash)) = payloads.first() else {
            return Err(FailureReason::Malformed(MalformedFailure::MissingPayload("HASH(3)")));
        };
        let proof = material
            .skeyid_a
            .verify_quick_mode_hash_3(MessageId(message_id), &wait.ni, &wait.nr, hash)
            .map_err(|_| {
                FailureReason::Authentication(AuthenticationFailure::InvalidHash { hash: "HASH(3)" })
            })?;
        self.peer_authenticated(true, ctx);
        self.trace(ctx, Direction::Received, Step::Quick(3), message_id, true, &payloads);
        let pair = self.install(
            wait.policy,
            wait.selector,
            &wait.choice,
            Keymat {
                pfs_secret: wait.pfs_secret.as_ref(),
                ni: &wait.ni,
                nr: &wait.nr,
                our_spis: &wait.our_spis,
            },
            false,
            proof,
            ctx,
        )?;
        let qm = &mut self.quick_modes[index];
        qm.flight.received(digest);
        qm.flight.settle();
        qm.deadline = ctx.now + ctx.config.limits.exchange_timeout;
        crate::sa::lifetimes::track(&mut self.lifetimes, wait.policy, &pair, ctx);
        ctx.out.events.push_back(Event::IpsecSaInstalled(Box::new(pair)));
        Ok(())
    }

    /// Derives the keys of every SA of the pair (RFC 2409 §5.5: KEYMAT per protocol, with
    /// that protocol's number and SPIs) and describes the pair for the data plane.
    #[allow(clippy::too_many_arguments)] // every input names a distinct protocol value
    fn install(
        &self,
        policy: usize,
        selector: TrafficSelector,
        choice: &IpsecChoice,
        keymat: Keymat<'_>,
        initiator: bool,
        // The peer's last quick-mode HASH checked out: keys are derived only then.
        _proof: HashVerified,
        ctx: &Ctx<'_>,
    ) -> Result<IpsecSaPair, FailureReason> {
        let material = self.keys.ok_or(FailureReason::Malformed(MalformedFailure::Undecryptable))?;
        let suite = &choice.suite;
        let derive = |protocol: ProtocolId, lengths: EspKeyLengths| {
            let part = choice.part(protocol).ok_or(FailureReason::missing_payload("proposal"))?;
            let input = KeymatInput {
                pfs_shared_secret: keymat.pfs_secret.map(SecretBytes::expose),
                protocol: u8::from(protocol),
                ni_b: keymat.ni,
                nr_b: keymat.nr,
            };
            material
                .skeyid_d
                .ipsec_sa_keys(
                    &input,
                    Spi::from_bytes(*keymat.our_spis.of(protocol)),
                    Spi::from_bytes(part.peer_spi),
                    lengths,
                )
                .map_err(|_| FailureReason::Malformed(MalformedFailure::Undecryptable))
        };
        let legacy = ctx.config.sha2_256_truncation_96;
        let ah = match suite.proposal.protocols.ah() {
            Some(integrity) => {
                let keys = derive(ProtocolId::Ah, ah_key_lengths(integrity))?;
                let integrity = if legacy { integrity.legacy_96() } else { integrity };
                Some(AhSaKeys { inbound: keys.inbound, outbound: keys.outbound, integrity })
            }
            None => None,
        };
        // The keys the pair is known by: ESP's, or for AH alone AH's again.
        let keys = match suite.proposal.protocols.esp() {
            Some(_) => derive(ProtocolId::Esp, esp_key_lengths(suite))?,
            None => derive(
                ProtocolId::Ah,
                ah.as_ref().map_or(esp_key_lengths(suite), |a| ah_key_lengths(a.integrity)),
            )?,
        };
        Ok(IpsecSaPair {
            connection: self.connection,
            peer: self.peer_config(ctx.config).name.clone(),
            policy: ctx.config.policies[policy].id.clone(),
            local: self.local,
            remote: self.remote,
            selector,
            suite: if legacy { suite.with_legacy_96() } else { *suite },
            inbound: keys.inbound,
            outbound: keys.outbound,
            ah,
            initiator,
            // ESP in UDP when the chosen transform says so and the SA runs on 4500; a UDP mode
            // without a float (a confused peer) leaves plain ESP, which the peer's NAT-D allowed.
            udp_encapsulation: (self.nat.floated
                && crate::proposal::is_udp_encapsulated(choice.main_transform()))
            .then(|| UdpEncapsulation { local_port: self.local.port(), remote_port: self.remote.port() }),
        })
    }
}

/// What KEYMAT is derived from besides SKEYID_d, protocol and SPI (RFC 2409 §5.5).
struct Keymat<'a> {
    pfs_secret: Option<&'a SecretBytes>,
    ni: &'a [u8],
    nr: &'a [u8],
    our_spis: &'a OurSpis,
}
