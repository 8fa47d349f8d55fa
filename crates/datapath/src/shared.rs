//! What the IKE loop and the two data-plane threads share: the sealing side of the data plane
//! behind one mutex ([`Shared`], the sealing thread's), the opening side behind another
//! ([`OpenSide`], the opening thread's), the notices the threads send the loop, and the
//! per-pair traffic view the displays read. The threads never take each other's lock; the
//! IKE loop takes `Shared` first and `OpenSide` inside it, never the other way round.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use esp::{OpenPlane, PolicyIndex, SaError, SaPair, SealPlane, SecureRandom};
use ike::TrafficSelector;
use socket2::Socket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Largest IP packet.
pub const MAX_PACKET: usize = 65_535;

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
    /// ESP or AH from `from`, the address of a configured peer, on an SPI no SA has (at most
    /// once a second per peer): the peer still uses SAs we lost, e.g. in a restart
    /// (`ike::Engine::handle_unknown_spi`).
    UnknownSpi {
        /// Where it came from (port 0 for raw ESP and AH).
        from: SocketAddr,
        /// The SPI it carried.
        spi: u32,
    },
}

/// How many notices may wait for the IKE loop; beyond that they are dropped (an acquire is
/// raised again when its queue is abandoned, traffic is reported again a second later).
pub const NOTICE_QUEUE: usize = 1024;

/// Datagrams dropped because the socket's send buffer was full (`EAGAIN`, or `ENOBUFS` from a
/// raw socket), counted rather than waited for: neither the IKE loop nor the data-plane thread
/// ever blocks on a send, so one slow or blocked path cannot stall the others (issue 13).
/// Shared without the data plane's lock; shown by `display ipsec statistics`.
#[derive(Debug, Default)]
pub struct SendDrops {
    /// IKE datagrams (UDP 500 and 4500) the IKE loop dropped.
    pub ike: AtomicU64,
    /// ESP and AH datagrams (raw, or in UDP 4500) the data path dropped.
    pub esp: AtomicU64,
}

/// Whether a send failed because the socket's send buffer was full: `EAGAIN` from a
/// non-blocking UDP socket, `ENOBUFS` from a raw socket (Linux charges raw datagrams to the
/// buffer only up to twice its size and then refuses them with `ENOBUFS`, never blocking).
pub fn is_buffer_full(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::WouldBlock || error.raw_os_error() == Some(libc::ENOBUFS)
}

/// The least time between two reports of unknown SPIs from one peer.
const UNKNOWN_SPI_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Sockets a reload opened after the threads started ([`Shared::add_sockets`]): the sealing
/// thread sends on them, the opening thread reads them.
#[derive(Default, Clone)]
pub struct Added {
    /// Raw ESP sockets by local address.
    pub raw: Vec<(IpAddr, Arc<Socket>)>,
    /// Raw AH sockets by local address.
    pub ah: Vec<(IpAddr, Arc<Socket>)>,
    /// UDP 4500 sockets by local address.
    pub udp: Vec<(SocketAddr, Arc<std::net::UdpSocket>)>,
}

/// The opening side, behind a mutex of its own: the opening thread holds it for one batch of
/// received packets at a time, the IKE loop for an SA change or a display (inside `Shared`'s).
pub struct OpenSide {
    /// The inbound SAs with their replay windows, and the inbound counters.
    pub plane: OpenPlane,
    /// Notices the opening thread dropped because the IKE loop was behind.
    pub notices_dropped: u64,
    /// Sockets a reload opened, for the opening thread to read.
    pub added_sockets: Vec<Added>,
    /// The configured peers' addresses, each with when the thread last reported an unknown
    /// SPI from it ([`Notice::UnknownSpi`]): only these are reported, at most once a second
    /// each, so that packets on random SPIs from anyone cost no notice (and this table
    /// holds only what the configuration names).
    pub unknown_spi_reports: HashMap<IpAddr, Option<Instant>>,
}

/// The part of the data path the IKE loop and the sealing thread share, behind one mutex:
/// the thread holds it for one batch of packets at a time, the IKE loop for an SA change or a
/// display. The opening side hangs from it ([`Shared::open`]).
pub struct Shared {
    /// The sans-IO sealing side: SPD, outbound SAs, acquire queues, outbound counters.
    pub plane: SealPlane,
    /// The opening side (the opening thread's lock).
    pub open: Arc<Mutex<OpenSide>>,
    /// The engine selector of each static SPD rule (same index), for acquires.
    pub rule_selectors: Vec<TrafficSelector>,
    /// Whether each engine policy (same index) is a template: responder only, flows dynamic.
    pub templates: Vec<bool>,
    /// Packets read from the TUN that policy lets pass in clear: not ours to forward.
    pub bypass_dropped: u64,
    /// What the sealing thread's reassembly of inner fragments did.
    pub reassembly: reassembly::Counters,
    /// Notices dropped because the IKE loop was behind.
    pub notices_dropped: u64,
    /// Sockets a reload opened, for the sealing thread to send on.
    pub added_sockets: Vec<Added>,
}

