//! What the daemon does before its loop runs, and again on a reload: read and check the
//! configuration file whole, open the sockets it needs, and list the negotiations to start.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::Arc;

use ike::Acquire;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::RunOptions;
use crate::load::{self, Host, HostError, Purpose};
use crate::os::sockets::{bind_udp, open_raw_ah, open_raw_esp, register_udp, share_udp, UdpHandles};
use crate::os::OsError;

/// Why a configuration file was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The host's interfaces could not be listed, so the file cannot be checked against them.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The file has errors: every error line (`file:line:column: error: …`).
    #[error("{0}")]
    Invalid(String),
}

/// A configuration file that passed every check, with its warnings.
pub(super) struct Checked {
    pub(super) config: vrp::Config,
    pub(super) engine: ike::Config,
    pub(super) warnings: Vec<String>,
    pub(super) expiries: Vec<statistics::Expiry>,
}

/// Reads and checks the whole configuration file for `run` or a reload: every warning is
/// logged; any error refuses the file, with every error line (`file:line:column: …`).
pub(super) fn load_checked(options: &RunOptions) -> Result<Checked, ConfigError> {
    let host = Host::current()?;
    let loaded = load::load(&options.config, &options.interface_map, Some(&host), Purpose::Run);
    let warnings: Vec<String> =
        loaded.diagnostics.iter().filter(|d| !d.is_error()).map(ToString::to_string).collect();
    for w in &warnings {
        warn!("{w}");
    }
    let errors = loaded.errors();
    let (config, engine) = loaded.config.ok_or(ConfigError::Invalid(errors))?;
    Ok(Checked { config, engine, warnings, expiries: loaded.expiries })
}

