//! `keysteward run`: the daemon. It loads and validates the configuration, opens UDP 500 and
//! 4500 on the address of every interface that carries an `ipsec policy`, serves the control
//! socket,
//! and drives the IKE engine: after every input it drains the engine's transmits and events,
//! then sleeps until the next input or the engine's next deadline (the quinn driver loop).
//! With `--key-log FILE` it also appends Wireshark decryption records of every SA
//! ([`crate::key_log`]), after a warning; without it the engine is never asked for phase-1 keys.
//!
//! It also carries the traffic ([`crate::data_path`], through [`crate::bridge`]): a TUN device (`--tun`, `ks0` by
//! default) with a route for every protected remote prefix, raw ESP sockets on the same
//! addresses, and ESP-in-UDP on 4500, all read and written by a data-plane thread of their
//! own ([`crate::data_path::fast_path`]), which reports acquires and traffic here. A packet that needs
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
//!
//! This module is the loop and nothing more: each input is routed to the part that handles
//! it (`startup` and `reload` for the configuration, [`engine_io`] after every input,
//! `commands` for `reset`, [`crate::display`] for the displays); the OS is reached
//! through [`crate::os`].

mod commands;
mod console;
mod counters;
pub mod engine_io;
mod reload;
mod startup;
pub mod supervise;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use ike::Engine;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{info, warn};

