//! Test harness: two engines joined by an in-memory network with virtual time, latency and
//! seeded faults (loss, duplication, reordering), in the manner of quinn-proto's `Pair`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crypto::{DhGroup, EspCipher, HashAlgorithm, Integrity, Phase1Cipher, SecretBytes, SecureRandom};

use crate::{
    Acquire, AuthMethod, Config, EncapsulationMode, Engine, Event, ExchangeMode, IkeProposal, IpsecProposal,
    IpsecProtocols, Limits, PeerConfig, PolicyConfig, PolicyId, Subnet, TrafficSelector, Transmit,
};

/// A deterministic generator (SplitMix64). Not secure; tests only.
pub(crate) struct TestRng(pub(crate) u64);

impl SecureRandom for TestRng {
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

pub(crate) const FW_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub(crate) const FW_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub(crate) const NET_A: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 0);
pub(crate) const NET_B: Ipv4Addr = Ipv4Addr::new(10, 2, 2, 0);

/// One gateway's settings in the reference scenario, to be tweaked by each test.
#[derive(Clone)]
pub(crate) struct Gateway {
    pub(crate) local: Ipv4Addr,
    pub(crate) remote: Ipv4Addr,
    pub(crate) inside: Ipv4Addr,
    pub(crate) far: Ipv4Addr,
    pub(crate) psk: &'static str,
    pub(crate) ike: Vec<IkeProposal>,
    pub(crate) ipsec: Vec<IpsecProposal>,
    pub(crate) pfs: Option<DhGroup>,
    pub(crate) remote_id: Option<crate::IdentityConfig>,
    pub(crate) local_id: Option<crate::IdentityConfig>,
    pub(crate) limits: Limits,
    /// IPsec SA lifetime (`sa duration time-based`).
    pub(crate) lifetime: Duration,
    /// IPsec SA traffic lifetime (`sa duration traffic-based`).
    pub(crate) lifetime_kilobytes: Option<u64>,
    /// The phase-1 exchange this gateway initiates.
    pub(crate) mode: ExchangeMode,
    /// `PeerConfig::accept_aggressive_mode`.
    pub(crate) accept_aggressive_from_peer: bool,
    pub(crate) nat_traversal: bool,
    /// `PeerConfig::force_encapsulation`.
    pub(crate) force_encapsulation: bool,
    pub(crate) dpd: Option<crate::DpdConfig>,
    /// The policy's ACL rules; empty means the one rule `selector()`.
    pub(crate) rules: Vec<TrafficSelector>,
    /// Certificate authentication material (`tests/certs.rs`).
    pub(crate) certificate: Option<std::sync::Arc<crate::CertificateAuth>>,
}

/// The origin of a test's virtual clock. Tests only add durations to it; the engine never reads
/// the clock itself (the sans-IO ban in clippy.toml), so any instant serves.
#[allow(clippy::disallowed_methods)] // the one place a test takes a real instant, as its origin
pub(crate) fn epoch() -> Instant {
    Instant::now()
}

pub(crate) fn ike(encryption: Phase1Cipher, hash: HashAlgorithm, group: DhGroup) -> IkeProposal {
    IkeProposal {
        encryption,
        hash,
        auth_method: AuthMethod::PreSharedKey,
        group,
        lifetime: Duration::from_secs(86_400),
    }
}

pub(crate) fn esp(encryption: EspCipher, integrity: Option<Integrity>) -> IpsecProposal {
    IpsecProposal {
        protocols: IpsecProtocols::Esp { encryption, integrity },
        mode: EncapsulationMode::Tunnel,
    }
}

