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
use std::time::{Duration, Instant};

use crypto::key_schedule::{AuthHashInput, NextIv, Phase1CipherKey, Phase1IvChain, Skeyid, SkeyidA, SkeyidD};
use crypto::{DhPrivate, HashAlgorithm, SecretBytes, SecureRandom};
use isakmp::{
    Cookie, ExchangeType, Identification, Identity, Message, Payload, PayloadType, RawPayloads,
    SecurityAssociation,
};

use crate::aggressive_mode::AggressiveState;
use crate::config::{Config, DpdConfig, ExchangeMode, IdentityConfig, IkeProposal, PeerConfig, PolicyConfig};
use crate::dpd::DpdState;
use crate::event::{ConnectionId, Event, Exchange, Failure, FailureReason, Phase1KeyLog, Transmit};
use crate::lifetime::Lifetimes;
use crate::nat_t::{self, NatState};
use crate::proposal::{accept_phase1_reply, choose_phase1, phase1_offer};
use crate::quick_mode::{Acquire, QuickMode};
use crate::signature_auth::{self, PeerProof};
use crate::trace::{traced, Direction, Step};
use crate::vendor::{self, PeerCapabilities};
use crate::wire;

/// Length of the nonces we send (strongSwan sends 32 bytes; RFC 2409 asks for 8 to 256).
pub(crate) const NONCE_LEN: usize = 32;

/// What an exchange handler needs from the engine.
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a Config,
    /// Indices into `config.policies` per peer index, in policy order (the engine builds it
    /// once, so a quick mode does not scan every policy).
    pub(crate) policies_by_peer: &'a [Vec<usize>],
    pub(crate) rng: &'a mut dyn SecureRandom,
    pub(crate) now: Instant,
    pub(crate) out: &'a mut Output,
    /// `(local, remote)` of the datagram being handled, if one is: NAT detection and the
    /// NAT-T float compare them with the SA's addresses.
    pub(crate) received: Option<(SocketAddr, SocketAddr)>,
    /// Wall-clock time (seconds since the Unix epoch) for certificate validity, when the
    /// driver gave the engine a clock ([`crate::Engine::set_wall_clock`]).
    pub(crate) unix_time: Option<u64>,
}

impl Ctx<'_> {
    /// The policies that use peer `peer`, in policy order: `Config::policies_of_peer`, indexed.
    pub(crate) fn policies_of_peer(&self, peer: usize) -> impl Iterator<Item = (usize, &PolicyConfig)> + '_ {
        let indices = self.policies_by_peer.get(peer).map_or(&[][..], Vec::as_slice);
        indices.iter().filter_map(|&i| self.config.policies.get(i).map(|p| (i, p)))
    }

    pub(crate) fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        self.rng.fill(&mut bytes);
        bytes
    }

    pub(crate) fn random_cookie(&mut self) -> Cookie {
        let mut cookie = [0u8; 8];
        while cookie == [0; 8] {
            self.rng.fill(&mut cookie);
        }
        Cookie(cookie)
    }
}

/// Datagrams and events produced while handling one input, drained by `poll_*`.
#[derive(Debug, Default)]
pub(crate) struct Output {
    pub(crate) transmits: std::collections::VecDeque<Transmit>,
    pub(crate) events: std::collections::VecDeque<Event>,
    /// The driver asked for a key log ([`crate::Engine::set_key_log`]): only then do events
    /// carry phase-1 keys. Kept here, next to the events it governs, so every handler sees it
    /// through `Ctx::out` without another field to thread through.
    pub(crate) key_log: bool,
    /// The driver asked for message traces ([`crate::Engine::set_message_trace`]).
    pub(crate) trace: bool,
    /// Traced messages, drained by [`crate::Engine::poll_message_trace`].
    pub(crate) traces: std::collections::VecDeque<crate::trace::MessageTrace>,
}

/// Which side of the phase-1 exchange (main or aggressive mode) we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the first message (MM1 / AM1).
    Initiator,
    /// We answered it.
    Responder,
}

