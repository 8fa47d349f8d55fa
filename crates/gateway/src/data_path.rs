//! The daemon's ESP data path: the glue between the sans-IO [`esp::DataPlane`], the IKE
//! engine's events, and the operating system (a TUN device, raw IP protocol 50 sockets and
//! the routes that steer protected traffic into the TUN).
//!
//! Packet flow, on the data-plane thread ([`crate::fast_path`]), in batches:
//! - TUN → seal: the SPD decides; protected packets are sealed and sent as raw ESP (or
//!   ESP-in-UDP from our 4500 socket when the SA is UDP-encapsulated); a packet without an
//!   SA is queued and raises an acquire ([`Notice::Acquire`]) for the engine. Only the
//!   protected prefixes are routed into the TUN, so a bypass decision there is dropped and
//!   counted: clear traffic is forwarded by the kernel and never reaches us.
//! - raw socket / UDP 4500 → open: written to the TUN, from where the kernel forwards the
//!   inner packet to the inside network.
//!
//! The IKE loop keeps [`DataPath`]: it installs and removes SAs in the [`Shared`] data plane
//! (one mutex, held by the thread for one batch at a time) and hears the thread's notices.
//!
//! A hub (an `ipsec policy … isakmp template`) does not know its branches' flows in advance:
//! template policies get no SPD rule and no route at start. When a pair negotiated through a
//! template is installed, its flow becomes an SPD rule (after the configured ones) and its
//! remote prefix a route into the TUN; both go when the last pair of that flow goes. So the
//! hub can never trigger toward a branch: a packet for a branch with no SA finds no route
//! into the TUN (the kernel's own routing decides its fate), and a template policy never
//! raises an acquire. The branch brings its tunnel up, as on a USG.
//!
//! Routes are added and removed with `ip route` (iproute2) for now: one `replace` per
//! protected remote prefix on start, `del` on exit ([`Routes`]'s `Drop`). A netlink crate can
//! replace that later; the command keeps the gateway free of `unsafe` and of another
//! dependency meanwhile.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use esp::{
    Action, DataPlane, DataPlaneConfig, InboundSa, Outbound, PolicyIndex, Prefix, Protocols, Rule, SaKeys,
    SaPair, SaParams, Selector, Spd, TrafficLimits, MAX_AH_HEADROOM, MAX_HEADROOM, MAX_TAILROOM,
};
use ike::{ConnectionId, Engine, IpsecSaPair, TrafficSelector};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// The TUN device's MTU: 1500 minus room for the outer IPv4 header, UDP encapsulation and the
/// largest ESP overhead, so inside hosts rarely need fragmentation or ICMP from us.
pub const TUN_MTU: u16 = 1400;

/// IP protocol number of ESP.
const IPPROTO_ESP: i32 = 50;

/// IP protocol number of AH.
const IPPROTO_AH: i32 = 51;

/// Largest IP packet.
pub const MAX_PACKET: usize = 65_535;

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
    if pair.suite.proposal.protocols.ah().is_some() && pair.ah.is_none() {
        return Some("the engine reported an AH suite without AH keys");
    }
    if pair.suite.proposal.protocols.ah().is_some() && pair.udp_encapsulation.is_some() {
        return Some("AH cannot cross a NAT (UDP encapsulation is for ESP only)");
    }
    if pair.selector.local.subnet().is_none() || pair.selector.remote.subnet().is_none() {
        return Some("the data plane cannot match an address range that is not a prefix");
    }
    None
}

/// The SPD of the engine's policies: one `Protect` rule per ACL permit rule, in policy and
/// rule order, and `Bypass` for the rest (VRP's default). Template policies (`templates[i]`
/// true) get no static rule: their flows are added as branches negotiate them. Returns the
/// engine selector of each rule too, so an acquire raised on rule `i` names the engine's
/// policy and flow.
pub fn spd(config: &ike::Config, templates: &[bool]) -> (Spd, Vec<TrafficSelector>) {
    let mut rules = Vec::new();
    let mut selectors = Vec::new();
    for (index, policy) in config.policies.iter().enumerate() {
        if templates.get(index).copied().unwrap_or(false) {
            continue;
        }
        for ts in &policy.selectors {
            rules.push(Rule { selector: selector(ts), action: Action::Protect(PolicyIndex(index)) });
            selectors.push(*ts);
        }
    }
    (Spd::new(rules, Action::Bypass), selectors)
}

/// The remote prefixes to route into the TUN at start: those of every policy but the
/// templates, whose routes come with their negotiated flows.
///
/// A prefix that contains a peer gateway's own address is left out: it is policy-routed
/// instead ([`Routes::set_gateway_flows`]).
pub fn static_prefixes(config: &ike::Config, templates: &[bool]) -> Vec<Prefix> {
    let peers = peer_addresses(config);
    config
        .policies
        .iter()
        .enumerate()
        .filter(|(index, _)| !templates.get(*index).copied().unwrap_or(false))
        .flat_map(|(_, p)| p.selectors.iter().map(|s| selector(s).remote))
        .filter(|remote| !peers.iter().any(|a| remote.contains(*a)))
        .collect()
}

