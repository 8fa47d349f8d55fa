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
//! repeated QM2 with its stored QM3.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use crypto::key_schedule::{EspKeyLengths, ExchangeIvChain, HashVerified, KeymatInput, MessageId, Spi};
use crypto::{DhPrivate, SecretBytes};
use isakmp::{
    ExchangeType, Identification, Identity, Message, Payload, PayloadType, Proposal, ProtocolId,
    SecurityAssociation, SIT_IDENTITY_ONLY,
};

use crate::config::{EncapsulationMode, PolicyConfig, Subnet, TrafficSelector};
use crate::event::{Event, FailureReason, IpsecSaPair, UdpEncapsulation};
use crate::ike_sa::{find_sa, Ctx, Flight, IkeSa, Phase1, Phase1Material, NONCE_LEN};
use crate::nat_t;
use crate::proposal::{choose_ipsec, quick_mode_offer, IpsecChoice, IpsecSuite};
use crate::wire;

/// A flow that needs IPsec SAs: policy entry and the ACL rule it matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Acquire {
    /// Index of the policy in [`crate::Config::policies`].
    pub policy: usize,
    /// The rule's flow, from our side.
    pub selector: TrafficSelector,
}

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
    our_spi: [u8; 4],
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
    our_spi: [u8; 4],
    choice: IpsecChoice,
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

    /// The SPI we put in our proposal, while the exchange runs.
    pub(crate) fn our_spi(&self) -> Option<&[u8]> {
        match &self.state {
            QmState::InitiatorWaitQm2(w) => Some(&w.our_spi),
            QmState::ResponderWaitQm3(w) => Some(&w.our_spi),
            QmState::Done => None,
        }
    }

    /// The flow this exchange negotiates, when we initiated it and it is still running.
    pub(crate) fn acquire(&self) -> Option<&Acquire> {
        match &self.state {
            QmState::InitiatorWaitQm2(w) => Some(&w.acquire),
            _ => None,
        }
    }

    pub(crate) fn state_name(&self) -> &'static str {
        match self.state {
            QmState::InitiatorWaitQm2(_) => "waiting for QM2",
            QmState::ResponderWaitQm3(_) => "waiting for QM3",
            QmState::Done => "done",
        }
    }
}

fn material(phase1: &Phase1) -> Option<&Phase1Material> {
    match phase1 {
        Phase1::Established { material, .. } => Some(material),
        _ => None,
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

fn subnet_id(subnet: &Subnet, protocol: u8) -> Identification<'static> {
    let identity = if subnet.mask == Ipv4Addr::BROADCAST {
        Identity::Ipv4Addr(subnet.address)
    } else {
        Identity::Ipv4Subnet { address: subnet.address, mask: subnet.mask }
    };
    Identification { protocol, port: 0, identity }
}

/// The prefix a proxy identity names; ranges and IPv6 are not supported yet.
fn id_subnet(id: &Identification<'_>) -> Option<Subnet> {
    match id.identity {
        Identity::Ipv4Addr(address) => Some(Subnet { address, mask: Ipv4Addr::BROADCAST }),
        Identity::Ipv4Subnet { address, mask } => Some(Subnet { address, mask }),
        _ => None,
    }
}

fn host_subnet(address: IpAddr) -> Option<Subnet> {
    match address {
        IpAddr::V4(a) => Some(Subnet { address: a, mask: Ipv4Addr::BROADCAST }),
        IpAddr::V6(_) => None,
    }
}

fn key_lengths(suite: &IpsecSuite) -> EspKeyLengths {
    let crate::config::IpsecProtocols::Esp { encryption, integrity } = suite.proposal.protocols;
    let salt_len = if encryption.is_aead() { 4 } else { 0 };
    EspKeyLengths {
        encryption_key_len: encryption.key_len() - salt_len,
        salt_len,
        integrity_key_len: integrity.map_or(0, |i| i.key_len()),
    }
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
            .ok_or(FailureReason::MissingPayload($name))
    };
}

impl IkeSa {
    fn qm_header(&self, message_id: u32) -> isakmp::Header {
        wire::header(self.cookie_i, self.cookie_r, ExchangeType::QuickMode, message_id)
    }

