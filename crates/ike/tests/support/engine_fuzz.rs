//! Two IKE engines configured as each other's peer, talking through a network that the fuzz
//! input controls, with the engine's invariants checked after every step.
//!
//! Used by the cargo-fuzz target `ike_engine` (`fuzz/fuzz_targets/ike_engine.rs`, which
//! includes this file with `#[path]`) and by the replay test `tests/engine_fuzz_replay.rs`,
//! which runs the committed seeds on every `cargo test`: one copy of the harness, so CI (which
//! does not run the fuzzer) exercises exactly what the fuzzer runs. It uses the public API
//! only, and no crate beyond `ike` and `crypto`: the input is decoded by hand (a few bytes per
//! action) instead of with `arbitrary`, so the main workspace needs no new dependency.
//!
//! # Input
//!
//! Byte 0 picks the scenario ([`Scenario::from_byte`]): main or aggressive mode for each side,
//! PFS, ESP or AH+ESP, fragmentation of our own phase-1 messages, dead peer detection. The
//! rest is a sequence of actions, each an opcode byte ([`Action`], opcode modulo the number
//! of actions) followed by its operands; operands missing at the end of the input read as
//! zero, and the run ends when the input does. Actions: deliver, drop, duplicate, reorder,
//! mutate, truncate or replace the datagram at the head of the network queue; inject
//! arbitrary bytes from an arbitrary source; replay a datagram seen earlier; advance time by
//! an arbitrary step or to the next timer; trigger an acquire for one of the policy's rules;
//! report data-plane traffic; deliver everything queued; put a NAT (port rewriting) in front
//! of engine A, or take it away. And the attacker's (issue 13): forge a message with the
//! cookies of an SA the receiver holds, any message ID and exchange type, and a garbage
//! encrypted or an arbitrary cleartext body, from the SA's own peer address and port, that
//! address with another port, or a random address; replay one of the first datagrams of the
//! run, however much later; deliver an oversized message (the next datagram with bytes
//! appended, or a header that claims another length, or a main-mode first message whose SA
//! payload is as large as a payload can be).
//!
//! # Invariants (checked after every action, on both engines)
//!
//! * Nothing panics (the engine, or these checks).
//! * Responder SAs not yet authenticated (half-open): the bytes charged to them ≤
//!   `Limits::half_open_memory_budget` (or one alone), their count as the engine reports it is
//!   the count of its unauthenticated responder SAs, and ≤ `HalfOpenUsage::max_entries`.
//! * IKE SAs ≤ `HalfOpenUsage::max_entries` + [`SAS_PER_PEER`] × peers (see [`sa_bound`]).
//! * Quick modes in progress per IKE SA ≤ `Limits::max_quick_modes_per_sa` + 2 × rules
//!   (see [`quick_mode_bound`]).
//! * IPsec SA pairs ≤ [`PAIRS_PER_FLOW`] × rules per IKE SA of the bound.
//! * `Engine::buffered_bytes()`, read before the harness drains the transmit queue, ≤
//!   [`buffered_bound`] for the IKE SAs the engine holds (now or before this step, whichever
//!   is more): per SA, each exchange's kept message and its queued copy, one partial message
//!   under reassembly and its waiting acquires; plus one message for an input no SA owns. The
//!   bound follows the SAs, not the input: a few bytes kept per datagram would exceed it long
//!   before an input ends.

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crypto::{DhGroup, EspCipher, HashAlgorithm, Integrity, Phase1Cipher, SecretBytes, SecureRandom};
use ike::{
    Acquire, AuthMethod, Config, DpdConfig, EncapsulationMode, Engine, Event, ExchangeMode, IkeProposal,
    IpsecProposal, IpsecProtocols, Limits, PeerConfig, PolicyConfig, PolicyId, Subnet, TrafficSelector,
};

/// Engine A's address.
const FW_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Engine B's address.
const FW_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// An address neither engine knows, for injected datagrams.
const STRANGER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

/// Established or negotiating IKE SAs each configured peer may account for, beyond the
/// half-open responder SAs that `Limits::half_open_memory_budget` bounds. An SA is established only by a
/// complete handshake with the genuine peer (the fuzzer cannot authenticate), and either
/// engine starts one only when it has none with the peer (an acquire reuses an SA that is
/// established or still negotiating) or to renew one before its lifetime ends. So per side:
/// the SA in use, the one it superseded until that expires, a renewal under way, and one
/// started while the peer started its own (both initiate at once) — four, twice over for the
/// two sides' initiative. More means SAs pile up with inputs.
pub(crate) const SAS_PER_PEER: usize = 8;

/// IPsec SA pairs one flow (ACL rule) may have under one IKE SA: the pair in use, its rekeyed
/// successor during the overlap, and the same again when both sides acquired the flow at once.
pub(crate) const PAIRS_PER_FLOW: usize = 4;

/// The largest message either engine builds in these scenarios, fragment headers included,
/// with a margin: pre-shared keys and no certificates, so the largest is a quick mode with AH,
/// ESP and a PFS key exchange, a few hundred bytes.
const MAX_MESSAGE: usize = 1024;