impl Gateway {
    /// FW_A of the reference scenario with the proposals (DES / MD5 for ESP).
    pub(crate) fn fw_a() -> Self {
        Self {
            local: FW_A,
            remote: FW_B,
            inside: NET_A,
            far: NET_B,
            psk: "tiandihui2",
            ike: vec![IkeProposal::recommended()],
            ipsec: vec![esp(EspCipher::Des, Some(Integrity::HmacMd5_96))],
            pfs: None,
            remote_id: None,
            local_id: None,
            limits: Limits { retransmit_initial: Duration::from_millis(500), ..Limits::default() },
            lifetime: Duration::from_secs(3600),
            lifetime_kilobytes: None,
            mode: ExchangeMode::Main,
            accept_aggressive_from_peer: false,
            nat_traversal: true,
            force_encapsulation: false,
            dpd: None,
            rules: Vec::new(),
            certificate: None,
        }
    }

    /// FW_B, the mirror image.
    pub(crate) fn fw_b() -> Self {
        Self { local: FW_B, remote: FW_A, inside: NET_B, far: NET_A, ..Self::fw_a() }
    }

    pub(crate) fn selector(&self) -> TrafficSelector {
        TrafficSelector::between(Subnet::new(self.inside, 24), Subnet::new(self.far, 24))
    }

    pub(crate) fn config(&self) -> Config {
        Config {
            peers: vec![PeerConfig {
                name: "peer".into(),
                local_address: IpAddr::V4(self.local),
                remote_address: Some(IpAddr::V4(self.remote)),
                exchange_mode: self.mode,
                proposals: self.ike.clone(),
                pre_shared_key: SecretBytes::from_slice(self.psk.as_bytes()),
                site_keys: Vec::new(),
                local_id: self.local_id.clone(),
                remote_id: self.remote_id.clone(),
                nat_traversal: self.nat_traversal,
                force_encapsulation: self.force_encapsulation,
                dpd: self.dpd,
                accept_aggressive_mode: self.accept_aggressive_from_peer,
                certificate: self.certificate.clone(),
            }],
            policies: vec![PolicyConfig {
                id: PolicyId { name: "policy1".into(), sequence: 1 },
                peer: 0,
                selectors: if self.rules.is_empty() { vec![self.selector()] } else { self.rules.clone() },
                proposals: self.ipsec.clone(),
                pfs: self.pfs,
                lifetime: self.lifetime,
                lifetime_kilobytes: self.lifetime_kilobytes,
                template: None,
            }],
            limits: self.limits,
            own_addresses: Vec::new(),
            sha2_256_truncation_96: false,
        }
    }
}

/// Seeded network faults, each a probability in percent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Faults {
    pub(crate) loss: u8,
    pub(crate) duplicate: u8,
    /// Extra random delay of up to this much, which reorders datagrams.
    pub(crate) jitter: Duration,
}

pub(crate) struct Side {
    pub(crate) engine: Engine,
    pub(crate) address: SocketAddr,
    pub(crate) events: Vec<Event>,
    /// Every datagram this side sent.
    pub(crate) sent: Vec<Vec<u8>>,
    /// The same, with addresses and flags, as the engine emitted them (before any NAT).
    pub(crate) transmits: Vec<Transmit>,
}

/// A NAT in front of A that rewrites A's source port by adding `offset` (500 → 500 + offset,
/// 4500 → 4500 + offset) and translates replies back, as a NAPT would.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Nat {
    pub(crate) offset: u16,
}

/// Rewrites or drops a datagram on its way (`true` = from A to B); return false to drop.
pub(crate) type Alter = Box<dyn FnMut(bool, &mut Transmit) -> bool>;

pub(crate) struct Pair {
    pub(crate) a: Side,
    pub(crate) b: Side,
    pub(crate) now: Instant,
    pub(crate) latency: Duration,
    pub(crate) faults: Faults,
    fault_rng: TestRng,
    /// (deliver at, to side b?, datagram)
    in_flight: Vec<(Instant, bool, Transmit)>,
    /// When false, b has vanished: nothing reaches it and it sends nothing.
    pub(crate) b_alive: bool,
    /// A NAT in front of A, if any.
    pub(crate) nat: Option<Nat>,
    /// A hook that sees every datagram before the network does.
    pub(crate) alter: Option<Alter>,
}