/// The retransmission and duplicate-detection state of one exchange (phase 1 or one quick
/// mode): the last message we sent, when to send it again, and the digest of the last message
/// we accepted, so that a repeat of it is answered from memory.
#[derive(Debug)]
pub(crate) struct Flight {
    last_sent: Option<Vec<u8>>,
    last_received: Option<[u8; 32]>,
    retransmit_at: Option<Instant>,
    retransmissions: u32,
    duplicate_replies: u32,
    /// Whether repeats are answered only [`MAX_DUPLICATE_REPLIES`] times (see
    /// [`Flight::answer_every_repeat`]).
    bounded_repeats: bool,
    started: Instant,
}

/// A responder answers repeats of one request at most this many times (no amplification).
const MAX_DUPLICATE_REPLIES: u32 = 3;

/// What a retransmission timer decided.
pub(crate) enum FlightTimeout {
    /// Nothing due.
    Nothing,
    /// Send this again.
    Resend(Vec<u8>),
    /// Every retransmission is spent.
    GiveUp { retransmissions: u32, waited: Duration },
}

impl Flight {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            last_sent: None,
            last_received: None,
            retransmit_at: None,
            retransmissions: 0,
            duplicate_replies: 0,
            bounded_repeats: true,
            started: now,
        }
    }

    /// Records a message we send. A request (`expect_reply`) is retransmitted until answered.
    pub(crate) fn sent(&mut self, bytes: &[u8], expect_reply: bool, now: Instant, config: &Config) {
        self.last_sent = Some(bytes.to_vec());
        self.retransmissions = 0;
        self.duplicate_replies = 0;
        self.retransmit_at = expect_reply.then(|| now + config.limits.retransmit_initial);
    }

    /// Records an accepted message (by digest), which also answers our outstanding request.
    pub(crate) fn received(&mut self, digest: [u8; 32]) {
        self.last_received = Some(digest);
        self.retransmit_at = None;
    }

    /// If `digest` is the message accepted last, the stored reply to send again (at most a few
    /// times); `Some(None)` when it is a repeat that gets no answer.
    pub(crate) fn repeat(&mut self, digest: &[u8; 32]) -> Option<Option<Vec<u8>>> {
        if self.last_received.as_ref() != Some(digest) {
            return None;
        }
        if self.bounded_repeats && self.duplicate_replies >= MAX_DUPLICATE_REPLIES {
            return Some(None);
        }
        self.duplicate_replies += 1;
        Some(self.last_sent.clone())
    }

    /// The last message we sent, for a state that decides itself when to send it again.
    pub(crate) fn last_sent(&self) -> Option<&[u8]> {
        self.last_sent.as_deref()
    }

    /// Records the last message of an exchange, which needs no answer (AM3): repeats of it
    /// are then dropped instead of drawing our previous message again.
    pub(crate) fn finished(&mut self, digest: [u8; 32]) {
        self.received(digest);
        self.last_sent = None;
    }

    /// Answers every repeat of the last accepted message, for an initiator's last message (AM3,
    /// QM3). The bound exists so an unauthenticated first message cannot draw replies without
    /// end; here the repeated message was authenticated when first accepted, the reply goes to
    /// the peer's fixed address (a replay reflects one datagram for one, no amplification),
    /// and the peer retransmits until it gets our answer: with a bound, a lossy path can
    /// leave the peer without it while we already use the SA.
    pub(crate) fn answer_every_repeat(&mut self) {
        self.bounded_repeats = false;
    }

    /// Stops retransmitting (the exchange is over on our side).
    pub(crate) fn settle(&mut self) {
        self.retransmit_at = None;
    }

    pub(crate) fn retransmit_at(&self) -> Option<Instant> {
        self.retransmit_at
    }

    /// Runs the retransmission timer: exponential back-off, then give up.
    pub(crate) fn on_timeout(&mut self, now: Instant, config: &Config) -> FlightTimeout {
        let Some(at) = self.retransmit_at else { return FlightTimeout::Nothing };
        if now < at {
            return FlightTimeout::Nothing;
        }
        if self.retransmissions >= config.limits.retransmit_count {
            self.retransmit_at = None;
            return FlightTimeout::GiveUp {
                retransmissions: self.retransmissions,
                waited: now.saturating_duration_since(self.started),
            };
        }
        self.retransmissions += 1;
        let backoff = config.limits.retransmit_initial * 2u32.saturating_pow(self.retransmissions);
        self.retransmit_at = Some(now + backoff);
        match &self.last_sent {
            Some(bytes) => FlightTimeout::Resend(bytes.clone()),
            None => FlightTimeout::Nothing,
        }
    }
}

