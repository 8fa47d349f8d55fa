//! Batched datagram I/O for the data plane, the way wireguard-go's `conn` package does it:
//! few system calls for many datagrams.
//!
//! - [`send_each`]: up to [`BATCH`] datagrams, each to its own address, in one `sendmmsg(2)`.
//! - [`gso_run`] and [`send_segments`]: a run of datagrams to one destination, all of one size
//!   but the last (which may be shorter), leaves in one `sendmsg(2)` with a `UDP_SEGMENT`
//!   control message (UDP GSO, Linux ≥ 4.18): the kernel carries one buffer down the stack
//!   and cuts it into datagrams as late as it can (on a veth, at the receiving socket or
//!   never, see [`Receiver`]). [`Gso`] remembers whether the path allows it (`EIO` means the
//!   egress device has no checksum offload; wireguard-go turns GSO off on it too).
//! - [`Receiver`]: one `recvmmsg(2)` of up to [`BATCH`] reads; on a UDP socket with
//!   [`enable_gro`] a read may hold several datagrams of one sender coalesced by the kernel
//!   (`UDP_GRO`, Linux ≥ 5.0), with their size in a control message; [`Receiver::datagrams`]
//!   splits them again, so the caller opens and checks each ESP packet alone.
//!
//! - [`receive_each`]: one `recvmmsg(2)` of datagrams from many senders (the daemon's IKE
//!   sockets), answered with [`send_each`].
//!
//! Nothing here allocates per datagram: the buffers are the caller's or made once, in
//! [`Receiver::new`] (nix's `sendmsg` allocates its small control buffer per call, that is
//! once per GSO run of up to [`MAX_SEGMENTS`] datagrams).

#![forbid(unsafe_code)]

mod each;
mod receive;
mod send;

pub use each::receive_each;
pub use receive::{enable_gro, Receiver};
pub use send::{gso_run, send_each, send_segments, Gso};

/// Datagrams per `sendmmsg` and per `recvmmsg`.
pub const BATCH: usize = 64;

/// Datagrams in one GSO send: the kernel's `UDP_MAX_SEGMENTS` was 64 until 2024 (128 since);
/// 64 works on every kernel.
pub const MAX_SEGMENTS: usize = 64;

/// The most payload one UDP datagram over IPv4 carries (65,535 − 20 − 8): the bound of a GSO
/// send, and of one coalesced GRO read.
pub const MAX_UDP_PAYLOAD: usize = 65_507;
