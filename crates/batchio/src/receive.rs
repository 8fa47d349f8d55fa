//! Receiving: `recvmmsg` into buffers made once, and the split of UDP GRO reads.

use std::io::{self, IoSliceMut};
use std::net::SocketAddrV4;
use std::ops::Range;
use std::os::fd::{AsFd, RawFd};

use nix::sys::socket::{
    recvmmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn,
};

use crate::BATCH;

/// Asks the kernel to hand over coalesced datagrams on a UDP socket (`UDP_GRO`): a read may
/// then hold many datagrams of one sender, all of one size but the last. False when the
/// kernel does not offer it (before 5.0); reads then hold one datagram each.
pub fn enable_gro(socket: &impl AsFd) -> bool {
    setsockopt(socket, sockopt::UdpGroSegment, &true).is_ok()
}

/// Bytes of control messages per read: the GRO segment size and room for whatever else a
/// socket is asked to report (a buffer too small for all is truncated, the size lost with it).
const CONTROL_SPACE: usize = 256;

/// The reads of one `recvmmsg`: up to [`BATCH`] buffers, their lengths, sources and GRO
/// segment sizes. Made once; nothing is allocated per read.
pub struct Receiver {
    buffers: Vec<Vec<u8>>,
    headers: MultiHeaders<SockaddrIn>,
    /// Per read: bytes, source, segment size (0: one datagram).
    reads: [(usize, Option<SocketAddrV4>, usize); BATCH],
    count: usize,
    /// Whether reads take control messages (the GRO segment size).
    control: bool,
    /// A read of the last batch had no control message, and left no room for the next one's.
    exhausted: bool,
}

impl Receiver {
    /// Buffers of `size` bytes each: the largest datagram expected, or
    /// [`MAX_UDP_PAYLOAD`](crate::MAX_UDP_PAYLOAD) where GRO is on (a longer read is cut short).
    /// `control`: read the GRO segment size (for UDP sockets with [`enable_gro`]); raw
    /// sockets need none.
    pub fn new(size: usize, control: bool) -> Self {
        Self {
            buffers: (0..BATCH).map(|_| vec![0u8; size]).collect(),
            headers: headers(control),
            reads: [(0, None, 0); BATCH],
            count: 0,
            control,
            exhausted: false,
        }
    }

    /// One non-blocking `recvmmsg` on `socket` (nix takes a raw descriptor; the caller keeps
    /// the socket open). Returns how many reads arrived (0 when none waited).
    pub fn receive(&mut self, socket: RawFd) -> io::Result<usize> {
        if self.exhausted {
            // The kernel wrote the control length each read used into the headers, and nix
            // does not restore it: a read that had no control message left no room for the
            // next one's segment size (truncated, and the datagrams of a GRO read taken as
            // one). Fresh headers then: a few allocations for the batch. A read that had the
            // segment size leaves room for the next one's, so a stream of GRO reads needs none.
            self.headers = headers(self.control);
        }
        self.count = 0;
        let mut buffers = self.buffers.iter_mut();
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
            [IoSliceMut::new(buffers.next().map_or(&mut [][..], |b| b.as_mut_slice()))]
        });
        let flags = MsgFlags::MSG_DONTWAIT;
        let results = match recvmmsg(socket, &mut self.headers, iovs.iter_mut(), flags, None) {
            Ok(results) => results,
            Err(nix::errno::Errno::EAGAIN) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        for (read, message) in self.reads.iter_mut().zip(results) {
            let stride = message.cmsgs().ok().into_iter().flatten().find_map(|c| match c {
                ControlMessageOwned::UdpGroSegments(size) => usize::try_from(size).ok(),
                _ => None,
            });
            *read = (message.bytes, message.address.map(SocketAddrV4::from), stride.unwrap_or(0));
            self.count += 1;
        }
        self.exhausted = self.control && self.reads[..self.count].iter().any(|r| r.2 == 0);
        Ok(self.count)
    }

    /// How many reads the last [`receive`](Self::receive) returned.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The source of read `index`.
    pub fn source(&self, index: usize) -> Option<SocketAddrV4> {
        self.reads.get(index).and_then(|r| r.1)
    }

    /// The datagrams of read `index`, as ranges of [`bytes`](Self::bytes): one, or the
    /// segments a GRO read holds (each `stride` long, the last possibly shorter).
    pub fn datagrams(&self, index: usize) -> Datagrams {
        let (len, _, stride) = self.reads.get(index).copied().unwrap_or_default();
        let len = len.min(self.buffers.get(index).map_or(0, Vec::len));
        Datagrams { next: 0, len, stride: if stride == 0 { len.max(1) } else { stride } }
    }

    /// The bytes of read `index` in `range` (one of its [`datagrams`](Self::datagrams)).
    pub fn bytes(&self, index: usize, range: Range<usize>) -> &[u8] {
        self.buffers.get(index).and_then(|b| b.get(range)).unwrap_or_default()
    }

    /// As [`bytes`](Self::bytes), writable: the data plane opens ESP in place where it was
    /// read, so the packet is not copied to another buffer before it is decrypted.
    pub fn bytes_mut(&mut self, index: usize, range: Range<usize>) -> &mut [u8] {
        self.buffers.get_mut(index).and_then(|b| b.get_mut(range)).unwrap_or_default()
    }
}

/// Headers for a batch, with room for control messages when `control`.
fn headers(control: bool) -> MultiHeaders<SockaddrIn> {
    MultiHeaders::preallocate(BATCH, control.then(|| vec![0u8; CONTROL_SPACE]))
}