/// Keys and IVs of an IKE SA once its Diffie-Hellman exchange is done.
pub(crate) struct Phase1Material {
    pub(crate) hash: HashAlgorithm,
    pub(crate) skeyid: Skeyid,
    pub(crate) skeyid_d: SkeyidD,
    pub(crate) skeyid_a: SkeyidA,
    pub(crate) key: Phase1CipherKey,
    pub(crate) iv: Phase1IvChain,
    pub(crate) g_xi: Vec<u8>,
    pub(crate) g_xr: Vec<u8>,
}

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

/// One IKE SA.
pub(crate) struct IkeSa {
    pub(crate) connection: ConnectionId,
    pub(crate) role: Role,
    pub(crate) peer: usize,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) cookie_i: Cookie,
    pub(crate) cookie_r: Cookie,
    pub(crate) phase1: Phase1,
    /// Main or aggressive mode: which exchange phase 1 was (for headers and failure reports).
    pub(crate) mode: ExchangeMode,
    pub(crate) flight: Flight,
    /// Abandon the phase-1 exchange at this time if it has not completed.
    pub(crate) phase1_deadline: Instant,
    pub(crate) established_at: Option<Instant>,
    pub(crate) quick_modes: Vec<QuickMode>,
    /// Flows that asked for SAs while phase 1 was running.
    pub(crate) pending: Vec<Acquire>,
    /// Renewal of this SA and the IPsec SA pairs it manages (`lifetime.rs`).
    pub(crate) lifetimes: Lifetimes,
    /// When phase 1 began: INITIAL-CONTACT clears only SAs established before it, so two
    /// gateways negotiating at the same moment do not clear each other's new SAs.
    pub(crate) started_at: Instant,
    /// The peer's address when phase 1 began (a responder's first-message key in the engine;
    /// `remote` may move with NAT-T).
    pub(crate) initial_remote: SocketAddr,
    /// What the peer announced in its Vendor IDs.
    pub(crate) peer_capabilities: PeerCapabilities,
    /// NAT-T negotiation and float.
    pub(crate) nat: NatState,
    /// Dead peer detection.
    pub(crate) dpd: DpdState,
    /// The DPD settings in force once established: configured, and the peer announced DPD.
    pub(crate) dpd_config: Option<DpdConfig>,
    /// Send INITIAL-CONTACT in MM5: no other IKE SA with this peer existed when we started.
    pub(crate) send_initial_contact: bool,
    /// The peer sent INITIAL-CONTACT (authenticated); the engine removes older SAs with it.
    pub(crate) initial_contact_received: bool,
    /// Recent informational message IDs, against replays (they feed DPD and NAT-T moves).
    pub(crate) informational_seen: crate::informational::SeenMessageIds,
    /// The peer sent a Certificate Request (our CERT goes out under `send-cert when asked`).
    pub(crate) peer_asked_certificate: bool,
    /// The peer's verified certificate, once signature authentication succeeded.
    pub(crate) peer_certificate: Option<crypto::CertificateSummary>,
    /// The phase-1 message being reassembled from fragments (`fragmentation.rs`).
    pub(crate) reassembly: crate::fragmentation::Reassembly,
    /// The fragment ID of our next fragmented message.
    pub(crate) next_fragment_id: std::cell::Cell<u16>,
    /// The identity the peer presented and authenticated (its ID payload), for `display ike
    /// sa verbose`: without a configured `remote-id` any identity is accepted, so only this
    /// says who the peer claimed to be.
    pub(crate) remote_identity: Option<PeerIdentity>,
}