/// Checks the running configuration's complete part as `run` checks a file (the VRP checks,
/// this host's interfaces, certificate files beside the configuration file, the engine
/// conversion): the console's change is applied only if this passes. Rendered and read back,
/// so it takes exactly the path of a file; the errors are the findings' messages alone (their
/// lines would be the rendered text's).
pub(super) fn check_running(options: &RunOptions, config: &vrp::Config) -> Result<Checked, ConfigError> {
    let host = Host::current()?;
    let text = zeroize::Zeroizing::new(vrp::render(config, vrp::KeyDisplay::Clear));
    let file = options.config.display().to_string();
    let loaded = load::check_text(&file, &text, &options.interface_map, Some(&host), Purpose::Run);
    let messages = |errors: bool| -> Vec<String> {
        loaded.diagnostics.iter().filter(|d| d.is_error() == errors).map(|d| d.message.clone()).collect()
    };
    let (errors, warnings) = (messages(true), messages(false));
    let (config, engine) = loaded.config.ok_or_else(|| ConfigError::Invalid(errors.join("\n")))?;
    Ok(Checked { config, engine, warnings, expiries: loaded.expiries })
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

/// The acquires to raise at start or reload: those of [`start_up_acquires`] but a template's,
/// which only responds, even when `auto-neg` is set on its interface.
pub(super) fn initiating(config: &vrp::Config, engine: &ike::Config, templates: &[bool]) -> Vec<Acquire> {
    start_up_acquires(config, engine)
        .into_iter()
        .filter(|a| !templates.get(a.policy).copied().unwrap_or(false))
        .collect()
}

/// The sockets a configuration needs that are not open yet: UDP 500 and 4500 (NAT-T, RFC
/// 3948) and a raw ESP socket on each local address that peers use. Nothing is spawned until
/// every socket is open and every handle made, so a failure leaves nothing behind and
/// what follows cannot fail.
pub(super) struct NewSockets {
    /// Each with, for UDP 500, the runtime's handle its reader waits on (UDP 4500 is not
    /// registered with the runtime: its ESP-in-UDP traffic would wake the IKE loop for
    /// every datagram the data-plane thread reads).
    udp: Vec<(SocketAddr, Arc<std::net::UdpSocket>, Option<UdpSocket>)>,
    /// Further handles of the new UDP 4500 sockets, for the bridge's sends and the
    /// data-plane thread's reads (`fast_path`: ESP-in-UDP, and IKE handed back to this loop).
    udp_4500: Vec<UdpHandles>,
    raw: HashMap<IpAddr, Arc<socket2::Socket>>,
    /// Raw AH sockets (`IP_HDRINCL`), one per address that gets a raw ESP socket.
    raw_ah: HashMap<IpAddr, Arc<socket2::Socket>>,
}

/// Opens the sockets of `config` that are not among `udp` (and, for raw sockets, where
/// `raw` says none is open).
pub(super) fn open_sockets(
    config: &ike::Config,
    udp: &HashMap<SocketAddr, Arc<std::net::UdpSocket>>,
    raw: impl Fn(IpAddr) -> bool,
) -> Result<NewSockets, OsError> {
    let mut new =
        NewSockets { udp: Vec::new(), udp_4500: Vec::new(), raw: HashMap::new(), raw_ah: HashMap::new() };
    for peer in &config.peers {
        for port in [500, ike::NAT_T_PORT] {
            let local = SocketAddr::new(peer.local_address, port);
            if udp.contains_key(&local) || new.udp.iter().any(|(l, ..)| *l == local) {
                continue;
            }
            let bound = bind_udp(local)?;
            let reader = if port == ike::NAT_T_PORT {
                new.udp_4500.push(UdpHandles::share(&bound, local)?);
                None
            } else {
                Some(register_udp(share_udp(&bound, local)?, local)?)
            };
            new.udp.push((local, Arc::new(bound), reader));
        }
        if let IpAddr::V4(address) = peer.local_address {
            if !raw(peer.local_address) && !new.raw.contains_key(&peer.local_address) {
                new.raw.insert(peer.local_address, open_raw_esp(address)?);
                new.raw_ah.insert(peer.local_address, open_raw_ah(address)?);
            }
        }
    }
    Ok(new)
}

/// The sockets the data path reads: raw ESP, raw AH and UDP 4500.
pub(super) struct DataSockets {
    pub(super) raw: HashMap<IpAddr, Arc<socket2::Socket>>,
    pub(super) raw_ah: HashMap<IpAddr, Arc<socket2::Socket>>,
    pub(super) udp_4500: Vec<UdpHandles>,
}

/// Where the UDP 500 readers deliver IKE messages: (local, remote, message).
pub(super) type Datagrams = mpsc::Sender<(SocketAddr, SocketAddr, Vec<u8>)>;

impl NewSockets {
    /// Starts reading the new UDP 500 sockets; the UDP ones join `udp`; the raw and UDP 4500
    /// ones are returned for the data path, whose thread reads them.
    pub(super) fn start(
        self,
        udp: &mut HashMap<SocketAddr, Arc<std::net::UdpSocket>>,
        datagrams: &Datagrams,
    ) -> DataSockets {
        for (local, socket, reader) in self.udp {
            info!("listening for IKE on {local}");
            udp.insert(local, socket);
            if let Some(reader) = reader {
                tokio::spawn(receive(reader, local, datagrams.clone()));
            }
        }
        DataSockets { raw: self.raw, raw_ah: self.raw_ah, udp_4500: self.udp_4500 }
    }
}

/// Reads one UDP 500 socket and hands IKE messages to the engine loop: what waits at each
/// wake-up in one `recvmmsg` (IPv4), so that a loaded responder reads its peers' messages in
/// batches and answers them in one `sendmmsg` (`engine_io`). (UDP 4500, where IKE follows the
/// non-ESP marker and everything else is ESP-in-UDP, is read by the data-plane thread,
/// `fast_path`, which hands the IKE messages back through the same channel.)
async fn receive(socket: UdpSocket, local: SocketAddr, tx: Datagrams) {
    let mut buffers: Vec<Vec<u8>> = (0..IKE_BATCH).map(|_| vec![0u8; 65_535]).collect();
    let mut reads = [(0, None); IKE_BATCH];
    loop {
        if !local.is_ipv4() {
            match socket.recv_from(&mut buffers[0]).await {
                Ok((n, remote)) if tx.send((local, remote, buffers[0][..n].to_vec())).await.is_err() => {
                    return
                }
                Ok(_) => {}
                Err(e) => warn!("receive on {local}: {e}"),
            }
            continue;
        }
        let _ = socket.readable().await;
        let batch = socket.try_io(tokio::io::Interest::READABLE, || {
            batch_io::receive_each(socket.as_fd(), &mut buffers, &mut reads)
        });
        let count = match batch {
            Ok(count) => count,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                warn!("receive on {local}: {e}");
                continue;
            }
        };
        for ((len, from), buffer) in reads[..count].iter().zip(&buffers) {
            let Some(from) = from else { continue };
            if tx.send((local, SocketAddr::V4(*from), buffer[..*len].to_vec())).await.is_err() {
                return;
            }
        }
    }
}

/// Datagrams one read of a UDP 500 socket takes.
const IKE_BATCH: usize = 16;
