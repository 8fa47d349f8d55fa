//! The data-plane thread: carries ESP between the TUN device and the public sockets in
//! batches, with no allocation per packet.
//!
//! One thread, apart from the IKE loop (which only installs and removes SAs), waits with
//! `poll(2)` on the TUN device, the raw ESP sockets and the UDP 4500 sockets, and then:
//! - TUN: one read returns a whole TCP burst when the device has offloads (`IFF_VNET_HDR`:
//!   the kernel hands over one TSO super-packet and tun-rs splits it into MTU-sized packets,
//!   up to `BATCH` (64)); each packet is sealed under one lock of the shared data plane, and the
//!   batch leaves in one `sendmmsg(2)` per socket, ESP-in-UDP in GSO runs (one `sendmsg` with
//!   `UDP_SEGMENT` per run of equal-sized datagrams to one peer; `batch_io`);
//! - raw ESP / UDP 4500: up to `BATCH` reads per `recvmmsg(2)` (on UDP 4500 with `UDP_GRO`,
//!   a read holds many datagrams, split again and each opened alone), opened under one lock,
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
//! generators and the kernel's own forwarding (docs/BENCHMARKS.md). More threads need the
//! SA state split first (sequence numbers by atomic on the sealing side, a replay window per
//! SA on the opening side, so that seal and open never take one lock) and a multi-queue TUN
//! (`IFF_MULTI_QUEUE`) and `SO_REUSEPORT` sockets to feed them: issue 16's remaining part.

mod buffers;
mod early;
mod receive;
mod send;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use esp::{Outbound, MAX_HEADROOM, MAX_TAILROOM};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use socket2::Socket;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use self::buffers::{push_tun, Outgoing, BATCH, SEGMENT, SEGMENTS, TUN_OFFSET};
use self::early::Early;
use crate::shared::{lock, Added, Notice, SendDrops, Shared, MAX_PACKET};

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
    /// Where datagrams dropped on a full send buffer are counted.
    pub drops: Arc<SendDrops>,
    /// Where the thread publishes its inner flows for `display firewall session table`.
    pub flows: inner_flows::Published,
}

