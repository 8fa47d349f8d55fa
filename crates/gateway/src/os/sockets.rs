//! The sockets of the daemon and its data path: UDP 500 and 4500 for IKE (and ESP-in-UDP on
//! 4500), and raw IPv4 sockets for ESP (protocol 50) and AH (protocol 51).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tracing::warn;

use super::OsError;

/// IP protocol number of ESP.
const IPPROTO_ESP: i32 = 50;

/// IP protocol number of AH.
const IPPROTO_AH: i32 = 51;

/// A raw IPv4 socket for ESP (protocol 50) bound to `local`. The kernel writes the outer IP
/// header on send; on receive it hands us the IP header in front of the ESP packet. The
/// socket is non-blocking: a send that finds the buffer full fails with `EAGAIN` and the
/// datagram is dropped and counted, so no send ever holds the
/// data-plane thread, or the IKE loop while it holds the data plane's lock.
pub fn open_raw_esp(local: Ipv4Addr) -> Result<Arc<Socket>, OsError> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_ESP)))
        .map_err(|source| OsError::OpenRaw { protocol: "ESP", source })?;
    socket.set_nonblocking(true).map_err(|source| OsError::OpenRaw { protocol: "ESP", source })?;
    socket
        .bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(local), 0)))
        .map_err(|source| OsError::BindRaw { protocol: "ESP", address: local, source })?;
    // Room for a burst of a few hundred full-size packets while the other side catches up.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    Ok(Arc::new(socket))
}

/// A raw IPv4 socket for AH (protocol 51) bound to `local`, with `IP_HDRINCL`: AH's ICV
/// covers the outer header, so the data plane writes it (the kernel still fills in the
/// checksum) and the Identification the ICV was computed over is the one that is sent.
/// Non-blocking, as the ESP socket is.
pub fn open_raw_ah(local: Ipv4Addr) -> Result<Arc<Socket>, OsError> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_AH)))
        .map_err(|source| OsError::OpenRaw { protocol: "AH", source })?;
    socket.set_nonblocking(true).map_err(|source| OsError::OpenRaw { protocol: "AH", source })?;
    socket.set_header_included_v4(true).map_err(OsError::HeaderIncluded)?;
    socket
        .bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(local), 0)))
        .map_err(|source| OsError::BindRaw { protocol: "AH", address: local, source })?;
    Ok(Arc::new(socket))
}

/// A non-blocking UDP socket bound to `local`.
pub fn bind_udp(local: SocketAddr) -> Result<std::net::UdpSocket, OsError> {
    std::net::UdpSocket::bind(local)
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
        .map_err(|source| OsError::BindUdp { local, source })
}

/// A second handle of the UDP socket bound to `local`, for the data-plane thread.
pub fn share_udp(socket: &std::net::UdpSocket, local: SocketAddr) -> Result<std::net::UdpSocket, OsError> {
    socket.try_clone().map_err(|source| OsError::ShareUdp { local, source })
}

/// The two further handles of a UDP 4500 socket, both made when it is opened so that
/// handing it to the data path cannot fail: the bridge's (ESP-in-UDP sends) and the
/// data-plane thread's (reads).
pub struct UdpHandles {
    /// The local address and port.
    pub local: SocketAddr,
    /// For the bridge's sends.
    pub send: std::net::UdpSocket,
    /// For the data-plane thread's reads.
    pub read: std::net::UdpSocket,
}

impl UdpHandles {
    /// Both handles of `socket`, bound to `local`.
    pub fn share(socket: &std::net::UdpSocket, local: SocketAddr) -> Result<Self, OsError> {
        Ok(Self { local, send: share_udp(socket, local)?, read: share_udp(socket, local)? })
    }
}

/// Hands a bound UDP socket to the async runtime (the IKE loop's reads and sends).
pub fn register_udp(
    socket: std::net::UdpSocket,
    local: SocketAddr,
) -> Result<tokio::net::UdpSocket, OsError> {
    tokio::net::UdpSocket::from_std(socket).map_err(|source| OsError::RegisterUdp { local, source })
}

/// Whether a send's result is a full buffer ([`is_buffer_full`]): the datagram is dropped,
/// for the caller to count. Any other error is logged with `what` (protocol, destination).
fn full(sent: std::io::Result<usize>, what: impl FnOnce() -> String) -> bool {
    let Err(e) = sent else { return false };
    let full = is_buffer_full(&e);
    if !full {
        warn!("{}: {e}", what());
    }
    full
}

pub use data_path::is_buffer_full;

/// Sends an IKE datagram without waiting: straight to the kernel on the non-blocking socket,
/// not through the runtime's readiness. True when a full buffer dropped it: retransmission
/// repairs a lost IKE message, and the loop goes on serving everyone else.
pub fn send_ike(socket: &std::net::UdpSocket, payload: &[u8], remote: SocketAddr) -> bool {
    let to = SockAddr::from(remote);
    full(socket2::SockRef::from(socket).send_to(payload, &to), || format!("IKE to {remote}"))
}

/// Sends a datagram over the raw socket (`protocol`: `ESP` or `AH`, for the log) bound to its
/// local address: raw ESP and AH go out alike, addressed by IP only (port 0), and a missing
/// socket or a failed send is logged with the addresses involved rather than dropped quietly.
/// True when a full buffer dropped it (for the caller to count).
pub fn send_raw(sockets: &HashMap<IpAddr, Arc<Socket>>, protocol: &str, send: &esp::Send<'_>) -> bool {
    let Some(socket) = sockets.get(&send.local.ip()) else {
        warn!("no raw {protocol} socket on {}", send.local.ip());
        return false;
    };
    let to = SockAddr::from(SocketAddr::new(send.remote.ip(), 0));
    full(socket.send_to(send.datagram, &to), || format!("{protocol} to {}", send.remote.ip()))
}

/// Sends a datagram over the UDP 4500 socket bound to its local address (ESP-in-UDP).
/// Non-blocking; true when a full buffer dropped it.
pub fn send_udp(sockets: &HashMap<SocketAddr, std::net::UdpSocket>, send: &esp::Send<'_>) -> bool {
    let Some(socket) = sockets.get(&send.local) else {
        warn!("no UDP socket on {} for ESP-in-UDP", send.local);
        return false;
    };
    full(socket.send_to(send.datagram, send.remote), || format!("ESP-in-UDP to {}", send.remote))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13: the raw ESP and AH sockets were blocking, so a full send buffer held the
    /// data-plane thread (and the IKE loop, sending queued packets under the data plane's
    /// lock). Needs CAP_NET_RAW; as another user it says so and passes.
    #[test]
    fn raw_sockets_are_non_blocking() {
        let (esp, ah) = match (open_raw_esp(Ipv4Addr::LOCALHOST), open_raw_ah(Ipv4Addr::LOCALHOST)) {
            (Ok(esp), Ok(ah)) => (esp, ah),
            _ => {
                eprintln!("skipped: raw sockets need CAP_NET_RAW (CI runs as root)");
                return;
            }
        };
        for (name, socket) in [("ESP", esp), ("AH", ah)] {
            assert!(socket.nonblocking().unwrap(), "raw {name} socket blocks");
        }
    }
}
