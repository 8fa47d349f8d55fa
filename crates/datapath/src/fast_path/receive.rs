//! Receiving, on the opening thread: a batch per `recvmmsg(2)` (through `nix`) from a raw
//! ESP, raw AH or UDP 4500 socket, opened under one lock of the opening side and queued for
//! the TUN; IKE on 4500 goes to the IKE loop, and so do unknown SPIs from configured peers
//! (`OpenSide::unknown_spi`).

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use esp::Inbound;
use tokio::sync::mpsc;
use tracing::debug;

use super::buffers::{push_opened, BATCH};
use super::early::{keep_early, EARLY_LIFETIME};
use super::{Thread, Watched};
use crate::shared::{lock_open, OpenSide};

impl Thread {
    /// Reads a batch from socket `index` (raw sockets first, then UDP, then AH), opens it
    /// under one lock, one ESP packet at a time (a GRO read is split into its datagrams), and
    /// writes the inner packets to the TUN.
    pub(super) fn inbound(&mut self, index: usize) {
        let Some(source) = self.source(index) else { return };
        let udp = usize::from(source.udp_local.is_some());
        let count = match self.receivers[udp].receive(source.fd) {
            Ok(count) => count,
            Err(e) => {
                debug!("ESP receive: {e}");
                0
            }
        };
        if count == 0 {
            return;
        }
        let now = Instant::now();
        let mut spis = [0u32; BATCH];
        let mut spi_count = 0;
        // Where the batch stands: the read, and the datagrams of it already opened. A full
        // TUN batch lets the lock go before it is written (no lock across a syscall), then
        // the batch goes on from there.
        let (mut read, mut done) = (0, 0);
        while read < count {
            let open = self.open.clone();
            let mut open = lock_open(&open);
            'reads: while read < count {
                let from = self.receivers[udp].source(read).map(SocketAddr::V4);
                for range in self.receivers[udp].datagrams(read).skip(done) {
                    done += 1;
                    let spi = self.open_received(&mut open, (read, range), from, &source);
                    if let Some(spi) = spi.filter(|spi| !spis[..spi_count].contains(spi) && spi_count < BATCH)
                    {
                        spis[spi_count] = spi;
                        spi_count += 1;
                    }
                    if self.to_tun_len == BATCH {
                        break 'reads;
                    }
                }
                (read, done) = (read + 1, 0);
            }
            open.drain_events(&self.io.notices);
            drop(open);
            self.write_tun();
        }
        for &spi in &spis[..spi_count] {
            self.traffic(spi, now);
        }
    }

    /// Socket `index` of the waiter's order (`watched`): its descriptor and what arrives on it.
    fn source(&self, index: usize) -> Option<Source> {
        let &(list, at) = self.watched.get(index)?;
        Some(match list {
            Watched::Raw => {
                let (address, socket) = self.io.raw.get(at)?;
                Source { fd: socket.as_raw_fd(), udp_local: None, ah: false, local: *address }
            }
            Watched::Udp => {
                let (address, socket) = self.io.udp.get(at)?;
                Source { fd: socket.as_raw_fd(), udp_local: Some(*address), ah: false, local: address.ip() }
            }
            Watched::Ah => {
                let (address, socket) = self.io.ah.get(at)?;
                Source { fd: socket.as_raw_fd(), udp_local: None, ah: true, local: *address }
            }
        })
    }

    /// Opens one received datagram (`range` of read `read`) from `from` and queues its inner
    /// packet for the TUN; returns the SPI it was opened under, if it was. IKE on UDP 4500
    /// goes to the IKE loop; a packet on an unknown SPI is kept a little ([`keep_early`]).
    fn open_received(
        &mut self,
        open: &mut OpenSide,
        (read, range): (usize, Range<usize>),
        from: Option<SocketAddr>,
        source: &Source,
    ) -> Option<u32> {
        // Opened in place where it was read: the inner packet is copied once, into the TUN
        // batch (before, the ESP packet was first copied into a buffer of its own).
        let datagram = self.receivers[usize::from(source.udp_local.is_some())].bytes_mut(read, range);
        let input = protected_input(datagram, source, from, &self.io.ike, open)?;
        let (mut unknown, mut opened_spi) = (None, None);
        match open_inbound_in_place(&mut open.plane, source.ah, &mut *input) {
            Inbound::Deliver { spi, packet, mode, next_header, .. } => {
                if mode == esp::Mode::Tunnel {
                    self.opened_slots.push(self.to_tun_len);
                }
                push_opened(
                    &mut self.to_tun,
                    &mut self.to_tun_len,
                    mode,
                    from,
                    source.local,
                    next_header,
                    packet,
                );
                opened_spi = Some(spi.0);
            }
            Inbound::Drop(esp::DropReason::UnknownSpi(spi)) => unknown = Some(spi),
            _ => {}
        }
        if let Some(spi) = unknown {
            // Counted by the data plane (`display ipsec statistics`), and kept a little; from
            // a configured peer, reported to the IKE loop (recovery after a restart). The
            // packet is as it came: an unknown SPI is found before anything is decrypted.
            keep_early(&mut self.early, source.ah, input, from, source.local);
            open.unknown_spi(&self.io.notices, from, spi.0);
        }
        opened_spi
    }

    /// Opens the early packets whose SA is installed now; drops those too old.
    pub(super) fn retry_early(&mut self) {
        let now = Instant::now();
        let mut early = std::mem::take(&mut self.early);
        loop {
            let open = self.open.clone();
            let mut open = lock_open(&open);
            // Up to a full TUN batch under the lock; the batch is written once it is let go.
            while self.to_tun_len < BATCH {
                let Some(e) = early.pop_front() else { break };
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
                    open.plane.inbound_usage(spi).is_some() || (e.ah && open.plane.knows_ah_spi(spi))
                });
                if !known {
                    self.early.push_back(e);
                    continue;
                }
                let inbound = open_inbound(&mut open.plane, e.ah, &e.packet, &mut self.opened);
                if let Inbound::Deliver { packet, mode, next_header, .. } = inbound {
                    if mode == esp::Mode::Tunnel {
                        self.opened_slots.push(self.to_tun_len);
                    }
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
                }
            }
            open.drain_events(&self.io.notices);
            drop(open);
            self.write_tun();
            if early.is_empty() {
                return;
            }
        }
    }
}

