//! Sending: `sendmmsg` of separate datagrams, and UDP GSO runs.

use std::io::{self, IoSlice};
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockaddrIn};
use rustix::net::addr::SocketAddrArg;
use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};

use crate::{BATCH, MAX_SEGMENTS, MAX_UDP_PAYLOAD};

/// Sends up to [`BATCH`] datagrams (more are left for the next call), each to its address, in
/// one non-blocking `sendmmsg`. Returns how many left; an error means the first did not.
pub fn send_each(socket: BorrowedFd<'_>, datagrams: &[(SocketAddrV4, &[u8])]) -> io::Result<usize> {
    let datagrams = &datagrams[..datagrams.len().min(BATCH)];
    let unused = SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0);
    let iovs: [[IoSlice<'_>; 1]; BATCH] =
        std::array::from_fn(|i| [IoSlice::new(datagrams.get(i).map_or(&[][..], |d| d.1))]);
    let addresses: [SocketAddrAny; BATCH] =
        std::array::from_fn(|i| datagrams.get(i).map_or(unused, |d| d.0).as_any());
    let mut controls: [SendAncillaryBuffer<'_, '_, '_>; BATCH] =
        std::array::from_fn(|_| SendAncillaryBuffer::default());
    let mut parts = addresses.iter().zip(iovs.iter()).zip(controls.iter_mut());
    let mut headers: [MMsgHdr<'_>; BATCH] = std::array::from_fn(|_| {
        let ((address, iov), control) = parts.next().expect("BATCH addresses, slices and controls");
        MMsgHdr::new_with_addr(address, iov, control)
    });
    sendmmsg(socket, &mut headers[..datagrams.len()], SendFlags::DONTWAIT).map_err(io::Error::from)
}

/// How many of `datagrams` (destination, length), from the first, may leave in one GSO send:
/// one destination, every datagram as long as the first but the last (which may be shorter,
/// not empty), at most [`MAX_SEGMENTS`] and [`MAX_UDP_PAYLOAD`] bytes in all. At least 1 when
/// `datagrams` is not empty.
pub fn gso_run<A: PartialEq>(datagrams: impl IntoIterator<Item = (A, usize)>) -> usize {
    let mut datagrams = datagrams.into_iter();
    let Some((to, size)) = datagrams.next() else { return 0 };
    let (mut count, mut total) = (1, size);
    for (next_to, len) in datagrams {
        if next_to != to || len > size || len == 0 || count == MAX_SEGMENTS || total + len > MAX_UDP_PAYLOAD {
            break;
        }
        count += 1;
        total += len;
        if len < size {
            break; // a shorter datagram ends the run
        }
    }
    count
}

/// Sends `segments` (a run [`gso_run`] accepted, the first `segment_size` bytes long) to `to`
/// in one non-blocking `sendmsg` with a `UDP_SEGMENT` control message; a single segment goes
/// without one. Returns the bytes sent (all or nothing: a datagram socket sends whole).
pub fn send_segments(
    socket: BorrowedFd<'_>,
    to: SocketAddrV4,
    segments: &[IoSlice<'_>],
    segment_size: u16,
) -> io::Result<usize> {
    let address = SockaddrIn::from(to);
    let gso = [ControlMessage::UdpGsoSegments(&segment_size)];
    let control: &[ControlMessage<'_>] = if segments.len() > 1 { &gso } else { &[] };
    sendmsg(socket.as_raw_fd(), segments, control, MsgFlags::MSG_DONTWAIT, Some(&address))
        .map_err(io::Error::from)
}

/// Whether GSO sends are used on a socket: on until the kernel refuses one with `EIO` (the
/// egress device cannot checksum a GSO send), then off for good.
#[derive(Debug, Clone, Copy)]
pub struct Gso {
    enabled: bool,
}

impl Default for Gso {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Gso {
    /// GSO off (`KEYSTEWARD_NO_GSO` and tests use it to compare).
    pub fn disabled() -> Self {
        Self { enabled: false }
    }

    /// True while GSO sends are used.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Learns from a GSO send's error whether the run should go again as separate datagrams:
    /// `EIO` means no GSO on this path (it is then off for good); `EMSGSIZE` or `EINVAL` (by
    /// kernel version) that this run may not be segmented, typically a segment larger than
    /// the path's MTU (the kernel's `fragsize`), which a plain send may still fragment, as
    /// before GSO. False for any other error.
    pub fn refused(&mut self, error: &io::Error) -> bool {
        match error.raw_os_error() {
            Some(e) if e == nix::libc::EIO => {
                self.enabled = false;
                true
            }
            Some(e) => e == nix::libc::EINVAL || e == nix::libc::EMSGSIZE,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a refused GSO send means: `EIO` (no checksum offload on the device) turns GSO off
    /// for good; `EINVAL` (a segment above the path MTU, which a GSO send may not fragment)
    /// sends that run again one by one and keeps GSO; a full buffer is no refusal (the caller
    /// waits or drops as for any send).
    #[test]
    fn refusals_turn_gso_off_or_retry_the_run_alone() {
        let error = |code| io::Error::from_raw_os_error(code);
        let mut gso = Gso::default();
        assert!(gso.refused(&error(nix::libc::EINVAL)) && gso.enabled());
        assert!(!gso.refused(&error(nix::libc::EAGAIN)) && gso.enabled());
        assert!(!gso.refused(&error(nix::libc::ENOBUFS)) && gso.enabled());
        assert!(gso.refused(&error(nix::libc::EIO)) && !gso.enabled());
        assert!(!Gso::disabled().enabled());
    }

    /// A run the kernel may not segment (here: more than one UDP datagram's payload in all;
    /// on a real path, segments larger than its MTU) is refused with `EMSGSIZE` or `EINVAL`,
    /// GSO stays on, and the same datagrams sent one by one leave.
    #[test]
    fn a_run_the_kernel_refuses_is_sent_alone() {
        use std::os::fd::AsFd;
        let receiver = std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0)).unwrap();
        let sender = std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0)).unwrap();
        let to = match receiver.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            std::net::SocketAddr::V6(_) => unreachable!("bound to IPv4"),
        };
        let big = vec![1u8; 40_000];
        let slices = [IoSlice::new(&big), IoSlice::new(&big)];
        let error = send_segments(sender.as_fd(), to, &slices, 40_000).unwrap_err();
        let mut gso = Gso::default();
        assert!(gso.refused(&error), "{error}");
        assert!(gso.enabled());
        let datagrams = [(to, &big[..]), (to, &big[..])];
        assert_eq!(send_each(sender.as_fd(), &datagrams).unwrap(), 2);
    }

    #[test]
    fn a_run_is_one_destination_of_equal_sizes_ended_by_a_shorter_one() {
        let (a, b) = (1, 2);
        assert_eq!(gso_run(Vec::<(u8, usize)>::new()), 0);
        assert_eq!(gso_run([(a, 1400)]), 1);
        assert_eq!(gso_run([(a, 1400), (a, 1400), (a, 900), (a, 1400)]), 3, "the shorter one ends it");
        assert_eq!(gso_run([(a, 1400), (a, 1400), (b, 1400)]), 2, "another destination ends it");
        assert_eq!(gso_run([(a, 900), (a, 1400)]), 1, "a longer one cannot follow");
        assert_eq!(gso_run([(a, 900), (a, 0)]), 1, "nor an empty one");
        let many = vec![(a, 100); 100];
        assert_eq!(gso_run(many), MAX_SEGMENTS);
        let big = vec![(a, 1500); 64];
        assert_eq!(gso_run(big), MAX_UDP_PAYLOAD / 1500, "within one UDP datagram's payload");
    }
}