/// A phase-1 identity as the peer presented it, in display form (`display ike sa verbose`'s
/// `Remote ID type` and `Remote ID`). Names are printed lossily and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// `IP`, `FQDN`, `USER-FQDN`, `IP-SUBNET`, `IP-RANGE`, `DN`, `KEY-ID` or the ID type number.
    pub kind: String,
    /// The identity itself.
    pub value: String,
}

impl PeerIdentity {
    /// The display form of `identity`.
    pub(crate) fn of(identity: &Identity<'_>) -> Self {
        let text = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(255)]).into_owned();
        let (kind, value) = match identity {
            Identity::Ipv4Addr(a) => ("IP".to_owned(), a.to_string()),
            Identity::Ipv6Addr(a) => ("IP".to_owned(), a.to_string()),
            Identity::Fqdn(n) => ("FQDN".to_owned(), text(n)),
            Identity::UserFqdn(n) => ("USER-FQDN".to_owned(), text(n)),
            Identity::Ipv4Subnet { address, mask } => ("IP-SUBNET".to_owned(), format!("{address}/{mask}")),
            Identity::Ipv4Range { start, end } => ("IP-RANGE".to_owned(), format!("{start}-{end}")),
            Identity::DerAsn1Dn(der) => (
                "DN".to_owned(),
                crypto::x509::dn_der_to_text(der).unwrap_or_else(|| "(unparseable)".to_owned()),
            ),
            other => (format!("{:?}", other.id_type()), String::new()),
        };
        Self { kind, value }
    }
}

impl IkeSa {
    /// Our cookie: the one we chose, by which the engine finds this SA.
    pub(crate) fn our_cookie(&self) -> Cookie {
        match self.role {
            Role::Initiator => self.cookie_i,
            Role::Responder => self.cookie_r,
        }
    }

    /// The negotiated phase-1 suite, once established.
    pub(crate) fn suite(&self) -> Option<IkeProposal> {
        match &self.phase1 {
            Phase1::Established { suite, .. } => Some(*suite),
            _ => None,
        }
    }

    /// The phase-1 exchange, for failure reports.
    pub(crate) fn phase1_exchange(&self) -> Exchange {
        match self.mode {
            ExchangeMode::Main => Exchange::MainMode,
            ExchangeMode::Aggressive => Exchange::AggressiveMode,
        }
    }

    pub(crate) fn is_established(&self) -> bool {
        matches!(self.phase1, Phase1::Established { .. })
    }