/// Opens one received packet: `input` is a whole IPv4 packet carrying AH when `ah`, else an
/// ESP packet without its IP or UDP header. One place for both the receive batch and the
/// early packets retried after their SA arrives, so the two cannot pick different openers.
fn open_inbound<'o>(plane: &mut esp::OpenPlane, ah: bool, input: &[u8], opened: &'o mut [u8]) -> Inbound<'o> {
    if ah {
        plane.open_ah(input, opened)
    } else {
        plane.open(input, opened)
    }
}

/// As [`open_inbound`], decrypting in place in `input` (exactly the packet; its contents are
/// unspecified after a drop other than an unknown SPI).
fn open_inbound_in_place<'b>(plane: &mut esp::OpenPlane, ah: bool, input: &'b mut [u8]) -> Inbound<'b> {
    if ah {
        plane.open_ah_in_place(input)
    } else {
        plane.open_in_place(input)
    }
}

/// A socket the thread reads: its descriptor, its UDP 4500 address (`None` for raw sockets),
/// whether it carries AH, and our address on it.
struct Source {
    fd: RawFd,
    udp_local: Option<SocketAddr>,
    ah: bool,
    local: IpAddr,
}

/// The bytes of a received datagram the data plane opens: a whole IPv4 packet for AH, the
/// ESP packet without the IPv4 header the raw socket hands over, or ESP-in-UDP (RFC 3948
/// §2.2). `None` for what is not for the data plane: IKE after the non-ESP marker (handed to
/// the IKE loop through `ike`), a NAT keepalive, a malformed IPv4 header.
fn protected_input<'d>(
    datagram: &'d mut [u8],
    source: &Source,
    from: Option<SocketAddr>,
    ike: &mpsc::Sender<(SocketAddr, SocketAddr, Vec<u8>)>,
    open: &mut OpenSide,
) -> Option<&'d mut [u8]> {
    if source.ah {
        return Some(datagram);
    }
    let Some(local) = source.udp_local else {
        let first = *datagram.first()?;
        let header_len = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || header_len < 20 || datagram.len() < header_len {
            return None;
        }
        return Some(&mut datagram[header_len..]);
    };
    match datagram {
        [0, 0, 0, 0, message @ ..] => {
            if let Some(remote) = from {
                if ike.try_send((local, remote, message.to_vec())).is_err() {
                    open.notices_dropped += 1;
                }
            }
            None
        }
        [0xff] => None,
        esp => Some(esp),
    }
}
