//! The daemon's ESP data path: the glue between the sans-IO [`esp::DataPlane`], the IKE
//! engine's events, and the operating system (a TUN device, raw IP protocol 50 sockets and
//! the routes that steer protected traffic into the TUN).
//!
//! Packet flow:
//! - TUN → [`DataPath::outbound`]: the SPD decides; protected packets are sealed and sent as
//!   raw ESP (or ESP-in-UDP from our 4500 socket when the SA is UDP-encapsulated); a packet
//!   without an SA is queued and raises an acquire for the engine. Only the protected
//!   prefixes are routed into the TUN, so a bypass decision there is dropped and counted:
//!   clear traffic is forwarded by the kernel and never reaches us.
//! - raw socket / UDP 4500 → [`DataPath::inbound`]: opened and written to the TUN, from where
//!   the kernel forwards the inner packet to the inside network.
//!
//! Routes are added and removed with `ip route` (iproute2) for now: one `replace` per
//! protected remote prefix on start, `del` on exit ([`Routes`]'s `Drop`). A netlink crate can
//! replace that later; the command keeps the gateway free of `unsafe` and of another
//! dependency meanwhile.

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use esp::{
    Action, DataPlane, DataPlaneConfig, DropReason, Inbound, InboundSa, Outbound, PolicyIndex, Prefix, Rule,
    SaKeys, SaPair, SaParams, Selector, Spd, TrafficLimits, MAX_HEADROOM, MAX_TAILROOM,
};
use ike::{ConnectionId, Engine, IpsecSaPair, TrafficSelector};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// The TUN device's MTU: 1500 minus room for the outer IPv4 header, UDP encapsulation and the
/// largest ESP overhead, so inside hosts rarely need fragmentation or ICMP from us.
pub const TUN_MTU: u16 = 1400;

/// Inbound ESP packets held for an SA pair whose QM3 has not been handled yet (see
/// [`DataPath::inbound`]): enough for the first burst a queue flush sends, few enough that a
/// peer cannot make us hold much.
const EARLY_ESP_LIMIT: usize = 32;

/// How long such a packet is held at most; a quick mode that takes longer is lost anyway.
const EARLY_ESP_AGE: std::time::Duration = std::time::Duration::from_secs(2);

/// IP protocol number of ESP.
const IPPROTO_ESP: i32 = 50;

/// Largest packet read from the TUN or a socket.
const MAX_PACKET: usize = 65_535;

/// Converts an engine prefix to the data plane's. The data plane has prefixes only: an
/// address range (which only a peer can propose; [`DataPath::install`] refuses pairs with
/// one) becomes the smallest prefix that covers it.
fn prefix(addresses: &ike::Addresses) -> Prefix {
    match addresses {
        ike::Addresses::Subnet(subnet) => Prefix::from_mask(subnet.address, subnet.mask),
        ike::Addresses::Range { start, end } => {
            let length = (u32::from(*start) ^ u32::from(*end)).leading_zeros() as u8;
            Prefix::new(*start, length)
        }
    }
}

/// Converts an engine traffic selector (protocol 0 = any, ports `None` = any) to the data
/// plane's.
pub fn selector(ts: &TrafficSelector) -> Selector {
    let mut s = Selector::between(prefix(&ts.local), prefix(&ts.remote));
    s.protocol = (ts.protocol != 0).then_some(ts.protocol);
    s.local_ports = ts.local_port.map(esp::PortRange::single);
    s.remote_ports = ts.remote_port.map(esp::PortRange::single);
    s
}

/// Why the data plane cannot carry a negotiated pair, if it cannot.
fn unsupported_pair(pair: &IpsecSaPair) -> Option<&'static str> {
    if pair.suite.proposal.protocols.ah().is_some() || pair.ah.is_some() {
        return Some("AH is not implemented in the data plane");
    }
    if pair.selector.local.subnet().is_none() || pair.selector.remote.subnet().is_none() {
        return Some("the data plane cannot match an address range that is not a prefix");
    }
    None
}

