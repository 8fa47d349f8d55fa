//! The data-plane thread: carries ESP between the TUN device and the public sockets in
//! batches, with no allocation per packet.
//!
//! One thread, apart from the IKE loop (which only installs and removes SAs), waits with
//! `poll(2)` on the TUN device, the raw ESP sockets and the UDP 4500 sockets, and then:
//! - TUN: one read returns a whole TCP burst when the device has offloads (`IFF_VNET_HDR`:
//!   the kernel hands over one TSO super-packet and tun-rs splits it into MTU-sized packets,
//!   up to [`BATCH`]); each packet is sealed under one lock of the shared data plane, and the
//!   batch leaves in one `sendmmsg(2)` per socket;
//! - raw ESP / UDP 4500: up to [`BATCH`] datagrams per `recvmmsg(2)`, opened under one lock,
//!   and written to the TUN in one `send_multiple` (GRO: consecutive TCP segments are merged
//!   into one write when the device has offloads). IKE messages on 4500 (non-ESP marker) go
//!   to the IKE loop.
//!
//! All buffers are allocated once, when the thread starts. System calls: `recvmmsg` through
//! `nix` (safe, already a dependency of tun-rs), `sendmmsg` through `rustix` (safe, and it
//! returns how many messages left, which nix's `sendmmsg` cannot report without reading
//! uninitialised addresses), so the gateway stays free of `unsafe`.
//!
//! Why one thread, not one per direction or a multi-queue TUN: the SAs of a flow live in one
//! data plane behind one mutex, so two threads would mostly wait for each other, and the
//! machines this is measured on have two cores shared with the peer gateway, the traffic
//! generators and the kernel's own forwarding (docs/BENCHMARKS.md).

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use esp::{Inbound, Outbound, MAX_HEADROOM, MAX_TAILROOM};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrIn};
use rustix::net::addr::SocketAddrArg;
use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
use socket2::Socket;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::data_path::{lock, Notice, Shared, MAX_PACKET};

/// Packets per batch: per `recvmmsg`, per `sendmmsg` and per TUN write.
pub const BATCH: usize = 64;

/// Packets one TUN read may split into: a TSO super-packet of 64 KiB in segments as small as
/// 536 bytes (tun-rs's `IDEAL_BATCH_SIZE`). A read with less room fails and loses the burst.
const SEGMENTS: usize = tun_rs::IDEAL_BATCH_SIZE;

/// Room for one packet split from a TUN read (the TUN's MTU is 1400).
const SEGMENT: usize = 2048;

/// Room for one received datagram: a jumbo frame.
const DATAGRAM: usize = 9216;

/// Headroom tun-rs needs in front of each packet written to the TUN (the virtio header).
const TUN_OFFSET: usize = tun_rs::VIRTIO_NET_HDR_LEN;

/// How long `poll` sleeps when nothing happens, in milliseconds: the thread has nothing to
/// do on a timer, so this only bounds how long it takes to notice nothing.
const IDLE_POLL_MS: u16 = 1000;

/// What the thread works with.
pub struct Io {
    /// The data plane, shared with the IKE loop.
    pub shared: Arc<Mutex<Shared>>,
    /// The TUN device (non-blocking).
    pub tun: Arc<tun_rs::SyncDevice>,
    /// Raw ESP sockets by local address.
    pub raw: Vec<(IpAddr, Arc<Socket>)>,
    /// Raw AH sockets (`IP_HDRINCL`) by local address: AH packets are read with their IPv4
    /// header (AH authenticates it) and sent as whole IPv4 packets.
    pub ah: Vec<(IpAddr, Arc<Socket>)>,
    /// UDP 4500 sockets by local address (clones of the IKE loop's sockets, which no longer
    /// read them: ESP-in-UDP and IKE on 4500 both arrive here).
    pub udp: Vec<(SocketAddr, std::net::UdpSocket)>,
    /// Acquires and traffic notices for the IKE loop.
    pub notices: mpsc::Sender<Notice>,
    /// IKE messages that arrived on UDP 4500, marker stripped: (local, remote, message).
    pub ike: mpsc::Sender<(SocketAddr, SocketAddr, Vec<u8>)>,
}