/// The routing table that holds the TUN routes of flows to a peer gateway's own address.
const GATEWAY_TABLE: &str = "4500";
/// `ip rule` priorities: our own IKE, ESP and AH to the peer first (main table), then the
/// protected flows to the peer (the TUN table); both before the main table's 32766.
const GATEWAY_BYPASS_PREF: &str = "4500";
const GATEWAY_PROTECT_PREF: &str = "4501";

/// The peers' IPv4 gateway addresses.
fn peer_addresses(config: &ike::Config) -> Vec<Ipv4Addr> {
    config
        .peers
        .iter()
        .filter_map(|p| match p.remote_address {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        })
        .collect()
}

/// The routes into the TUN for every protected remote prefix, removed on drop.
pub struct Routes {
    device: String,
    prefixes: Vec<Prefix>,
    /// `ip rule` arguments added for flows to a peer's own address.
    rules: Vec<Vec<String>>,
}

impl Routes {
    /// Routes for every policy of `config` but the templates: [`static_prefixes`] in the
    /// main table, and the flows to a peer gateway's own address by policy routing.
    pub fn for_config(device: &str, config: &ike::Config, templates: &[bool]) -> Result<Self, String> {
        let mut routes = Self::add(device, static_prefixes(config, templates))?;
        routes.set_gateway_flows(config)?;
        Ok(routes)
    }

    /// A protected remote prefix that contains a peer gateway's address (transport mode
    /// between the gateways, or a tunnel covering them) cannot simply be routed into the
    /// TUN: the daemon's own IKE (UDP 500/4500), ESP and AH to that peer would go there too.
    /// Those flows are policy-routed instead: `ip rule`s send our IKE, ESP and AH to the
    /// main table first, then the protected flow (with the ACL's protocol when it names one)
    /// to a table whose only route is the TUN. Replaces the rules of an earlier call (a
    /// reload).
    pub fn set_gateway_flows(&mut self, config: &ike::Config) -> Result<(), String> {
        self.remove_gateway_flows();
        let device = self.device.clone();
        let peers = peer_addresses(config);
        let selectors: Vec<Selector> =
            config.policies.iter().flat_map(|p| p.selectors.iter().map(selector)).collect();
        let gateway_flows: Vec<&Selector> =
            selectors.iter().filter(|s| peers.iter().any(|a| s.remote.contains(*a))).collect();
        if gateway_flows.is_empty() {
            return Ok(());
        }
        let mut bypass: Vec<Vec<String>> = Vec::new();
        for peer in peers.iter().filter(|a| gateway_flows.iter().any(|s| s.remote.contains(**a))) {
            let to = peer.to_string();
            for sport in ["500", "4500"] {
                bypass.push(["to", &to, "ipproto", "udp", "sport", sport].map(String::from).to_vec());
            }
            // ESP and AH from our raw sockets (AH's with IP_HDRINCL may be looked up as 255).
            for proto in ["50", "51", "255"] {
                bypass.push(["to", &to, "ipproto", proto].map(String::from).to_vec());
            }
        }
        for rule in bypass {
            let mut args = rule.clone();
            args.extend(["lookup", "main", "pref", GATEWAY_BYPASS_PREF].map(String::from));
            ip_rule("add", &args)?;
            self.rules.push(args);
        }
        for s in gateway_flows {
            let mut args = vec!["to".to_owned(), s.remote.to_string()];
            if let Some(protocol) = s.protocol {
                args.extend(["ipproto".to_owned(), protocol.to_string()]);
            }
            args.extend(["lookup", GATEWAY_TABLE, "pref", GATEWAY_PROTECT_PREF].map(String::from));
            if self.rules.contains(&args) {
                continue;
            }
            ip_rule("add", &args)?;
            info!("policy route: {} via {device} (a flow to a peer gateway's own address)", args.join(" "));
            self.rules.push(args);
        }
        // The TUN has no address: without `src`, a packet the gateway itself sends (a ping
        // from FW_A) could take the inside address and miss the selector.
        let source = config
            .peers
            .iter()
            .find(|p| p.remote_address.is_some_and(|a| peers.iter().any(|q| IpAddr::V4(*q) == a)))
            .map(|p| p.local_address.to_string());
        let mut args = vec!["route", "replace", "default", "dev", device.as_str(), "table", GATEWAY_TABLE];
        if let Some(source) = &source {
            args.extend(["src", source.as_str()]);
        }
        ip_command(&args)
    }

    fn remove_gateway_flows(&mut self) {
        for rule in self.rules.drain(..).rev() {
            if let Err(e) = ip_rule("del", &rule) {
                warn!("{e}");
            }
        }
        // Flushed whether or not rules were there: `set_gateway_flows` may have failed
        // after the route and before the first rule was recorded.
        let _ = Command::new("ip")
            .args(["route", "flush", "table", GATEWAY_TABLE])
            .stderr(std::process::Stdio::null())
            .status();
    }

