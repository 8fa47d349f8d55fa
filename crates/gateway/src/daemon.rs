//! `keysteward run`: the daemon. It loads and validates the configuration, opens UDP 500 and
//! 4500 on the address of every interface that carries an `ipsec policy`, serves the control
//! socket,
//! and drives the IKE engine: after every input it drains the engine's transmits and events,
//! then sleeps until the next input or the engine's next deadline (the quinn driver loop).
//! With `--key-log FILE` it also appends Wireshark decryption records of every SA
//! (`key_log.rs`), after a warning; without it the engine is never asked for phase-1 keys.
//!
//! It also carries the traffic ([`crate::data_path`]): a TUN device (`--tun`, `ks0` by
//! default) with a route for every protected remote prefix, raw ESP sockets on the same
//! addresses, and ESP-in-UDP on 4500, all read and written by a data-plane thread of their
//! own ([`crate::fast_path`]), which reports acquires and traffic here. A packet that needs
//! an SA raises an acquire, so negotiation starts on traffic; policies with `sa trigger-mode
//! auto` (or `auto-neg` on the interface) also negotiate at start-up, as the device does. A
//! policy template only answers: its flows get their rule and route when a branch has
//! negotiated them.
//!
//! Reload (`keysteward reload`, or SIGHUP): the file the daemon started with is read again
//! and checked whole ([`crate::load`]: the VRP checks, the host's interfaces and addresses,
//! the engine conversion). Any error leaves everything as it was, and the reasons go back to
//! the caller and to the log. Otherwise the new configuration is applied: the engine keeps
//! the IKE SAs of unchanged peers and the IPsec SAs of unchanged policy entries (the
//! definition is in `ike::reconfigure`; README "Reload"), deletes the others with Delete
//! payloads, the data path's SPD and the routes into the TUN are rebuilt, sockets are opened
//! for new local addresses, and `sa trigger-mode auto` policies are started.
//!
//! The UDP 4500 path (marker stripped and added, ESP-in-UDP) is exercised end to end against
//! strongSwan, whose kernel-libipsec fakes NAT-D (`tests/netns_strongswan_interop.rs`).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use ike::{Acquire, Engine, Event};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UdpSocket, UnixListener};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::control::{Request, Response, MAX_LINE};
use crate::data_path::{self, DataPath};
use crate::display::live::Live;
use crate::display::{
    ah_algorithm_column, algorithm_column, ike_sa_text, ipsec_sa_brief_text, IkeSaRow, IpsecSaRow,
};
use crate::engine_config::template_policies;
use crate::key_log::{self, KeyLog};
use crate::load::{self, Host, InterfaceMap, Purpose};

/// What `keysteward run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The VRP configuration file.
    pub config: PathBuf,
    /// The control socket path.
    pub control: PathBuf,
    /// The name of the TUN device to create for the data path.
    pub tun: String,
    /// `--key-log FILE`: append Wireshark decryption records of every SA to this file
    /// (`key_log.rs`). `None`, the default, and no key leaves the engine but ESP keys for the
    /// data plane.
    pub key_log: Option<PathBuf>,
    /// `--interface-map VRPNAME=LINUXNAME`: the Linux interfaces behind the configuration's
    /// VRP interface names (unmapped names are Linux names).
    pub interface_map: InterfaceMap,
}

/// The conn-ids of the `v1:2` lines of `display ike sa` start above this, apart from the
/// engine's phase-1 numbers.
const PHASE2_CONN_ID_BASE: u64 = 10_000;

/// How many failures `display ike error-info` remembers.
const ERROR_HISTORY: usize = 64;

/// An IPsec SA pair the engine reported, for `display ike sa`'s phase-2 lines.
struct InstalledPair {
    display_id: u64,
    connection: ike::ConnectionId,
    remote: SocketAddr,
    initiator: bool,
    /// The SPIs, so that the pair leaves the display when the engine or the peer ends it.
    inbound_spi: u32,
    outbound_spi: u32,
}