    fn new_message_id(&self, ctx: &mut Ctx<'_>) -> u32 {
        loop {
            let mut id = [0u8; 4];
            ctx.rng.fill(&mut id);
            let id = u32::from_be_bytes(id);
            if id != 0 && self.quick_modes.iter().all(|q| q.message_id != id) {
                return id;
            }
        }
    }

    /// Starts a quick mode for `acquire` on this established SA: QM1.
    pub(crate) fn start_quick_mode(
        &mut self,
        acquire: Acquire,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), FailureReason> {
        let message_id = self.new_message_id(ctx);
        let Some(material) = material(&self.phase1) else { return Ok(()) };
        let policy = &ctx.config.policies[acquire.policy];
        let offered = policy_suites(policy);
        let our_spi = random_spi(ctx);
        let ni = ctx.random_bytes(NONCE_LEN);
        let dh = match policy.pfs {
            Some(group) => {
                Some(DhPrivate::generate(group, ctx.rng).map_err(FailureReason::InvalidKeyExchange)?)
            }
            None => None,
        };
        let udp = self.nat.encapsulation();
        let sa = quick_mode_offer(&offered, &our_spi, udp);
        let mut rest = vec![Payload::SecurityAssociation(sa), Payload::Nonce(&ni)];
        if let Some(dh) = &dh {
            rest.push(Payload::KeyExchange(dh.public_value()));
        }
        rest.push(Payload::Identification(subnet_id(&acquire.selector.local, acquire.selector.protocol)));
        rest.push(Payload::Identification(subnet_id(&acquire.selector.remote, acquire.selector.protocol)));
        if let Some(version) = udp {
            if offered.iter().any(|s| s.proposal.mode == EncapsulationMode::Transport) {
                // RFC 3947 §5.2: transport mode through a NAT needs the original addresses for
                // the checksum fix-up: ours (NAT-OAi) and the responder's as we see it.
                rest.extend(nat_t::original_addresses(version, self.local.ip(), self.remote.ip()));
            }
        }
        let hash_len = material.hash.output_len();
        let (mut chain, range) = wire::chain_with_hash_placeholder(hash_len, &rest);
        let hash1 = material.skeyid_a.quick_mode_hash_1(MessageId(message_id), &chain[range.end..]);
        chain[range].copy_from_slice(&hash1);
        let mut iv = material.iv.exchange_chain(material.hash, MessageId(message_id));
        let qm1 =
            wire::encrypted(self.qm_header(message_id), PayloadType::Hash, chain, &material.key, &mut iv);
        let mut flight = Flight::new(ctx.now);
        flight.sent(&qm1, true, ctx.now, ctx.config);
        self.transmit(qm1, ctx);
        self.quick_modes.push(QuickMode {
            message_id,
            state: QmState::InitiatorWaitQm2(Box::new(InitiatorWait {
                acquire,
                iv,
                ni,
                dh,
                our_spi,
                offered,
            })),
            flight,
            deadline: ctx.now + ctx.config.limits.exchange_timeout,
        });
        Ok(())
    }

