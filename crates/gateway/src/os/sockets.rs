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
/// socket stays blocking, so a full send buffer holds the sender back instead of dropping;
/// the fast path receives with `MSG_DONTWAIT` after `poll`.
pub fn open_raw_esp(local: Ipv4Addr) -> Result<Arc<Socket>, OsError> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_ESP)))
        .map_err(|source| OsError::OpenRaw { protocol: "ESP", source })?;
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
pub fn open_raw_ah(local: Ipv4Addr) -> Result<Arc<Socket>, OsError> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_AH)))
        .map_err(|source| OsError::OpenRaw { protocol: "AH", source })?;
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

/// Sends a datagram over the raw socket (`protocol`: `ESP` or `AH`, for the log) bound to its
/// local address: raw ESP and AH go out alike, addressed by IP only (port 0), and a missing
/// socket or a failed send is logged with the addresses involved rather than dropped quietly.
pub fn send_raw(sockets: &HashMap<IpAddr, Arc<Socket>>, protocol: &str, send: &esp::Send<'_>) {
    let Some(socket) = sockets.get(&send.local.ip()) else {
        warn!("no raw {protocol} socket on {}", send.local.ip());
        return;
    };
    let to = SockAddr::from(SocketAddr::new(send.remote.ip(), 0));
    if let Err(e) = socket.send_to(send.datagram, &to) {
        warn!("{protocol} to {}: {e}", send.remote.ip());
    }
}

/// Sends a datagram over the UDP 4500 socket bound to its local address (ESP-in-UDP).
pub fn send_udp(sockets: &HashMap<SocketAddr, std::net::UdpSocket>, send: &esp::Send<'_>) {
    let Some(socket) = sockets.get(&send.local) else {
        warn!("no UDP socket on {} for ESP-in-UDP", send.local);
        return;
    };
    if let Err(e) = socket.send_to(send.datagram, send.remote) {
        warn!("ESP-in-UDP to {}: {e}", send.remote);
    }
}