/// The daemon's own records of what the engine reported.
#[derive(Default)]
struct Records {
    installed: Vec<InstalledPair>,
    failures: VecDeque<(SystemTime, String)>,
    next_display_id: u64,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(options: RunOptions) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(serve(options))
}

/// The acquires that `sa trigger-mode auto` (or `auto-neg`) asks for at start-up.
fn start_up_acquires(config: &vrp::Config, engine: &ike::Config) -> Vec<Acquire> {
    use vrp::algorithm::TriggerMode;
    use vrp::model::PolicyEntry;
    let mut out = Vec::new();
    for (index, policy) in engine.policies.iter().enumerate() {
        let entry = config.ipsec_policies.get(&policy.id.name).and_then(|e| e.get(&policy.id.sequence));
        let auto_trigger = matches!(
            entry,
            Some(PolicyEntry::Isakmp(s)) if s.trigger_mode == Some(TriggerMode::Auto)
        );
        let auto_neg = config
            .interfaces
            .values()
            .any(|i| i.auto_negotiate && i.ipsec_policy.as_deref() == Some(policy.id.name.as_str()));
        if auto_trigger || auto_neg {
            out.extend(policy.selectors.iter().map(|s| Acquire { policy: index, selector: *s }));
        }
    }
    out
}

/// A configuration file that passed every check, with its warnings.
struct Checked {
    config: vrp::Config,
    engine: ike::Config,
    warnings: Vec<String>,
}

/// Reads and checks the whole configuration file for `run` or a reload: every warning is
/// logged; any error refuses the file, with every error line (`file:line:column: …`).
fn load_checked(options: &RunOptions) -> Result<Checked, String> {
    let host = Host::current()?;
    let loaded = load::load(&options.config, &options.interface_map, Some(&host), Purpose::Run);
    let warnings: Vec<String> =
        loaded.diagnostics.iter().filter(|d| !d.is_error()).map(ToString::to_string).collect();
    for w in &warnings {
        warn!("{w}");
    }
    let errors = loaded.errors();
    let (config, engine) = loaded.config.ok_or(errors)?;
    Ok(Checked { config, engine, warnings })
}

/// The sockets a configuration needs that are not open yet: UDP 500 and 4500 (NAT-T, RFC
/// 3948) and a raw ESP socket on each local address that peers use. Nothing is spawned until
/// every socket is open, so a failure leaves nothing behind.
struct NewSockets {
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    /// Second handles of the new UDP 4500 sockets, which the data-plane thread reads
    /// (`fast_path`: ESP-in-UDP, and IKE handed back to this loop).
    udp_4500: Vec<(SocketAddr, std::net::UdpSocket)>,
    raw: HashMap<IpAddr, Arc<socket2::Socket>>,
    /// Raw AH sockets (`IP_HDRINCL`), one per address that gets a raw ESP socket.
    raw_ah: HashMap<IpAddr, Arc<socket2::Socket>>,
}

async fn open_sockets(
    config: &ike::Config,
    udp: &HashMap<SocketAddr, Arc<UdpSocket>>,
    raw: impl Fn(IpAddr) -> bool,
) -> Result<NewSockets, String> {
    let mut new =
        NewSockets { udp: Vec::new(), udp_4500: Vec::new(), raw: HashMap::new(), raw_ah: HashMap::new() };
    for peer in &config.peers {
        for port in [500, ike::NAT_T_PORT] {
            let local = SocketAddr::new(peer.local_address, port);
            if udp.contains_key(&local) || new.udp.iter().any(|(l, _)| *l == local) {
                continue;
            }
            let bound = std::net::UdpSocket::bind(local)
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .map_err(|e| format!("cannot bind UDP {local}: {e}"))?;
            if port == ike::NAT_T_PORT {
                let second = bound.try_clone().map_err(|e| format!("cannot share UDP {local}: {e}"))?;
                new.udp_4500.push((local, second));
            }
            let socket = Arc::new(UdpSocket::from_std(bound).map_err(|e| format!("UDP {local}: {e}"))?);
            new.udp.push((local, socket));
        }
        if let IpAddr::V4(address) = peer.local_address {
            if !raw(peer.local_address) && !new.raw.contains_key(&peer.local_address) {
                new.raw.insert(peer.local_address, data_path::open_raw_esp(address)?);
                new.raw_ah.insert(peer.local_address, data_path::open_raw_ah(address)?);
            }
        }
    }
    Ok(new)
}