impl Shared {
    /// The shared state of a fresh data plane.
    pub fn new(plane: esp::DataPlane, rule_selectors: Vec<TrafficSelector>, templates: Vec<bool>) -> Self {
        let (plane, open) = plane.into_sides();
        let open = OpenSide {
            plane: open,
            notices_dropped: 0,
            added_sockets: Vec::new(),
            unknown_spi_reports: HashMap::new(),
        };
        Self {
            plane,
            open: Arc::new(Mutex::new(open)),
            rule_selectors,
            templates,
            bypass_dropped: 0,
            reassembly: reassembly::Counters::default(),
            notices_dropped: 0,
            added_sockets: Vec::new(),
        }
    }

    /// The opening side, locked (inside this lock: the order every caller keeps).
    pub fn open(&self) -> Held<'_, OpenSide> {
        lock_open(&self.open)
    }

    /// Installs a negotiated pair: keys scheduled, the inbound half on the opening side, then
    /// the outbound half here, which releases the packets queued for its flow.
    pub fn install(&mut self, pair: SaPair<'_>, rng: &mut dyn SecureRandom) -> Result<(), SaError> {
        let built = pair.build(rng)?;
        let outbound = self.open().plane.install(built)?;
        self.plane.install(outbound);
        Ok(())
    }

    /// As [`Shared::install`], the outbound half held until `SealPlane::release_outbound`
    /// (a quick-mode responder between QM2 and QM3, RFC 2409 §5.5).
    pub fn install_inbound_first(
        &mut self,
        pair: SaPair<'_>,
        rng: &mut dyn SecureRandom,
    ) -> Result<(), SaError> {
        let outbound = self.open().plane.install(pair.build(rng)?)?;
        self.plane.hold(outbound);
        Ok(())
    }

    /// Removes the pair with our SPI `spi`: its outbound half first (nothing more is sealed
    /// with it), then its inbound half.
    pub fn remove_by_inbound_spi(&mut self, spi: esp::Spi) -> bool {
        let outbound = self.plane.remove_by_inbound_spi(spi);
        self.open().plane.remove_by_inbound_spi(spi) || outbound
    }

    /// Both sides follow a reload's policy numbers (see `esp::DataPlane::renumber_policies`).
    pub fn renumber_policies(&mut self, renumber: impl Fn(PolicyIndex) -> Option<PolicyIndex>) -> usize {
        let removed = self.plane.renumber_policies(&renumber);
        self.open().plane.renumber_policies(renumber);
        removed
    }

    /// The counters of both sides.
    pub fn statistics(&self) -> esp::Statistics {
        self.plane.statistics().with_inbound(self.open().plane.statistics())
    }

    /// Sockets a reload opened, for both threads.
    pub fn add_sockets(&mut self, added: Added) {
        self.open().added_sockets.push(added.clone());
        self.added_sockets.push(added);
    }

    /// The addresses whose unknown SPIs are reported: the configured peers' of `config`.
    pub fn set_recovery_peers(&mut self, config: &ike::Config) {
        let mut open = self.open();
        let old = std::mem::take(&mut open.unknown_spi_reports);
        for address in config.peers.iter().filter_map(|p| p.remote_address) {
            open.unknown_spi_reports.insert(address, old.get(&address).copied().flatten());
        }
    }

    /// Whether engine policy `policy` is a template.
    pub fn is_template(&self, policy: PolicyIndex) -> bool {
        self.templates.get(policy.0).copied().unwrap_or(false)
    }

    /// Turns the sealing side's acquires into notices for the IKE loop. Traffic lifetimes are
    /// judged by the engine from the bridge's usage reports; the data plane's own lifetime
    /// notices ask for a report now.
    pub fn drain_events(&mut self, notices: &mpsc::Sender<Notice>) {
        while let Some(event) = self.plane.poll_event() {
            match event {
                esp::Event::Acquire { policy, rule, selector, .. } => {
                    self.acquire(notices, policy, rule, selector);
                }
                esp::Event::Lifetime { direction, spi, notice, .. } => {
                    self.notices_dropped += u64::from(!lifetime(notices, direction, spi, notice));
                }
            }
        }
    }

    /// Asks the IKE loop to negotiate for an acquire on static SPD rule `rule`.
    fn acquire(
        &mut self,
        notices: &mpsc::Sender<Notice>,
        policy: PolicyIndex,
        rule: Option<usize>,
        selector: esp::Selector,
    ) {
        let ts = rule.and_then(|r| self.rule_selectors.get(r).copied());
        let Some(ts) = ts else {
            // A template flow's rule (added at run time, past the static ones) outlived its
            // SAs for a moment: the hub cannot negotiate toward a branch, only answer it.
            let dropped = self.plane.abandon_acquire(policy);
            if self.is_template(policy) {
                info!("{selector}: no SA; {policy} is a template and only responds ({dropped} packet(s) dropped)");
            } else {
                warn!("acquire for {policy} ({selector}) matches no configured rule");
            }
            return;
        };
        info!("acquire: {selector} needs an SA of {policy}");
        let acquire = ike::Acquire { policy: policy.0, selector: ts };
        if notices.try_send(Notice::Acquire(acquire)).is_err() {
            self.notices_dropped += 1;
            self.plane.abandon_acquire(policy);
        }
    }
}