/// Datagrams the harness network holds; beyond this the oldest is lost, as on a real link.
/// This bounds the harness, not the engine.
const MAX_IN_FLIGHT: usize = 64;

/// Deliveries one "deliver everything" action makes at most, so that two engines answering
/// each other without end cannot hang the fuzzer (it would still show as a slow input).
const MAX_FLUSH: usize = 64;

/// Datagrams kept for the replay action.
const HISTORY: usize = 32;

/// The first datagrams of a run, kept for the whole run for the late-replay action: the
/// handshakes' messages, replayed after any number of time steps.
const ARCHIVE: usize = 64;

/// The largest ISAKMP payload: its length field is 16 bits.
const MAX_PAYLOAD: usize = 65_535;

/// A deterministic generator (SplitMix64), so that a fuzz input always replays the same way.
/// Not secure: cookies, nonces, SPIs and DH secrets only need to be reproducible here.
struct FuzzRng(u64);

impl SecureRandom for FuzzRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// The configuration both engines share, as chosen by the input's first byte.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scenario {
    /// The phase-1 exchange engine A starts.
    pub(crate) a_mode: ExchangeMode,
    /// The phase-1 exchange engine B starts.
    pub(crate) b_mode: ExchangeMode,
    /// Quick mode with a PFS exchange (ECP-256).
    pub(crate) pfs: bool,
    /// `transform ah-esp` instead of ESP alone.
    pub(crate) ah_esp: bool,
    /// Our phase-1 messages are cut into fragments (a small `fragment_size`), so the fuzzer
    /// sees genuine fragments to drop, reorder and mutate.
    pub(crate) small_fragments: bool,
    /// Dead peer detection on both sides, with short timers.
    pub(crate) dpd: bool,
}

impl Scenario {
    /// Bit 0: A uses aggressive mode; bit 1: B does; bit 2: PFS; bit 3: AH+ESP; bit 4: small
    /// fragments; bit 5: DPD. Bits 6 and 7 are ignored.
    pub(crate) fn from_byte(byte: u8) -> Self {
        let mode = |bit: u8| if byte & bit != 0 { ExchangeMode::Aggressive } else { ExchangeMode::Main };
        Self {
            a_mode: mode(0x01),
            b_mode: mode(0x02),
            pfs: byte & 0x04 != 0,
            ah_esp: byte & 0x08 != 0,
            small_fragments: byte & 0x10 != 0,
            dpd: byte & 0x20 != 0,
        }
    }

    /// The policy's ACL rules as seen from the gateway with `inside` behind it: the two
    /// subnets, and one TCP port from a host to a host (a second flow with ports in its
    /// proxy identities).
    fn rules(inside: Ipv4Addr, far: Ipv4Addr, a_side: bool) -> Vec<TrafficSelector> {
        let host = |net: Ipv4Addr, last: u8| {
            let [a, b, c, _] = net.octets();
            Subnet::new(Ipv4Addr::new(a, b, c, last), 32)
        };
        let (client, server) =
            if a_side { (host(inside, 5), host(far, 9)) } else { (host(far, 5), host(inside, 9)) };
        let web = TrafficSelector {
            protocol: 6,
            local: if a_side { client } else { server }.into(),
            remote: if a_side { server } else { client }.into(),
            local_port: if a_side { None } else { Some(80) },
            remote_port: if a_side { Some(80) } else { None },
        };
        vec![TrafficSelector::between(Subnet::new(inside, 24), Subnet::new(far, 24)), web]
    }

