//! The daemon's ESP data path: the sans-IO [`esp::DataPlane`] shared between the IKE loop
//! and a data-plane thread of its own ([`fast_path`]), which carries packets between the TUN
//! device and the public sockets.
//!
//! Packet flow, on the data-plane thread, in batches:
//! - TUN → seal: the SPD decides; protected packets are sealed and sent as raw ESP (or
//!   ESP-in-UDP from our 4500 socket when the SA is UDP-encapsulated); a packet without an
//!   SA is queued and raises an acquire ([`Notice::Acquire`]) for the engine. Only the
//!   protected prefixes are routed into the TUN, so a bypass decision there is dropped and
//!   counted: clear traffic is forwarded by the kernel and never reaches us.
//! - raw socket / UDP 4500 → open: written to the TUN, from where the kernel forwards the
//!   inner packet to the inside network.
//!
//! The IKE loop installs and removes SAs in the [`Shared`] data plane (one mutex, held by the
//! thread for one batch at a time) through the gateway's bridge, and hears the thread's
//! notices. The sockets and the TUN come from the gateway's `os`; this crate only moves packets.
#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]

pub mod fast_path;
pub mod shared;

pub use shared::{
    is_buffer_full, lock, Added, Notice, PairTraffic, SendDrops, Shared, MAX_PACKET, NOTICE_QUEUE,
};