/// Where the socket readers deliver.
#[derive(Clone)]
struct Inputs {
    datagrams: mpsc::Sender<(SocketAddr, SocketAddr, Vec<u8>)>,
}

/// The sockets the data path reads: raw ESP and UDP 4500.
type DataSockets = (HashMap<IpAddr, Arc<socket2::Socket>>, Vec<(SocketAddr, std::net::UdpSocket)>);

impl NewSockets {
    /// Starts reading the new UDP 500 sockets; the UDP ones join `udp`; the raw and UDP 4500
    /// ones are returned for the data path, whose thread reads them.
    fn start(self, udp: &mut HashMap<SocketAddr, Arc<UdpSocket>>, inputs: &Inputs) -> DataSockets {
        for (local, socket) in self.udp {
            info!("listening for IKE on {local}");
            udp.insert(local, socket.clone());
            if local.port() != ike::NAT_T_PORT {
                tokio::spawn(receive(socket, local, inputs.datagrams.clone()));
            }
        }
        (self.raw, self.udp_4500)
    }
}

/// The prefixes routed into the TUN for a configuration at start: every protected remote
/// prefix but those of templates, which come with their negotiated flows (`data_path`).
fn protected_prefixes(config: &ike::Config, templates: &[bool]) -> Vec<esp::Prefix> {
    data_path::static_prefixes(config, templates)
}

/// The acquires to raise at start or reload: a template only responds, even when `auto-neg`
/// is set on its interface.
fn initiating(acquires: Vec<Acquire>, templates: &[bool]) -> Vec<Acquire> {
    acquires.into_iter().filter(|a| !templates.get(a.policy).copied().unwrap_or(false)).collect()
}