    /// The configuration of one side: `local` talks to `remote`, `inside` is its network.
    fn config(&self, a_side: bool) -> Config {
        let (local, remote, inside, far, mode) = if a_side {
            (FW_A, FW_B, Ipv4Addr::new(10, 1, 1, 0), Ipv4Addr::new(10, 2, 2, 0), self.a_mode)
        } else {
            (FW_B, FW_A, Ipv4Addr::new(10, 2, 2, 0), Ipv4Addr::new(10, 1, 1, 0), self.b_mode)
        };
        let ike = IkeProposal {
            encryption: Phase1Cipher::Aes128,
            hash: HashAlgorithm::Sha256,
            auth_method: AuthMethod::PreSharedKey,
            // The cheapest group: the fuzzer spends its time in the engine, not in DH.
            group: DhGroup::Ecp256,
            // Short, so that renewal is a few time steps away.
            lifetime: Duration::from_secs(600),
        };
        let protocols = if self.ah_esp {
            IpsecProtocols::AhEsp {
                ah_integrity: Integrity::HmacSha256_128,
                esp_encryption: EspCipher::AesCbc128,
                esp_integrity: Some(Integrity::HmacSha256_128),
            }
        } else {
            IpsecProtocols::Esp {
                encryption: EspCipher::AesCbc128,
                integrity: Some(Integrity::HmacSha256_128),
            }
        };
        Config {
            peers: vec![PeerConfig {
                name: "peer".into(),
                local_address: IpAddr::V4(local),
                remote_address: Some(IpAddr::V4(remote)),
                exchange_mode: mode,
                proposals: vec![ike],
                pre_shared_key: SecretBytes::from_slice(b"fuzzing the engine"),
                site_keys: Vec::new(),
                local_id: None,
                remote_id: None,
                nat_traversal: true,
                force_encapsulation: false,
                dpd: self.dpd.then_some(DpdConfig {
                    idle_time: Duration::from_secs(10),
                    retransmit_interval: Duration::from_secs(3),
                    retry_limit: 2,
                }),
                accept_aggressive_mode: true,
                certificate: None,
            }],
            policies: vec![PolicyConfig {
                id: PolicyId { name: "policy1".into(), sequence: 1 },
                peer: 0,
                selectors: Self::rules(inside, far, a_side),
                proposals: vec![IpsecProposal { protocols, mode: EncapsulationMode::Tunnel }],
                pfs: self.pfs.then_some(DhGroup::Ecp256),
                // Short, so that rekeying is a few time steps away.
                lifetime: Duration::from_secs(120),
                lifetime_kilobytes: None,
                template: None,
            }],
            limits: Limits {
                retransmit_initial: Duration::from_millis(500),
                retransmit_count: 3,
                exchange_timeout: Duration::from_secs(20),
                // Small, so that the fuzzer fills it with a handful of first messages (a
                // minimal main-mode half-open SA is charged about 1.2 KB).
                half_open_memory_budget: 6 * 1024,
                max_first_sa_payload: Limits::default().max_first_sa_payload,
                max_quick_modes_per_sa: 4,
                fragmentation: true,
                fragment_size: if self.small_fragments { 160 } else { Limits::default().fragment_size },
                max_fragments: 16,
                max_reassembly_bytes: 8 * 1024,
                fragment_timeout: Duration::from_secs(5),
                // Small, so that the fuzzer reaches the rate limit too.
                aggressive_mode_responses_per_second: 4,
                aggressive_mode_responses_per_address: 2,
            },
            own_addresses: Vec::new(),
            sha2_256_truncation_96: false,
        }
    }
}

/// The IKE SAs an engine with `config` may hold at once: the half-open responder SAs its
/// budget can hold, plus [`SAS_PER_PEER`] for each configured peer.
pub(crate) fn sa_bound(config: &Config) -> usize {
    half_open_bound(config) + SAS_PER_PEER * config.peers.len()
}

/// The most half-open responder SAs the budget of `config` holds.
fn half_open_bound(config: &Config) -> usize {
    ike::HalfOpenUsage { budget: config.limits.half_open_memory_budget, ..Default::default() }.max_entries()
}

/// The ACL rules (flows) of all policies, each of which an acquire may name.
fn rule_count(config: &Config) -> usize {
    config.policies.iter().map(|p| p.selectors.len()).sum()
}

/// Quick modes one IKE SA may have under way: those the peer starts are refused beyond
/// `Limits::max_quick_modes_per_sa`; ours are one per flow (an acquire for a flow already
/// being negotiated is a no-op) plus one rekey per flow.
pub(crate) fn quick_mode_bound(config: &Config) -> usize {
    config.limits.max_quick_modes_per_sa + 2 * rule_count(config)
}

/// The bytes [`Engine::buffered_bytes`] may report with `sas` IKE SAs: for each, the kept
/// message of its phase 1 and of each quick mode of [`quick_mode_bound`], once kept and once
/// queued for sending (a timer may resend them all at once; a DPD message and a keepalive
/// may join them), one partial message of at most `Limits::max_reassembly_bytes`, and one
/// waiting acquire per rule; plus one message answering an input that no SA owns (an error
/// notification).
pub(crate) fn buffered_bound(config: &Config, sas: usize) -> usize {
    let exchanges = 1 + quick_mode_bound(config) + 2;
    let per_sa = 2 * exchanges * MAX_MESSAGE
        + config.limits.max_reassembly_bytes
        + rule_count(config) * std::mem::size_of::<Acquire>();
    sas * per_sa + MAX_MESSAGE
}

/// What one run reached, for the replay test to check that a seed still goes where its name
/// says (counts of events over the whole run).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reached {
    /// `Event::IkeSaEstablished`, both engines.
    pub(crate) ike_established: usize,
    /// `Event::IpsecSaInstalled`, both engines.
    pub(crate) ipsec_installed: usize,
    /// `Event::IpsecSaExpired`, both engines (lifetime, rekey hand-over, IKE SA gone).
    pub(crate) ipsec_expired: usize,
    /// `Event::SasCleared` (dead peer, INITIAL-CONTACT), both engines.
    pub(crate) cleared: usize,
    /// `Event::PeerMoved` (NAT-T float or rebinding), both engines.
    pub(crate) peer_moved: usize,
    /// `Event::Failed`, both engines.
    pub(crate) failed: usize,
    /// Most IKE SAs one engine held at once.
    pub(crate) most_ike_sas: usize,
    /// Deliveries that changed the receiver's authenticated state (genuine messages in order:
    /// the invariant on forged and replayed ones compares against these changes).
    pub(crate) authenticated_changes: usize,
    /// Most half-open SAs one engine evicted to stay within its budget.
    pub(crate) half_open_evicted: u64,
}

