//! Waiting for input with `epoll(7)`: the thread's descriptors (the TUN, or the sockets) are
//! registered once, when the thread starts or a reload adds sockets, and each wait fills a
//! list of events made once. Before, each wake-up built a `poll(2)` set afresh (a `Vec` per
//! wake-up, malloc and free on the opening thread's profile) and the kernel queued and
//! dequeued the thread on every descriptor's wait queue for each call.

use std::io;
use std::os::fd::AsFd;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

/// The event data of the TUN device; a socket's is its place in the poll order.
const TUN: u64 = u64::MAX;

/// Events one wait returns at most; more ready descriptors are found by the next wait
/// (level-triggered: a descriptor stays ready until it is read empty).
const EVENTS: usize = 64;

/// A thread's registered descriptors and its list of events.
pub(super) struct Waiter {
    epoll: Epoll,
    events: [EpollEvent; EVENTS],
    /// Sockets registered so far: the next one gets this index.
    sockets: usize,
}

impl Waiter {
    /// An epoll instance with nothing registered.
    pub(super) fn new() -> io::Result<Self> {
        Ok(Self {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            events: [EpollEvent::empty(); EVENTS],
            sockets: 0,
        })
    }

    /// Watches the TUN device for input.
    pub(super) fn add_tun(&self, tun: impl AsFd) -> io::Result<()> {
        Ok(self.epoll.add(tun, EpollEvent::new(EpollFlags::EPOLLIN, TUN))?)
    }

    /// Watches a socket for input; its index is the number of sockets added before it (the
    /// thread adds them in its poll order: raw sockets, then UDP, then AH, and a reload's
    /// sockets after all those).
    pub(super) fn add_socket(&mut self, socket: impl AsFd) -> io::Result<()> {
        self.epoll.add(socket, EpollEvent::new(EpollFlags::EPOLLIN, self.sockets as u64))?;
        self.sockets += 1;
        Ok(())
    }

    /// Waits at most `timeout_ms` until a descriptor is readable. Returns whether the TUN is;
    /// `ready` gets one entry per socket added, true for those that are readable.
    pub(super) fn wait(&mut self, ready: &mut Vec<bool>, timeout_ms: u16) -> io::Result<bool> {
        ready.clear();
        ready.resize(self.sockets, false);
        let count = match self.epoll.wait(&mut self.events, EpollTimeout::from(timeout_ms)) {
            Ok(count) => count,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        let mut tun = false;
        for event in &self.events[..count] {
            match event.data() {
                TUN => tun = true,
                index => {
                    if let Some(entry) = usize::try_from(index).ok().and_then(|i| ready.get_mut(i)) {
                        *entry = true;
                    }
                }
            }
        }
        Ok(tun)
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;

    use super::Waiter;

    fn readable(ready: &[bool]) -> Vec<usize> {
        ready.iter().enumerate().filter(|(_, r)| **r).map(|(i, _)| i).collect()
    }

    /// Issue 13: the readiness of 64 and more sockets was kept in a u64, so the 65th socket
    /// aliased the first (or was never read). Here 70 sockets, and only the one written to is
    /// readable, the TUN (a socket standing for it) not.
    #[test]
    fn readiness_covers_any_number_of_sockets() {
        let tun = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sockets: Vec<UdpSocket> = (0..70).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut waiter = Waiter::new().unwrap();
        waiter.add_tun(&tun).unwrap();
        for socket in &sockets {
            waiter.add_socket(socket).unwrap();
        }
        for last in [0, 63, 64, 69] {
            sender.send_to(b"esp", sockets[last].local_addr().unwrap()).unwrap();
            let mut ready = Vec::new();
            let tun_ready = waiter.wait(&mut ready, 1000).unwrap();
            assert!(!tun_ready);
            assert_eq!(ready.len(), 70);
            assert_eq!(readable(&ready), vec![last], "socket {last} alone is readable");
            let mut buf = [0u8; 16];
            sockets[last].recv(&mut buf).unwrap();
        }
        sender.send_to(b"ip", tun.local_addr().unwrap()).unwrap();
        let mut ready = Vec::new();
        assert!(waiter.wait(&mut ready, 1000).unwrap(), "the TUN is readable");
        assert!(readable(&ready).is_empty());
    }

    /// Level-triggered, as `poll` was: a socket not read empty is ready again at the next
    /// wait (the thread reads a batch at a time), and a socket a reload adds later is watched
    /// under the next index.
    #[test]
    fn unread_input_stays_ready_and_added_sockets_are_watched() {
        let first = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut waiter = Waiter::new().unwrap();
        waiter.add_socket(&first).unwrap();
        sender.send_to(b"one", first.local_addr().unwrap()).unwrap();
        sender.send_to(b"two", first.local_addr().unwrap()).unwrap();
        let mut ready = Vec::new();
        let mut buf = [0u8; 16];
        for _ in 0..2 {
            assert!(!waiter.wait(&mut ready, 1000).unwrap());
            assert_eq!(readable(&ready), vec![0]);
            first.recv(&mut buf).unwrap();
        }
        let added = UdpSocket::bind("127.0.0.1:0").unwrap();
        waiter.add_socket(&added).unwrap();
        sender.send_to(b"three", added.local_addr().unwrap()).unwrap();
        waiter.wait(&mut ready, 1000).unwrap();
        assert_eq!(readable(&ready), vec![1], "the added socket, and not the one read empty");
        // Nothing left: the wait times out with nothing ready.
        added.recv(&mut buf).unwrap();
        assert!(!waiter.wait(&mut ready, 10).unwrap());
        assert!(readable(&ready).is_empty());
    }
}