    pub(crate) fn peer_config<'c>(&self, config: &'c Config) -> &'c PeerConfig {
        &config.peers[self.peer]
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

    /// A new SA in a placeholder state that the caller replaces at once; every exchange that
    /// starts an IKE SA (main mode here, aggressive mode) builds it this way, so new fields
    /// get their initial value in one place.
    pub(crate) fn new(
        connection: ConnectionId,
        role: Role,
        peer: usize,
        (local, remote): (SocketAddr, SocketAddr),
        (cookie_i, cookie_r): (Cookie, Cookie),
        ctx: &mut Ctx<'_>,
    ) -> Self {
        let mut sequence = [0u8; 4];
        ctx.rng.fill(&mut sequence);
        Self {
            connection,
            role,
            peer,
            local,
            remote,
            cookie_i,
            cookie_r,
            phase1: Phase1::Failed,
            mode: ExchangeMode::Main,
            flight: Flight::new(ctx.now),
            phase1_deadline: ctx.now + ctx.config.limits.exchange_timeout,
            established_at: None,
            quick_modes: Vec::new(),
            pending: Vec::new(),
            lifetimes: Lifetimes::default(),
            started_at: ctx.now,
            initial_remote: remote,
            peer_capabilities: PeerCapabilities::default(),
            nat: NatState::default(),
            dpd: DpdState::new(ctx.now, u32::from_be_bytes(sequence)),
            dpd_config: None,
            send_initial_contact: false,
            initial_contact_received: false,
            informational_seen: crate::informational::SeenMessageIds::default(),
            peer_asked_certificate: false,
            peer_certificate: None,
            reassembly: crate::fragmentation::Reassembly::default(),
            next_fragment_id: std::cell::Cell::new(1),
            remote_identity: None,
        }
    }

    /// A message from the peer passed its authentication (HASH_I/R, HASH(1..3), informational
    /// HASH): the peer is alive, and with NAT-T its current address is where the message came
    /// from (RFC 3947 §4-5: follow a peer that floats to 4500 even if we saw no NAT, and a NAT
    /// that changes its port).
    pub(crate) fn peer_authenticated(&mut self, ctx: &mut Ctx<'_>) {
        self.dpd.heard(ctx.now);
        self.follow_peer(ctx);
    }

    /// Sends `bytes` to the peer and remembers them for retransmission or repeats.
    pub(crate) fn send(&mut self, bytes: Vec<u8>, expect_reply: bool, ctx: &mut Ctx<'_>) {
        self.flight.sent(&bytes, expect_reply, ctx.now, ctx.config);
        self.transmit(bytes, ctx);
    }

    /// Sends `bytes` without touching the phase-1 flight (quick modes keep their own). A
    /// phase-1 message larger than the fragment size goes out in fragments when both sides
    /// announced IKE fragmentation; retransmissions are fragmented again, under a new ID.
    pub(crate) fn transmit(&self, payload: Vec<u8>, ctx: &mut Ctx<'_>) {
        if self.fragments_to_peer(ctx.config) {
            let id = self.next_fragment_id.get();
            if let Some(fragments) = crate::fragmentation::split(&payload, id, &ctx.config.limits) {
                self.next_fragment_id.set(id.wrapping_add(1));
                for fragment in fragments {
                    ctx.out.transmits.push_back(Transmit::isakmp(self.local, self.remote, fragment));
                }
                return;
            }
        }
        ctx.out.transmits.push_back(Transmit::isakmp(self.local, self.remote, payload));
    }

    /// Whether we fragment for this peer: on here, and the peer announced it.
    pub(crate) fn fragments_to_peer(&self, config: &Config) -> bool {
        config.limits.fragmentation && self.peer_capabilities.fragmentation
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
                self.peer_authenticated(ctx);
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
                self.peer_authenticated(ctx);
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

    /// CKY-I | CKY-R, the SPI of ISAKMP notifications (INITIAL-CONTACT, DPD).
    pub(crate) fn cookie_pair(&self) -> [u8; 16] {
        let mut spi = [0u8; 16];
        spi[..8].copy_from_slice(&self.cookie_i.0);
        spi[8..].copy_from_slice(&self.cookie_r.0);
        spi
    }

    fn header(&self, message_id: u32) -> isakmp::Header {
        wire::header(self.cookie_i, self.cookie_r, ExchangeType::IdentityProtection, message_id)
    }

    #[allow(clippy::too_many_arguments)] // the RFC 2409 inputs, named as there
    pub(crate) fn derive(
        &self,
        suite: &IkeProposal,
        ni: &[u8],
        nr: &[u8],
        g_xy: &[u8],
        g_xi: &[u8],
        g_xr: &[u8],
        ctx: &Ctx<'_>,
    ) -> Phase1Material {
        let exchange =
            Phase1Exchange { cookie_i: self.cookie_i, cookie_r: self.cookie_r, ni, nr, g_xi, g_xr };
        if suite.auth_method.is_signature() {
            let skeyid = Skeyid::for_signatures(suite.hash, ni, nr, g_xy);
            return phase1_material_from_skeyid(suite, skeyid, &exchange, g_xy);
        }
        let psk = &self.peer_config(ctx.config).pre_shared_key;
        phase1_material(suite, psk.expose(), &exchange, g_xy)
    }

    pub(crate) fn auth_input<'m>(&self, material: &'m Phase1Material, sai_b: &'m [u8]) -> AuthHashInput<'m> {
        auth_input(material, self.cookie_i, self.cookie_r, sai_b)
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

    /// Our phase-1 identity: the configured one, else our address.
    pub(crate) fn local_identification<'c>(&self, config: &'c Config) -> Identification<'c> {
        let peer = self.peer_config(config);
        let identity = match &peer.local_id {
            Some(IdentityConfig::Address(a)) => Identity::Ipv4Addr(*a),
            Some(IdentityConfig::Fqdn(name)) => Identity::Fqdn(name.as_bytes()),
            Some(IdentityConfig::UserFqdn(name)) => Identity::UserFqdn(name.as_bytes()),
            // `local-id-type dn`: our certificate's subject, in DER as the certificate has it.
            Some(IdentityConfig::Dn(text)) => match &peer.certificate {
                Some(auth) => Identity::DerAsn1Dn(&auth.certificate.summary().subject_der),
                None => Identity::Fqdn(text.as_bytes()),
            },
            None => match self.local.ip() {
                std::net::IpAddr::V4(a) => Identity::Ipv4Addr(a),
                std::net::IpAddr::V6(a) => Identity::Ipv6Addr(a),
            },
        };
        Identification { protocol: 0, port: 0, identity }
    }

    /// Reports a failure of this SA's phase 1.
    pub(crate) fn failure(
        &self,
        exchange: Exchange,
        state: &'static str,
        reason: FailureReason,
        config: &Config,
    ) -> Failure {
        Failure {
            peer: Some(self.peer_config(config).name.clone()),
            remote: self.remote,
            exchange,
            state,
            reason,
        }
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

/// The public values of a phase-1 exchange that the key schedule mixes in, named as in
/// RFC 2409 §5 (nonce and KE payload bodies, cookies).
pub(crate) struct Phase1Exchange<'a> {
    pub(crate) cookie_i: Cookie,
    pub(crate) cookie_r: Cookie,
    pub(crate) ni: &'a [u8],
    pub(crate) nr: &'a [u8],
    pub(crate) g_xi: &'a [u8],
    pub(crate) g_xr: &'a [u8],
}

