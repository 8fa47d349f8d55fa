//! The core of one IKE SA, which no exchange owns: who the peer is, the cookies and
//! addresses, the phase-1 flight, what the peer announced, NAT-T, DPD and lifetime state. The
//! exchanges (`main_mode`, `aggressive_mode`, `quick_mode`, `informational`) take it by
//! `&mut` together with their own typed state; `ike_sa` composes it with the exchange states.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::Instant;

use crypto::key_schedule::{AuthHashInput, Skeyid};
use crypto::{HashAlgorithm, SecretBytes};
use isakmp::{Cookie, Identification, Identity, Payload};

use crate::auth::PeerProof;
use crate::config::{Config, DpdConfig, ExchangeMode, IdentityConfig, IkeProposal, PeerConfig};
use crate::dpd::DpdState;
use crate::event::{Acquire, ConnectionId, Event, Exchange, Failure, Phase1KeyLog, Transmit};
use crate::failure::FailureReason;
use crate::identity::{IdentityKey, PeerIdentity};
use crate::nat_t::{detect, our_discovery_hashes, NatState, NAT_T_PORT};
use crate::sa::context::Ctx;
use crate::sa::flight::Flight;
use crate::sa::keys::{
    auth_input, phase1_material, phase1_material_from_skeyid, Phase1Exchange, Phase1Material,
};
use crate::sa::lazy::Lazy;
use crate::sa::lifetimes::Lifetimes;
use crate::sa::seen::SeenMessageIds;
use crate::sa::timer::{Timer, TimerTable};
use crate::sa::unauthenticated::Unauthenticated;
use crate::trace::{summarize, Direction, MessageTrace, Step};
use isakmp::capabilities::{NatTVersion, PeerCapabilities};

/// Which side of the phase-1 exchange (main or aggressive mode) we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the first message (MM1 / AM1).
    Initiator,
    /// We answered it.
    Responder,
}

/// An established IKE SA's phase-1 outcome: what quick mode and informational exchanges are
/// protected with.
pub(crate) struct Established {
    pub(crate) suite: IkeProposal,
    pub(crate) material: Box<Phase1Material>,
    /// The peer's HASH_I / HASH_R or signature checked out: no SA is established without it.
    pub(crate) _authenticated: PeerProof,
}

/// Where a phase-1 exchange (main or aggressive mode) stands after a message: still waiting
/// in its next state, or established.
pub(crate) enum Phase1Step<S> {
    /// The exchange goes on in this state.
    Wait(S),
    /// Phase 1 is complete.
    Established(Established),
    /// The message could not be authenticated (it did not decrypt, its HASH or signature did
    /// not verify): dropped, and the exchange goes on in this, its unchanged state, for the
    /// peer's retransmission to repair (`sa::unauthenticated`).
    Dropped(S, FailureReason),
}

/// Who a new IKE SA is with, as the engine decided before any exchange runs: its connection
/// ID, the configured peer (index in `Config::peers`) and the `(local, remote)` addresses.
/// Main and aggressive mode, as initiator and as responder, all start an SA from these four
/// values, so they travel as one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SaIdentity {
    pub(crate) connection: ConnectionId,
    pub(crate) peer: usize,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
}

/// One IKE SA, without the exchange states (`ike_sa::IkeSa` adds those).
pub(crate) struct SaCore {
    pub(crate) connection: ConnectionId,
    pub(crate) role: Role,
    pub(crate) peer: usize,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) cookie_i: Cookie,
    pub(crate) cookie_r: Cookie,
    /// Main or aggressive mode: which exchange phase 1 was (for headers and failure reports).
    pub(crate) mode: ExchangeMode,
    pub(crate) flight: Flight,
    /// The SA's own deadlines (phase-1 deadline, hard lifetime); see `sa::timer`.
    pub(crate) timers: TimerTable,
    pub(crate) established_at: Option<Instant>,
    /// Flows that asked for SAs while phase 1 was running.
    pub(crate) pending: Vec<Acquire>,
    /// Renewal of this SA and the IPsec SA pairs it manages (`sa::lifetimes`).
    pub(crate) lifetimes: Lazy<Lifetimes>,
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
    pub(crate) dpd_config: Option<Box<DpdConfig>>,
    /// Send INITIAL-CONTACT in MM5: no other IKE SA with this peer existed when we started.
    pub(crate) send_initial_contact: bool,
    /// The peer sent INITIAL-CONTACT (authenticated); the engine removes older SAs with it.
    pub(crate) initial_contact_received: bool,
    /// The informational message IDs received, against replays (they feed DPD, Deletes and
    /// NAT-T moves).
    pub(crate) informational_seen: Lazy<SeenMessageIds>,
    /// The quick-mode message IDs used (ours and the peer's), against replays of a quick mode
    /// that is over: without them a copy of QM1 would make a second IPsec SA pair.
    pub(crate) quick_mode_seen: Lazy<SeenMessageIds>,
    /// The peer sent a Certificate Request (our CERT goes out under `send-cert when asked`).
    pub(crate) peer_asked_certificate: bool,
    /// The peer's verified certificate, once signature authentication succeeded.
    pub(crate) peer_certificate: Option<Box<crypto::CertificateSummary>>,
    /// The phase-1 message being reassembled from fragments (`isakmp::fragmentation`).
    pub(crate) reassembly: isakmp::fragmentation::Reassembly,
    /// The fragment ID of our next fragmented message.
    pub(crate) next_fragment_id: Cell<u16>,
    /// The identity the peer presented and authenticated (its ID payload), for `display ike
    /// sa verbose`: without a configured `remote-id` any identity is accepted, so only this
    /// says who the peer claimed to be.
    pub(crate) remote_identity: Option<Box<PeerIdentity>>,
    /// The same identity as bytes, for INITIAL-CONTACT's comparison of identity pairs.
    pub(crate) remote_identity_key: Option<IdentityKey>,
    /// Messages dropped because they could not be authenticated, and the last one's reason.
    pub(crate) unauthenticated: Unauthenticated,
}