    /// Adds (`ip route replace`) a route into `device` for each distinct prefix.
    pub fn add(device: &str, prefixes: impl IntoIterator<Item = Prefix>) -> Result<Self, String> {
        let mut routes = Self { device: device.to_owned(), prefixes: Vec::new(), rules: Vec::new() };
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

    /// Adds the route of one prefix (a template flow); a prefix already routed is kept once.
    pub fn add_one(&mut self, p: Prefix) -> Result<(), String> {
        if !self.prefixes.contains(&p) {
            ip_route("replace", &p, &self.device)?;
            info!("route {p} via {}", self.device);
            self.prefixes.push(p);
        }
        Ok(())
    }

    /// Removes the route of one prefix, if this set added it.
    pub fn remove_one(&mut self, p: Prefix) {
        if let Some(i) = self.prefixes.iter().position(|q| *q == p) {
            self.prefixes.swap_remove(i);
            match ip_route("del", &p, &self.device) {
                Ok(()) => info!("route {p} via {} removed", self.device),
                Err(e) => warn!("{e}"),
            }
        }
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
        if !self.rules.is_empty() {
            self.remove_gateway_flows();
        }
    }
}

fn ip_rule(verb: &str, args: &[String]) -> Result<(), String> {
    let mut all = vec!["rule", verb];
    all.extend(args.iter().map(String::as_str));
    ip_command(&all)
}

fn ip_command(args: &[&str]) -> Result<(), String> {
    let status = Command::new("ip")
        .args(args)
        .status()
        .map_err(|e| format!("cannot run `ip {}`: {e}", args.join(" ")))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`ip {}` failed: {status}", args.join(" ")))
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
/// It asks for the kernel's TCP segmentation offloads (`IFF_VNET_HDR`, TSO): one read then
/// returns a whole TCP burst, which [`crate::fast_path`] splits into MTU-sized packets, and
/// one write takes coalesced segments back. A kernel that refuses offloads gets a plain
/// device; the fast path reads one packet per read then.
pub fn open_tun(name: &str) -> Result<Arc<tun_rs::SyncDevice>, String> {
    let build = |offload: bool| {
        tun_rs::DeviceBuilder::new().name(name).mtu(TUN_MTU).offload(offload).enable(true).build_sync()
    };
    let device = match build(true) {
        Ok(device) => device,
        Err(e) => {
            warn!("TUN device {name} without offloads ({e}): one packet per read");
            build(false).map_err(|e| format!("cannot create TUN device {name}: {e}"))?
        }
    };
    device.set_nonblocking(true).map_err(|e| format!("cannot make TUN device {name} non-blocking: {e}"))?;
    // The data plane's ICMP "fragmentation needed" comes from our public address (as a
    // router's would); without accept_local the kernel drops a packet arriving on the TUN
    // with a source address of its own as a martian.
    let sysctl = format!("/proc/sys/net/ipv4/conf/{name}/accept_local");
    if let Err(e) = std::fs::write(&sysctl, "1") {
        warn!("cannot set {sysctl}: {e}; ICMP fragmentation-needed from the data plane will be dropped");
    }
    Ok(Arc::new(device))
}

/// A raw IPv4 socket for ESP (protocol 50) bound to `local`. The kernel writes the outer IP
/// header on send; on receive it hands us the IP header in front of the ESP packet. The
/// socket stays blocking, so a full send buffer holds the sender back instead of dropping;
/// the fast path receives with `MSG_DONTWAIT` after `poll`.
pub fn open_raw_esp(local: Ipv4Addr) -> Result<Arc<Socket>, String> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_ESP)))
        .map_err(|e| format!("cannot open a raw ESP socket: {e}"))?;
    socket
        .bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(local), 0)))
        .map_err(|e| format!("cannot bind the raw ESP socket to {local}: {e}"))?;
    // Room for a burst of a few hundred full-size packets while the other side catches up.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    Ok(Arc::new(socket))
}

/// A raw IPv4 socket for AH (protocol 51) bound to `local`, with `IP_HDRINCL`: AH's ICV
/// covers the outer header, so the data plane writes it (the kernel still fills in the
/// checksum) and the Identification the ICV was computed over is the one that is sent.
pub fn open_raw_ah(local: Ipv4Addr) -> Result<Arc<Socket>, String> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_AH)))
        .map_err(|e| format!("cannot open a raw AH socket: {e}"))?;
    socket
        .set_header_included_v4(true)
        .map_err(|e| format!("cannot set IP_HDRINCL on the AH socket: {e}"))?;
    socket
        .bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(local), 0)))
        .map_err(|e| format!("cannot bind the raw AH socket to {local}: {e}"))?;
    Ok(Arc::new(socket))
}