/// SKEYID for a pre-shared key, its three keys, Ka and the phase-1 IV chain at
/// `hash(g^xi | g^xr)` (RFC 2409 §5, Appendix B). A free function so the known-answer tests
/// feed strongSwan's values through exactly the derivation the exchanges use.
pub(crate) fn phase1_material(
    suite: &IkeProposal,
    psk: &[u8],
    exchange: &Phase1Exchange<'_>,
    g_xy: &[u8],
) -> Phase1Material {
    let skeyid = Skeyid::for_pre_shared_key(suite.hash, psk, exchange.ni, exchange.nr);
    phase1_material_from_skeyid(suite, skeyid, exchange, g_xy)
}

/// The phase-1 keys and IV chain from a SKEYID of either kind (pre-shared key or signatures).
pub(crate) fn phase1_material_from_skeyid(
    suite: &IkeProposal,
    skeyid: Skeyid,
    exchange: &Phase1Exchange<'_>,
    g_xy: &[u8],
) -> Phase1Material {
    let keys = skeyid.derive_phase1_keys(g_xy, &exchange.cookie_i.0, &exchange.cookie_r.0);
    let key = keys.skeyid_e.cipher_key(suite.encryption);
    Phase1Material {
        hash: suite.hash,
        iv: Phase1IvChain::new(suite.hash, suite.encryption, exchange.g_xi, exchange.g_xr),
        skeyid,
        skeyid_d: keys.skeyid_d,
        skeyid_a: keys.skeyid_a,
        key,
        g_xi: exchange.g_xi.to_vec(),
        g_xr: exchange.g_xr.to_vec(),
    }
}

/// What HASH_I and HASH_R cover besides the ID payload.
pub(crate) fn auth_input<'m>(
    material: &'m Phase1Material,
    cookie_i: Cookie,
    cookie_r: Cookie,
    sai_b: &'m [u8],
) -> AuthHashInput<'m> {
    AuthHashInput { g_xi: &material.g_xi, g_xr: &material.g_xr, cky_i: cookie_i.0, cky_r: cookie_r.0, sai_b }
}

