//! Datagrams from many peers on one socket, as the daemon's IKE sockets get them: one
//! `recvmmsg(2)` reads what waits, each datagram with its sender ([`send_each`](crate::send_each)
//! answers them in one `sendmmsg(2)`).

use std::io::{self, IoSliceMut};
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrIn};

use crate::BATCH;

/// Reads up to `buffers.len()` (at most [`BATCH`]) datagrams from the non-blocking IPv4
/// `socket`, one per buffer, and records each one's length and sender in `reads`; how many.
/// Nothing waiting is `WouldBlock`. The message headers are made per call, so nothing here
/// outlives it (the caller may hold its buffers across an `await`).
pub fn receive_each(
    socket: BorrowedFd<'_>,
    buffers: &mut [Vec<u8>],
    reads: &mut [(usize, Option<SocketAddrV4>)],
) -> io::Result<usize> {
    let count = buffers.len().min(reads.len()).min(BATCH);
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(count, None);
    let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
        buffers[..count].iter_mut().map(|b| [IoSliceMut::new(b.as_mut_slice())]).collect();
    let results = recvmmsg(socket.as_raw_fd(), &mut headers, iovs.iter_mut(), MsgFlags::MSG_DONTWAIT, None)?;
    let mut received = 0;
    for (read, message) in reads.iter_mut().zip(results) {
        *read = (message.bytes, message.address.map(SocketAddrV4::from));
        received += 1;
    }
    Ok(received)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, UdpSocket};
    use std::os::fd::AsFd;

    use super::*;

    /// Several senders' datagrams waiting on one socket come out of one call, each with its
    /// sender and length; then the socket is drained.
    #[test]
    fn one_call_reads_what_waits_from_every_sender() {
        let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        receiver.set_nonblocking(true).unwrap();
        let senders: Vec<UdpSocket> =
            (0..3).map(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap()).collect();
        for (i, sender) in senders.iter().enumerate() {
            sender.send_to(&vec![i as u8; 100 + i], receiver.local_addr().unwrap()).unwrap();
        }
        let mut buffers: Vec<Vec<u8>> = (0..8).map(|_| vec![0u8; 2048]).collect();
        let mut reads = [(0, None); 8];
        let mut got = Vec::new();
        for _ in 0..100 {
            match receive_each(receiver.as_fd(), &mut buffers, &mut reads) {
                Ok(n) => got.extend((0..n).map(|i| (reads[i].1, buffers[i][..reads[i].0].to_vec()))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && got.len() == 3 => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err(e) => panic!("{e}"),
            }
        }
        let expected: Vec<_> = senders
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let std::net::SocketAddr::V4(from) = s.local_addr().unwrap() else { unreachable!() };
                (Some(from), vec![i as u8; 100 + i])
            })
            .collect();
        assert_eq!(got, expected);
    }
}