/// What the data-plane thread tells the IKE loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A packet needs an SA that does not exist: negotiate.
    Acquire(ike::Acquire),
    /// Authentic traffic arrived on our inbound SA with this SPI (at most once a second per
    /// SA): the peer is alive, DPD stays quiet.
    Traffic(u32),
    /// An SA crossed a soft or hard traffic limit: report usage to the engine now, not at
    /// the next periodic report, so the rekey starts before the SA stops (at a few Gbit/s
    /// the default 1,843,200 KB last seconds, less than the report interval).
    Usage,
}

/// How many notices may wait for the IKE loop; beyond that they are dropped (an acquire is
/// raised again when its queue is abandoned, traffic is reported again a second later).
pub const NOTICE_QUEUE: usize = 1024;

/// The part of the data path the IKE loop and the data-plane thread share, behind one mutex:
/// the thread holds it for one batch of packets at a time, the IKE loop for an SA change or a
/// display.
pub struct Shared {
    /// The sans-IO data plane: SPD, SAs, acquire queues, counters.
    pub plane: DataPlane,
    /// The engine selector of each static SPD rule (same index), for acquires.
    rule_selectors: Vec<TrafficSelector>,
    /// Whether each engine policy (same index) is a template: responder only, flows dynamic.
    templates: Vec<bool>,
    /// Packets read from the TUN that policy lets pass in clear: not ours to forward.
    pub bypass_dropped: u64,
    /// Notices dropped because the IKE loop was behind.
    pub notices_dropped: u64,
    /// Sockets a reload opened, for the data-plane thread to take over.
    pub added_sockets: Vec<crate::fast_path::Added>,
}

impl Shared {
    fn is_template(&self, policy: PolicyIndex) -> bool {
        self.templates.get(policy.0).copied().unwrap_or(false)
    }

    /// Turns the data plane's acquires into notices for the IKE loop. Traffic lifetimes are
    /// judged by the engine from [`DataPath::report_usage`]; the data plane's own lifetime
    /// notices ask for a report now.
    pub fn drain_events(&mut self, notices: &mpsc::Sender<Notice>) {
        while let Some(event) = self.plane.poll_event() {
            match event {
                esp::Event::Acquire { policy, rule, selector, .. } => {
                    let ts = rule.and_then(|r| self.rule_selectors.get(r).copied());
                    let Some(ts) = ts else {
                        // A template flow's rule (added at run time, past the static ones)
                        // outlived its SAs for a moment: the hub cannot negotiate toward a
                        // branch, only answer it.
                        let dropped = self.plane.abandon_acquire(policy);
                        if self.is_template(policy) {
                            info!(
                                "{selector}: no SA; {policy} is a template and only responds \
                                 ({dropped} packet(s) dropped)"
                            );
                        } else {
                            warn!("acquire for {policy} ({selector}) matches no configured rule");
                        }
                        continue;
                    };
                    info!("acquire: {selector} needs an SA of {policy}");
                    let acquire = ike::Acquire { policy: policy.0, selector: ts };
                    if notices.try_send(Notice::Acquire(acquire)).is_err() {
                        self.notices_dropped += 1;
                        self.plane.abandon_acquire(policy);
                    }
                }
                esp::Event::Lifetime { direction, spi, notice, .. } => {
                    debug!("{direction:?} SA {spi}: {notice:?}");
                    if notices.try_send(Notice::Usage).is_err() {
                        self.notices_dropped += 1;
                    }
                }
            }
        }
    }
}