async fn serve(options: RunOptions) -> Result<(), String> {
    // Watched first: a SIGHUP that arrives while the daemon starts must not kill it (the
    // default action), and is handled as a reload once the loop runs.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| format!("cannot watch SIGHUP: {e}"))?;
    let Checked { mut config, engine: engine_config, .. } =
        load_checked(&options).map_err(|e| format!("{e}\n{}: nothing started", options.config.display()))?;
    let templates = template_policies(&config, &engine_config);
    let acquires = initiating(start_up_acquires(&config, &engine_config), &templates);

    let mut sockets: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let (datagrams_tx, mut datagrams) = mpsc::channel::<(SocketAddr, SocketAddr, Vec<u8>)>(1024);
    let inputs = Inputs { datagrams: datagrams_tx.clone() };
    let new_sockets = open_sockets(&engine_config, &sockets, |_| false).await?;
    let raw_ah = new_sockets.raw_ah.clone();
    let (raw, udp_4500) = new_sockets.start(&mut sockets, &inputs);

    // Before anything is negotiated, so the first SA's keys are in the file and a refused
    // file stops the daemon before it holds any key.
    let mut key_log = match &options.key_log {
        Some(path) => {
            warn!("{}", key_log::warning(path));
            Some(KeyLog::open(path)?)
        }
        None => None,
    };

    // The TUN device and the routes of the protected prefixes into it; the routes go when
    // `_routes` drops, on every way out of this function.
    let tun = data_path::open_tun(&options.tun)?;
    let mut routes = data_path::Routes::for_config(&options.tun, &engine_config, &templates)?;
    let (notices_tx, mut notices) = mpsc::channel(data_path::NOTICE_QUEUE);
    let udp_4500 = udp_4500.into_iter().collect();
    let mut data =
        DataPath::new(&engine_config, templates, tun, (raw, raw_ah), udp_4500, notices_tx, datagrams_tx)?;
    let mut usage = tokio::time::interval(USAGE_INTERVAL);

    let listener = bind_control(&options.control)?;
    let (requests_tx, mut requests) = mpsc::channel::<(Request, oneshot::Sender<Response>)>(16);
    tokio::spawn(accept_control(listener, requests_tx));

    let mut engine = Engine::new(engine_config, Box::new(crypto::OsRandom));
    engine.set_key_log(key_log.is_some());
    // One debug line per IKE message (step and payloads, `ike message …`), which `keysteward
    // demo` reads back to draw the message flow; not built unless debug logging is on.
    engine.set_message_trace(tracing::enabled!(tracing::Level::DEBUG));
    // Certificate validity is checked against the wall clock; the engine itself reads none.
    let unix_now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    engine.set_wall_clock(Instant::now(), unix_now);
    let mut records = Records { next_display_id: 1, ..Records::default() };
    let now = Instant::now();
    for acquire in acquires {
        engine.handle_acquire(now, acquire);
    }
    // The daemon state a reload rewrites, borrowed afresh by each reload trigger (a control
    // request and SIGHUP) so both reload exactly the same things. A macro, not a closure: the
    // borrows must end with the reload so the loop can use the state again.
    macro_rules! running {
        () => {
            Running {
                engine: &mut engine,
                data: &mut data,
                routes: &mut routes,
                sockets: &mut sockets,
                inputs: &inputs,
                config: &mut config,
            }
        };
    }
    info!("keysteward running with {}", options.config.display());
    loop {
        drain(&mut engine, &sockets, &mut records, &mut data, key_log.as_mut()).await;
        let deadline = engine.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            Some((local, remote, bytes)) = datagrams.recv() => {
                engine.handle_datagram(Instant::now(), local, remote, &bytes);
            }
            Some(notice) = notices.recv() => match notice {
                data_path::Notice::Acquire(acquire) => engine.handle_acquire(Instant::now(), acquire),
                data_path::Notice::Traffic(spi) => data.heard_from(spi, &mut engine),
                data_path::Notice::Usage => data.report_usage(&mut engine),
            },
            _ = usage.tick() => data.report_usage(&mut engine),
            Some((request, reply)) = requests.recv() => {
                let response = if request == Request::Reload {
                    match reload(&options, &mut running!()).await {
                        Ok((text, json)) => Response::Ok { text, json },
                        Err(e) => Response::Error(e),
                    }
                } else {
                    answer(&mut engine, &records, &data, &config, &request)
                };
                let _ = reply.send(response);
            }
            _ = hangup.recv() => {
                info!("SIGHUP: reloading {}", options.config.display());
                // `reload` logs the outcome either way; there is no caller to answer.
                let _ = reload(&options, &mut running!()).await;
            }
            () = sleep_until(deadline) => engine.handle_timeout(Instant::now()),
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    // Tell every peer: Deletes for each IPsec SA and IKE SA (RFC 2408 §4.8), so that their
    // SAs do not outlive ours until DPD or the lifetimes notice.
    info!("keysteward stopping: sending Deletes to every peer");
    engine.handle_command(Instant::now(), ike::Command::ResetIkeSa { connection: None });
    drain(&mut engine, &sockets, &mut records, &mut data, key_log.as_mut()).await;
    let _ = std::fs::remove_file(&options.control);
    Ok(())
}

/// What a reload changes in the running daemon.
struct Running<'a> {
    engine: &'a mut Engine,
    data: &'a mut DataPath,
    routes: &'a mut data_path::Routes,
    sockets: &'a mut HashMap<SocketAddr, Arc<UdpSocket>>,
    inputs: &'a Inputs,
    /// The VRP configuration in force (`show-config` and the configuration displays).
    config: &'a mut vrp::Config,
}