/// Sockets a reload opened after the thread started ([`Shared::added_sockets`]).
#[derive(Default)]
pub struct Added {
    /// Raw ESP sockets by local address.
    pub raw: Vec<(IpAddr, Arc<Socket>)>,
    /// Raw AH sockets by local address.
    pub ah: Vec<(IpAddr, Arc<Socket>)>,
    /// UDP 4500 sockets by local address.
    pub udp: Vec<(SocketAddr, std::net::UdpSocket)>,
}

/// Starts the data-plane thread.
pub fn spawn(io: Io) -> Result<(), String> {
    std::thread::Builder::new()
        .name("esp-data".into())
        .spawn(move || Thread::new(io).run())
        .map(|_| ())
        .map_err(|e| format!("cannot start the data-plane thread: {e}"))
}

/// An ESP datagram sealed into `sealed[buffer][start..start + len]`, to go to `to` from
/// `local` (by UDP when `udp`).
#[derive(Clone, Copy)]
struct Outgoing {
    buffer: usize,
    start: usize,
    len: usize,
    local: SocketAddr,
    to: SocketAddr,
    udp: bool,
    /// A whole IPv4 packet with AH, for the raw AH socket.
    ah: bool,
}

impl Outgoing {
    /// Records a datagram the data plane sealed into buffer `slot`, whose first byte is at
    /// address `base`: the data plane may start the datagram anywhere in the buffer (after
    /// headroom it did not need), so its offset is taken from the pointers. One constructor
    /// for freshly sealed and released packets, so both are sent the same way.
    fn new(slot: usize, base: usize, send: &esp::Send<'_>) -> Self {
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

struct Thread {
    io: Io,
    /// One TUN read (a super-packet with its virtio header).
    tun_read: Vec<u8>,
    /// The packets split from it, and their sizes.
    segments: Vec<Vec<u8>>,
    sizes: [usize; SEGMENTS],
    /// Whether the TUN hands over TSO super-packets (then one read fills a batch).
    offload: bool,
    /// Sealed datagrams waiting for `sendmmsg`.
    sealed: Vec<Vec<u8>>,
    outgoing: Vec<Outgoing>,
    /// Received datagrams, their lengths and sources.
    received: Vec<Vec<u8>>,
    received_from: [(usize, Option<SocketAddr>); BATCH],
    /// Where an ESP packet is opened.
    opened: Vec<u8>,
    /// Packets for the TUN (each behind [`TUN_OFFSET`] bytes of headroom; room for GRO to
    /// merge a batch into one), and how many are filled.
    to_tun: Vec<Vec<u8>>,
    to_tun_len: usize,
    gro: tun_rs::GROTable,
    headers: MultiHeaders<SockaddrIn>,
    /// When each inbound SA last told the IKE loop about traffic.
    heard: Vec<(u32, Instant)>,
    /// Packets that came on an SPI not installed yet. See [`EARLY_PACKETS`].
    early: std::collections::VecDeque<Early>,
}

/// Packets kept that arrived on an SPI we do not know yet. When we respond to a quick mode,
/// the initiator installs its SAs when it sends QM3 and at once sends the packets that waited
/// for them; those can reach this thread before QM3 has reached the engine (they come on
/// another socket), and would be lost. They are kept, at most this many and for at most
/// [`EARLY_LIFETIME`], and tried again at each wake-up until their SA is installed. Bounded,
/// so random SPIs from anyone cost a copy and nothing more.
const EARLY_PACKETS: usize = 16;
/// How long an early packet waits for its SA.
const EARLY_LIFETIME: std::time::Duration = std::time::Duration::from_secs(2);

/// One early packet: when it came, whether it is AH (a whole IPv4 packet), the bytes given
/// to the data plane, its source and our address.
struct Early {
    at: Instant,
    ah: bool,
    packet: Vec<u8>,
    from: Option<SocketAddr>,
    local: IpAddr,
}

fn keep_early(
    early: &mut std::collections::VecDeque<Early>,
    ah: bool,
    packet: &[u8],
    from: Option<SocketAddr>,
    local: IpAddr,
) {
    let now = Instant::now();
    // The buffer of an entry that leaves is reused, so a stream of packets on unknown SPIs
    // (anyone can send them) allocates at most [`EARLY_PACKETS`] buffers, not one a packet.
    let mut spare = None;
    while early.front().is_some_and(|e| now.duration_since(e.at) > EARLY_LIFETIME) {
        spare = early.pop_front().map(|e| e.packet);
    }
    if early.len() >= EARLY_PACKETS {
        spare = early.pop_front().map(|e| e.packet);
    }
    let mut buffer = spare.unwrap_or_else(|| Vec::with_capacity(DATAGRAM));
    buffer.clear();
    buffer.extend_from_slice(packet);
    early.push_back(Early { at: now, ah, packet: buffer, from, local });
}

impl Thread {
    fn new(io: Io) -> Self {
        let sized = |n: usize| (0..BATCH).map(|_| vec![0u8; n]).collect::<Vec<_>>();
        let offload = io.tun.tcp_gso();
        debug!("data-plane thread: TUN offloads {}", if offload { "on" } else { "off" });
        Self {
            io,
            tun_read: vec![0u8; TUN_OFFSET + MAX_PACKET],
            segments: (0..SEGMENTS).map(|_| vec![0u8; SEGMENT]).collect(),
            sizes: [0; SEGMENTS],
            offload,
            sealed: sized(
                SEGMENT + MAX_HEADROOM + MAX_TAILROOM + esp::MAX_AH_HEADROOM + esp::mtu::MAX_ICMP_LEN,
            ),
            outgoing: Vec::with_capacity(BATCH),
            received: sized(DATAGRAM),
            received_from: [(0, None); BATCH],
            opened: vec![0u8; DATAGRAM],
            to_tun: (0..BATCH).map(|_| Vec::with_capacity(TUN_OFFSET + MAX_PACKET + SEGMENT)).collect(),
            to_tun_len: 0,
            gro: tun_rs::GROTable::default(),
            headers: MultiHeaders::preallocate(BATCH, None),
            heard: Vec::new(),
            early: std::collections::VecDeque::new(),
        }
    }

    fn run(mut self) {
        loop {
            self.take_added_sockets();
            let (tun_ready, ready) = match self.wait() {
                Ok(ready) => ready,
                Err(e) => {
                    warn!("data-plane poll: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                }
            };
            if tun_ready {
                // A few batches per wake-up: a TCP sender usually has more than one burst out.
                for _ in 0..4 {
                    if !self.outbound() {
                        break;
                    }
                }
            }
            for index in 0..self.io.raw.len() + self.io.udp.len() + self.io.ah.len() {
                if ready & (1 << index) != 0 {
                    self.inbound(index);
                }
            }
            if !self.early.is_empty() {
                self.retry_early();
            }
        }
    }

    /// Starts reading the sockets a reload opened (checked once per wake-up, at least once
    /// a second).
    fn take_added_sockets(&mut self) {
        let added = std::mem::take(&mut lock(&self.io.shared).added_sockets);
        for Added { raw, ah, udp } in added {
            self.io.raw.extend(raw);
            self.io.ah.extend(ah);
            self.io.udp.extend(udp);
        }
    }

    /// Waits until the TUN or a socket is readable. Returns whether the TUN is, and a bit per
    /// socket (raw sockets first, then UDP).
    fn wait(&self) -> io::Result<(bool, u64)> {
        let flags = PollFlags::POLLIN;
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(1 + self.io.raw.len() + self.io.udp.len());
        fds.push(PollFd::new(self.io.tun.as_fd(), flags));
        fds.extend(self.io.raw.iter().map(|(_, s)| PollFd::new(s.as_fd(), flags)));
        fds.extend(self.io.udp.iter().map(|(_, s)| PollFd::new(s.as_fd(), flags)));
        fds.extend(self.io.ah.iter().map(|(_, s)| PollFd::new(s.as_fd(), flags)));
        poll(&mut fds, PollTimeout::from(IDLE_POLL_MS)).map_err(io::Error::from)?;
        let readable = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
        let tun = fds.first().is_some_and(readable);
        let mut sockets = 0u64;
        for (index, fd) in fds.iter().skip(1).enumerate().take(64) {
            if readable(fd) {
                sockets |= 1 << index;
            }
        }
        Ok((tun, sockets))
    }

    /// Reads the TUN until it is empty or a batch is full (one read returns one packet, or
    /// with offloads a whole TSO burst split into packets), then seals the batch under one
    /// lock and sends it. False when there was nothing to read.
    fn outbound(&mut self) -> bool {
        let mut filled = 0;
        // With offloads one read is a batch: tun-rs splits a super-packet only into as many
        // buffers as it is given, and a burst that does not fit is lost. Without, one read
        // is one packet: read until a batch is full.
        let limit = if self.offload { 1 } else { BATCH };
        for _ in 0..limit {
            let segments = &mut self.segments[filled..];
            let sizes = &mut self.sizes[filled..];
            match self.io.tun.recv_multiple(&mut self.tun_read, segments, sizes, 0) {
                Ok(count) => filled += count,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    debug!("TUN read: {e}");
                    break;
                }
            }
        }
        if filled == 0 {
            return false;
        }
        {
            let shared = self.io.shared.clone();
            let mut shared = lock(&shared);
            for index in 0..filled.min(SEGMENTS) {
                let size = self.sizes[index].min(SEGMENT);
                self.seal(&mut shared, index, size);
            }
            shared.drain_events(&self.io.notices);
        }
        self.send_sealed();
        self.write_tun();
        true
    }

    /// Seals segment `index` (and whatever the data plane releases with it).
    fn seal(&mut self, shared: &mut Shared, index: usize, size: usize) {
        if self.outgoing.len() == BATCH {
            self.send_sealed();
        }
        let Some(packet) = self.segments.get(index).and_then(|s| s.get(..size)) else { return };
        let slot = self.outgoing.len();
        let base = self.sealed[slot].as_ptr() as usize;
        let pending = match shared.plane.seal(packet, &mut self.sealed[slot]) {
            Outbound::Send(send) => {
                self.outgoing.push(Outgoing::new(slot, base, &send));
                send.pending
            }
            Outbound::TooBig { icmp, .. } => {
                push_tun(&mut self.to_tun, &mut self.to_tun_len, icmp);
                false
            }
            Outbound::Bypass => {
                shared.bypass_dropped += 1;
                false
            }
            Outbound::Queued => false,
            Outbound::Discard(reason) => {
                debug!("outbound packet dropped: {reason}");
                false
            }
        };
        if pending {
            self.release(shared);
        }
        if self.to_tun_len == BATCH {
            self.write_tun();
        }
    }

    /// Seals what the data plane released (fragments, queued packets).
    fn release(&mut self, shared: &mut Shared) {
        loop {
            if self.outgoing.len() == BATCH {
                self.send_sealed();
            }
            let slot = self.outgoing.len();
            let base = self.sealed[slot].as_ptr() as usize;
            match shared.plane.poll_queued(&mut self.sealed[slot]) {
                None => return,
                Some(Outbound::Send(send)) => self.outgoing.push(Outgoing::new(slot, base, &send)),
                Some(Outbound::TooBig { icmp, .. }) => {
                    push_tun(&mut self.to_tun, &mut self.to_tun_len, icmp);
                    if self.to_tun_len == BATCH {
                        self.write_tun();
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Sends every sealed datagram: one `sendmmsg` per socket and batch.
    fn send_sealed(&mut self) {
        let mut done = [false; BATCH];
        for first in 0..self.outgoing.len() {
            if done[first] {
                continue;
            }
            let key = (self.outgoing[first].udp, self.outgoing[first].local, self.outgoing[first].ah);
            let mut members = [0usize; BATCH];
            let mut count = 0;
            for (index, o) in self.outgoing.iter().enumerate().skip(first) {
                if !done[index] && (o.udp, o.local, o.ah) == key {
                    done[index] = true;
                    members[count] = index;
                    count += 1;
                }
            }
            let socket = if key.2 {
                self.io.ah.iter().find(|(a, _)| *a == key.1.ip()).map(|(_, s)| s.as_fd())
            } else if key.0 {
                self.io.udp.iter().find(|(a, _)| *a == key.1).map(|(_, s)| s.as_fd())
            } else {
                self.io.raw.iter().find(|(a, _)| *a == key.1.ip()).map(|(_, s)| s.as_fd())
            };
            let Some(socket) = socket else {
                warn!("no socket on {} for ESP{}", key.1, if key.0 { "-in-UDP" } else { "" });
                continue;
            };
            let mut sent = 0;
            while sent < count {
                let batch = &members[sent..count];
                let iovs: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|i| {
                    let slice = batch.get(i).map_or(&[][..], |&m| {
                        let o = &self.outgoing[m];
                        &self.sealed[o.buffer][o.start..o.start + o.len]
                    });
                    [IoSlice::new(slice)]
                });
                let addresses: [SocketAddrAny; BATCH] = std::array::from_fn(|i| {
                    let to = batch.get(i).map_or(key.1, |&m| self.outgoing[m].to);
                    let port = if key.0 { to.port() } else { 0 };
                    match to.ip() {
                        IpAddr::V4(ip) => SocketAddrV4::new(ip, port).as_any(),
                        IpAddr::V6(_) => SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0).as_any(),
                    }
                });
                let mut controls: [SendAncillaryBuffer<'_, '_, '_>; BATCH] =
                    std::array::from_fn(|_| SendAncillaryBuffer::default());
                let mut parts = addresses.iter().zip(iovs.iter()).zip(controls.iter_mut());
                let mut headers: [MMsgHdr<'_>; BATCH] = std::array::from_fn(|_| {
                    let ((address, iov), control) =
                        parts.next().expect("BATCH addresses, slices and controls for BATCH headers");
                    MMsgHdr::new_with_addr(address, iov, control)
                });
                let result = sendmmsg(socket, &mut headers[..batch.len()], SendFlags::DONTWAIT)
                    .map_err(io::Error::from);
                match result {
                    Ok(0) => break,
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // A non-blocking UDP socket with a full buffer: wait for room.
                        let mut fds = [PollFd::new(socket, PollFlags::POLLOUT)];
                        let _ = poll(&mut fds, PollTimeout::from(100u16));
                    }
                    Err(e) => {
                        debug!("ESP send from {}: {e}", key.1);
                        sent += 1; // skip the datagram the kernel refused
                    }
                }
            }
        }
        self.outgoing.clear();
    }

    /// Reads a batch from socket `index` (raw sockets first, then UDP), opens it and writes
    /// the inner packets to the TUN.
    fn inbound(&mut self, index: usize) {
        let (raw_count, udp_count) = (self.io.raw.len(), self.io.udp.len());
        // (descriptor, UDP 4500 local address, AH socket, our address)
        let (fd, udp_local, ah, local) = if index < raw_count {
            (self.io.raw[index].1.as_raw_fd(), None, false, self.io.raw[index].0)
        } else if index < raw_count + udp_count {
            let (address, socket) = &self.io.udp[index - raw_count];
            (socket.as_raw_fd(), Some(*address), false, address.ip())
        } else {
            let Some((address, socket)) = self.io.ah.get(index - raw_count - udp_count) else { return };
            (socket.as_raw_fd(), None, true, *address)
        };
        let count = {
            let mut iter = self.received.iter_mut();
            let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
                [IoSliceMut::new(iter.next().map_or(&mut [][..], |b| b.as_mut_slice()))]
            });
            match recvmmsg(fd, &mut self.headers, iovs.iter_mut(), MsgFlags::MSG_DONTWAIT, None) {
                Ok(results) => {
                    let mut count = 0;
                    for (slot, message) in self.received_from.iter_mut().zip(results) {
                        let from = message.address.map(|a: SockaddrIn| SocketAddr::V4(SocketAddrV4::from(a)));
                        *slot = (message.bytes, from);
                        count += 1;
                    }
                    count
                }
                Err(nix::errno::Errno::EAGAIN) => 0,
                Err(e) => {
                    debug!("ESP receive: {e}");
                    0
                }
            }
        };
        if count == 0 {
            return;
        }
        let now = Instant::now();
        let mut spis = [0u32; BATCH];
        let mut spi_count = 0;
        {
            let shared = self.io.shared.clone();
            let mut shared = lock(&shared);
            for slot in 0..count {
                let (len, from) = self.received_from[slot];
                let datagram = &self.received[slot][..len.min(DATAGRAM)];
                // AH: the whole IPv4 packet, header included; ESP without the IPv4 or UDP header.
                let input: &[u8] = if ah {
                    datagram
                } else {
                    match udp_local {
                        None => {
                            // The raw socket hands over the IPv4 header too.
                            let Some(&first) = datagram.first() else { continue };
                            let header_len = usize::from(first & 0x0f) * 4;
                            if first >> 4 != 4 || header_len < 20 || datagram.len() < header_len {
                                continue;
                            }
                            &datagram[header_len..]
                        }
                        Some(local) => match datagram {
                            // RFC 3948 §2.2: IKE after the non-ESP marker, a keepalive, or ESP.
                            [0, 0, 0, 0, message @ ..] => {
                                if let Some(remote) = from {
                                    if self.io.ike.try_send((local, remote, message.to_vec())).is_err() {
                                        shared.notices_dropped += 1;
                                    }
                                }
                                continue;
                            }
                            [0xff] => continue,
                            esp => esp,
                        },
                    }
                };
                let inbound = open_inbound(&mut shared.plane, ah, input, &mut self.opened);
                let unknown = matches!(inbound, Inbound::Drop(esp::DropReason::UnknownSpi(_)));
                if let Inbound::Deliver { spi, packet, mode, next_header, .. } = inbound {
                    push_opened(
                        &mut self.to_tun,
                        &mut self.to_tun_len,
                        mode,
                        from,
                        local,
                        next_header,
                        packet,
                    );
                    if !spis[..spi_count].contains(&spi.0) && spi_count < BATCH {
                        spis[spi_count] = spi.0;
                        spi_count += 1;
                    }
                } else if unknown {
                    // Counted by the data plane (`display ipsec statistics`), and kept a little.
                    keep_early(&mut self.early, ah, input, from, local);
                }
                if self.to_tun_len == BATCH {
                    self.write_tun();
                }
            }
            shared.drain_events(&self.io.notices);
        }
        self.write_tun();
        for &spi in &spis[..spi_count] {
            self.traffic(spi, now);
        }
    }

    /// Opens the early packets whose SA is installed now; drops those too old.
    fn retry_early(&mut self) {
        let now = Instant::now();
        let early = std::mem::take(&mut self.early);
        {
            let shared = self.io.shared.clone();
            let mut shared = lock(&shared);
            for e in early {
                if now.duration_since(e.at) > EARLY_LIFETIME {
                    continue;
                }
                let spi = if e.ah {
                    esp::ah::packet_spi(&e.packet)
                } else {
                    e.packet.get(..4).map(|b| esp::Spi(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
                };
                // An AH packet is looked up by its AH SPI, which names its pair only for AH alone.
                let known = spi.is_some_and(|spi| {
                    shared.plane.inbound_usage(spi).is_some() || (e.ah && shared.plane.knows_ah_spi(spi))
                });
                if !known {
                    self.early.push_back(e);
                    continue;
                }
                let inbound = open_inbound(&mut shared.plane, e.ah, &e.packet, &mut self.opened);
                if let Inbound::Deliver { packet, mode, next_header, .. } = inbound {
                    debug!("early packet opened after its SA was installed");
                    push_opened(
                        &mut self.to_tun,
                        &mut self.to_tun_len,
                        mode,
                        e.from,
                        e.local,
                        next_header,
                        packet,
                    );
                    if self.to_tun_len == BATCH {
                        self.write_tun();
                    }
                }
            }
            shared.drain_events(&self.io.notices);
        }
        self.write_tun();
    }

    /// Tells the IKE loop about traffic on `spi`, at most once a second per SA.
    fn traffic(&mut self, spi: u32, now: Instant) {
        match self.heard.iter_mut().find(|(s, _)| *s == spi) {
            Some((_, at)) if now.duration_since(*at).as_secs() < 1 => return,
            Some((_, at)) => *at = now,
            None => {
                // Forget SAs not heard from for a minute (gone or idle), so this stays small.
                self.heard.retain(|(_, at)| now.duration_since(*at).as_secs() < 60);
                self.heard.push((spi, now));
            }
        }
        let _ = self.io.notices.try_send(Notice::Traffic(spi));
    }

    /// Writes the packets waiting for the TUN in one `send_multiple`.
    fn write_tun(&mut self) {
        if self.to_tun_len == 0 {
            return;
        }
        let batch = &mut self.to_tun[..self.to_tun_len];
        if let Err(e) = self.io.tun.send_multiple(&mut self.gro, batch, TUN_OFFSET) {
            debug!("TUN write: {e}");
        }
        self.to_tun_len = 0;
    }
}

/// Opens one received packet: `input` is a whole IPv4 packet carrying AH when `ah`, else an
/// ESP packet without its IP or UDP header. One place for both the receive batch and the
/// early packets retried after their SA arrives, so the two cannot pick different openers.
fn open_inbound<'o>(plane: &mut esp::DataPlane, ah: bool, input: &[u8], opened: &'o mut [u8]) -> Inbound<'o> {
    if ah {
        plane.open_ah(input, opened)
    } else {
        plane.open(input, opened)
    }
}

/// Queues an opened packet for the TUN: a tunnel-mode inner packet as it is, a transport-mode
/// payload with its IPv4 header rebuilt from the peer (`from`) to us (`local`). Transport mode
/// over IPv6, or without a known peer address, has no header to rebuild and is dropped. Shared
/// by the receive batch and the early-packet retry so both deliver alike.
fn push_opened(
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
fn push_transport(
    to_tun: &mut [Vec<u8>],
    len: &mut usize,
    source: std::net::Ipv4Addr,
    destination: std::net::Ipv4Addr,
    protocol: u8,
    payload: &[u8],
) {
    let Some(buffer) = to_tun.get_mut(*len) else { return };
    buffer.clear();
    buffer.resize(TUN_OFFSET, 0);
    crate::data_path::transport_header(buffer, source, destination, protocol, payload.len());
    buffer.extend_from_slice(payload);
    *len += 1;
}

/// Queues `packet` for the TUN behind the virtio headroom (the buffers' capacity is reserved
/// up front, so this copies without allocating).
fn push_tun(to_tun: &mut [Vec<u8>], len: &mut usize, packet: &[u8]) {
    let Some(buffer) = to_tun.get_mut(*len) else { return };
    buffer.clear();
    buffer.resize(TUN_OFFSET, 0);
    buffer.extend_from_slice(packet);
    *len += 1;
}