/// The SPD of the engine's policies: one `Protect` rule per ACL permit rule, in policy and
/// rule order, and `Bypass` for the rest (VRP's default). Returns the engine selector of each
/// rule too, so an acquire raised on rule `i` names the engine's policy and flow.
pub fn spd(config: &ike::Config) -> (Spd, Vec<TrafficSelector>) {
    let mut rules = Vec::new();
    let mut selectors = Vec::new();
    for (index, policy) in config.policies.iter().enumerate() {
        for ts in &policy.selectors {
            rules.push(Rule { selector: selector(ts), action: Action::Protect(PolicyIndex(index)) });
            selectors.push(*ts);
        }
    }
    (Spd::new(rules, Action::Bypass), selectors)
}

/// The routes into the TUN for every protected remote prefix, removed on drop.
pub struct Routes {
    device: String,
    prefixes: Vec<Prefix>,
}

impl Routes {
    /// Adds (`ip route replace`) a route into `device` for each distinct prefix.
    pub fn add(device: &str, prefixes: impl IntoIterator<Item = Prefix>) -> Result<Self, String> {
        let mut routes = Self { device: device.to_owned(), prefixes: Vec::new() };
        for p in prefixes {
            if routes.prefixes.contains(&p) {
                continue;
            }
            ip_route("replace", &p, device)?;
            info!("route {p} via {device}");
            routes.prefixes.push(p);
        }
        Ok(routes)
    }
}

impl Routes {
    /// Adds the routes of `prefixes` that are not there yet (a reload). When one fails, the
    /// routes this call added are removed again, so a refused reload leaves the routes as
    /// they were.
    pub fn add_missing(&mut self, prefixes: &[Prefix]) -> Result<(), String> {
        let mut added: Vec<Prefix> = Vec::new();
        for p in prefixes {
            if self.prefixes.contains(p) || added.contains(p) {
                continue;
            }
            if let Err(e) = ip_route("replace", p, &self.device) {
                for q in &added {
                    if let Err(e) = ip_route("del", q, &self.device) {
                        warn!("{e}");
                    }
                }
                return Err(e);
            }
            info!("route {p} via {}", self.device);
            added.push(*p);
        }
        self.prefixes.extend(added);
        Ok(())
    }

    /// Removes the routes not in `keep` (a reload removed their policies).
    pub fn remove_except(&mut self, keep: &[Prefix]) {
        let device = self.device.clone();
        self.prefixes.retain(|p| {
            if keep.contains(p) {
                return true;
            }
            match ip_route("del", p, &device) {
                Ok(()) => info!("route {p} via {device} removed"),
                Err(e) => warn!("{e}"),
            }
            false
        });
    }

    /// The prefixes routed into the TUN.
    pub fn prefixes(&self) -> &[Prefix] {
        &self.prefixes
    }
}

impl Drop for Routes {
    fn drop(&mut self) {
        for p in &self.prefixes {
            if let Err(e) = ip_route("del", p, &self.device) {
                warn!("{e}");
            }
        }
    }
}

fn ip_route(verb: &str, p: &Prefix, device: &str) -> Result<(), String> {
    let target = p.to_string();
    let status = Command::new("ip")
        .args(["route", verb, &target, "dev", device])
        .status()
        .map_err(|e| format!("cannot run `ip route {verb} {target} dev {device}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`ip route {verb} {target} dev {device}` failed: {status}"))
    }
}

/// Creates the TUN device `name`, up, with [`TUN_MTU`] and no address (routes point at it).
pub fn open_tun(name: &str) -> Result<Arc<tun_rs::AsyncDevice>, String> {
    let device = tun_rs::DeviceBuilder::new()
        .name(name)
        .mtu(TUN_MTU)
        .enable(true)
        .build_async()
        .map_err(|e| format!("cannot create TUN device {name}: {e}"))?;
    Ok(Arc::new(device))
}