impl Pair {
    pub(crate) fn new(a: &Gateway, b: &Gateway, seed: u64) -> Self {
        let now = epoch();
        let mut pair = Self {
            a: Side {
                engine: Engine::new(a.config(), Box::new(TestRng(seed))),
                address: SocketAddr::new(IpAddr::V4(a.local), 500),
                events: Vec::new(),
                sent: Vec::new(),
                transmits: Vec::new(),
            },
            b: Side {
                engine: Engine::new(b.config(), Box::new(TestRng(seed ^ 0x5555_5555))),
                address: SocketAddr::new(IpAddr::V4(b.local), 500),
                events: Vec::new(),
                sent: Vec::new(),
                transmits: Vec::new(),
            },
            now,
            latency: Duration::from_millis(10),
            faults: Faults::default(),
            fault_rng: TestRng(seed.rotate_left(17)),
            in_flight: Vec::new(),
            b_alive: true,
            nat: None,
            alter: None,
        };
        // Certificates made by the tests are valid around `test_pki::NOW`.
        for side in [&mut pair.a, &mut pair.b] {
            side.engine.set_wall_clock(now, super::test_pki::NOW as u64);
        }
        pair
    }

    fn percent(&mut self) -> u8 {
        let mut b = [0u8; 1];
        self.fault_rng.fill(&mut b);
        b[0] % 100
    }

    /// Moves everything both engines want to send onto the wire and collects their events.
    fn collect(&mut self) {
        for to_b in [true, false] {
            loop {
                let side = if to_b { &mut self.a } else { &mut self.b };
                let Some(mut t) = side.engine.poll_transmit() else { break };
                side.sent.push(t.payload.clone());
                side.transmits.push(t.clone());
                // The driver's framing: IKE on 4500 carries the non-ESP marker, nothing else does.
                assert_eq!(t.non_esp_marker, t.local.port() == 4500 && !t.nat_keepalive, "{t:?}");
                if !to_b && !self.b_alive {
                    continue;
                }
                if let Some(alter) = self.alter.as_mut() {
                    if !alter(to_b, &mut t) {
                        continue;
                    }
                }
                if let (true, Some(nat)) = (to_b, self.nat) {
                    t.local.set_port(t.local.port() + nat.offset);
                }
                if self.percent() < self.faults.loss {
                    continue;
                }
                let copies = if self.percent() < self.faults.duplicate { 2 } else { 1 };
                for _ in 0..copies {
                    let mut jitter = [0u8; 2];
                    self.fault_rng.fill(&mut jitter);
                    let extra = if self.faults.jitter.is_zero() {
                        Duration::ZERO
                    } else {
                        self.faults.jitter.mul_f64(f64::from(u16::from_le_bytes(jitter)) / 65535.0)
                    };
                    self.in_flight.push((self.now + self.latency + extra, to_b, t.clone()));
                }
            }
        }
        while let Some(e) = self.a.engine.poll_event() {
            self.a.events.push(e);
        }
        while let Some(e) = self.b.engine.poll_event() {
            self.b.events.push(e);
        }
    }

    /// One step: jump to the next delivery or timer and process everything due then.
    /// Returns false when nothing is left to do.
    pub(crate) fn step(&mut self) -> bool {
        self.collect();
        let next_delivery = self.in_flight.iter().map(|(at, _, _)| *at).min();
        let next_timer =
            [self.a.engine.poll_timeout(), self.b.engine.poll_timeout()].into_iter().flatten().min();
        let Some(next) = [next_delivery, next_timer].into_iter().flatten().min() else { return false };
        self.now = self.now.max(next);
        let now = self.now;
        let mut due: Vec<(Instant, bool, Transmit)> = Vec::new();
        self.in_flight.retain(|item| {
            if item.0 <= now {
                due.push(item.clone());
                false
            } else {
                true
            }
        });
        due.sort_by_key(|(at, _, _)| *at);
        for (_, to_b, t) in due {
            if to_b {
                if self.b_alive {
                    self.b.engine.handle_datagram(now, t.remote, t.local, &t.payload);
                }
            } else {
                let mut to = t.remote;
                if let Some(nat) = self.nat {
                    // Only mapped ports get through the NAT back to A.
                    match to.port().checked_sub(nat.offset) {
                        Some(port @ (500 | 4500)) => to.set_port(port),
                        _ => continue,
                    }
                }
                self.a.engine.handle_datagram(now, to, t.local, &t.payload);
            }
        }
        self.a.engine.handle_timeout(now);
        self.b.engine.handle_timeout(now);
        self.collect();
        true
    }