pub use self::engine_io::MESSAGE_TRACE_PREFIX;
pub use self::reload::ReloadError;
pub use self::startup::ConfigError;
use self::startup::{initiating, load_checked, open_sockets, Checked, DataSockets, Datagrams};
use crate::bridge::{routing, Bridge, BridgeError};
use crate::control::server::{self, Pending, ServerError};
use crate::control::{Request, Response};
use crate::data_path::{Notice, NOTICE_QUEUE};
use crate::display::live::{respond, Live};
use crate::display::{paged, summary};
use crate::engine_config::template_policies;
use crate::load::InterfaceMap;
use crate::os::routes::Routes;
use crate::os::static_routes::StaticRoutes;
use crate::os::OsError;
use crate::records::Records;
use crate::service::notify::Notifier;
use crate::service::privilege::{self, PrivilegeError};
use key_log::{KeyLog, KeyLogError};

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
    /// ([`crate::key_log`]). `None`, the default, and no key leaves the engine but ESP keys
    /// for the data plane.
    pub key_log: Option<PathBuf>,
    /// `--interface-map VRPNAME=LINUXNAME`: the Linux interfaces behind the configuration's
    /// VRP interface names (unmapped names are Linux names).
    pub interface_map: InterfaceMap,
    /// `--user NAME`: started as root, become NAME keeping only the capabilities the daemon
    /// needs ([`crate::service::privilege`]). `None`: stay as started.
    pub user: Option<String>,
    /// `--metrics ADDR:PORT`: serve Prometheus metrics there ([`telemetry::metrics`]).
    pub metrics: Option<SocketAddr>,
}

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The async runtime could not be built.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A signal the daemon handles could not be watched.
    #[error("cannot watch {signal}: {source}")]
    Signal {
        /// `SIGTERM` or `SIGHUP`.
        signal: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration file was refused.
    #[error("{source}\n{}: nothing started", file.display())]
    Refused {
        /// The configuration file.
        file: PathBuf,
        /// Every reason.
        source: ConfigError,
    },
    /// A socket, the TUN device or a route could not be set up.
    #[error(transparent)]
    Os(#[from] OsError),
    /// The key log was refused.
    #[error(transparent)]
    KeyLog(#[from] KeyLogError),
    /// The data path did not start.
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    /// The control socket could not be set up.
    #[error(transparent)]
    Control(#[from] ServerError),
    /// `--user` could not be honoured.
    #[error(transparent)]
    Privilege(#[from] PrivilegeError),
    /// The metrics address could not be bound.
    #[error("cannot serve metrics on {0}: {1}")]
    Metrics(SocketAddr, #[source] std::io::Error),
}

/// How often the data plane's per-SA traffic goes to the engine for traffic lifetimes.
const USAGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the daemon until SIGTERM or SIGINT. A panic in any of its threads or tasks ends
/// the process ([`supervise`]).
pub fn run(options: RunOptions) -> Result<(), DaemonError> {
    supervise::install();
    // Before the runtime: the switch must happen while this is the only thread. The TUN
    // device is made first, as root: opening /dev/net/tun may need root (its mode is the
    // distribution's); everything else needs only the capabilities kept.
    let tun = match &options.user {
        Some(user) => {
            let tun = crate::os::tun::open_tun(&options.tun)?;
            let default = std::path::Path::new(crate::control::DEFAULT_CONTROL_PATH);
            privilege::drop_to(user, &options.control, default.parent().unwrap_or(default))?;
            info!("running as user {user} with CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE only");
            Some(tun)
        }
        None => None,
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(DaemonError::Runtime)?;
    runtime.block_on(serve(options, tun))
}

/// The running daemon: everything its inputs act on.
struct Daemon {
    options: RunOptions,
    engine: Engine,
    bridge: Bridge,
    /// The routes of the protected prefixes into the TUN and their fail-closed routes: the
    /// TUN routes go when the daemon drops; the fail-closed routes only on an orderly stop
    /// ([`Daemon::stop`]) without `ipsec fail-closed keep`.
    routes: Routes,
    /// The configuration's `ip route-static`, installed (protocol 245) or not, and why.
    static_routes: StaticRoutes,
    /// The IKE sockets by local address.
    sockets: HashMap<SocketAddr, Arc<std::net::UdpSocket>>,
    /// Where new UDP 500 readers deliver (a reload opens sockets for new addresses).
    datagrams: Datagrams,
    /// The VRP configuration in force (`show-config` and the configuration displays): the
    /// running configuration without its inert objects.
    config: vrp::Config,
    /// The running configuration as typed at the console, inert objects included; the saved
    /// file's until a console change (crate `running`).
    running: running::Running,
    records: Records,
    key_log: Option<KeyLog>,
    /// Rate limits for the log lines of failures and refusals.
    refusals: telemetry::refusals::RefusalLog,
    /// What `reset ike|ipsec statistics` left for the displays to count from.
    baselines: statistics::Baselines,
    /// When each configured certificate and CRL file runs out.
    expiries: Vec<statistics::Expiry>,
    /// The Prometheus endpoint (`--metrics`, else `metrics server` of the file).
    metrics: telemetry::metrics::Endpoint,
    /// The engine loop's request queue, for a metrics endpoint a reload moves.
    requests: mpsc::Sender<Pending>,
}

/// What the daemon loop waits for, apart from the engine's deadline.
struct Inputs {
    datagrams: mpsc::Receiver<(SocketAddr, SocketAddr, Vec<u8>)>,
    notices: mpsc::Receiver<Notice>,
    requests: mpsc::Receiver<Pending>,
    usage: tokio::time::Interval,
    terminate: Signal,
    hangup: Signal,
}

fn watch(kind: SignalKind, name: &'static str) -> Result<Signal, DaemonError> {
    signal(kind).map_err(|source| DaemonError::Signal { signal: name, source })
}

/// The TUN device, when made before the switch to `--user`.
type Tun = Option<Arc<tun_rs::SyncDevice>>;

async fn serve(options: RunOptions, tun: Tun) -> Result<(), DaemonError> {
    // Watched first: a SIGHUP that arrives while the daemon starts must not kill it (the
    // default action), and is handled as a reload once the loop runs.
    let terminate = watch(SignalKind::terminate(), "SIGTERM")?;
    let hangup = watch(SignalKind::hangup(), "SIGHUP")?;
    let (mut daemon, mut inputs) = Daemon::start(options, terminate, hangup, tun)?;
    info!("keysteward running with {}", daemon.options.config.display());
    // Sockets, TUN device and routes are up: systemd may start what depends on us.
    let notifier = Notifier::from_env();
    if let Err(e) = notifier.notify("READY=1") {
        warn!("cannot tell the service manager that the daemon is ready: {e}");
    }
    let mut watchdog = notifier.watchdog();
    loop {
        daemon.drain();
        let deadline = daemon.engine.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            Some((local, remote, bytes)) = inputs.datagrams.recv() => {
                daemon.engine.handle_datagram(Instant::now(), local, remote, &bytes);
                // What else waits goes in before one drain: the replies leave in one sendmmsg.
                for _ in 1..batch_io::BATCH {
                    let Ok((local, remote, bytes)) = inputs.datagrams.try_recv() else { break };
                    daemon.engine.handle_datagram(Instant::now(), local, remote, &bytes);
                }
            }
            Some(notice) = inputs.notices.recv() => daemon.notice(notice),
            _ = inputs.usage.tick() => daemon.bridge.report_usage(&mut daemon.engine),
            Some((mut request, uid, reply)) = inputs.requests.recv() => {
                let _ = reply.send(daemon.answer(&request, uid));
                // A console line may hold a pre-shared key.
                if let Request::Configure { line, .. } = &mut request {
                    zeroize::Zeroize::zeroize(line);
                }
            }
            _ = inputs.hangup.recv() => {
                info!("SIGHUP: reloading {}", daemon.options.config.display());
                // `reload` logs the outcome either way; there is no caller to answer.
                let _ = daemon.reload();
            }
            () = sleep_until(deadline) => daemon.engine.handle_timeout(Instant::now()),
            () = watchdog.tick() => {
                // From the loop itself: a loop that hangs stops the pings and systemd
                // restarts the daemon.
                if let Err(e) = notifier.notify("WATCHDOG=1") {
                    warn!("watchdog notification: {e}");
                }
            }
            _ = inputs.terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let _ = notifier.notify("STOPPING=1");
    daemon.stop();
    Ok(())
}

impl Daemon {
    /// Checks the configuration, opens every socket, the key log, the TUN and its routes,
    /// starts the data path and the control socket, and raises the start-up acquires.
    fn start(
        options: RunOptions,
        terminate: Signal,
        hangup: Signal,
        tun: Tun,
    ) -> Result<(Self, Inputs), DaemonError> {
        let Checked { config, engine: engine_config, expiries, .. } = load_checked(&options)
            .map_err(|source| DaemonError::Refused { file: options.config.clone(), source })?;
        let templates = template_policies(&config, &engine_config);
        let acquires = initiating(&config, &engine_config, &templates);

        let mut sockets = HashMap::new();
        let (datagrams_tx, datagrams) = mpsc::channel(1024);
        let DataSockets { raw, raw_ah, udp_4500 } =
            open_sockets(&engine_config, &sockets, |_| false)?.start(&mut sockets, &datagrams_tx);

        // Before anything is negotiated, so the first SA's keys are in the file and a refused
        // file stops the daemon before it holds any key.
        let key_log = match &options.key_log {
            Some(path) => {
                warn!("{}", key_log::warning(path));
                Some(KeyLog::open(path)?)
            }
            None => None,
        };

        let tun = match tun {
            Some(tun) => tun,
            None => crate::os::tun::open_tun(&options.tun)?,
        };
        let denies = crate::engine_config::deny_rules(&config, &engine_config);
        let routes = routing::routes_for_config(&options.tun, &engine_config, (&templates, &denies))?;
        // After the TUN routes: their start removes what an earlier run left, static routes too.
        let mut static_routes = StaticRoutes::new()?;
        static_routes.apply(routing::static_routes(&config, &options.interface_map));
        let (notices_tx, notices) = mpsc::channel(NOTICE_QUEUE);
        let bridge = Bridge::new(
            &engine_config,
            (templates, &denies),
            tun,
            (raw, raw_ah),
            udp_4500,
            notices_tx,
            datagrams_tx.clone(),
        )?;
        let usage = tokio::time::interval(USAGE_INTERVAL);

        let listener = server::bind(&options.control)?;
        let (requests_tx, requests) = mpsc::channel::<Pending>(16);
        let mut metrics = telemetry::metrics::Endpoint::default();
        if let Some(addr) = counters::metrics_address(options.metrics, &config) {
            let listener = telemetry::metrics::bind(addr).map_err(|e| DaemonError::Metrics(addr, e))?;
            metrics.replace(Some((addr, listener)), commands::ask(requests_tx.clone()));
            info!("metrics at http://{addr}/metrics");
        }
        tokio::spawn(server::accept(listener, requests_tx.clone()));

        let engine = start_engine(engine_config, key_log.is_some(), acquires);
        let inputs = Inputs { datagrams, notices, requests, usage, terminate, hangup };
        let records = Records::default();
        let mut running = running::Running::new(config.clone());
        running.on_disk(&options.config);
        let daemon = Self {
            options,
            engine,
            bridge,
            routes,
            static_routes,
            sockets,
            datagrams: datagrams_tx,
            running,
            config,
            records,
            key_log,
            refusals: telemetry::refusals::RefusalLog::default(),
            baselines: statistics::Baselines::default(),
            expiries,
            metrics,
            requests: requests_tx,
        };
        Ok((daemon, inputs))
    }

    /// Sends what the engine wants sent and hands on what it reports.
    fn drain(&mut self) {
        engine_io::drain(
            &mut self.engine,
            &self.sockets,
            &mut self.records,
            &mut self.bridge,
            self.key_log.as_mut(),
            &mut self.refusals,
        );
    }

    /// A notice from the data-plane thread.
    fn notice(&mut self, notice: Notice) {
        match notice {
            Notice::Acquire(acquire) => self.engine.handle_acquire(Instant::now(), acquire),
            Notice::Traffic(spi) => self.bridge.heard_from(spi, &mut self.engine),
            Notice::Usage => self.bridge.report_usage(&mut self.engine),
            Notice::UnknownSpi { from, spi } => engine_io::unknown_spi(&mut self.engine, from, spi),
        }
    }

    /// Routes a control request (from the client of uid `uid`) to the part that answers it.
    fn answer(&mut self, request: &Request, uid: Option<u32>) -> Response {
        if let Some(response) = self.statistics_request(request) {
            return response;
        }
        match request {
            Request::Page { display, after, rows } => self.page(display, after.as_deref(), *rows, uid),
            Request::Configure { views, line } => self.configure(views, line, uid),
            Request::Save => self.save(uid),
            Request::DisplayCurrentConfiguration
            | Request::DisplaySavedConfiguration
            | Request::DisplayThis { .. } => self.display_configuration(request),
            Request::Reload => match self.reload() {
                Ok((text, json)) => Response::Ok { text, json },
                Err(e) => Response::Error(e.to_string()),
            },
            Request::ResetIkeSa { conn_id } => commands::reset_ike_sa(&mut self.engine, *conn_id),
            Request::ResetIpsecSa { remote, policy } => {
                commands::reset_ipsec_sa(&mut self.engine, *remote, policy.clone())
            }
            Request::DisplayIkeSa => summary::ike_sa(&self.engine, &self.records),
            Request::DisplayIkeErrorInfo => summary::ike_error_info(&self.records),
            Request::DisplayIpsecSaBrief => summary::ipsec_sa_brief(&self.engine, Instant::now()),
            Request::DisplayIpRoutingTable => summary::ip_routing_table(self.static_routes.routes()),
            // The other displays and show-config read the engine, the data plane's counters
            // and the configuration (display/live.rs).
            other => self.with_live(other, true, |live| {
                respond(live, other).unwrap_or_else(|| {
                    let line = serde_json::to_string(other).unwrap_or_default();
                    Response::Error(format!("unsupported request {line}"))
                })
            }),
        }
    }

    /// Runs `f` on a live view of the daemon for `display`: the data plane's counters of
    /// every pair (copies of one entry per pair) only when `counted`, else of each pair as
    /// it is shown; the inner flows only for the session table.
    fn with_live<R>(&self, display: &Request, counted: bool, f: impl FnOnce(&Live<'_>) -> R) -> R {
        let traffic = if counted { self.bridge.traffic() } else { Vec::new() };
        let mut by_spi = HashMap::with_capacity(traffic.len());
        for t in &traffic {
            by_spi.entry(t.inbound_spi).or_insert(*t);
        }
        let pair_traffic = |spi: u32| {
            if counted {
                by_spi.get(&spi).copied()
            } else {
                self.bridge.pair_traffic(spi)
            }
        };
        let now = Instant::now();
        let session_table = matches!(display, Request::DisplayFirewallSessionTable { .. });
        let inner_flows = if session_table { self.bridge.inner_flows(now) } else { Vec::new() };
        f(&Live {
            engine: &self.engine,
            config: &self.config,
            traffic: &traffic,
            pair_traffic: &pair_traffic,
            inner_flows: &inner_flows,
            records: &self.records,
            now,
        })
    }

    /// One page of a display: the SA displays pick their page's rows from the engine;
    /// the others are rendered whole and cut into lines (display/paged.rs).
    fn page(&mut self, display: &Request, after: Option<&str>, rows: u32, uid: Option<u32>) -> Response {
        if !paged::pageable(display) {
            return Response::Error("Error: only displays can be paged".to_owned());
        }
        // All the counters only for the session table (sums over the SAs); a page of
        // `display ipsec sa` takes its own pairs' counters.
        let counted = matches!(display, Request::DisplayFirewallSessionTable { .. });
        let page = self
            .with_live(display, counted, |live| paged::sa_page(live, &self.records, display, after, rows));
        if let Some(page) = page {
            return page;
        }
        let whole = self.answer(display, uid);
        paged::lines(whole, after, rows)
    }

    /// Tells every peer: Deletes for each IPsec SA and IKE SA (RFC 2408 §4.8), so that their
    /// SAs do not outlive ours until DPD or the lifetimes notice; then removes the control
    /// socket and, unless `ipsec fail-closed keep`, the fail-closed routes, and says so.
    fn stop(mut self) {
        info!("keysteward stopping: sending Deletes to every peer");
        self.engine.handle_command(Instant::now(), ike::Command::ResetIkeSa { connection: None });
        self.drain();
        let _ = std::fs::remove_file(&self.options.control);
        let keep = self.config.ipsec_fail_closed_keep;
        self.static_routes.shutdown();
        let guarded = self.routes.shutdown(keep) + self.bridge.shutdown_routes(keep);
        if keep {
            info!("fail-closed routes for {guarded} protected prefixes kept (ipsec fail-closed keep)");
        } else {
            info!("fail-closed routes for {guarded} protected prefixes removed (orderly shutdown)");
        }
    }
}

/// The engine for `config`, with the key log on when asked for, the message trace on when
/// debug logging is, the wall clock for certificate validity, and `acquires` raised.
fn start_engine(config: ike::Config, key_log: bool, acquires: Vec<ike::Acquire>) -> Engine {
    let mut engine = Engine::new(config, Box::new(crypto::OsRandom));
    engine.set_key_log(key_log);
    // One debug line per IKE message (step and payloads, `ike message …`), which `keysteward
    // demo` reads back to draw the message flow; not built unless debug logging is on.
    engine.set_message_trace(tracing::enabled!(tracing::Level::DEBUG));
    // Certificate validity is checked against the wall clock; the engine itself reads none.
    let unix_now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    engine.set_wall_clock(Instant::now(), unix_now);
    let now = Instant::now();
    for acquire in acquires {
        engine.handle_acquire(now, acquire);
    }
    engine
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