/// Reads the TUN device and hands each packet to the daemon loop.
pub async fn read_tun(tun: Arc<tun_rs::AsyncDevice>, tx: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        match tun.recv(&mut buf).await {
            Ok(n) => {
                if tx.send(buf[..n].to_vec()).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                warn!("TUN read: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// A raw IPv4 socket for ESP (protocol 50) bound to `local`. The kernel writes the outer IP
/// header on send; on receive it hands us the IP header in front of the ESP packet.
pub fn open_raw_esp(local: Ipv4Addr) -> Result<Arc<Socket>, String> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_ESP)))
        .map_err(|e| format!("cannot open a raw ESP socket: {e}"))?;
    socket
        .bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(local), 0)))
        .map_err(|e| format!("cannot bind the raw ESP socket to {local}: {e}"))?;
    Ok(Arc::new(socket))
}

/// Reads a raw ESP socket on a thread of its own (blocking reads; socket2 has no async
/// interface and the gateway takes no `unsafe` to register the descriptor with tokio), strips
/// the IPv4 header and hands `(source, ESP packet)` to the daemon loop.
pub fn spawn_raw_reader(socket: Arc<Socket>, tx: mpsc::Sender<(IpAddr, Vec<u8>)>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            let n = match (&*socket).read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    warn!("raw ESP receive: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                }
            };
            let packet = &buf[..n];
            let Some(&first) = packet.first() else { continue };
            let header_len = usize::from(first & 0x0f) * 4;
            if first >> 4 != 4 || n < header_len || n < 20 {
                continue;
            }
            let source = IpAddr::V4(Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]));
            if tx.blocking_send((source, packet[header_len..].to_vec())).is_err() {
                return;
            }
        }
    });
}

/// One installed pair, as the data path remembers it for removal and usage reports.
struct Pair {
    connection: ConnectionId,
    inbound_spi: u32,
    outbound_spi: u32,
    policy: PolicyIndex,
    /// The outer addresses on the wire (UDP 4500 ports when encapsulated).
    local: SocketAddr,
    remote: SocketAddr,
    udp_encapsulated: bool,
}

/// What the data plane counted for one installed pair, for `display ipsec sa` and `display
/// firewall session table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairTraffic {
    /// Our SPI (the peer sends with it).
    pub inbound_spi: u32,
    /// The peer's SPI (we send with it).
    pub outbound_spi: u32,
    /// Our outer address and port (0 for raw ESP, 4500 when UDP-encapsulated).
    pub local: SocketAddr,
    /// The peer's outer address and port.
    pub remote: SocketAddr,
    /// ESP in UDP.
    pub udp_encapsulated: bool,
    /// Packets and bytes opened.
    pub inbound: esp::Counters,
    /// Packets and bytes sealed.
    pub outbound: esp::Counters,
    /// The last sequence number sent.
    pub sent_sequence: u32,
    /// The highest sequence number accepted.
    pub received_sequence: u32,
    /// The inbound SA's anti-replay window size.
    pub replay_window: u32,
}

/// The data plane and what the daemon needs around it.
pub struct DataPath {
    plane: DataPlane,
    /// The engine selector of each SPD rule (same index).
    rule_selectors: Vec<TrafficSelector>,
    tun: Arc<tun_rs::AsyncDevice>,
    raw: HashMap<IpAddr, Arc<Socket>>,
    pairs: Vec<Pair>,
    rng: crypto::OsRandom,
    buf: Vec<u8>,
    /// Packets read from the TUN that policy lets pass in clear: not ours to forward.
    pub bypass_dropped: u64,
    /// Last `handle_traffic` per connection, so DPD hears of traffic at most once a second.
    heard: HashMap<ConnectionId, Instant>,
    /// ESP that arrived for the inbound SPI of a quick mode still waiting for QM3, in arrival
    /// order: (when, SPI, packet). Bounded by [`EARLY_ESP_LIMIT`] and [`EARLY_ESP_AGE`].
    early: std::collections::VecDeque<(Instant, u32, Vec<u8>)>,
}