/// The data-plane thread could not be started (the process is out of threads or memory).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the data-plane thread: {0}")]
pub struct SpawnError(#[source] io::Error);

/// Starts the data-plane thread.
pub fn spawn(io: Io) -> Result<(), SpawnError> {
    std::thread::Builder::new()
        .name("esp-data".into())
        .spawn(move || Thread::new(io).run())
        .map(|_| ())
        .map_err(SpawnError)
}

/// The thread's state: the I/O it owns and every buffer, allocated once.
struct Thread {
    io: Io,
    /// One TUN read (a super-packet with its virtio header).
    tun_read: Vec<u8>,
    /// The packets split from it, and their sizes: room for a batch and then a whole
    /// super-packet, so every read finds room for the largest burst.
    segments: Vec<Vec<u8>>,
    sizes: [usize; SEGMENTS + BATCH],
    /// Sealed datagrams waiting for `sendmmsg`.
    sealed: Vec<Vec<u8>>,
    outgoing: Vec<Outgoing>,
    /// The reads of one `recvmmsg`: from raw sockets, and from UDP 4500 (with GRO, each read
    /// may hold many datagrams): index 0 for raw sockets, 1 for UDP.
    receivers: [batch_io::Receiver; 2],
    /// Whether ESP-in-UDP leaves in GSO runs (off for good once the kernel refuses one).
    gso: std::cell::Cell<batch_io::Gso>,
    /// Whether UDP 4500 sockets are read with GRO.
    udp_gro: bool,
    /// Where an ESP packet is opened.
    opened: Vec<u8>,
    /// Packets for the TUN (each behind [`TUN_OFFSET`] bytes of headroom; room for GRO to
    /// merge a batch into one), and how many are filled.
    to_tun: Vec<Vec<u8>>,
    to_tun_len: usize,
    gro: tun_rs::GROTable,
    /// When each inbound SA last told the IKE loop about traffic.
    heard: Vec<(u32, Instant)>,
    /// Packets that came on an SPI not installed yet. See [`early`].
    early: std::collections::VecDeque<Early>,
    /// Which sockets the last `poll` found readable, one entry per socket (raw, UDP, AH).
    ready: Vec<bool>,
    /// The data plane released more packets than the sealed buffers hold: the rest are
    /// taken after this batch has left (and the lock was let go).
    releasing: bool,
    /// The protected inner flows this thread carried (one `observe` per sealed or opened
    /// packet; docs/DESIGN.md, "Inner flows").
    flows: inner_flows::FlowTable,
    /// Inner fragments that rules with ports carry, until their datagram is whole.
    reassembly: reassembly::Reassembler,
}

impl Thread {
    fn new(io: Io) -> Self {
        let sized = |n: usize| (0..BATCH).map(|_| vec![0u8; n]).collect::<Vec<_>>();
        let offload = io.tun.tcp_gso();
        // UDP GSO/GRO off, to measure what they bring (docs/BENCHMARKS.md); not a setting.
        let offload_off = std::env::var_os("KEYSTEWARD_NO_UDP_OFFLOAD").is_some();
        for (_, socket) in &io.udp {
            prepare_udp(socket, !offload_off);
        }
        debug!("data-plane thread: TUN offloads {}", if offload { "on" } else { "off" });
        Self {
            io,
            tun_read: vec![0u8; TUN_OFFSET + MAX_PACKET],
            segments: (0..SEGMENTS + BATCH).map(|_| vec![0u8; SEGMENT]).collect(),
            sizes: [0; SEGMENTS + BATCH],
            sealed: sized(
                SEGMENT + MAX_HEADROOM + MAX_TAILROOM + esp::MAX_AH_HEADROOM + esp::mtu::MAX_ICMP_LEN,
            ),
            outgoing: Vec::with_capacity(BATCH),
            receivers: [
                batch_io::Receiver::new(batch_io::MAX_UDP_PAYLOAD, false),
                batch_io::Receiver::new(batch_io::MAX_UDP_PAYLOAD, !offload_off),
            ],
            gso: std::cell::Cell::new(if offload_off {
                batch_io::Gso::disabled()
            } else {
                batch_io::Gso::default()
            }),
            udp_gro: !offload_off,
            opened: vec![0u8; batch_io::MAX_UDP_PAYLOAD],
            to_tun: (0..BATCH).map(|_| Vec::with_capacity(TUN_OFFSET + MAX_PACKET + SEGMENT)).collect(),
            to_tun_len: 0,
            gro: tun_rs::GROTable::default(),
            heard: Vec::new(),
            early: std::collections::VecDeque::new(),
            ready: Vec::new(),
            releasing: false,
            flows: inner_flows::FlowTable::default(),
            reassembly: reassembly::Reassembler::default(),
        }
    }

    fn run(mut self) {
        loop {
            self.take_added_sockets();
            let tun_ready = match self.wait() {
                Ok(tun_ready) => tun_ready,
                Err(e) => {
                    warn!("data-plane poll: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                }
            };
            self.flows.tick(Instant::now(), &self.io.flows);
            if tun_ready {
                // A few batches per wake-up: a TCP sender usually has more than one burst out.
                for _ in 0..4 {
                    if !self.outbound() {
                        break;
                    }
                }
            }
            for index in 0..self.ready.len() {
                if self.ready[index] {
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
            for (_, socket) in &udp {
                prepare_udp(socket, self.udp_gro);
            }
            self.io.raw.extend(raw);
            self.io.ah.extend(ah);
            self.io.udp.extend(udp);
        }
    }

    /// Waits until the TUN or a socket is readable. Returns whether the TUN is; `ready` gets
    /// an entry per socket (raw sockets first, then UDP, then AH).
    fn wait(&mut self) -> io::Result<bool> {
        let sockets = (self.io.raw.iter().map(|(_, s)| s.as_fd()))
            .chain(self.io.udp.iter().map(|(_, s)| s.as_fd()))
            .chain(self.io.ah.iter().map(|(_, s)| s.as_fd()));
        wait_readable(self.io.tun.as_fd(), sockets, &mut self.ready, IDLE_POLL_MS)
    }

    /// Reads the TUN until it is empty or a batch is full (one read returns one packet, or
    /// with offloads a whole TSO burst split into packets), then seals the batch under one
    /// lock and sends it. A burst larger than the sealed buffers goes in rounds: seal under
    /// the lock until the buffers are full, let go of the lock, send, again; so no send
    /// happens while the lock is held. False when there was nothing to read.
    fn outbound(&mut self) -> bool {
        let mut filled = 0;
        // Read until a batch is full or the TUN is empty: one read is one packet, or with
        // offloads a whole TSO burst. tun-rs splits a super-packet only into as many buffers
        // as it is given and a burst that does not fit is lost, so a read starts only while
        // a whole super-packet's worth (`SEGMENTS`) is free. (Reading once per wake-up with
        // offloads, as before, carried 4 small packets per `poll`: 4-18 thousand 64-byte
        // packets a second against strongSwan's 21-27.)
        while filled < BATCH {
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
        let count = filled;
        let mut next = 0;
        let shared = self.io.shared.clone();
        while next < count || self.releasing {
            {
                let mut shared = lock(&shared);
                if self.releasing {
                    self.release(&mut shared);
                }
                while next < count && !self.releasing && self.outgoing.len() < BATCH {
                    let size = self.sizes[next].min(SEGMENT);
                    self.seal(&mut shared, next, size);
                    next += 1;
                }
                shared.drain_events(&self.io.notices);
            }
            self.send_sealed();
        }
        self.write_tun();
        true
    }

    /// Seals segment `index` (and whatever the data plane releases with it) into a free
    /// sealed buffer; the caller makes sure there is one.
    fn seal(&mut self, shared: &mut Shared, index: usize, size: usize) {
        let Some(packet) = self.segments.get(index).and_then(|s| s.get(..size)) else { return };
        // A fragment that a rule with ports would carry is reassembled and its datagram sealed
        // whole, so the peer sees its ports (docs/DESIGN.md, "Fragments").
        let whole = reassembly::is_fragment(packet)
            && esp::Flow::parse_ipv4(packet).is_ok_and(|(f, ..)| shared.plane.spd().port_specific(&f));
        let packet = match whole.then(|| self.reassembly.offer(packet, Instant::now())) {
            None => packet,
            Some(reassembly::Offer::Whole(datagram)) => datagram,
            Some(offer) => {
                debug!("inner fragment {offer:?}");
                shared.reassembly = *self.reassembly.counters();
                return;
            }
        };
        let slot = self.outgoing.len();
        let room = packet.len() + MAX_HEADROOM + MAX_TAILROOM + esp::MAX_AH_HEADROOM;
        if self.sealed[slot].len() < room {
            self.sealed[slot].resize(room, 0); // once per buffer, for reassembled datagrams
        }
        let base = self.sealed[slot].as_ptr() as usize;
        let sealed = &mut self.sealed[slot];
        let outcome =
            if whole { shared.plane.seal_whole(packet, sealed) } else { shared.plane.seal(packet, sealed) };
        let pending = match outcome {
            Outbound::Send(send) => {
                self.flows.observe(packet);
                self.outgoing.push(Outgoing::new(slot, base, &send));
                send.pending
            }
            Outbound::TooBig { icmp, .. } => {
                push_tun(&mut self.to_tun, &mut self.to_tun_len, icmp);
                false
            }
            // Routed in by its protocol and protected by no rule: back to the kernel, whose
            // rule for packets from the TUN takes the clear path (docs/DESIGN.md).
            Outbound::Bypass
                if esp::Flow::parse_ipv4(packet)
                    .is_ok_and(|(f, ..)| shared.plane.spd().leaves_in_clear(&f)) =>
            {
                push_tun(&mut self.to_tun, &mut self.to_tun_len, packet);
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
        if whole {
            shared.reassembly = *self.reassembly.counters();
        }
        if pending {
            self.release(shared);
        }
        if self.to_tun_len == BATCH {
            self.write_tun();
        }
    }

    /// Seals what the data plane released (fragments, queued packets) until the sealed
    /// buffers are full; then `releasing` says there may be more, taken after the send.
    fn release(&mut self, shared: &mut Shared) {
        self.releasing = false;
        loop {
            if self.outgoing.len() == BATCH {
                self.releasing = true;
                return;
            }
            let slot = self.outgoing.len();
            // A datagram queued whole for an acquire may be longer than a segment.
            let room = shared.plane.next_queued_len().unwrap_or(0) + MAX_HEADROOM + MAX_TAILROOM;
            if self.sealed[slot].len() < room + esp::MAX_AH_HEADROOM {
                self.sealed[slot].resize(room + esp::MAX_AH_HEADROOM, 0);
            }
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

/// Readies a UDP 4500 socket for ESP-in-UDP at speed: buffers as large as the raw ESP
/// sockets' (4 MiB; the default of about 200 kB overflowed at a few hundred thousand small
/// datagrams a second), and GRO reads when `gro`.
fn prepare_udp(socket: &std::net::UdpSocket, gro: bool) {
    let buffers = socket2::SockRef::from(socket);
    let _ = buffers.set_recv_buffer_size(4 << 20);
    let _ = buffers.set_send_buffer_size(4 << 20);
    if gro {
        batch_io::enable_gro(socket);
    }
}

/// Waits with `poll(2)` (at most `timeout_ms`) until `tun` or one of `sockets` is readable.
/// Returns whether `tun` is; `ready` is resized to the number of sockets and says which
/// are. Any number of sockets: each has its own entry.
fn wait_readable<'a>(
    tun: BorrowedFd<'a>,
    sockets: impl Iterator<Item = BorrowedFd<'a>>,
    ready: &mut Vec<bool>,
    timeout_ms: u16,
) -> io::Result<bool> {
    let flags = PollFlags::POLLIN;
    let mut fds: Vec<PollFd<'_>> =
        std::iter::once(PollFd::new(tun, flags)).chain(sockets.map(|fd| PollFd::new(fd, flags))).collect();
    ready.clear();
    poll(&mut fds, PollTimeout::from(timeout_ms)).map_err(io::Error::from)?;
    let readable = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
    ready.extend(fds.iter().skip(1).map(readable));
    Ok(fds.first().is_some_and(readable))
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    use super::wait_readable;

    /// Issue 13: the readiness of 64 and more sockets was kept in a u64, so the 65th socket
    /// aliased the first (or was never read). Here 70 sockets, and only the last is readable.
    #[test]
    fn readiness_covers_any_number_of_sockets() {
        let tun = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sockets: Vec<UdpSocket> = (0..70).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for last in [64, 69] {
            sender.send_to(b"esp", sockets[last].local_addr().unwrap()).unwrap();
            let mut ready = Vec::new();
            let tun_ready =
                wait_readable(tun.as_fd(), sockets.iter().map(AsFd::as_fd), &mut ready, 1000).unwrap();
            assert!(!tun_ready);
            let readable: Vec<usize> =
                ready.iter().enumerate().filter(|(_, r)| **r).map(|(i, _)| i).collect();
            assert_eq!(readable, vec![last], "socket {last} alone is readable");
            let mut buf = [0u8; 16];
            sockets[last].recv(&mut buf).unwrap();
        }
    }
}