    /// When the next delivery or timer is due, after moving what the engines want to send
    /// onto the wire; for loops that must not step past a point in time.
    pub(crate) fn next_event(&mut self) -> Option<Instant> {
        self.collect();
        let next_delivery = self.in_flight.iter().map(|(at, _, _)| *at).min();
        [next_delivery, self.a.engine.poll_timeout(), self.b.engine.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Steps until `done` holds, at most `max` steps (catches livelock).
    pub(crate) fn drive_until(&mut self, max: usize, mut done: impl FnMut(&Pair) -> bool) -> bool {
        for _ in 0..max {
            if done(self) {
                return true;
            }
            if !self.step() {
                return done(self);
            }
        }
        done(self)
    }

    /// Steps through everything due within `limit` of virtual time, then stops exactly there.
    pub(crate) fn advance(&mut self, limit: Duration) {
        let end = self.now + limit;
        loop {
            self.collect();
            let next = [
                self.in_flight.iter().map(|(at, _, _)| *at).min(),
                self.a.engine.poll_timeout(),
                self.b.engine.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(at) if at <= end => {
                    self.step();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// Steps while anything is pending, until virtual time passes `limit`.
    pub(crate) fn drive_for(&mut self, limit: Duration) {
        let end = self.now + limit;
        while self.now < end && self.step() {}
    }

    pub(crate) fn acquire_on_a(&mut self, selector: TrafficSelector) {
        self.a.engine.handle_acquire(self.now, Acquire { policy: 0, selector });
    }
}

pub(crate) fn installed(side: &Side) -> Vec<&crate::IpsecSaPair> {
    side.events
        .iter()
        .filter_map(|e| match e {
            Event::IpsecSaInstalled(p) => Some(&**p),
            _ => None,
        })
        .collect()
}

/// What an engine told its data plane to clear, and why (INITIAL-CONTACT, DPD, …).
pub(crate) fn cleared(events: &[Event]) -> Vec<(crate::ConnectionId, crate::ClearReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SasCleared { connection, reason, .. } => Some((*connection, reason.clone())),
            _ => None,
        })
        .collect()
}

/// Both sides have installed an IPsec SA pair.
pub(crate) fn tunnel_up(pair: &Pair) -> bool {
    !installed(&pair.a).is_empty() && !installed(&pair.b).is_empty()
}

pub(crate) fn failures(side: &Side) -> Vec<&crate::Failure> {
    side.events
        .iter()
        .filter_map(|e| match e {
            Event::Failed(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// Rewrites the NONCE payload of a cleartext message to `nonce` (for RFC 2409 §5's 8–256
/// bytes). Encrypted messages are left alone.
pub(crate) fn replace_cleartext_nonce(t: &mut Transmit, nonce: &[u8]) {
    let Ok(mut message) = isakmp::Message::parse(&t.payload) else { return };
    let isakmp::Body::Cleartext { payloads, .. } = &mut message.body else { return };
    for payload in payloads.iter_mut() {
        if let isakmp::Payload::Nonce(n) = payload {
            *n = nonce;
        }
    }
    t.payload = message.to_vec();
}

/// The reason a failure names: a phase 1 that gave up after only unauthenticated answers
/// (an error notify in clear, `sa::unauthenticated`) names the last of them.
pub(crate) fn cause(reason: &crate::FailureReason) -> &crate::FailureReason {
    match reason {
        crate::FailureReason::Timeout(crate::TimeoutFailure::OnlyUnauthenticated { last, .. }) => last,
        other => other,
    }
}