impl DataPath {
    /// A data path over `tun` with the SPD of `config` and raw ESP sockets `raw`.
    pub fn new(
        config: &ike::Config,
        tun: Arc<tun_rs::AsyncDevice>,
        raw: HashMap<IpAddr, Arc<Socket>>,
    ) -> Self {
        let (spd, rule_selectors) = spd(config);
        let plane = DataPlane::new(spd, DataPlaneConfig::default());
        Self {
            plane,
            rule_selectors,
            tun,
            raw,
            pairs: Vec::new(),
            rng: crypto::OsRandom,
            buf: vec![0u8; MAX_PACKET + MAX_HEADROOM + MAX_TAILROOM],
            bypass_dropped: 0,
            heard: HashMap::new(),
            early: std::collections::VecDeque::new(),
        }
    }

    /// True when a raw ESP socket is open on `address`.
    pub fn has_raw_socket(&self, address: IpAddr) -> bool {
        self.raw.contains_key(&address)
    }

    /// Raw ESP sockets opened for local addresses a reload added.
    pub fn add_raw_sockets(&mut self, sockets: HashMap<IpAddr, Arc<Socket>>) {
        self.raw.extend(sockets);
    }

    /// Follows a configuration reload: the SPD of the new `config` replaces the old one, the
    /// pairs of unchanged policies move to their new index (same SAs, same SPIs, traffic
    /// flows on) and those of changed or removed policies go (the engine deleted them and
    /// reports them too). Packets waiting for an acquire are dropped: rule numbers changed,
    /// and the next packet raises the acquire again.
    pub fn reconfigure(&mut self, config: &ike::Config, diff: &ike::ConfigDiff) {
        let (spd, rule_selectors) = spd(config);
        self.plane.replace_spd(spd);
        let removed = self.plane.renumber_policies(|p| diff.policy(p.0).map(PolicyIndex));
        self.rule_selectors = rule_selectors;
        self.pairs.retain_mut(|pair| match diff.policy(pair.policy.0) {
            Some(policy) => {
                pair.policy = PolicyIndex(policy);
                true
            }
            None => false,
        });
        info!(
            "data path reconfigured: {} SPD rule(s), {} IPsec SA pair(s) kept, {removed} removed",
            self.rule_selectors.len(),
            self.pairs.len()
        );
    }

    /// The data plane's counters.
    pub fn statistics(&self) -> &esp::Statistics {
        self.plane.statistics()
    }

    /// A packet from the TUN: seal and send, queue (and raise acquires), or drop.
    pub async fn outbound(
        &mut self,
        packet: &[u8],
        engine: &mut Engine,
        sockets: &HashMap<SocketAddr, Arc<UdpSocket>>,
    ) {
        let mut buf = std::mem::take(&mut self.buf);
        match self.plane.seal(packet, &mut buf) {
            Outbound::Send(send) => {
                let pending = send.pending;
                self.send(&send, sockets).await;
                if pending {
                    self.flush(&mut buf, sockets).await;
                }
            }
            Outbound::Bypass => self.bypass_dropped += 1,
            Outbound::Queued => {}
            Outbound::TooBig { icmp, .. } => {
                if let Err(e) = self.tun.send(icmp).await {
                    warn!("TUN write: {e}");
                }
            }
            Outbound::Discard(reason) => debug!("outbound packet dropped: {reason}"),
        }
        self.buf = buf;
        self.events(engine);
    }

    /// Seals and sends what the data plane released (queued packets, fragments).
    async fn flush(&mut self, buf: &mut [u8], sockets: &HashMap<SocketAddr, Arc<UdpSocket>>) {
        while let Some(outcome) = self.plane.poll_queued(buf) {
            match outcome {
                Outbound::Send(send) => self.send(&send, sockets).await,
                Outbound::TooBig { icmp, .. } => {
                    if let Err(e) = self.tun.send(icmp).await {
                        warn!("TUN write: {e}");
                    }
                }
                _ => {}
            }
        }
    }

