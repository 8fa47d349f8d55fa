//! The fast path's buffer layout and the queue of packets for the TUN: sizes fixed when the
//! thread starts, so no packet allocates.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Packets per batch: per `recvmmsg`, per `sendmmsg` and per TUN write.
pub(super) const BATCH: usize = 64;

/// Packets one TUN read may split into: a TSO super-packet of 64 KiB in segments as small as
/// 536 bytes (tun-rs's `IDEAL_BATCH_SIZE`). A read with less room fails and loses the burst.
pub(super) const SEGMENTS: usize = tun_rs::IDEAL_BATCH_SIZE;

/// Room for one packet split from a TUN read (the TUN's MTU is 1400).
pub(super) const SEGMENT: usize = 2048;

/// Room for one received datagram: a jumbo frame.
pub(super) const DATAGRAM: usize = 9216;

/// Headroom tun-rs needs in front of each packet written to the TUN (the virtio header).
pub(super) const TUN_OFFSET: usize = tun_rs::VIRTIO_NET_HDR_LEN;

/// An ESP datagram sealed into `sealed[buffer][start..start + len]`, to go to `to` from
/// `local` (by UDP when `udp`).
#[derive(Clone, Copy)]
pub(super) struct Outgoing {
    pub(super) buffer: usize,
    pub(super) start: usize,
    pub(super) len: usize,
    pub(super) local: SocketAddr,
    pub(super) to: SocketAddr,
    pub(super) udp: bool,
    /// A whole IPv4 packet with AH, for the raw AH socket.
    pub(super) ah: bool,
}

impl Outgoing {
    /// Records a datagram the data plane sealed into buffer `slot`, whose first byte is at
    /// address `base`: the data plane may start the datagram anywhere in the buffer (after
    /// headroom it did not need), so its offset is taken from the pointers. One constructor
    /// for freshly sealed and released packets, so both are sent the same way.
    pub(super) fn new(slot: usize, base: usize, send: &esp::Send<'_>) -> Self {
        Self {
            buffer: slot,
            start: send.datagram.as_ptr() as usize - base,
            len: send.datagram.len(),
            local: send.local,
            to: send.remote,
            udp: send.udp_encapsulated,
            ah: send.protocol == esp::PROTOCOL_AH,
        }
    }
}

/// Queues an opened packet for the TUN: a tunnel-mode inner packet as it is, a transport-mode
/// payload with its IPv4 header rebuilt from the peer (`from`) to us (`local`). Transport mode
/// over IPv6, or without a known peer address, has no header to rebuild and is dropped. Shared
/// by the receive batch and the early-packet retry so both deliver alike.
pub(super) fn push_opened(
    to_tun: &mut [Vec<u8>],
    len: &mut usize,
    mode: esp::Mode,
    from: Option<SocketAddr>,
    local: IpAddr,
    next_header: u8,
    packet: &[u8],
) {
    match (mode, from.map(|f| f.ip()), local) {
        (esp::Mode::Tunnel, ..) => push_tun(to_tun, len, packet),
        (esp::Mode::Transport, Some(IpAddr::V4(source)), IpAddr::V4(destination)) => {
            push_transport(to_tun, len, source, destination, next_header, packet)
        }
        _ => {}
    }
}

/// Queues a transport-mode `payload` for the TUN with a 20-byte IPv4 header from `source` to
/// `destination` (protocol `protocol`) in front of it.
pub(super) fn push_transport(
    to_tun: &mut [Vec<u8>],
    len: &mut usize,
    source: Ipv4Addr,
    destination: Ipv4Addr,
    protocol: u8,
    payload: &[u8],
) {
    let Some(buffer) = to_tun.get_mut(*len) else { return };
    buffer.clear();
    buffer.resize(TUN_OFFSET, 0);
    transport_header(buffer, source, destination, protocol, payload.len());
    buffer.extend_from_slice(payload);
    *len += 1;
}

/// Queues `packet` for the TUN behind the virtio headroom (the buffers' capacity is reserved
/// up front, so this copies without allocating).
pub(super) fn push_tun(to_tun: &mut [Vec<u8>], len: &mut usize, packet: &[u8]) {
    let Some(buffer) = to_tun.get_mut(*len) else { return };
    buffer.clear();
    buffer.resize(TUN_OFFSET, 0);
    buffer.extend_from_slice(packet);
    *len += 1;
}

/// Writes a 20-byte IPv4 header from `source` to `destination` with protocol `protocol`
/// for a transport-mode payload of `payload_len` bytes at the end of `out`.
fn transport_header(
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
