//! Sending the sealed batch, with the data plane's lock let go: per socket, ESP-in-UDP in GSO
//! runs (one `sendmsg` with `UDP_SEGMENT` per run of equal-sized datagrams to one peer), the
//! rest in one `sendmmsg` (`batch_io`). The sockets are non-blocking, and a full send buffer
//! gets one short wait for room per batch, after which what does not fit is dropped and
//! counted (`display ipsec statistics`), as a router's full queue drops: a blocked path never
//! stops the thread.

use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, BorrowedFd};

use batch_io::{gso_run, send_each, send_segments, MAX_SEGMENTS};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tracing::{debug, warn};

use super::buffers::{Outgoing, BATCH};
use super::Thread;
use crate::shared::is_buffer_full;

/// How long one batch may wait for room in a full send buffer (ms) before the rest is dropped:
/// a busy path's buffer empties within it, a blocked path's never does.
const ROOM_WAIT_MS: u8 = 2;

impl Thread {
    /// Sends every sealed datagram, grouped by socket.
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
            let group = Group { socket, udp: key.0, members: &members[..count] };
            let unsent = self.send_group(&group, &mut waited);
            if unsent > 0 {
                self.io.drops.esp.fetch_add(unsent as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.outgoing.clear();
    }

    /// Sends one socket's datagrams; returns how many were dropped on a full buffer.
    fn send_group(&self, group: &Group<'_>, waited: &mut bool) -> usize {
        let members = group.members;
        let (mut sent, mut gso) = (0, group.udp && self.gso.get().enabled());
        while sent < members.len() {
            let rest = &members[sent..];
            let run = if gso {
                gso_run(rest.iter().map(|&m| (self.outgoing[m].to, self.outgoing[m].len)))
            } else {
                0
            };
            let result =
                if run > 1 { self.send_run(group.socket, &rest[..run]) } else { self.send_each(group, rest) };
            match result {
                Ok(0) => return 0,
                Ok(n) => sent += n,
                Err(e) if run > 1 && self.gso_refused(&e) => {
                    // No GSO here: the rest of this group goes as separate datagrams.
                    debug!(
                        "ESP-in-UDP GSO send from {}: {e}; sending one by one",
                        self.outgoing[rest[0]].local
                    );
                    gso = false;
                }
                Err(e) if is_buffer_full(&e) && !*waited => {
                    // A full buffer: wait a little for room, once per batch.
                    *waited = true;
                    let mut fds = [PollFd::new(group.socket, PollFlags::POLLOUT)];
                    let _ = poll(&mut fds, PollTimeout::from(ROOM_WAIT_MS));
                }
                Err(e) if is_buffer_full(&e) => return members.len() - sent, // still full: dropped
                Err(e) => {
                    debug!("ESP send from {}: {e}", self.outgoing[rest[0]].local);
                    sent += run.max(1); // skip what the kernel refused
                }
            }
        }
        0
    }

    /// Learns from a GSO send's error whether to send the run again without GSO.
    fn gso_refused(&self, error: &io::Error) -> bool {
        let mut gso = self.gso.get();
        let refused = gso.refused(error);
        self.gso.set(gso);
        refused
    }

    /// One GSO send of the datagrams `run` (a [`gso_run`]); returns how many left.
    fn send_run(&self, socket: BorrowedFd<'_>, run: &[usize]) -> io::Result<usize> {
        let slices: [IoSlice<'_>; MAX_SEGMENTS] =
            std::array::from_fn(|i| IoSlice::new(run.get(i).map_or(&[][..], |&m| self.datagram(m))));
        let first = &self.outgoing[run[0]];
        let size = u16::try_from(first.len).unwrap_or(u16::MAX);
        send_segments(socket, v4(first, true), &slices[..run.len()], size).map(|_| run.len())
    }

    /// One `sendmmsg` of `members`; returns how many left.
    fn send_each(&self, group: &Group<'_>, members: &[usize]) -> io::Result<usize> {
        let unused = (SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), &[][..]);
        let datagrams: [(SocketAddrV4, &[u8]); BATCH] = std::array::from_fn(|i| {
            members.get(i).map_or(unused, |&m| (v4(&self.outgoing[m], group.udp), self.datagram(m)))
        });
        send_each(group.socket, &datagrams[..members.len().min(BATCH)])
    }

    /// The bytes of sealed datagram `member`.
    fn datagram(&self, member: usize) -> &[u8] {
        let o = &self.outgoing[member];
        &self.sealed[o.buffer][o.start..o.start + o.len]
    }
}

/// The datagrams of one batch that leave through one socket.
struct Group<'a> {
    socket: BorrowedFd<'a>,
    udp: bool,
    members: &'a [usize],
}

/// Where datagram `o` goes: its peer's port for ESP-in-UDP, 0 for a raw socket.
fn v4(o: &Outgoing, udp: bool) -> SocketAddrV4 {
    let port = if udp { o.to.port() } else { 0 };
    match o.to.ip() {
        IpAddr::V4(ip) => SocketAddrV4::new(ip, port),
        IpAddr::V6(_) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
    }
}