/// The datagrams of one read, as byte ranges (see [`Receiver::datagrams`]).
#[derive(Debug, Clone)]
pub struct Datagrams {
    next: usize,
    len: usize,
    stride: usize,
}

impl Iterator for Datagrams {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        if self.next >= self.len {
            return None;
        }
        let start = self.next;
        self.next = (start + self.stride).min(self.len);
        Some(start..self.next)
    }
}

#[cfg(test)]
mod tests {
    use std::io::IoSlice;
    use std::net::{Ipv4Addr, UdpSocket};
    use std::os::fd::{AsFd, AsRawFd};

    use super::*;
    use crate::{send_segments, MAX_UDP_PAYLOAD};

    fn v4(socket: &UdpSocket) -> SocketAddrV4 {
        match socket.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            std::net::SocketAddr::V6(_) => unreachable!("bound to IPv4"),
        }
    }

    /// A GSO send of 3 × 1000 + 400 bytes arrives as four datagrams, coalesced (GRO on) or
    /// not (GRO off), with their contents and order.
    #[test]
    fn a_gso_run_arrives_as_its_datagrams_with_and_without_gro() {
        for gro in [true, false] {
            let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            receiver.set_nonblocking(true).unwrap();
            if gro {
                assert!(enable_gro(&receiver));
            }
            let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let parts: Vec<Vec<u8>> =
                [1000, 1000, 1000, 400].iter().zip(1u8..).map(|(&n, b)| vec![b; n]).collect();
            let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
            assert_eq!(send_segments(sender.as_fd(), v4(&receiver), &slices, 1000).unwrap(), 3400);
            let mut rx = Receiver::new(MAX_UDP_PAYLOAD, true);
            let (mut got, mut reads) = (Vec::new(), 0);
            for _ in 0..100 {
                if rx.receive(receiver.as_raw_fd()).unwrap() == 0 {
                    if got.len() == 4 {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                }
                reads += rx.count();
                for read in 0..rx.count() {
                    assert_eq!(rx.source(read), Some(v4(&sender)));
                    got.extend(rx.datagrams(read).map(|r| rx.bytes(read, r).to_vec()));
                }
            }
            assert_eq!(got, parts, "GRO {gro}");
            // On loopback the GSO send stays one buffer up to a socket that takes GRO reads.
            assert_eq!(reads < 4, gro, "{reads} reads with GRO {gro}");
        }
    }

    /// The data plane opens each datagram of a GRO read in place (`bytes_mut`): a write
    /// through one datagram's range changes that datagram alone, and `bytes` sees it.
    #[test]
    fn datagrams_of_a_gro_read_are_written_in_place_one_at_a_time() {
        let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        receiver.set_nonblocking(true).unwrap();
        assert!(enable_gro(&receiver));
        let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let parts: Vec<Vec<u8>> = [600, 600, 200].iter().zip(1u8..).map(|(&n, b)| vec![b; n]).collect();
        let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        send_segments(sender.as_fd(), v4(&receiver), &slices, 600).unwrap();
        let mut rx = Receiver::new(MAX_UDP_PAYLOAD, true);
        let mut got = Vec::new();
        for _ in 0..100 {
            if rx.receive(receiver.as_raw_fd()).unwrap() == 0 {
                if got.len() == 3 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            }
            for read in 0..rx.count() {
                for (nth, range) in rx.datagrams(read).enumerate() {
                    // Mark the second datagram of each read only.
                    if nth == 1 {
                        rx.bytes_mut(read, range.clone()).fill(0xee);
                    }
                    got.push((nth, rx.bytes(read, range).to_vec()));
                }
            }
        }
        assert_eq!(got.len(), 3);
        for (nth, bytes) in &got {
            let marked = bytes.iter().all(|&b| b == 0xee);
            assert_eq!(marked, *nth == 1, "datagram {nth} of its read");
        }
        assert!(got.iter().any(|(nth, _)| *nth == 1), "GRO on loopback coalesces the run");
    }

    /// A read without control message (a lone datagram) and then a GRO read: the second is
    /// still split. nix leaves the kernel's control length of the first read in the headers,
    /// and without fresh headers the second read's segment size was truncated away and its
    /// datagrams taken as one.
    #[test]
    fn a_gro_read_after_a_plain_one_is_still_split() {
        let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        receiver.set_nonblocking(true).unwrap();
        assert!(enable_gro(&receiver));
        let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let mut rx = Receiver::new(MAX_UDP_PAYLOAD, true);
        let received = |rx: &mut Receiver| -> Vec<usize> {
            for _ in 0..100 {
                if rx.receive(receiver.as_raw_fd()).unwrap() > 0 {
                    return (0..rx.count())
                        .flat_map(|r| rx.datagrams(r).map(|d| d.len()).collect::<Vec<_>>())
                        .collect();
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Vec::new()
        };
        sender.send_to(&[7; 300], receiver.local_addr().unwrap()).unwrap();
        assert_eq!(received(&mut rx), vec![300]);
        let parts = [vec![1u8; 1000], vec![2; 1000]];
        let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        send_segments(sender.as_fd(), v4(&receiver), &slices, 1000).unwrap();
        assert_eq!(received(&mut rx), vec![1000, 1000]);
    }

    #[test]
    fn datagrams_split_by_stride() {
        let split = |len, stride| Datagrams { next: 0, len, stride }.collect::<Vec<_>>();
        assert_eq!(split(2500, 1000), vec![0..1000, 1000..2000, 2000..2500]);
        assert_eq!(split(3000, 1000), vec![0..1000, 1000..2000, 2000..3000]);
        assert_eq!(split(0, 1), vec![]);
    }
}