impl SaCore {
    /// Phase 1 completed with the peer authenticated (`proof`): DPD and the event for the
    /// driver (with the phase-1 keys only when a key log was asked for). Returns the
    /// established state, which protects the quick modes and informationals to come.
    pub(crate) fn establish(
        &mut self,
        suite: IkeProposal,
        material: Box<Phase1Material>,
        proof: PeerProof,
        ctx: &mut Ctx<'_>,
    ) -> Established {
        self.established_at = Some(ctx.now);
        self.dpd_config =
            self.peer_config(ctx.config).dpd.filter(|_| self.peer_capabilities.dpd).map(Box::new);
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
        // From now on the deadline ends the window in which our last phase-1 message answers
        // a repeat of the peer's (`IkeSa::on_timeout` then lets the flight's copy go).
        self.timers.set(Timer::Phase1Deadline, ctx.now + ctx.config.limits.exchange_timeout);
        self.timers.set(Timer::HardLifetime, expires_at);
        // The public values served HASH_I and HASH_R only; the repeat of our last message is
        // the flight's copy.
        let mut material = material;
        (material.g_xi, material.g_xr) = (Vec::new(), Vec::new());
        Established { suite, material, _authenticated: proof }
    }

    /// Our cookie: the one we chose, by which the engine finds this SA.
    pub(crate) fn our_cookie(&self) -> Cookie {
        match self.role {
            Role::Initiator => self.cookie_i,
            Role::Responder => self.cookie_r,
        }
    }

    /// The phase-1 exchange, for failure reports.
    pub(crate) fn phase1_exchange(&self) -> Exchange {
        match self.mode {
            ExchangeMode::Main => Exchange::MainMode,
            ExchangeMode::Aggressive => Exchange::AggressiveMode,
        }
    }

