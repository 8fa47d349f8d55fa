//! Sending the sealed batch: one `sendmmsg(2)` per socket (through `rustix`, which reports
//! how many messages left). Called with the data plane's lock let go; the sockets are
//! non-blocking, and a full send buffer gets one short wait for room per batch, after which
//! what does not fit is dropped and counted (`display ipsec statistics`), as a router's full
//! queue drops: a blocked path never stops the thread.

use std::io::{self, IoSlice};
use std::net::{IpAddr, SocketAddrV4};
use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rustix::net::addr::SocketAddrArg;
use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
use tracing::{debug, warn};

use super::buffers::BATCH;
use super::Thread;
use crate::os::sockets::is_buffer_full;

/// How long one batch may wait for room in a full send buffer (ms) before the rest is dropped:
/// a busy path's buffer empties within it, a blocked path's never does.
const ROOM_WAIT_MS: u8 = 2;

impl Thread {
    /// Sends every sealed datagram: one `sendmmsg` per socket and batch.
    pub(super) fn send_sealed(&mut self) {
        let mut done = [false; BATCH];
        let mut waited = false;
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
                    Err(e) if is_buffer_full(&e) && !waited => {
                        // A full buffer: wait a little for room, once per batch.
                        waited = true;
                        let mut fds = [PollFd::new(socket, PollFlags::POLLOUT)];
                        let _ = poll(&mut fds, PollTimeout::from(ROOM_WAIT_MS));
                    }
                    Err(e) if is_buffer_full(&e) => {
                        // Still full: drop the rest for this socket, counted.
                        self.io
                            .drops
                            .esp
                            .fetch_add((count - sent) as u64, std::sync::atomic::Ordering::Relaxed);
                        break;
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
}