/// The actions, by opcode: the opcode byte modulo [`Action::COUNT`], in declaration order
/// (`Action::Flush as u8` is its opcode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Deliver the datagram at the head of the queue.
    Deliver,
    /// Lose it.
    Drop,
    /// Queue a copy of it at the tail (it is delivered twice, later).
    Duplicate,
    /// Move it to the tail (reordering).
    Reorder,
    /// Operands: u16 position, u8 mask. XOR one byte (mask 0 becomes 0x01), then deliver.
    Mutate,
    /// Operand: u16 length. Cut it to `length % (len + 1)` bytes, then deliver.
    Truncate,
    /// Operands: u16 length, bytes. Deliver these bytes instead, between the same addresses.
    Replace,
    /// Operands: u8 route, u16 port, u16 length, bytes. Inject a datagram (see
    /// [`Harness::inject`]).
    Inject,
    /// Operands: u8 index, u8 port change. Deliver again a datagram seen earlier.
    Replay,
    /// Operands: u8 unit, u8 amount. Advance time by amount × (1 ms, 100 ms, 1 s or 1 min).
    Advance,
    /// Advance time to the earlier of the two engines' timers.
    NextTimer,
    /// Operand: u8. Bit 0 picks the engine (A, B), the rest the rule to acquire.
    Acquire,
    /// Operand: u8 engine. Report traffic on every IPsec SA of that engine (`handle_traffic`).
    Traffic,
    /// Deliver everything queued, and what that provokes, up to [`MAX_FLUSH`] datagrams.
    Flush,
    /// Operand: u8 offset. A NAT in front of A adds `offset` to A's source ports and maps
    /// them back for B's replies; it forwards B's datagrams to 500 and 4500 (0: no NAT).
    Nat,
    /// Operands: u8 route, u32 message ID, u8 exchange, u8 next payload, u16 length, bytes.
    /// A forged message aimed at an SA the receiver holds (see [`Harness::forge`]).
    Forge,
    /// Operands: u8 index, u8 port change. Deliver again one of the first [`ARCHIVE`]
    /// datagrams of the run.
    ReplayOld,
    /// Operands: u8 kind, u16 size. An oversized message (see [`Harness::oversize`]).
    Oversize,
}

impl Action {
    /// Every action, in opcode order.
    const ALL: [Self; 18] = [
        Self::Deliver,
        Self::Drop,
        Self::Duplicate,
        Self::Reorder,
        Self::Mutate,
        Self::Truncate,
        Self::Replace,
        Self::Inject,
        Self::Replay,
        Self::Advance,
        Self::NextTimer,
        Self::Acquire,
        Self::Traffic,
        Self::Flush,
        Self::Nat,
        Self::Forge,
        Self::ReplayOld,
        Self::Oversize,
    ];
    /// The number of opcodes.
    const COUNT: usize = Self::ALL.len();

    fn from_byte(byte: u8) -> Self {
        Self::ALL[usize::from(byte) % Self::COUNT]
    }
}