/// Reloads the configuration file: checks it whole, then applies it (see the module
/// documentation). Returns the summary for the caller, or every reason the file was
/// refused, in which case nothing changed. Both are logged. The caller drains the engine
/// afterwards, as after any input (the Deletes go out then).
async fn reload(
    options: &RunOptions,
    running: &mut Running<'_>,
) -> Result<(String, serde_json::Value), String> {
    let file = options.config.display().to_string();
    let refused = |reason: String| {
        error!("reload of {file} refused, nothing changed: {reason}");
        reason
    };
    let Checked { config, engine: engine_config, warnings } = load_checked(options).map_err(refused)?;
    // Everything that can fail comes first, while the running configuration is untouched.
    let has_raw = |address| running.data.has_raw_socket(address);
    let new_sockets = open_sockets(&engine_config, running.sockets, has_raw).await.map_err(refused)?;
    let templates = template_policies(&config, &engine_config);
    let prefixes = protected_prefixes(&engine_config, &templates);
    running.routes.add_missing(&prefixes).map_err(refused)?;
    let raw_ah = new_sockets.raw_ah.clone();
    let (raw, udp_4500) = new_sockets.start(running.sockets, running.inputs);
    running.data.add_sockets(raw, udp_4500).map_err(refused)?;
    running.data.add_ah_sockets(raw_ah);

    let now = Instant::now();
    let (ike_before, pairs_before) =
        (running.engine.ike_sas().count(), running.engine.ipsec_sas(now).count());
    let acquires = initiating(start_up_acquires(&config, &engine_config), &templates);
    let diff = running.engine.reconfigure(now, engine_config);
    running.data.reconfigure(running.engine.config(), templates, &diff);
    running.routes.remove_except(&prefixes);
    if let Err(e) = running.routes.set_gateway_flows(running.engine.config()) {
        warn!("reload: policy routes to the peers' own addresses: {e}");
    }
    for acquire in acquires {
        running.engine.handle_acquire(now, acquire);
    }
    *running.config = config;
    let (ike_after, pairs_after) = (running.engine.ike_sas().count(), running.engine.ipsec_sas(now).count());
    let (ike_deleted, pairs_deleted) =
        (ike_before.saturating_sub(ike_after), pairs_before.saturating_sub(pairs_after));
    let fresh: Vec<String> =
        diff.fresh_policies.iter().map(|&i| running.engine.config().policies[i].id.to_string()).collect();
    let summary = format!(
        "reloaded {file}: {} IKE SA(s) and {} IPsec SA pair(s) kept, {ike_deleted} IKE SA(s) and \
         {pairs_deleted} IPsec SA pair(s) deleted; new or changed policy entries: {}",
        ike_after,
        pairs_after,
        if fresh.is_empty() { "none".to_owned() } else { fresh.join(", ") }
    );
    info!("{summary}");
    // The caller sees the file's warnings too (the log already has them).
    let mut text = String::new();
    for w in &warnings {
        text.push_str(w);
        text.push('\n');
    }
    text.push_str(&summary);
    text.push('\n');
    let json = json!({
        "file": file,
        "ike_sas_kept": ike_after,
        "ipsec_sa_pairs_kept": pairs_after,
        "ike_sas_deleted": ike_deleted,
        "ipsec_sa_pairs_deleted": pairs_deleted,
        "fresh_policies": fresh,
        "warnings": warnings,
    });
    Ok((text, json))
}