/// Locks the shared state; a panic on another thread while it held the lock leaves the
/// counters possibly inconsistent, never unsafe, so the state is used as it is.
pub fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One installed pair, as the data path remembers it for removal and usage reports.
struct Pair {
    connection: ConnectionId,
    inbound_spi: u32,
    outbound_spi: u32,
    /// The peer's AH SPI of an AH+ESP pair (a Delete may name it instead of the ESP one).
    outbound_ah_spi: Option<u32>,
    policy: PolicyIndex,
    /// The SPD rule of a flow negotiated through a template, if this pair came that way.
    template_rule: Option<Rule>,
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

/// A flow a branch negotiated through a template: its SPD rule and route stay while at
/// least one pair carries it (a rekey installs the new pair before the old one goes).
struct TemplateFlow {
    rule: Rule,
    pairs: usize,
}

/// The IKE loop's side of the data path: installs and removes SAs in the shared data plane
/// and keeps what the engine needs to hear about them. Packets themselves are carried by the
/// data-plane thread ([`crate::fast_path`]).
pub struct DataPath {
    shared: Arc<Mutex<Shared>>,
    tun: Arc<tun_rs::SyncDevice>,
    raw: HashMap<IpAddr, Arc<Socket>>,
    /// Raw AH sockets (`IP_HDRINCL`) by local address.
    raw_ah: HashMap<IpAddr, Arc<Socket>>,
    udp: HashMap<SocketAddr, std::net::UdpSocket>,
    notices: mpsc::Sender<Notice>,
    pairs: Vec<Pair>,
    rng: crypto::OsRandom,
    /// Last `handle_traffic` per connection, so DPD hears of traffic at most once a second.
    heard: HashMap<ConnectionId, Instant>,
    /// The flows negotiated through templates and the routes of their remote prefixes.
    template_flows: Vec<TemplateFlow>,
    template_routes: Routes,
}

impl DataPath {
    /// A data path over `tun` with the SPD of `config`, raw ESP sockets `raw` and UDP 4500
    /// sockets `udp` (for ESP-in-UDP); `templates` says which policies are templates
    /// ([`crate::engine_config::template_policies`]). Starts the data-plane thread, which
    /// reports to `notices`, and hands IKE messages that arrive on UDP 4500 to `ike`.
    pub fn new(
        config: &ike::Config,
        templates: Vec<bool>,
        tun: Arc<tun_rs::SyncDevice>,
        (raw, raw_ah): (HashMap<IpAddr, Arc<Socket>>, HashMap<IpAddr, Arc<Socket>>),
        udp: HashMap<SocketAddr, std::net::UdpSocket>,
        notices: mpsc::Sender<Notice>,
        ike: mpsc::Sender<(SocketAddr, SocketAddr, Vec<u8>)>,
    ) -> Result<Self, String> {
        let (spd, rule_selectors) = spd(config, &templates);
        let device = tun.name().unwrap_or_else(|e| {
            warn!("cannot read the TUN device's name ({e}); template routes will fail");
            String::new()
        });
        let shared = Arc::new(Mutex::new(Shared {
            plane: DataPlane::new(spd, DataPlaneConfig::default()),
            rule_selectors,
            templates,
            bypass_dropped: 0,
            notices_dropped: 0,
            added_sockets: Vec::new(),
        }));
        let clone =
            |s: &std::net::UdpSocket| s.try_clone().map_err(|e| format!("cannot share a UDP socket: {e}"));
        let thread_udp = udp.iter().map(|(a, s)| Ok((*a, clone(s)?))).collect::<Result<Vec<_>, String>>()?;
        crate::fast_path::spawn(crate::fast_path::Io {
            shared: shared.clone(),
            tun: tun.clone(),
            raw: raw.iter().map(|(a, s)| (*a, s.clone())).collect(),
            ah: raw_ah.iter().map(|(a, s)| (*a, s.clone())).collect(),
            udp: thread_udp,
            notices: notices.clone(),
            ike,
        })?;
        Ok(Self {
            shared,
            tun,
            raw,
            raw_ah,
            udp,
            notices,
            pairs: Vec::new(),
            rng: crypto::OsRandom,
            heard: HashMap::new(),
            template_flows: Vec::new(),
            template_routes: Routes { device, prefixes: Vec::new(), rules: Vec::new() },
        })
    }

    /// The data plane's counters (a copy: the thread keeps counting).
    pub fn statistics(&self) -> esp::Statistics {
        *lock(&self.shared).plane.statistics()
    }

    /// True when a raw ESP socket is open on `address`.
    pub fn has_raw_socket(&self, address: IpAddr) -> bool {
        self.raw.contains_key(&address)
    }

    /// Raw AH sockets opened for local addresses a reload added; the data-plane thread starts
    /// reading them within a second.
    pub fn add_ah_sockets(&mut self, ah: HashMap<IpAddr, Arc<Socket>>) {
        let mut added = crate::fast_path::Added::default();
        for (address, socket) in ah {
            added.ah.push((address, socket.clone()));
            self.raw_ah.insert(address, socket);
        }
        if !added.ah.is_empty() {
            lock(&self.shared).added_sockets.push(added);
        }
    }

    /// Sockets opened for local addresses a reload added: raw ESP sockets and UDP 4500
    /// sockets. The data-plane thread starts reading them within a second (its idle poll).
    pub fn add_sockets(
        &mut self,
        raw: HashMap<IpAddr, Arc<Socket>>,
        udp: Vec<(SocketAddr, std::net::UdpSocket)>,
    ) -> Result<(), String> {
        let mut added = crate::fast_path::Added::default();
        for (address, socket) in raw {
            added.raw.push((address, socket.clone()));
            self.raw.insert(address, socket);
        }
        for (local, socket) in udp {
            let clone = socket.try_clone().map_err(|e| format!("cannot share UDP {local}: {e}"))?;
            added.udp.push((local, clone));
            self.udp.insert(local, socket);
        }
        if !(added.raw.is_empty() && added.udp.is_empty()) {
            lock(&self.shared).added_sockets.push(added);
        }
        Ok(())
    }