/// N(INITIAL-CONTACT), protocol ISAKMP, SPI = CKY-I | CKY-R (RFC 2407 §4.6.3.3), as
/// strongSwan sends it in MM5.
pub(crate) fn initial_contact(cookies: &[u8; 16]) -> Payload<'_> {
    Payload::Notification(isakmp::Notification {
        doi: isakmp::Doi::Ipsec,
        protocol: isakmp::ProtocolId::Isakmp,
        spi: cookies,
        notify_type: isakmp::NotifyType::InitialContact,
        data: &[],
    })
}

/// The first SA payload of a chain.
pub(crate) fn find_sa<'m, 'a>(payloads: &'m [Payload<'a>]) -> Option<&'m SecurityAssociation<'a>> {
    payloads.iter().find_map(|p| match p {
        Payload::SecurityAssociation(sa) => Some(sa),
        _ => None,
    })
}

pub(crate) fn ke_and_nonce<'a>(payloads: &[Payload<'a>]) -> Result<(&'a [u8], &'a [u8]), FailureReason> {
    let ke = payloads
        .iter()
        .find_map(|p| match p {
            Payload::KeyExchange(ke) => Some(*ke),
            _ => None,
        })
        .ok_or(FailureReason::MissingPayload("KE"))?;
    let nonce = payloads
        .iter()
        .find_map(|p| match p {
            Payload::Nonce(n) => Some(*n),
            _ => None,
        })
        .ok_or(FailureReason::MissingPayload("NONCE"))?;
    Ok((ke, nonce))
}

/// The body of a cleartext datagram after the ISAKMP header.
pub(crate) fn body_of(datagram: &[u8]) -> &[u8] {
    datagram.get(isakmp::HEADER_LEN..).unwrap_or_default()
}

/// The body of the first payload of type `wanted` exactly as it was on the wire: HASH_I/HASH_R
/// cover the received bytes (notes pitfall 4), not a re-encoding.
pub(crate) fn raw_body(first: PayloadType, chain: &[u8], wanted: PayloadType) -> Option<&[u8]> {
    RawPayloads::new(first, chain, 0).map_while(Result::ok).find(|p| p.payload_type == wanted).map(|p| p.body)
}

/// Checks the identity the peer presented against `remote-id`, when one is configured.
pub(crate) fn check_remote_identity(peer: &PeerConfig, id: &Identification<'_>) -> Result<(), FailureReason> {
    let Some(expected) = &peer.remote_id else { return Ok(()) };
    if expected.matches(&id.identity) {
        Ok(())
    } else {
        Err(FailureReason::IdentityMismatch {
            received: describe_identity(&id.identity),
            expected: match expected {
                IdentityConfig::Address(a) => format!("ip {a}"),
                IdentityConfig::Fqdn(n) => format!("fqdn {n}"),
                IdentityConfig::UserFqdn(n) => format!("user-fqdn {n}"),
                IdentityConfig::Dn(n) => format!("dn {n}"),
            },
        })
    }
}

/// An identity for log lines; names are printed lossily and bounded.
pub(crate) fn describe_identity(identity: &Identity<'_>) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(255)]).into_owned();
    match identity {
        Identity::Ipv4Addr(a) => format!("ip {a}"),
        Identity::Ipv6Addr(a) => format!("ip {a}"),
        Identity::Fqdn(n) => format!("fqdn {}", text(n)),
        Identity::UserFqdn(n) => format!("user-fqdn {}", text(n)),
        Identity::Ipv4Subnet { address, mask } => format!("{address}/{mask}"),
        Identity::Ipv4Range { start, end } => format!("{start}-{end}"),
        Identity::DerAsn1Dn(der) => match crypto::x509::dn_der_to_text(der) {
            Some(text) => format!("dn {text}"),
            None => "dn (unparseable)".to_owned(),
        },
        other => format!("{:?}", other.id_type()),
    }
}