/// How often the data plane's per-SA traffic goes to the engine for traffic lifetimes.
const USAGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads one UDP 500 socket and hands IKE messages to the engine loop. (UDP 4500, where IKE
/// follows the non-ESP marker and everything else is ESP-in-UDP, is read by the data-plane
/// thread, `fast_path`, which hands the IKE messages back through the same channel.)
async fn receive(
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    tx: mpsc::Sender<(SocketAddr, SocketAddr, Vec<u8>)>,
) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, remote) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) => {
                warn!("receive on {local}: {e}");
                continue;
            }
        };
        if tx.send((local, remote, buf[..n].to_vec())).await.is_err() {
            return;
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What starts the log line of each traced IKE message (see [`ike::MessageTrace`]'s
/// `Display` for the rest); `keysteward demo` looks for it.
pub const MESSAGE_TRACE_PREFIX: &str = "ike message: ";

/// Sends what the engine wants sent and records what it reports.
async fn drain(
    engine: &mut Engine,
    sockets: &HashMap<SocketAddr, Arc<UdpSocket>>,
    records: &mut Records,
    data: &mut DataPath,
    mut key_log: Option<&mut KeyLog>,
) {
    // Before the sends, so that a message is logged as sent before the peer can log it.
    while let Some(trace) = engine.poll_message_trace() {
        debug!("{MESSAGE_TRACE_PREFIX}{trace}");
    }
    while let Some(t) = engine.poll_transmit() {
        let Some(socket) = sockets.get(&t.local) else {
            error!("no socket for {}", t.local);
            continue;
        };
        let sent = if t.non_esp_marker {
            let mut marked = Vec::with_capacity(4 + t.payload.len());
            marked.extend_from_slice(&[0; 4]);
            marked.extend_from_slice(&t.payload);
            socket.send_to(&marked, t.remote).await
        } else {
            socket.send_to(&t.payload, t.remote).await
        };
        if let Err(e) = sent {
            warn!("send to {}: {e}", t.remote);
        }
    }
    while let Some(event) = engine.poll_event() {
        if let Some(log) = key_log.as_deref_mut() {
            if let Err(e) = log.record(&event) {
                warn!("{e}");
            }
        }
        match event {
            Event::IkeSaEstablished { connection, peer, remote, suite, initiator, .. } => {
                info!(
                    "IKE SA {connection} with {peer} ({}) established as {}: {}",
                    remote.ip(),
                    if initiator { "initiator" } else { "responder" },
                    ike::SuiteName(&suite)
                );
                // Signature authentication: which certificate the peer proved it holds.
                let certificate =
                    engine.ike_sas().find(|v| v.connection == connection).and_then(|v| v.peer_certificate);
                if let Some(c) = certificate {
                    info!(
                        "IKE SA {connection} with {peer}: peer certificate subject '{}', issuer '{}', serial {}",
                        c.subject, c.issuer, c.serial
                    );
                }
            }
            Event::IpsecSaInstalled(pair) => {
                info!(
                    "IPsec SA pair for {} with {} ({}) up: {}, inbound SPI {:08x}, outbound SPI {:08x}",
                    pair.policy,
                    pair.peer,
                    pair.remote.ip(),
                    pair.suite,
                    pair.inbound.spi().0,
                    pair.outbound.spi().0
                );
                let display_id = records.next_display_id;
                records.next_display_id += 1;
                data.install(&pair, engine);
                records.installed.push(InstalledPair {
                    display_id,
                    connection: pair.connection,
                    remote: pair.remote,
                    initiator: pair.initiator,
                    inbound_spi: pair.inbound.spi().0,
                    outbound_spi: pair.outbound.spi().0,
                });
            }
            Event::Failed(failure) => {
                warn!("{failure}");
                data.abandon(engine, failure.remote.ip());
                if records.failures.len() == ERROR_HISTORY {
                    records.failures.pop_front();
                }
                records.failures.push_back((SystemTime::now(), failure.to_string()));
            }
            Event::IkeSaDeleted { connection, peer } => {
                info!("IKE SA {connection} with {peer} deleted by the peer")
            }
            Event::IpsecSaDeleted { connection, spis } => {
                info!("peer deleted IPsec SAs {spis:08x?} on IKE SA {connection}");
                data.remove_outbound(connection, &spis);
                records.installed.retain(|p| !(p.connection == connection && spis.contains(&p.outbound_spi)));
            }
            Event::IpsecSaExpired { connection, peer, policy, inbound_spi, outbound_spi, reason } => {
                info!(
                    "IPsec SA pair for {policy} with {peer} ended ({reason:?}) on IKE SA {connection}: \
                     inbound SPI {inbound_spi:08x}, outbound SPI {outbound_spi:08x}"
                );
                data.remove_inbound(inbound_spi);
                records.installed.retain(|p| p.inbound_spi != inbound_spi);
            }
            Event::IkeSaExpired { connection, peer, remote, reason } => {
                info!("IKE SA {connection} with {peer} ({}) ended ({reason:?}); Delete sent", remote.ip());
            }
            Event::SasCleared { connection, peer, remote, reason } => {
                warn!(
                    "IKE SA {connection} with {peer} ({}) and its IPsec SAs cleared: {reason}",
                    remote.ip()
                );
                data.remove_connection(connection);
                records.installed.retain(|p| p.connection != connection);
            }
            Event::PeerMoved { connection, local, remote } => {
                info!("IKE SA {connection}: peer now at {remote} (from {local})");
            }
        }
    }
}

fn answer(
    engine: &mut Engine,
    records: &Records,
    data: &DataPath,
    config: &vrp::Config,
    request: &Request,
) -> Response {
    match request {
        Request::DisplayIpsecStatistics => {
            let s = data.statistics();
            let text = format!(
                "packets sealed: {}\npackets opened: {}\npackets queued: {}\nacquires: {}\n\
                 queued packets dropped: {}\nclear packets from the TUN dropped: {}\n\
                 inbound unknown SPI: {}\ninbound authentication failures: {}\ninbound replayed: {}\n",
                s.sealed,
                s.opened,
                s.queued,
                s.acquires,
                s.queue_dropped,
                data.bypass_dropped(),
                s.inbound.unknown_spi,
                s.inbound.authentication,
                s.inbound.replayed,
            );
            let json = json!({
                "sealed": s.sealed,
                "opened": s.opened,
                "queued": s.queued,
                "acquires": s.acquires,
                "queue_dropped": s.queue_dropped,
                "bypass_dropped": data.bypass_dropped(),
                "inbound_unknown_spi": s.inbound.unknown_spi,
                "inbound_authentication": s.inbound.authentication,
                "inbound_replayed": s.inbound.replayed,
            });
            Response::Ok { text, json }
        }
        Request::DisplayIkeSa => {
            let mut rows: Vec<IkeSaRow> = records
                .installed
                .iter()
                .rev()
                .map(|p| IkeSaRow {
                    conn_id: p.display_id + PHASE2_CONN_ID_BASE,
                    peer: p.remote.ip().to_string(),
                    flags: if p.initiator { vec!["RD", "ST"] } else { vec!["RD"] },
                    phase: "v1:2",
                    vpn: "public",
                })
                .collect();
            rows.extend(engine.ike_sas().map(|sa| {
                let flags = crate::display::live::ike_sa_flags(&sa);
                IkeSaRow {
                    conn_id: sa.connection.0,
                    peer: sa.remote.ip().to_string(),
                    flags,
                    phase: "v1:1",
                    vpn: "public",
                }
            }));
            Response::Ok { text: ike_sa_text(&rows), json: json!({ "sas": rows }) }
        }
        Request::DisplayIkeErrorInfo => {
            let mut text = String::new();
            let mut entries = Vec::new();
            for (at, reason) in &records.failures {
                let secs = at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                text.push_str(&format!("{secs} {reason}\n"));
                entries.push(json!({ "unix_time": secs, "reason": reason }));
            }
            Response::Ok { text, json: json!({ "errors": entries }) }
        }
        Request::DisplayIpsecSaBrief => {
            let pairs: Vec<ike::IpsecSaView> = engine.ipsec_sas(Instant::now()).collect();
            let mut rows = Vec::new();
            for p in &pairs {
                let (local, remote) = (p.local.ip().to_string(), p.remote.ip().to_string());
                let mut both =
                    |protocol: &'static str, algorithm: String, (inbound, outbound): (u32, u32)| {
                        rows.push(IpsecSaRow {
                            src: local.clone(),
                            dst: remote.clone(),
                            spi: outbound,
                            protocol,
                            algorithm: algorithm.clone(),
                        });
                        rows.push(IpsecSaRow {
                            src: remote.clone(),
                            dst: local.clone(),
                            spi: inbound,
                            protocol,
                            algorithm,
                        });
                    };
                if let (Some(integrity), Some(spis)) = (p.suite.proposal.protocols.ah(), p.ah_spis) {
                    both("AH", ah_algorithm_column(integrity), spis);
                }
                if let Some((encryption, integrity)) = p.suite.proposal.protocols.esp() {
                    both("ESP", algorithm_column(encryption, integrity), (p.inbound_spi, p.outbound_spi));
                }
            }
            Response::Ok {
                text: ipsec_sa_brief_text(&rows, pairs.len()),
                json: json!({ "sas": rows, "tunnels": pairs.len() }),
            }
        }
        Request::Reload => Response::Error("reload is handled by the daemon loop".into()),
        Request::ResetIkeSa { conn_id } => {
            let before = engine.ike_sas().count();
            engine.handle_command(
                Instant::now(),
                ike::Command::ResetIkeSa { connection: conn_id.map(ike::ConnectionId) },
            );
            let after = engine.ike_sas().count();
            Response::Ok {
                text: format!("{} IKE SA(s) reset\n", before.saturating_sub(after)),
                json: json!({ "reset": before.saturating_sub(after) }),
            }
        }
        Request::ResetIpsecSa { remote, policy } => {
            let before = engine.ipsec_sas(Instant::now()).count();
            engine.handle_command(
                Instant::now(),
                ike::Command::ResetIpsecSa {
                    remote: *remote,
                    policy: policy.clone().map(|(name, sequence)| ike::PolicyId { name, sequence }),
                },
            );
            let after = engine.ipsec_sas(Instant::now()).count();
            Response::Ok {
                text: format!("{} IPsec SA pair(s) reset\n", before.saturating_sub(after)),
                json: json!({ "reset": before.saturating_sub(after) }),
            }
        }
        // The other displays and show-config read the engine, the data plane's counters and
        // the configuration (display/live.rs).
        other => {
            let traffic = data.traffic();
            let phase2_conn_ids: HashMap<u32, u64> = records
                .installed
                .iter()
                .map(|p| (p.inbound_spi, p.display_id + PHASE2_CONN_ID_BASE))
                .collect();
            let live = Live {
                engine,
                config,
                traffic: &traffic,
                phase2_conn_ids: &phase2_conn_ids,
                now: Instant::now(),
            };
            crate::display::live::respond(&live, other)
                .unwrap_or_else(|| Response::Error(format!("unsupported request {other:?}")))
        }
    }
}

/// Binds the control socket, replacing a stale one, readable by root only.
fn bind_control(path: &Path) -> Result<UnixListener, String> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!("another keysteward daemon answers on {}", path.display()));
        }
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path).map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
    Ok(listener)
}

async fn accept_control(
    listener: UnixListener,
    requests: mpsc::Sender<(Request, oneshot::Sender<Response>)>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let requests = requests.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_LINE as u64));
            let mut line = String::new();
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let response = match serde_json::from_str::<Request>(&line) {
                Ok(request) => {
                    let (tx, rx) = oneshot::channel();
                    if requests.send((request, tx)).await.is_err() {
                        return;
                    }
                    rx.await.unwrap_or_else(|_| Response::Error("the daemon is stopping".into()))
                }
                Err(e) => Response::Error(format!("unreadable request: {e}")),
            };
            if let Ok(mut text) = serde_json::to_string(&response) {
                text.push('\n');
                let _ = write.write_all(text.as_bytes()).await;
            }
        });
    }
}