    /// Follows a configuration reload: the SPD of the new `config` (whose template policies
    /// `templates` names) replaces the old one, the pairs of unchanged policies move to their
    /// new index (same SAs, same SPIs, traffic flows on) and those of changed or removed
    /// policies go (the engine deleted them and reports them too). Packets waiting for an
    /// acquire are dropped: rule numbers changed, and the next packet raises the acquire
    /// again. The template flows of the pairs kept are protected again under their new
    /// policy numbers; the routes of the others go.
    pub fn reconfigure(&mut self, config: &ike::Config, templates: Vec<bool>, diff: &ike::ConfigDiff) {
        let (spd, rule_selectors) = spd(config, &templates);
        let shared = self.shared.clone();
        let mut shared = lock(&shared);
        shared.plane.replace_spd(spd);
        let removed = shared.plane.renumber_policies(|p| diff.policy(p.0).map(PolicyIndex));
        shared.rule_selectors = rule_selectors;
        shared.templates = templates;
        self.pairs.retain_mut(|pair| match diff.policy(pair.policy.0) {
            Some(policy) => {
                pair.policy = PolicyIndex(policy);
                if let Some(rule) = &mut pair.template_rule {
                    rule.action = Action::Protect(PolicyIndex(policy));
                }
                true
            }
            None => false,
        });
        let old_flows = std::mem::take(&mut self.template_flows);
        for rule in self.pairs.iter().filter_map(|p| p.template_rule) {
            match self.template_flows.iter_mut().find(|f| f.rule == rule) {
                Some(flow) => flow.pairs += 1,
                None => {
                    shared.plane.push_rule(rule);
                    self.template_flows.push(TemplateFlow { rule, pairs: 1 });
                }
            }
        }
        for flow in old_flows {
            if !self.template_flows.iter().any(|f| f.rule.selector.remote == flow.rule.selector.remote) {
                self.template_routes.remove_one(flow.rule.selector.remote);
            }
        }
        info!(
            "data path reconfigured: {} SPD rule(s) ({} of template flows), {} IPsec SA pair(s) kept, \
             {removed} removed",
            shared.rule_selectors.len() + self.template_flows.len(),
            self.template_flows.len(),
            self.pairs.len()
        );
    }

    /// Packets read from the TUN that policy lets pass in clear, dropped (clear traffic is
    /// the kernel's to forward).
    pub fn bypass_dropped(&self) -> u64 {
        lock(&self.shared).bypass_dropped
    }

    /// Seals and sends what the data plane released (queued packets, fragments) after an
    /// SA change. Rare, so plain one-by-one sends from the IKE loop.
    fn flush(&self, shared: &mut Shared) {
        let mut buf = vec![0u8; MAX_PACKET + MAX_HEADROOM + MAX_TAILROOM + MAX_AH_HEADROOM];
        while let Some(outcome) = shared.plane.poll_queued(&mut buf) {
            match outcome {
                Outbound::Send(send) => self.send(&send),
                Outbound::TooBig { icmp, .. } => {
                    let mut packet = vec![0u8; tun_rs::VIRTIO_NET_HDR_LEN];
                    packet.extend_from_slice(icmp);
                    let mut gro = tun_rs::GROTable::default();
                    if let Err(e) =
                        self.tun.send_multiple(&mut gro, &mut [packet], tun_rs::VIRTIO_NET_HDR_LEN)
                    {
                        warn!("TUN write: {e}");
                    }
                }
                _ => {}
            }
        }
        shared.drain_events(&self.notices);
    }

    fn send(&self, send: &esp::Send<'_>) {
        if send.protocol == esp::PROTOCOL_AH {
            send_raw(&self.raw_ah, "AH", send);
        } else if send.udp_encapsulated {
            let Some(socket) = self.udp.get(&send.local) else {
                warn!("no UDP socket on {} for ESP-in-UDP", send.local);
                return;
            };
            if let Err(e) = socket.send_to(send.datagram, send.remote) {
                warn!("ESP-in-UDP to {}: {e}", send.remote);
            }
        } else {
            send_raw(&self.raw, "ESP", send);
        }
    }

    /// The data-plane thread saw traffic on our inbound SA `spi`: tell the engine the peer
    /// is alive (at most once a second per IKE SA).
    pub fn heard_from(&mut self, spi: u32, engine: &mut Engine) {
        let Some(connection) = self.pairs.iter().find(|p| p.inbound_spi == spi).map(|p| p.connection) else {
            return;
        };
        let now = Instant::now();
        let last = self.heard.get(&connection).copied();
        if last.is_none_or(|t| now.duration_since(t).as_secs() >= 1) {
            self.heard.insert(connection, now);
            engine.handle_traffic(now, connection);
        }
    }