    pub(crate) fn peer_config<'c>(&self, config: &'c Config) -> &'c PeerConfig {
        &config.peers[self.peer]
    }

    /// A new SA in a placeholder state that the caller replaces at once; every exchange that
    /// starts an IKE SA (main mode here, aggressive mode) builds it this way, so new fields
    /// get their initial value in one place.
    pub(crate) fn new(
        identity: SaIdentity,
        role: Role,
        (cookie_i, cookie_r): (Cookie, Cookie),
        ctx: &mut Ctx<'_>,
    ) -> Self {
        let SaIdentity { connection, peer, local, remote } = identity;
        let mut sequence = [0u8; 4];
        ctx.rng.fill(&mut sequence);
        let mut timers = TimerTable::default();
        timers.set(Timer::Phase1Deadline, ctx.now + ctx.config.limits.exchange_timeout);
        Self {
            connection,
            role,
            peer,
            local,
            remote,
            cookie_i,
            cookie_r,
            mode: ExchangeMode::Main,
            flight: Flight::new(ctx.now),
            timers,
            established_at: None,
            pending: Vec::new(),
            lifetimes: Lazy::default(),
            started_at: ctx.now,
            initial_remote: remote,
            peer_capabilities: PeerCapabilities::default(),
            nat: NatState::default(),
            dpd: DpdState::new(ctx.now, u32::from_be_bytes(sequence)),
            dpd_config: None,
            send_initial_contact: false,
            initial_contact_received: false,
            informational_seen: Lazy::default(),
            quick_mode_seen: Lazy::default(),
            peer_asked_certificate: false,
            peer_certificate: None,
            reassembly: isakmp::fragmentation::Reassembly::default(),
            next_fragment_id: Cell::new(1),
            remote_identity: None,
            remote_identity_key: None,
            unauthenticated: Unauthenticated::default(),
        }
    }

    /// A message from the peer passed its authentication (HASH_I/R, HASH(1..3), informational
    /// HASH): the peer is alive, and with NAT-T its current address is where the message came
    /// from (RFC 3947 §4-5: follow a peer that floats to 4500 even if we saw no NAT, and a NAT
    /// that changes its port). Only for a new message: a repeat is answered from the flight
    /// before this, and a quick mode or informational whose message ID was seen is dropped
    /// before this (`sa::seen`), so a replay from another port moves nothing.
    pub(crate) fn peer_authenticated(&mut self, established: bool, ctx: &mut Ctx<'_>) {
        self.dpd.heard(ctx.now);
        self.follow_peer(established, ctx);
    }

    /// Quick-mode and informational messages dropped as replays.
    pub(crate) fn replays_dropped(&self) -> u64 {
        self.quick_mode_seen.replays_dropped + self.informational_seen.replays_dropped
    }

    /// Quick-mode and informational message IDs forgotten over the cap.
    pub(crate) fn message_ids_forgotten(&self) -> u64 {
        self.quick_mode_seen.forgotten + self.informational_seen.forgotten
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
            if let Some(fragments) =
                isakmp::fragmentation::split(&payload, id, &ctx.config.limits.fragments())
            {
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

    /// CKY-I | CKY-R, the SPI of ISAKMP notifications (INITIAL-CONTACT, DPD).
    pub(crate) fn cookie_pair(&self) -> [u8; 16] {
        let mut spi = [0u8; 16];
        spi[..8].copy_from_slice(&self.cookie_i.0);
        spi[8..].copy_from_slice(&self.cookie_r.0);
        spi
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
        identity: Option<&Identity<'_>>,
        ctx: &Ctx<'_>,
    ) -> Phase1Material {
        let exchange =
            Phase1Exchange { cookie_i: self.cookie_i, cookie_r: self.cookie_r, ni, nr, g_xi, g_xr };
        if suite.auth_method.is_signature() {
            let skeyid = Skeyid::for_signatures(suite.hash, ni, nr, g_xy);
            return phase1_material_from_skeyid(suite, skeyid, &exchange, g_xy);
        }
        // With a user table the site's key: by AM1's identity (`identity`), else by address.
        let psk = self.peer_config(ctx.config).pre_shared_key_for(self.remote.ip(), identity);
        phase1_material(suite, psk, &exchange, g_xy)
    }

    pub(crate) fn auth_input<'m>(&self, material: &'m Phase1Material, sai_b: &'m [u8]) -> AuthHashInput<'m> {
        auth_input(material, self.cookie_i, self.cookie_r, sai_b)
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

    /// The peer presented `identity` in its ID payload (authenticated by the exchange that
    /// carried it, or, for an aggressive-mode responder, by AM3 before the SA is established).
    pub(crate) fn identified(&mut self, identity: &Identity<'_>) {
        self.remote_identity = Some(Box::new(PeerIdentity::of(identity)));
        self.remote_identity_key = Some(IdentityKey::of(identity));
    }

    /// Reports a failure of this SA's phase 1.
    /// A message of the running phase-1 exchange that could not be authenticated (an error
    /// notify in clear, or an encrypted one that did not decrypt under our keys): dropped and
    /// remembered (`sa::unauthenticated`). After
    /// [`REPEATS_TO_FAIL`](crate::sa::unauthenticated::REPEATS_TO_FAIL) of them phase 1 ends
    /// with this reason: reported here, and true is returned for the caller to end the SA.
    pub(crate) fn phase1_dropped(
        &mut self,
        exchange: Exchange,
        state: &'static str,
        reason: FailureReason,
        ctx: &mut Ctx<'_>,
    ) -> bool {
        if !self.unauthenticated.dropped(state, reason.clone(), true) {
            return false;
        }
        self.unauthenticated.take_last();
        let failure = self.failure(exchange, state, reason, ctx.config);
        ctx.out.events.push_back(Event::Failed(failure));
        true
    }

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
            // A responder has authenticated nobody before phase 1 completes: whoever sent the
            // MM1 or AM1 may not be the peer it named.
            unauthenticated: self.role == Role::Responder && self.established_at.is_none(),
        }
    }

    /// Records a message of this SA when the driver asked for traces; `payloads` are the
    /// payloads in order (for an encrypted message, the decrypted ones).
    pub(crate) fn trace(
        &self,
        ctx: &mut Ctx<'_>,
        direction: Direction,
        step: Step,
        message_id: u32,
        encrypted: bool,
        payloads: &[Payload<'_>],
    ) {
        if ctx.out.trace {
            let summary = summarize(step, encrypted, payloads);
            self.trace_summary(ctx, direction, step, message_id, Some(summary));
        }
    }

    /// [`SaCore::trace`] for a quick-mode message: a HASH first, then `rest` (the HASH is
    /// computed over `rest`, so the builders hold them apart).
    pub(crate) fn trace_hash_first(
        &self,
        ctx: &mut Ctx<'_>,
        direction: Direction,
        step: Step,
        message_id: u32,
        rest: &[Payload<'_>],
    ) {
        if ctx.out.trace {
            let mut payloads = Vec::with_capacity(rest.len() + 1);
            payloads.push(Payload::Hash(&[]));
            payloads.extend(rest.iter().cloned());
            self.trace(ctx, direction, step, message_id, true, &payloads);
        }
    }

    /// [`SaCore::trace`] with a summary made where the payloads were, before this SA existed
    /// or inside a helper that parsed them ([`traced`]); `None` when tracing is off.
    pub(crate) fn trace_summary(
        &self,
        ctx: &mut Ctx<'_>,
        direction: Direction,
        step: Step,
        message_id: u32,
        summary: Option<String>,
    ) {
        let Some(summary) = summary.filter(|_| ctx.out.trace) else { return };
        ctx.out.traces.push_back(MessageTrace {
            direction,
            step,
            connection: self.connection,
            peer: self.peer_config(ctx.config).name.clone(),
            local: self.local,
            remote: self.remote,
            initiator_cookie: self.cookie_i,
            message_id,
            summary,
        });
    }

    /// The hashes for our NAT-D payloads (see [`discovery_payloads`]), if NAT-T was
    /// negotiated.
    pub(crate) fn nat_discovery(&self, hash: HashAlgorithm) -> Option<(NatTVersion, [Vec<u8>; 2])> {
        let version = self.nat.version?;
        let cookies = (self.cookie_i, self.cookie_r);
        Some((version, our_discovery_hashes(hash, cookies, self.local, self.remote, self.nat.forced)))
    }

    /// Reads the peer's NAT-D payloads against the addresses the message arrived on. A peer
    /// that announced NAT-T but sends no NAT-D does not do it after all: NAT-T is then off.
    pub(crate) fn detect_nat(&mut self, payloads: &[Payload<'_>], hash: HashAlgorithm, ctx: &Ctx<'_>) {
        if self.nat.version.is_none() {
            return;
        }
        let (local, remote) = ctx.received.unwrap_or((self.local, self.remote));
        match detect(payloads, hash, self.cookie_i, self.cookie_r, local, remote) {
            Some((local_behind, remote_behind)) => {
                self.nat.local_behind_nat = local_behind;
                self.nat.remote_behind_nat = remote_behind;
            }
            None => self.nat.version = None,
        }
    }

    /// The initiator's float (RFC 3947 §4): to UDP 4500 on both ends when a NAT was found on
    /// either side, before the first encrypted message.
    pub(crate) fn float_if_nat_detected(&mut self, now: Instant) {
        if self.nat.version.is_some() && self.nat.detected() && !self.nat.floated {
            self.local.set_port(NAT_T_PORT);
            self.remote.set_port(NAT_T_PORT);
            self.nat.float(now);
        }
    }

    /// After an authenticated message: with NAT-T, a message on our port 4500 means the peer
    /// floated (we follow even if we saw no NAT: strongSwan fakes it) and its source is where
    /// the peer now is (a NAT may have changed the port). Once established, a move is reported
    /// so the data plane sends ESP-in-UDP to the new port.
    pub(crate) fn follow_peer(&mut self, established: bool, ctx: &mut Ctx<'_>) {
        let Some((local, remote)) = ctx.received else { return };
        if self.nat.version.is_none() || local.port() != NAT_T_PORT {
            return;
        }
        if !self.nat.floated {
            self.nat.float(ctx.now);
        }
        let moved = (self.local, self.remote) != (local, remote);
        self.local = local;
        self.remote = remote;
        if moved && established {
            ctx.out.events.push_back(Event::PeerMoved { connection: self.connection, local, remote });
        }
    }

    /// Reads the peer's Vendor IDs (MM1 / MM2, AM1 / AM2) and settles the NAT-T dialect: the
    /// best one the peer announced, if `nat traversal` is on here.
    pub(crate) fn learn_capabilities(&mut self, payloads: &[Payload<'_>], config: &Config) {
        self.peer_capabilities = PeerCapabilities::recognise(payloads);
        let peer = self.peer_config(config);
        self.nat.version = self.peer_capabilities.nat_t.filter(|_| peer.nat_traversal);
        self.nat.forced = self.nat.version.is_some() && peer.force_encapsulation;
    }
}