/// Reads the input: bytes past the end read as zero, so every input is valid.
struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&byte, rest)) => {
                self.bytes = rest;
                byte
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn bytes(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.bytes.split_at(len.min(self.bytes.len()));
        self.bytes = rest;
        taken
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A datagram on the harness network.
#[derive(Debug, Clone)]
struct Datagram {
    /// Towards engine B (else A).
    to_b: bool,
    /// The sender's address as the receiver sees it.
    from: SocketAddr,
    /// The receiver's address.
    to: SocketAddr,
    payload: Vec<u8>,
}

/// The two engines, the network between them and virtual time.
struct Harness {
    a: Engine,
    b: Engine,
    now: Instant,
    queue: VecDeque<Datagram>,
    history: VecDeque<Datagram>,
    /// The first [`ARCHIVE`] datagrams delivered.
    archive: Vec<Datagram>,
    /// Fingerprints (receiver and bytes) of the datagrams delivered so far.
    delivered: HashSet<u64>,
    /// The port offset of the NAT in front of A, if there is one.
    nat: Option<u16>,
    /// IKE SAs of A and B at the last check: SAs removed during a step may have left
    /// messages (Deletes, notifications) in the transmit queue.
    sas_before: [usize; 2],
    reached: Reached,
}

/// Runs one fuzz input; panics when an invariant breaks. Returns what the run reached.
pub(crate) fn run(data: &[u8]) -> Reached {
    let mut input = Input { bytes: data };
    let scenario = Scenario::from_byte(input.u8());
    let mut harness = Harness::new(scenario);
    while !input.is_empty() {
        let action = Action::from_byte(input.u8());
        harness.act(action, &mut input);
        harness.check_and_collect();
    }
    harness.reached
}

/// The origin of virtual time. Only durations added to it matter; the engine never reads the
/// clock itself.
#[allow(clippy::disallowed_methods)] // ike's sans-IO ban covers its tests; this is the one real instant
fn epoch() -> Instant {
    Instant::now()
}

impl Harness {
    fn new(scenario: Scenario) -> Self {
        Self {
            a: Engine::new(scenario.config(true), Box::new(FuzzRng(1))),
            b: Engine::new(scenario.config(false), Box::new(FuzzRng(2))),
            now: epoch(),
            queue: VecDeque::new(),
            history: VecDeque::new(),
            archive: Vec::new(),
            delivered: HashSet::new(),
            nat: None,
            sas_before: [0; 2],
            reached: Reached::default(),
        }
    }

    fn act(&mut self, action: Action, input: &mut Input<'_>) {
        match action {
            Action::Advance
            | Action::NextTimer
            | Action::Acquire
            | Action::Traffic
            | Action::Flush
            | Action::Nat => self.act_on_engines(action, input),
            Action::Forge | Action::ReplayOld | Action::Oversize => self.act_as_attacker(action, input),
            _ => self.act_on_network(action, input),
        }
    }

    /// The actions on datagrams: the head of the queue, injected ones, replayed ones.
    fn act_on_network(&mut self, action: Action, input: &mut Input<'_>) {
        match action {
            Action::Deliver => {
                if let Some(datagram) = self.queue.pop_front() {
                    self.deliver(datagram);
                }
            }
            Action::Drop => {
                self.queue.pop_front();
            }
            Action::Duplicate => {
                if let Some(datagram) = self.queue.front().cloned() {
                    self.queue.push_back(datagram);
                }
            }
            Action::Reorder => {
                if let Some(datagram) = self.queue.pop_front() {
                    self.queue.push_back(datagram);
                }
            }
            Action::Mutate => {
                let (position, mask) = (usize::from(input.u16()), input.u8().max(1));
                if let Some(mut datagram) = self.queue.pop_front() {
                    let len = datagram.payload.len();
                    if let Some(byte) = datagram.payload.get_mut(position % len.max(1)) {
                        *byte ^= mask;
                    }
                    self.deliver(datagram);
                }
            }
            Action::Truncate => {
                let length = usize::from(input.u16());
                if let Some(mut datagram) = self.queue.pop_front() {
                    let len = datagram.payload.len();
                    datagram.payload.truncate(length % (len + 1));
                    self.deliver(datagram);
                }
            }
            Action::Replace => {
                let length = usize::from(input.u16());
                let payload = input.bytes(length).to_vec();
                if let Some(datagram) = self.queue.pop_front() {
                    self.deliver(Datagram { payload, ..datagram });
                }
            }
            Action::Inject => {
                let (route, port, length) = (input.u8(), input.u16(), usize::from(input.u16()));
                let payload = input.bytes(length).to_vec();
                self.inject(route, port, payload);
            }
            Action::Replay => {
                let (index, port_change) = (usize::from(input.u8()), input.u8());
                if let Some(mut datagram) = self.history.get(index % self.history.len().max(1)).cloned() {
                    let port = datagram.from.port().wrapping_add(u16::from(port_change));
                    datagram.from.set_port(port);
                    self.deliver(datagram);
                }
            }
            // `act` sends the others to `act_on_engines`.
            _ => {}
        }
    }

    /// The actions on the engines and the path between them: time, acquires, traffic,
    /// delivering everything, the NAT.
    fn act_on_engines(&mut self, action: Action, input: &mut Input<'_>) {
        match action {
            Action::Advance => {
                let unit = match input.u8() % 4 {
                    0 => Duration::from_millis(1),
                    1 => Duration::from_millis(100),
                    2 => Duration::from_secs(1),
                    _ => Duration::from_secs(60),
                };
                self.advance_to(self.now + unit * u32::from(input.u8()));
            }
            Action::NextTimer => {
                let next = [self.a.poll_timeout(), self.b.poll_timeout()].into_iter().flatten().min();
                if let Some(at) = next {
                    self.advance_to(at);
                }
            }
            Action::Acquire => {
                let choice = input.u8();
                let engine = if choice & 1 == 0 { &mut self.a } else { &mut self.b };
                let rules = &engine.config().policies[0].selectors;
                let selector = rules[usize::from(choice >> 1) % rules.len()];
                engine.handle_acquire(self.now, Acquire { policy: 0, selector });
            }
            Action::Traffic => {
                let engine = if input.u8() & 1 == 0 { &mut self.a } else { &mut self.b };
                let connections: Vec<_> = engine.ipsec_sas(self.now).map(|pair| pair.connection).collect();
                for connection in connections {
                    engine.handle_traffic(self.now, connection);
                }
            }
            Action::Flush => {
                for _ in 0..MAX_FLUSH {
                    let Some(datagram) = self.queue.pop_front() else { break };
                    self.deliver(datagram);
                    self.check_and_collect();
                }
            }
            Action::Nat => {
                self.nat = match input.u8() {
                    0 => None,
                    offset => Some(u16::from(offset)),
                };
            }
            // `act` sends the others to `act_on_network`.
            _ => {}
        }
    }

    /// The attacker's actions: forged, late-replayed and oversized messages.
    fn act_as_attacker(&mut self, action: Action, input: &mut Input<'_>) {
        match action {
            Action::Forge => {
                let (route, message_id, exchange) = (input.u8(), input.u32(), input.u8());
                let (next_payload, length) = (input.u8(), usize::from(input.u16()));
                let body = input.bytes(length).to_vec();
                self.forge(route, message_id, [exchange, next_payload], body);
            }
            Action::ReplayOld => {
                let (index, port_change) = (usize::from(input.u8()), input.u8());
                if let Some(mut datagram) = self.archive.get(index % self.archive.len().max(1)).cloned() {
                    let port = datagram.from.port().wrapping_add(u16::from(port_change));
                    datagram.from.set_port(port);
                    self.deliver(datagram);
                }
            }
            Action::Oversize => {
                let (kind, size) = (input.u8(), usize::from(input.u16()));
                self.oversize(kind, size);
            }
            // `act` sends the others elsewhere.
            _ => {}
        }
    }

    /// A forged message aimed at an SA of the receiver. `route` bit 0: to B (else A); bits
    /// 1-2: from the SA's peer address and port, from that address with another port, from a
    /// random address, or from that address and port 4500; bit 3: the E flag set and the body
    /// garbage (padded to the cipher block), else a cleartext body of the fuzzer's payloads;
    /// bits 4-7 pick the SA (with no SA: fresh cookies, as a first message). `kind`: the
    /// exchange (ID protection, aggressive, informational, quick mode, or the byte itself)
    /// and the header's next payload. No such message can be authenticated: the fuzzer has
    /// no key.
    fn forge(&mut self, route: u8, message_id: u32, [exchange, next_payload]: [u8; 2], mut body: Vec<u8>) {
        let to_b = route & 1 != 0;
        let (own, other) = if to_b { (FW_B, FW_A) } else { (FW_A, FW_B) };
        let engine = if to_b { &self.b } else { &self.a };
        let sas: Vec<_> =
            engine.ike_sas().map(|sa| (sa.cookies.0 .0, sa.cookies.1 .0, sa.remote, sa.local)).collect();
        let id = message_id.to_be_bytes();
        let fresh = ([id[0], id[1], id[2], id[3], 0x5a, 0x5a, 0x5a, 0x5a], [0; 8]);
        let (initiator, responder, remote, local) =
            sas.get(usize::from(route >> 4) % sas.len().max(1)).copied().unwrap_or((
                fresh.0,
                fresh.1,
                SocketAddr::new(IpAddr::V4(other), 500),
                SocketAddr::new(IpAddr::V4(own), 500),
            ));
        let from = match (route >> 1) & 3 {
            0 => remote,
            1 => SocketAddr::new(remote.ip(), 1024 + (message_id % 60_000) as u16),
            2 => SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, id[2])),
                u16::from_be_bytes([id[1], id[3]]),
            ),
            _ => SocketAddr::new(remote.ip(), 4500),
        };
        let encrypted = route & 8 != 0;
        if encrypted {
            body.resize(body.len().div_ceil(16).max(1) * 16, 0);
        }
        let exchange = match exchange % 5 {
            0 => 2,
            1 => 4,
            2 => 5,
            3 => 32,
            _ => exchange,
        };
        let mut message = isakmp_header(initiator, responder, next_payload, exchange, encrypted, message_id);
        message.extend_from_slice(&body);
        set_length(&mut message);
        self.deliver_unauthenticated(Datagram { to_b, from, to: local, payload: message }, "forged");
    }

    /// An oversized message, by `kind`: 0, the datagram at the head of the queue with `size`
    /// bytes appended and its header's length grown to match; 1, that datagram with a header
    /// that claims `size` bytes; 2, a main-mode first message from the other engine's address
    /// (bit 2 of `kind`: from a random address), with an SA payload of `size` bytes at most
    /// [`MAX_PAYLOAD`]. The first two are genuine messages made larger (the invariant for
    /// genuine deliveries holds: the original is taken off the queue); the third is fabricated.
    fn oversize(&mut self, kind: u8, size: usize) {
        match kind % 3 {
            0 => {
                let Some(mut datagram) = self.queue.pop_front() else { return };
                datagram.payload.resize(datagram.payload.len() + size, 0xa5);
                set_length(&mut datagram.payload);
                self.deliver(datagram);
            }
            1 => {
                let Some(mut datagram) = self.queue.pop_front() else { return };
                if let Some(length) = datagram.payload.get_mut(24..28) {
                    length.copy_from_slice(&(size as u32).to_be_bytes());
                }
                self.deliver(datagram);
            }
            _ => {
                let to_b = kind & 8 != 0;
                let (own, other) = if to_b { (FW_B, FW_A) } else { (FW_A, FW_B) };
                let [high, low] = (size as u16).to_be_bytes();
                let from = if kind & 4 != 0 {
                    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, low)), u16::from(high) + 1024)
                } else {
                    SocketAddr::new(IpAddr::V4(other), 500)
                };
                let cookie = [0x0f, 0x1e, 0x2d, 0x3c, high, low, kind, 1];
                let mut message = isakmp_header(cookie, [0; 8], 1, 2, false, 0);
                let payload_len = size.clamp(12, MAX_PAYLOAD);
                // SA payload: no next payload, its length, the IPsec DOI, SIT_IDENTITY_ONLY, and
                // then zeros where proposals would be.
                message.extend_from_slice(&[0, 0]);
                message.extend_from_slice(&(payload_len as u16).to_be_bytes());
                message.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
                message.resize(28 + payload_len, 0);
                set_length(&mut message);
                let to = SocketAddr::new(IpAddr::V4(own), 500);
                self.deliver_unauthenticated(Datagram { to_b, from, to, payload: message }, "oversized");
            }
        }
    }

    /// Hands `datagram` to its engine (and keeps it for replays). Only its first delivery may
    /// change the receiver's authenticated state: the same bytes again (a replay, from any
    /// port, at any time later, or a retransmission) change nothing.
    fn deliver(&mut self, datagram: Datagram) {
        let engine = if datagram.to_b { &mut self.b } else { &mut self.a };
        let before = authenticated_state(engine, self.now);
        engine.handle_datagram(self.now, datagram.to, datagram.from, &datagram.payload);
        let after = authenticated_state(engine, self.now);
        let first = self.delivered.insert(fingerprint(&datagram));
        if before != after {
            self.reached.authenticated_changes += 1;
            assert!(
                first,
                "a datagram delivered before changed authenticated state (a replay): {datagram:?}\n\
                 before: {before:#?}\nafter: {after:#?}"
            );
        }
        self.keep(datagram);
    }

    /// Hands a datagram no one could have authenticated to its engine: the receiver's
    /// authenticated state must be the same afterwards.
    fn deliver_unauthenticated(&mut self, datagram: Datagram, what: &str) {
        let engine = if datagram.to_b { &mut self.b } else { &mut self.a };
        let before = authenticated_state(engine, self.now);
        engine.handle_datagram(self.now, datagram.to, datagram.from, &datagram.payload);
        let after = authenticated_state(engine, self.now);
        assert_eq!(before, after, "a {what} datagram changed authenticated state: {datagram:?}");
        self.keep(datagram);
    }

    /// Keeps a delivered datagram for the replay actions.
    fn keep(&mut self, datagram: Datagram) {
        if self.archive.len() < ARCHIVE {
            self.archive.push(datagram.clone());
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(datagram);
    }

    /// An arbitrary datagram. `route` bit 0: to B (else A); bits 1-2: from the other engine's
    /// address, from an unknown address, or from the other engine's address with a port
    /// `port` (else 500); bit 3: to port 4500 (else 500).
    fn inject(&mut self, route: u8, port: u16, payload: Vec<u8>) {
        let to_b = route & 1 != 0;
        let (own, other) = if to_b { (FW_B, FW_A) } else { (FW_A, FW_B) };
        let from = match (route >> 1) & 3 {
            0 => SocketAddr::new(IpAddr::V4(other), 500),
            1 => SocketAddr::new(IpAddr::V4(STRANGER), port),
            2 => SocketAddr::new(IpAddr::V4(other), port),
            _ => SocketAddr::new(IpAddr::V4(other), 4500),
        };
        let to = SocketAddr::new(IpAddr::V4(own), if route & 8 != 0 { 4500 } else { 500 });
        self.deliver(Datagram { to_b, from, to, payload });
    }

    fn advance_to(&mut self, at: Instant) {
        self.now = self.now.max(at);
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
    }

    /// Checks both engines' invariants, then moves what they sent onto the network and counts
    /// their events. The buffered bytes are read first, with this step's datagrams still
    /// queued in the engine.
    fn check_and_collect(&mut self) {
        for (engine, sas_before) in [&self.a, &self.b].into_iter().zip(&mut self.sas_before) {
            *sas_before = check(engine, self.now, *sas_before, &mut self.reached);
        }
        while let Some(t) = self.a.poll_transmit() {
            // A's source port through the NAT, if any; the payload is what B receives.
            let mut from = t.local;
            if let Some(offset) = self.nat {
                from.set_port(from.port().wrapping_add(offset));
            }
            self.send(Datagram { to_b: true, from, to: t.remote, payload: t.payload });
        }
        while let Some(t) = self.b.poll_transmit() {
            let mut to = t.remote;
            if let Some(offset) = self.nat {
                // The NAT's mapped ports lead back to A, and so do 500 and 4500 themselves
                // (forwarded, so that B can still start an exchange); nothing else does.
                match to.port().checked_sub(offset) {
                    Some(port @ (500 | 4500)) => to.set_port(port),
                    _ if matches!(to.port(), 500 | 4500) => {}
                    _ => continue,
                }
            }
            self.send(Datagram { to_b: false, from: t.local, to, payload: t.payload });
        }
        for engine in [&mut self.a, &mut self.b] {
            while let Some(event) = engine.poll_event() {
                count(&event, &mut self.reached);
            }
        }
    }

    fn send(&mut self, datagram: Datagram) {
        if self.queue.len() == MAX_IN_FLIGHT {
            self.queue.pop_front();
        }
        self.queue.push_back(datagram);
    }
}