    /// Installs a negotiated pair and sends the packets that waited for it.
    pub fn install(&mut self, pair: &IpsecSaPair, engine: &Engine) {
        let Some(policy) = engine.config().policies.iter().position(|p| p.id == pair.policy) else {
            warn!("IPsec SA for unknown policy {}", pair.policy);
            return;
        };
        if let Some(reason) = unsupported_pair(pair) {
            warn!(
                "IPsec SA pair {} ({}) for {} not installed: {reason}",
                pair.suite, pair.selector, pair.policy
            );
            return;
        }
        let (protocols, (encryption, integrity)) = match (pair.suite.proposal.protocols, &pair.ah) {
            (ike::IpsecProtocols::Esp { encryption, integrity }, _) => {
                (Protocols::Esp, (encryption, integrity))
            }
            // AH alone: the pair's keys are the AH SAs'; the ESP algorithms are not used.
            (ike::IpsecProtocols::Ah { integrity }, _) => {
                (Protocols::Ah(integrity), (esp::EspCipher::Null, Some(integrity)))
            }
            (ike::IpsecProtocols::AhEsp { ah_integrity, esp_encryption, esp_integrity }, Some(ah)) => (
                Protocols::AhEsp {
                    integrity: ah_integrity,
                    inbound: SaKeys::from(&ah.inbound),
                    outbound: SaKeys::from(&ah.outbound),
                },
                (esp_encryption, esp_integrity),
            ),
            (ike::IpsecProtocols::AhEsp { .. }, None) => return,
        };
        let mut params = SaParams::new(encryption, integrity);
        params.mode = match pair.suite.proposal.mode {
            ike::EncapsulationMode::Tunnel => esp::Mode::Tunnel,
            ike::EncapsulationMode::Transport => esp::Mode::Transport,
        };
        params.udp_encapsulated = pair.udp_encapsulation.is_some();
        if let (Some(kilobytes), Some(soft)) = (pair.suite.lifetime_kilobytes, pair.traffic_soft_bytes()) {
            params.limits = TrafficLimits::from_kilobytes(kilobytes, soft);
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
            protocols,
        };
        let shared = self.shared.clone();
        let mut shared = lock(&shared);
        let template_rule = shared.is_template(PolicyIndex(policy)).then(|| Rule {
            selector: selector(&pair.selector),
            action: Action::Protect(PolicyIndex(policy)),
        });
        if let Err(e) = shared.plane.install(sa_pair, &mut self.rng) {
            warn!("cannot install the IPsec SA pair for {}: {e}", pair.policy);
            return;
        }
        if let Some(rule) = template_rule {
            self.add_template_flow(&mut shared, rule, &pair.peer, pair.remote.ip());
        }
        self.pairs.push(Pair {
            connection: pair.connection,
            inbound_spi: pair.inbound.spi().0,
            outbound_spi: pair.outbound.spi().0,
            outbound_ah_spi: pair.ah.as_ref().map(|ah| ah.outbound.spi().0),
            policy: PolicyIndex(policy),
            template_rule,
            local: if params.udp_encapsulated { local } else { SocketAddr::new(local.ip(), 0) },
            remote: if params.udp_encapsulated { remote } else { SocketAddr::new(remote.ip(), 0) },
            udp_encapsulated: params.udp_encapsulated,
        });
        self.flush(&mut shared);
    }

    /// A pair of a template flow is up: the first one adds the flow's SPD rule and route.
    fn add_template_flow(&mut self, shared: &mut Shared, rule: Rule, peer: &str, remote: IpAddr) {
        if let Some(flow) = self.template_flows.iter_mut().find(|f| f.rule == rule) {
            flow.pairs += 1;
            return;
        }
        shared.plane.push_rule(rule);
        info!("template flow {} for {peer} ({remote}) protected", rule.selector);
        if let Err(e) = self.template_routes.add_one(rule.selector.remote) {
            warn!("template flow {} for {peer} ({remote}): {e}", rule.selector);
        }
        self.template_flows.push(TemplateFlow { rule, pairs: 1 });
    }

    /// A pair of a template flow is gone: the last one takes the rule and route with it.
    fn remove_template_flow(&mut self, shared: &mut Shared, rule: Rule) {
        let Some(index) = self.template_flows.iter().position(|f| f.rule == rule) else { return };
        self.template_flows[index].pairs -= 1;
        if self.template_flows[index].pairs > 0 {
            return;
        }
        self.template_flows.swap_remove(index);
        shared.plane.remove_rule(&rule);
        // Another flow (another policy, or a different selector) may route the same prefix.
        if !self.template_flows.iter().any(|f| f.rule.selector.remote == rule.selector.remote) {
            self.template_routes.remove_one(rule.selector.remote);
        }
        info!("template flow {} no longer protected: its SAs are gone", rule.selector);
    }

    /// Removes the pair whose inbound SPI (ours) is `spi`. Packets waiting for an SA of its
    /// policy are dropped too: their acquire may have reached the engine while this pair
    /// still served the flow (an SA at its hard limit before the engine heard of it), and
    /// the engine ignored it; the next packet raises a fresh one.
    pub fn remove_inbound(&mut self, spi: u32) {
        let shared = self.shared.clone();
        let mut shared = lock(&shared);
        shared.plane.remove_by_inbound_spi(esp::Spi(spi));
        for policy in self.pairs.iter().filter(|p| p.inbound_spi == spi).map(|p| p.policy) {
            let dropped = shared.plane.abandon_acquire(policy);
            if dropped > 0 {
                info!("{dropped} packet(s) waiting for an SA of {policy} dropped; the next raises a new acquire");
            }
        }
        let removed: Vec<Rule> =
            self.pairs.iter().filter(|p| p.inbound_spi == spi).filter_map(|p| p.template_rule).collect();
        self.pairs.retain(|p| p.inbound_spi != spi);
        for rule in removed {
            self.remove_template_flow(&mut shared, rule);
        }
    }