impl OpenSide {
    /// A packet on unknown SPI `spi` arrived from `from`: reported to the IKE loop when
    /// `from` is a configured peer that was not reported in the last second.
    pub fn unknown_spi(&mut self, notices: &mpsc::Sender<Notice>, from: Option<SocketAddr>, spi: u32) {
        let Some(from) = from else { return };
        let Some(last) = self.unknown_spi_reports.get_mut(&from.ip()) else { return };
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < UNKNOWN_SPI_REPORT_INTERVAL) {
            return;
        }
        *last = Some(now);
        if notices.try_send(Notice::UnknownSpi { from, spi }).is_err() {
            self.notices_dropped += 1;
        }
    }

    /// Turns the opening side's lifetime notices into usage notices for the IKE loop.
    pub fn drain_events(&mut self, notices: &mpsc::Sender<Notice>) {
        while let Some(event) = self.plane.poll_event() {
            if let esp::Event::Lifetime { direction, spi, notice, .. } = event {
                self.notices_dropped += u64::from(!lifetime(notices, direction, spi, notice));
            }
        }
    }
}

/// Logs a traffic lifetime notice and asks the IKE loop for a usage report now: traffic
/// lifetimes are judged by the engine from the bridge's reports. False when the notice was
/// dropped (the loop is behind).
fn lifetime(
    notices: &mpsc::Sender<Notice>,
    direction: esp::Direction,
    spi: esp::Spi,
    notice: esp::LifetimeNotice,
) -> bool {
    debug!("{} SA {spi}: {}", direction_name(direction), LifetimeNoticeText(notice));
    notices.try_send(Notice::Usage).is_ok()
}

/// `inbound` or `outbound`, for the log.
fn direction_name(direction: esp::Direction) -> &'static str {
    match direction {
        esp::Direction::Inbound => "inbound",
        esp::Direction::Outbound => "outbound",
    }
}

/// A traffic lifetime notice in words (which limit, of what), written without allocating:
/// it is formatted on the data-plane thread.
struct LifetimeNoticeText(esp::LifetimeNotice);

impl std::fmt::Display for LifetimeNoticeText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (limit, cause) = match self.0 {
            esp::LifetimeNotice::Soft(cause) => ("soft", cause),
            esp::LifetimeNotice::Hard(cause) => ("hard", cause),
        };
        let of = match cause {
            esp::LifetimeCause::Bytes => "bytes",
            esp::LifetimeCause::Packets => "packets",
            esp::LifetimeCause::SequenceNumbers => "sequence numbers",
        };
        write!(f, "{limit} limit of {of} reached")
    }
}

/// Locks the shared state; a panic on another thread while it held the lock leaves the
/// counters possibly inconsistent, never unsafe, so the state is used as it is.
pub fn lock(shared: &Mutex<Shared>) -> Held<'_, Shared> {
    Held::new(shared.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Locks the opening side, as [`lock`] does the sealing side.
pub fn lock_open(open: &Mutex<OpenSide>) -> Held<'_, OpenSide> {
    Held::new(open.lock().unwrap_or_else(PoisonError::into_inner))
}

thread_local! {
    /// How many [`Held`] guards this thread holds.
    static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether this thread holds either data-plane lock (issue 16: the data-plane threads make
/// no system call, such as a TUN write, while they do).
pub(crate) fn data_plane_lock_held() -> bool {
    HELD.with(std::cell::Cell::get) > 0
}

/// One of the data-plane locks ([`lock`], [`lock_open`]), counted on its thread while it
/// lives so that a data-plane thread can check it let go of both (`data_plane_lock_held`).
pub struct Held<'a, T>(MutexGuard<'a, T>);

impl<'a, T> Held<'a, T> {
    fn new(guard: MutexGuard<'a, T>) -> Self {
        HELD.with(|held| held.set(held.get() + 1));
        Self(guard)
    }
}

impl<T> std::ops::Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Held<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> Drop for Held<'_, T> {
    fn drop(&mut self) {
        HELD.with(|held| held.set(held.get().saturating_sub(1)));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The check behind "no TUN write under a data-plane lock": this thread knows when it
    /// holds either lock, for as long as any guard lives (nested, as the IKE loop takes the
    /// opening side under the shared state), and not another thread's hold.
    #[test]
    fn a_thread_knows_when_it_holds_a_data_plane_lock() {
        let plane = esp::DataPlane::new(esp::Spd::new(Vec::new(), esp::Action::Bypass), Default::default());
        let shared = Mutex::new(Shared::new(plane, Vec::new(), Vec::new()));
        assert!(!data_plane_lock_held());
        let sealing = lock(&shared);
        assert!(data_plane_lock_held());
        let open = sealing.open.clone();
        let opening = lock_open(&open);
        drop(sealing);
        assert!(data_plane_lock_held());
        let elsewhere = std::thread::scope(|s| s.spawn(data_plane_lock_held).join().unwrap());
        assert!(!elsewhere);
        drop(opening);
        assert!(!data_plane_lock_held());
    }
}