/// An ISAKMP header (RFC 2408 §3.1), length 28 until [`set_length`] sets it.
fn isakmp_header(
    initiator: [u8; 8],
    responder: [u8; 8],
    next_payload: u8,
    exchange: u8,
    encrypted: bool,
    message_id: u32,
) -> Vec<u8> {
    let mut header = Vec::with_capacity(28);
    header.extend_from_slice(&initiator);
    header.extend_from_slice(&responder);
    header.extend_from_slice(&[next_payload, 0x10, exchange, u8::from(encrypted)]);
    header.extend_from_slice(&message_id.to_be_bytes());
    header.extend_from_slice(&28u32.to_be_bytes());
    header
}

/// Sets an ISAKMP message's length field to its length.
fn set_length(message: &mut [u8]) {
    let len = message.len() as u32;
    if let Some(field) = message.get_mut(24..28) {
        field.copy_from_slice(&len.to_be_bytes());
    }
}

/// The receiver and the bytes of a datagram, hashed.
fn fingerprint(datagram: &Datagram) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (datagram.to_b, &datagram.payload).hash(&mut hasher);
    hasher.finish()
}

/// What only an authenticated message may change: each established IKE SA (its cookies,
/// both addresses with their ports, when it expires, its state, whether it was replaced and
/// whether the peer is behind a NAT) and each IPsec SA pair (SPIs, addresses and ports, when
/// it was installed, the time left, its state), in a comparable form.
fn authenticated_state(engine: &Engine, now: Instant) -> Vec<String> {
    let mut state: Vec<String> = engine
        .ike_sas()
        .filter(|sa| sa.expires_at.is_some())
        .map(|sa| {
            format!(
                "IKE SA {:?} {:02x?} {:02x?} {} {} {:?} {} replaced {} behind NAT {}",
                sa.connection,
                sa.cookies.0 .0,
                sa.cookies.1 .0,
                sa.local,
                sa.remote,
                sa.expires_at,
                sa.state,
                sa.replaced,
                sa.remote_behind_nat
            )
        })
        .collect();
    state.extend(engine.ipsec_sas(now).map(|pair| {
        format!(
            "IPsec SA {:?} in {:08x} out {:08x} AH {:x?} {} {} {:?} {:?} {:?}",
            pair.connection,
            pair.inbound_spi,
            pair.outbound_spi,
            pair.ah_spis,
            pair.local,
            pair.remote,
            pair.installed_at,
            pair.remaining,
            pair.state
        )
    }));
    state
}