    /// Removes the pairs whose outbound SPIs (the peer's) are `spis`, negotiated on `connection`.
    pub fn remove_outbound(&mut self, connection: ConnectionId, spis: &[u32]) {
        let inbound: Vec<u32> = self
            .pairs
            .iter()
            .filter(|p| {
                p.connection == connection
                    && (spis.contains(&p.outbound_spi)
                        || p.outbound_ah_spi.is_some_and(|s| spis.contains(&s)))
            })
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
        let mut shared = lock(&self.shared);
        for (index, policy) in config.policies.iter().enumerate() {
            if config.peers.get(policy.peer).and_then(|p| p.remote_address) == Some(remote) {
                let dropped = shared.plane.abandon_acquire(PolicyIndex(index));
                if dropped > 0 {
                    info!("{dropped} packet(s) waiting for {} dropped", policy.id);
                }
            }
        }
    }

    /// The traffic of every installed pair, in install order.
    pub fn traffic(&self) -> Vec<PairTraffic> {
        let shared = lock(&self.shared);
        self.pairs
            .iter()
            .map(|pair| {
                let spi = esp::Spi(pair.inbound_spi);
                // The ESP SA's window, or the AH SA's for AH alone.
                let window = shared
                    .plane
                    .inbound_sa(spi)
                    .map(InboundSa::replay_window)
                    .or_else(|| shared.plane.inbound_ah_sa(spi).map(esp::InboundAh::replay_window));
                let (outbound, sent_sequence) =
                    shared.plane.outbound_usage(pair.policy, esp::Spi(pair.outbound_spi)).unwrap_or_default();
                PairTraffic {
                    inbound_spi: pair.inbound_spi,
                    outbound_spi: pair.outbound_spi,
                    local: pair.local,
                    remote: pair.remote,
                    udp_encapsulated: pair.udp_encapsulated,
                    inbound: shared.plane.inbound_usage(spi).unwrap_or_default(),
                    outbound,
                    sent_sequence,
                    received_sequence: window.map_or(0, esp::ReplayWindow::highest),
                    replay_window: window.map_or(0, esp::ReplayWindow::size),
                }
            })
            .collect()
    }

    /// Reports every SA's traffic to the engine, which judges traffic lifetimes and
    /// sequence-number exhaustion (totals: a lost or repeated report does no harm).
    pub fn report_usage(&self, engine: &mut Engine) {
        let mut reports = Vec::new();
        {
            let shared = lock(&self.shared);
            for pair in &self.pairs {
                if let Some(c) = shared.plane.inbound_usage(esp::Spi(pair.inbound_spi)) {
                    reports.push((pair.inbound_spi, ike::SaUsage { bytes: c.bytes, packets: c.packets }));
                }
                if let Some((c, last_sequence)) =
                    shared.plane.outbound_usage(pair.policy, esp::Spi(pair.outbound_spi))
                {
                    let packets = u64::from(last_sequence);
                    reports.push((pair.outbound_spi, ike::SaUsage { bytes: c.bytes, packets }));
                }
            }
        }
        if !reports.is_empty() {
            engine.handle_sa_usage(Instant::now(), &reports);
        }
    }
}

/// Writes a 20-byte IPv4 header from `source` to `destination` with protocol `protocol`
/// for a transport-mode payload of `payload_len` bytes at the end of `out`.
pub(crate) fn transport_header(
    out: &mut Vec<u8>,
    source: Ipv4Addr,
    destination: Ipv4Addr,
    protocol: u8,
    payload_len: usize,
) {
    let start = out.len();
    let total = (20 + payload_len).min(usize::from(u16::MAX)) as u16;
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0x40, 0, 64, protocol, 0, 0]);
    out.extend_from_slice(&source.octets());
    out.extend_from_slice(&destination.octets());
    let mut sum = 0u32;
    for pair in out[start..].chunks_exact(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    out[start + 10..start + 12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// Sends a datagram over the raw socket (`protocol`: `ESP` or `AH`, for the log) bound to its
/// local address: raw ESP and AH go out alike, addressed by IP only (port 0), and a missing
/// socket or a failed send is logged with the addresses involved rather than dropped quietly.
fn send_raw(sockets: &HashMap<IpAddr, Arc<Socket>>, protocol: &str, send: &esp::Send<'_>) {
    let Some(socket) = sockets.get(&send.local.ip()) else {
        warn!("no raw {protocol} socket on {}", send.local.ip());
        return;
    };
    let to = SockAddr::from(SocketAddr::new(send.remote.ip(), 0));
    if let Err(e) = socket.send_to(send.datagram, &to) {
        warn!("{protocol} to {}: {e}", send.remote.ip());
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
        let (spd, selectors) = spd(&engine, &[]);
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