    async fn send(&self, send: &esp::Send<'_>, sockets: &HashMap<SocketAddr, Arc<UdpSocket>>) {
        if send.udp_encapsulated {
            let Some(socket) = sockets.get(&send.local) else {
                warn!("no UDP socket on {} for ESP-in-UDP", send.local);
                return;
            };
            if let Err(e) = socket.send_to(send.datagram, send.remote).await {
                warn!("ESP-in-UDP to {}: {e}", send.remote);
            }
        } else {
            let Some(socket) = self.raw.get(&send.local.ip()) else {
                warn!("no raw ESP socket on {}", send.local.ip());
                return;
            };
            let to = SockAddr::from(SocketAddr::new(send.remote.ip(), 0));
            if let Err(e) = socket.send_to(send.datagram, &to) {
                warn!("ESP to {}: {e}", send.remote.ip());
            }
        }
    }

    /// An ESP packet from the peer (raw, or from UDP 4500 with the UDP header gone): open and
    /// write the inner packet to the TUN; tell the engine the peer is alive.
    pub async fn inbound(&mut self, esp: &[u8], engine: &mut Engine) {
        let mut buf = std::mem::take(&mut self.buf);
        match self.plane.open(esp, &mut buf) {
            Inbound::Deliver { spi, packet, .. } => {
                if let Err(e) = self.tun.send(packet).await {
                    warn!("TUN write: {e}");
                }
                let connection = self.pairs.iter().find(|p| p.inbound_spi == spi.0).map(|p| p.connection);
                if let Some(connection) = connection {
                    let now = Instant::now();
                    let last = self.heard.get(&connection).copied();
                    if last.is_none_or(|t| now.duration_since(t).as_secs() >= 1) {
                        self.heard.insert(connection, now);
                        engine.handle_traffic(now, connection);
                    }
                }
            }
            Inbound::Drop(DropReason::UnknownSpi(spi)) if engine.awaits_inbound_spi(spi.0) => {
                // The initiator sends right after QM3, and ESP and IKE come in on different
                // sockets: this packet overtook the QM3 that installs its SA. Held, not lost.
                let now = Instant::now();
                while self.early.front().is_some_and(|(at, _, _)| now.duration_since(*at) > EARLY_ESP_AGE)
                    || self.early.len() >= EARLY_ESP_LIMIT
                {
                    self.early.pop_front();
                }
                debug!("inbound ESP for SPI {spi} before its QM3: held until the SA pair is installed");
                self.early.push_back((now, spi.0, esp.to_vec()));
            }
            Inbound::Drop(reason) => debug!("inbound ESP dropped: {reason}"),
        }
        self.buf = buf;
        self.events(engine);
    }