    /// Handles a quick-mode message. On failure returns the reason and the state it was in;
    /// the quick mode is then forgotten.
    pub(crate) fn handle_quick_mode(
        &mut self,
        message: &Message<'_>,
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<(), (FailureReason, &'static str)> {
        let message_id = message.header.message_id.0;
        let index = self.quick_modes.iter().position(|q| q.message_id == message_id);
        let Some(index) = index else {
            if self.quick_modes.len() >= ctx.config.limits.max_quick_modes_per_sa {
                // Dropped before any work: a peer cannot make us hold unbounded state.
                return Ok(());
            }
            return self.respond_quick_mode(message, digest, ctx).map_err(|e| (e, "waiting for QM1"));
        };
        let qm = &mut self.quick_modes[index];
        if let Some(repeat) = qm.flight.repeat(&digest) {
            if let Some(bytes) = repeat {
                ctx.out.transmits.push_back(crate::event::Transmit::isakmp(self.local, self.remote, bytes));
            }
            return Ok(());
        }
        let state_name = qm.state_name();
        let state = std::mem::replace(&mut qm.state, QmState::Done);
        let result = match state {
            QmState::InitiatorWaitQm2(wait) => self.initiator_finish(index, *wait, message, digest, ctx),
            QmState::ResponderWaitQm3(wait) => self.responder_finish(index, *wait, message, digest, ctx),
            QmState::Done => Ok(()),
        };
        if let Err(e) = result {
            self.quick_modes.remove(index);
            return Err((e, state_name));
        }
        Ok(())
    }

    fn initiator_finish(
        &mut self,
        index: usize,
        wait: InitiatorWait,
        message: &Message<'_>,
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<(), FailureReason> {
        let material = material(&self.phase1).ok_or(FailureReason::Undecryptable)?;
        let message_id = message.header.message_id.0;
        let ciphertext = message.encrypted_body().ok_or(FailureReason::Undecryptable)?;
        let decrypted = wire::decrypt(ciphertext, &material.key, &wait.iv)?;
        let (payloads, chain_len) = wire::parse_chain(message.first_payload(), &decrypted.plaintext)?;
        let Some(Payload::Hash(hash)) = payloads.first() else {
            return Err(FailureReason::MissingPayload("HASH(2)"));
        };
        let after = wire::after_hash(&decrypted.plaintext, hash.len(), chain_len);
        let proof = material
            .skeyid_a
            .verify_quick_mode_hash_2(MessageId(message_id), &wait.ni, after, hash)
            .map_err(|_| FailureReason::InvalidHash { hash: "HASH(2)" })?;
        self.peer_authenticated(ctx);
        let material = self::material(&self.phase1).ok_or(FailureReason::Undecryptable)?;
        let reply = find_sa(&payloads).ok_or(FailureReason::MissingPayload("SA"))?;
        let choice = choose_ipsec(reply, &wait.offered).map_err(FailureReason::IpsecProposalMismatch)?;
        let suite = crate::lifetime::adopt_responder_lifetime(choice.suite, &payloads);
        let nr = *find_payload!(payloads, Nonce, "NONCE")?;
        let pfs_secret = match &wait.dh {
            Some(dh) => {
                let ke = find_payload!(payloads, KeyExchange, "KE")?;
                Some(dh.shared_secret(ke).map_err(FailureReason::InvalidKeyExchange)?)
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
            &suite,
            &choice.transform,
            KeymatInput {
                pfs_shared_secret: pfs_secret.as_ref().map(SecretBytes::expose),
                protocol: u8::from(ProtocolId::Esp),
                ni_b: &wait.ni,
                nr_b: nr,
            },
            wait.our_spi,
            choice.peer_spi,
            true,
            proof,
            ctx,
        )?;
        let qm = &mut self.quick_modes[index];
        qm.flight.received(digest);
        qm.flight.answer_every_repeat();
        qm.flight.sent(&qm3, false, ctx.now, ctx.config);
        qm.deadline = ctx.now + ctx.config.limits.exchange_timeout;
        self.transmit(qm3, ctx);
        crate::lifetime::track(self, wait.acquire.policy, &pair, ctx);
        ctx.out.events.push_back(Event::IpsecSaInstalled(Box::new(pair)));
        Ok(())
    }

    fn respond_quick_mode(
        &mut self,
        message: &Message<'_>,
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<(), FailureReason> {
        let Some(material) = material(&self.phase1) else { return Ok(()) };
        let message_id = message.header.message_id.0;
        let ciphertext = message.encrypted_body().ok_or(FailureReason::Undecryptable)?;
        let mut iv = material.iv.exchange_chain(material.hash, MessageId(message_id));
        let decrypted = wire::decrypt(ciphertext, &material.key, &iv)?;
        let (payloads, chain_len) = wire::parse_chain(message.first_payload(), &decrypted.plaintext)?;
        let Some(Payload::Hash(hash)) = payloads.first() else {
            return Err(FailureReason::MissingPayload("HASH(1)"));
        };
        let after = wire::after_hash(&decrypted.plaintext, hash.len(), chain_len);
        // Nothing in QM1 is looked at before its HASH(1) checks out.
        let _hash1_verified = material
            .skeyid_a
            .verify_quick_mode_hash_1(MessageId(message_id), after, hash)
            .map_err(|_| FailureReason::InvalidHash { hash: "HASH(1)" })?;
        self.peer_authenticated(ctx);
        let Some(material) = self::material(&self.phase1) else { return Ok(()) };
        let offer = find_sa(&payloads).ok_or(FailureReason::MissingPayload("SA"))?;
        let ni = find_payload!(payloads, Nonce, "NONCE")?.to_vec();
        let ids: Vec<&Identification<'_>> = payloads
            .iter()
            .filter_map(|p| match p {
                Payload::Identification(id) => Some(id),
                _ => None,
            })
            .collect();
        // Without proxy identities the flow is between the two gateways (RFC 2409 §5.5).
        let (peer_side, our_side, protocol) = match ids.as_slice() {
            [] => (host_subnet(self.remote.ip()), host_subnet(self.local.ip()), 0),
            [ci, cr] => (id_subnet(ci), id_subnet(cr), ci.protocol),
            _ => return Err(FailureReason::MissingPayload("IDci and IDcr (exactly two ID payloads)")),
        };
        let describe = || match ids.as_slice() {
            [ci, cr] => format!(
                "{} -> {}",
                crate::ike_sa::describe_identity(&ci.identity),
                crate::ike_sa::describe_identity(&cr.identity)
            ),
            _ => format!("{} -> {}", self.remote.ip(), self.local.ip()),
        };
        let (Some(peer_side), Some(our_side)) = (peer_side, our_side) else {
            return Err(FailureReason::ProxyIdNotAllowed { proposed: describe() });
        };
        let selector = TrafficSelector { protocol, local: our_side, remote: peer_side };
        let policy = ctx
            .policies_of_peer(self.peer)
            .find(|(_, p)| p.selectors.iter().any(|s| covers(s, &selector)))
            .map(|(i, _)| i)
            .ok_or_else(|| FailureReason::ProxyIdNotAllowed { proposed: describe() })?;
        let suites = policy_suites(&ctx.config.policies[policy]);
        let choice = choose_ipsec(offer, &suites).map_err(FailureReason::IpsecProposalMismatch)?;
        let (dh, pfs_secret) = match choice.suite.pfs {
            Some(group) => {
                let ke = find_payload!(payloads, KeyExchange, "KE")?;
                let dh = DhPrivate::generate(group, ctx.rng).map_err(FailureReason::InvalidKeyExchange)?;
                let secret = dh.shared_secret(ke).map_err(FailureReason::InvalidKeyExchange)?;
                (Some(dh), Some(secret))
            }
            None => (None, None),
        };
        iv.advance(decrypted.next_iv);
        let our_spi = random_spi(ctx);
        let nr = ctx.random_bytes(NONCE_LEN);
        let reply = SecurityAssociation {
            situation: SIT_IDENTITY_ONLY,
            proposals: vec![Proposal {
                number: choice.proposal_number,
                protocol: ProtocolId::Esp,
                spi: &our_spi,
                transforms: vec![choice.transform.clone()],
            }],
        };
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
        let responder_lifetime = crate::lifetime::responder_lifetime_data(&choice);
        if let Some(data) = &responder_lifetime {
            rest.push(crate::lifetime::responder_lifetime_notify(&our_spi, data));
        }
        let (mut chain, range) = wire::chain_with_hash_placeholder(material.hash.output_len(), &rest);
        let hash2 = material.skeyid_a.quick_mode_hash_2(MessageId(message_id), &ni, &chain[range.end..]);
        chain[range].copy_from_slice(&hash2);
        let qm2 =
            wire::encrypted(self.qm_header(message_id), PayloadType::Hash, chain, &material.key, &mut iv);
        let mut flight = Flight::new(ctx.now);
        flight.received(digest);
        flight.sent(&qm2, true, ctx.now, ctx.config);
        self.transmit(qm2, ctx);
        self.quick_modes.push(QuickMode {
            message_id,
            state: QmState::ResponderWaitQm3(Box::new(ResponderWait {
                policy,
                selector,
                iv,
                ni,
                nr,
                pfs_secret,
                our_spi,
                choice,
            })),
            flight,
            deadline: ctx.now + ctx.config.limits.exchange_timeout,
        });
        Ok(())
    }

    fn responder_finish(
        &mut self,
        index: usize,
        wait: ResponderWait,
        message: &Message<'_>,
        digest: [u8; 32],
        ctx: &mut Ctx<'_>,
    ) -> Result<(), FailureReason> {
        let material = material(&self.phase1).ok_or(FailureReason::Undecryptable)?;
        let message_id = message.header.message_id.0;
        let ciphertext = message.encrypted_body().ok_or(FailureReason::Undecryptable)?;
        let decrypted = wire::decrypt(ciphertext, &material.key, &wait.iv)?;
        let (payloads, _) = wire::parse_chain(message.first_payload(), &decrypted.plaintext)?;
        let Some(Payload::Hash(hash)) = payloads.first() else {
            return Err(FailureReason::MissingPayload("HASH(3)"));
        };
        let proof = material
            .skeyid_a
            .verify_quick_mode_hash_3(MessageId(message_id), &wait.ni, &wait.nr, hash)
            .map_err(|_| FailureReason::InvalidHash { hash: "HASH(3)" })?;
        self.peer_authenticated(ctx);
        let pair = self.install(
            wait.policy,
            wait.selector,
            &wait.choice.suite,
            &wait.choice.transform,
            KeymatInput {
                pfs_shared_secret: wait.pfs_secret.as_ref().map(SecretBytes::expose),
                protocol: u8::from(ProtocolId::Esp),
                ni_b: &wait.ni,
                nr_b: &wait.nr,
            },
            wait.our_spi,
            wait.choice.peer_spi,
            false,
            proof,
            ctx,
        )?;
        let qm = &mut self.quick_modes[index];
        qm.flight.received(digest);
        qm.flight.settle();
        qm.deadline = ctx.now + ctx.config.limits.exchange_timeout;
        crate::lifetime::track(self, wait.policy, &pair, ctx);
        ctx.out.events.push_back(Event::IpsecSaInstalled(Box::new(pair)));
        Ok(())
    }

    /// Derives both SAs' keys (RFC 2409 §5.5) and describes the pair for the data plane.
    #[allow(clippy::too_many_arguments)] // every input names a distinct protocol value
    fn install(
        &self,
        policy: usize,
        selector: TrafficSelector,
        suite: &IpsecSuite,
        transform: &isakmp::Transform<'_>,
        input: KeymatInput<'_>,
        our_spi: [u8; 4],
        peer_spi: [u8; 4],
        initiator: bool,
        // The peer's last quick-mode HASH checked out: keys are derived only then.
        _proof: HashVerified,
        ctx: &Ctx<'_>,
    ) -> Result<IpsecSaPair, FailureReason> {
        let material = material(&self.phase1).ok_or(FailureReason::Undecryptable)?;
        let keys = material
            .skeyid_d
            .ipsec_sa_keys(&input, Spi::from_bytes(our_spi), Spi::from_bytes(peer_spi), key_lengths(suite))
            .map_err(|_| FailureReason::Undecryptable)?;
        Ok(IpsecSaPair {
            connection: self.connection,
            peer: self.peer_config(ctx.config).name.clone(),
            policy: ctx.config.policies[policy].id.clone(),
            local: self.local,
            remote: self.remote,
            selector,
            suite: *suite,
            inbound: keys.inbound,
            outbound: keys.outbound,
            initiator,
            // ESP in UDP when the chosen transform says so and the SA runs on 4500; a UDP mode
            // without a float (a confused peer) leaves plain ESP, which the peer's NAT-D allowed.
            udp_encapsulation: (self.nat.floated && crate::proposal::is_udp_encapsulated(transform))
                .then(|| UdpEncapsulation { local_port: self.local.port(), remote_port: self.remote.port() }),
        })
    }
}

/// True when a rule of ours (`rule`, from our side) covers the flow the peer proposed: the
/// proposal mirrors the rule or lies inside it (the USG rule for templates and responders).
fn covers(rule: &TrafficSelector, proposed: &TrafficSelector) -> bool {
    (rule.protocol == 0 || rule.protocol == proposed.protocol)
        && rule.local.contains(&proposed.local)
        && rule.remote.contains(&proposed.remote)
}