/// The invariants of one engine (see the module documentation), which held `sas_before` IKE
/// SAs at the previous check; returns how many it holds now.
fn check(engine: &Engine, now: Instant, sas_before: usize, reached: &mut Reached) -> usize {
    let config = engine.config();
    let limits = config.limits;
    let sas: Vec<_> = engine.ike_sas().collect();
    reached.most_ike_sas = reached.most_ike_sas.max(sas.len());
    let half_open = sas.iter().filter(|sa| !sa.initiator && sa.expires_at.is_none()).count();
    let usage = engine.half_open();
    assert_eq!(usage.entries, half_open, "half-open responder SAs: {usage:?} {sas:#?}");
    assert!(usage.bytes <= limits.half_open_memory_budget || usage.entries <= 1, "{usage:?}");
    assert!(half_open <= half_open_bound(config), "{half_open} half-open responder SAs: {sas:#?}");
    reached.half_open_evicted = reached.half_open_evicted.max(engine.statistics().half_open_evicted);
    assert!(
        sas.len() <= sa_bound(config),
        "{} IKE SAs over the bound {}: {sas:#?}",
        sas.len(),
        sa_bound(config)
    );
    for sa in &sas {
        assert!(
            sa.quick_modes_in_progress <= quick_mode_bound(config),
            "{} quick modes in progress on one IKE SA: {sa:#?}",
            sa.quick_modes_in_progress
        );
    }
    let pairs = engine.ipsec_sas(now).count();
    let pair_bound = sa_bound(config) * PAIRS_PER_FLOW * rule_count(config);
    assert!(pairs <= pair_bound, "{pairs} IPsec SA pairs over the bound {pair_bound}");
    let buffered = engine.buffered_bytes();
    let bound = buffered_bound(config, sas.len().max(sas_before));
    assert!(buffered <= bound, "{buffered} bytes buffered over the bound {bound} with {} IKE SAs", sas.len());
    sas.len()
}

fn count(event: &Event, reached: &mut Reached) {
    let counter = match event {
        Event::IkeSaEstablished { .. } => &mut reached.ike_established,
        Event::IpsecSaInstalled(_) => &mut reached.ipsec_installed,
        Event::IpsecSaExpired { .. } => &mut reached.ipsec_expired,
        Event::SasCleared { .. } => &mut reached.cleared,
        Event::PeerMoved { .. } => &mut reached.peer_moved,
        Event::Failed(_) => &mut reached.failed,
        _ => return,
    };
    *counter += 1;
}