    /// Opens the held early packets (see [`DataPath::inbound`]) whose quick mode is over:
    /// delivered if it installed their SA, dropped as unknown if it failed. Called after the
    /// engine's events are handled; nothing to do almost always.
    pub async fn replay_early(&mut self, engine: &mut Engine) {
        if self.early.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.early);
        for (at, spi, packet) in held {
            if engine.awaits_inbound_spi(spi) {
                if at.elapsed() <= EARLY_ESP_AGE {
                    self.early.push_back((at, spi, packet));
                }
            } else {
                self.inbound(&packet, engine).await;
            }
        }
    }

    /// Raises the data plane's acquires with the engine. Traffic lifetimes are judged by the
    /// engine from [`DataPath::report_usage`], so the data plane's own notices are only logged.
    fn events(&mut self, engine: &mut Engine) {
        while let Some(event) = self.plane.poll_event() {
            match event {
                esp::Event::Acquire { policy, rule, selector, .. } => {
                    let ts = rule.and_then(|r| self.rule_selectors.get(r).copied());
                    let Some(ts) = ts else {
                        warn!("acquire for {policy} ({selector}) matches no configured rule");
                        continue;
                    };
                    info!("acquire: {selector} needs an SA of {policy}");
                    engine.handle_acquire(Instant::now(), ike::Acquire { policy: policy.0, selector: ts });
                }
                esp::Event::Lifetime { direction, spi, notice, .. } => {
                    debug!("{direction:?} SA {spi}: {notice:?}");
                }
            }
        }
    }

    /// Installs a negotiated pair and sends the packets that waited for it.
    pub async fn install(
        &mut self,
        pair: &IpsecSaPair,
        engine: &Engine,
        sockets: &HashMap<SocketAddr, Arc<UdpSocket>>,
    ) {
        let Some(policy) = engine.config().policies.iter().position(|p| p.id == pair.policy) else {
            warn!("IPsec SA for unknown policy {}", pair.policy);
            return;
        };
        let (Some((encryption, integrity)), None) =
            (pair.suite.proposal.protocols.esp(), unsupported_pair(pair))
        else {
            let reason = unsupported_pair(pair).unwrap_or("no ESP in the suite");
            warn!(
                "IPsec SA pair {} ({}) for {} not installed: {reason}",
                pair.suite, pair.selector, pair.policy
            );
            return;
        };
        let mut params = SaParams::new(encryption, integrity);
        params.mode = match pair.suite.proposal.mode {
            ike::EncapsulationMode::Tunnel => esp::Mode::Tunnel,
            ike::EncapsulationMode::Transport => esp::Mode::Transport,
        };
        params.udp_encapsulated = pair.udp_encapsulation.is_some();
        if let Some(kilobytes) = pair.suite.lifetime_kilobytes {
            params.limits = TrafficLimits::from_kilobytes(kilobytes);
        }
        let (local, remote) = match pair.udp_encapsulation {
            Some(udp) => (
                SocketAddr::new(pair.local.ip(), udp.local_port),
                SocketAddr::new(pair.remote.ip(), udp.remote_port),
            ),
            None => (pair.local, pair.remote),
        };
        let sa_pair = SaPair {
            policy: PolicyIndex(policy),
            selector: selector(&pair.selector),
            params,
            local,
            remote,
            inbound: SaKeys::from(&pair.inbound),
            outbound: SaKeys::from(&pair.outbound),
        };
        if let Err(e) = self.plane.install(sa_pair, &mut self.rng) {
            warn!("cannot install the IPsec SA pair for {}: {e}", pair.policy);
            return;
        }
        self.pairs.push(Pair {
            connection: pair.connection,
            inbound_spi: pair.inbound.spi().0,
            outbound_spi: pair.outbound.spi().0,
            policy: PolicyIndex(policy),
            local: if params.udp_encapsulated { local } else { SocketAddr::new(local.ip(), 0) },
            remote: if params.udp_encapsulated { remote } else { SocketAddr::new(remote.ip(), 0) },
            udp_encapsulated: params.udp_encapsulated,
        });
        let mut buf = std::mem::take(&mut self.buf);
        self.flush(&mut buf, sockets).await;
        self.buf = buf;
    }

    /// Removes the pair whose inbound SPI (ours) is `spi`.
    pub fn remove_inbound(&mut self, spi: u32) {
        self.plane.remove_by_inbound_spi(esp::Spi(spi));
        self.pairs.retain(|p| p.inbound_spi != spi);
    }

    /// Removes the pairs whose outbound SPIs (the peer's) are `spis`, negotiated on `connection`.
    pub fn remove_outbound(&mut self, connection: ConnectionId, spis: &[u32]) {
        let inbound: Vec<u32> = self
            .pairs
            .iter()
            .filter(|p| p.connection == connection && spis.contains(&p.outbound_spi))
            .map(|p| p.inbound_spi)
            .collect();
        for spi in inbound {
            self.remove_inbound(spi);
        }
    }

    /// Removes every pair negotiated on `connection`.
    pub fn remove_connection(&mut self, connection: ConnectionId) {
        let inbound: Vec<u32> =
            self.pairs.iter().filter(|p| p.connection == connection).map(|p| p.inbound_spi).collect();
        for spi in inbound {
            self.remove_inbound(spi);
        }
        self.heard.remove(&connection);
    }

    /// A negotiation with `remote` failed: drop the packets queued for its policies so the
    /// next packet raises a fresh acquire.
    pub fn abandon(&mut self, engine: &Engine, remote: IpAddr) {
        let config = engine.config();
        for (index, policy) in config.policies.iter().enumerate() {
            if config.peers.get(policy.peer).and_then(|p| p.remote_address) == Some(remote) {
                let dropped = self.plane.abandon_acquire(PolicyIndex(index));
                if dropped > 0 {
                    info!("{dropped} packet(s) waiting for {} dropped", policy.id);
                }
            }
        }
    }

    /// The traffic of every installed pair, in install order.
    pub fn traffic(&self) -> Vec<PairTraffic> {
        self.pairs
            .iter()
            .map(|pair| {
                let inbound = self.plane.inbound_sa(esp::Spi(pair.inbound_spi));
                let outbound =
                    self.plane.outbound_sas(pair.policy).find(|sa| sa.spi().0 == pair.outbound_spi);
                PairTraffic {
                    inbound_spi: pair.inbound_spi,
                    outbound_spi: pair.outbound_spi,
                    local: pair.local,
                    remote: pair.remote,
                    udp_encapsulated: pair.udp_encapsulated,
                    inbound: inbound.map(InboundSa::counters).unwrap_or_default(),
                    outbound: outbound.map(esp::OutboundSa::counters).unwrap_or_default(),
                    sent_sequence: outbound.map_or(0, esp::OutboundSa::last_sequence),
                    received_sequence: inbound.map_or(0, |sa| sa.replay_window().highest()),
                    replay_window: inbound.map_or(0, |sa| sa.replay_window().size()),
                }
            })
            .collect()
    }

    /// Reports every SA's traffic to the engine, which judges traffic lifetimes and
    /// sequence-number exhaustion (totals: a lost or repeated report does no harm).
    pub fn report_usage(&self, engine: &mut Engine) {
        let mut reports = Vec::new();
        for pair in &self.pairs {
            if let Some(sa) = self.plane.inbound_sa(esp::Spi(pair.inbound_spi)) {
                let c = sa.counters();
                reports.push((pair.inbound_spi, ike::SaUsage { bytes: c.bytes, packets: c.packets }));
            }
            if let Some(sa) = self.plane.outbound_sas(pair.policy).find(|sa| sa.spi().0 == pair.outbound_spi)
            {
                let c = sa.counters();
                let packets = u64::from(sa.last_sequence());
                reports.push((pair.outbound_spi, ike::SaUsage { bytes: c.bytes, packets }));
            }
        }
        if !reports.is_empty() {
            engine.handle_sa_usage(Instant::now(), &reports);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FW_A's ACL 3001 becomes one `Protect` rule of policy 0, whose acquire names the
    /// engine's selector; other traffic bypasses.
    #[test]
    fn reference_spd_protects_the_acl_flow() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fw_a.cfg");
        let config = vrp::load_file(&path, None).unwrap().config.unwrap();
        let engine = crate::engine_config::engine_config(&config).unwrap();
        let (spd, selectors) = spd(&engine);
        assert_eq!(spd.rules().len(), 1);
        assert_eq!(selectors, engine.policies[0].selectors);
        let rule = spd.rules()[0];
        assert_eq!(rule.action, Action::Protect(PolicyIndex(0)));
        assert_eq!(rule.selector.local, Prefix::new(Ipv4Addr::new(10, 1, 1, 0), 24));
        assert_eq!(rule.selector.remote, Prefix::new(Ipv4Addr::new(10, 2, 2, 0), 24));
        assert_eq!(rule.selector.protocol, None);
    }

    /// Ports carry over to the data plane's selector; a range widens to its covering prefix.
    #[test]
    fn engine_selectors_with_ports_and_ranges_convert() {
        let ts = TrafficSelector {
            protocol: 6,
            local: ike::Addresses::range(Ipv4Addr::new(10, 1, 1, 10), Ipv4Addr::new(10, 1, 1, 20)),
            remote: ike::Subnet::new(Ipv4Addr::new(10, 2, 2, 0), 24).into(),
            local_port: None,
            remote_port: Some(443),
        };
        let s = selector(&ts);
        assert_eq!(s.protocol, Some(6));
        assert_eq!(s.local, Prefix::new(Ipv4Addr::new(10, 1, 1, 0), 27));
        assert_eq!(s.remote, Prefix::new(Ipv4Addr::new(10, 2, 2, 0), 24));
        assert_eq!((s.local_ports, s.remote_ports), (None, Some(esp::PortRange::single(443))));
    }
}
