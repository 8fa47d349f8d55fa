//! Spoofed main-mode MM1 for the flood tests and the flood benchmark
//! (`examples/flood_mm1.rs` includes this file with `#[path]`): a genuine MM1 built by the
//! IKE engine from a VRP configuration, sent again and again with a fresh initiator cookie
//! from any source address through a raw IPv4 socket (`IP_HDRINCL`), as an attacker who can
//! spoof addresses would.
// The test files and the example each use a subset.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Instant;

use keysteward::load::{check_text, InterfaceMap, Purpose};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The MM1 an engine configured with `config` (VRP text; its first `ipsec policy` entry's
/// first rule) sends first, as it would on the wire to UDP 500.
pub(crate) fn mm1(config: &str) -> Vec<u8> {
    let loaded = check_text("flood.cfg", config, &InterfaceMap::default(), None, Purpose::Check);
    let errors = loaded.errors();
    let (_, engine_config) =
        loaded.config.unwrap_or_else(|| panic!("flood configuration refused:\n{errors}"));
    let policy = engine_config.policies.first().expect("an ipsec policy to start main mode with");
    let acquire = ike::Acquire {
        policy: 0,
        selector: *policy.selectors.first().expect("an ACL rule to start main mode with"),
    };
    let mut engine = ike::Engine::new(engine_config, Box::new(crypto::OsRandom));
    engine.handle_acquire(Instant::now(), acquire);
    engine.poll_transmit().expect("main mode starts with MM1").payload
}

/// A small, fast generator (xorshift64*) for cookies and addresses: a flood needs variety,
/// not secrecy.
pub(crate) struct Variety(u64);

impl Variety {
    /// Seeded from `seed` (any value but 0 works; 0 is replaced).
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// An address in `base`/`prefix` (host bits random).
    pub(crate) fn address_in(&mut self, base: Ipv4Addr, prefix: u8) -> Ipv4Addr {
        let host_bits = 32 - u32::from(prefix);
        let mask = if host_bits == 32 { u32::MAX } else { (1u32 << host_bits) - 1 };
        Ipv4Addr::from((u32::from(base) & !mask) | (self.next() as u32 & mask))
    }
}

/// `mm1` with a fresh initiator cookie, in a UDP datagram from `from` to `to`, in an IPv4
/// packet written whole (for `IP_HDRINCL`; the kernel fills in the IP checksum and ID, the
/// UDP checksum is left 0, which IPv4 allows).
pub(crate) fn spoofed(mm1: &[u8], cookie: u64, from: SocketAddrV4, to: SocketAddrV4) -> Vec<u8> {
    let udp_len = 8 + mm1.len();
    let total = 20 + udp_len;
    let mut packet = Vec::with_capacity(total);
    packet.extend_from_slice(&[0x45, 0]);
    packet.extend_from_slice(&(total as u16).to_be_bytes());
    packet.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    packet.extend_from_slice(&from.ip().octets());
    packet.extend_from_slice(&to.ip().octets());
    packet.extend_from_slice(&from.port().to_be_bytes());
    packet.extend_from_slice(&to.port().to_be_bytes());
    packet.extend_from_slice(&(udp_len as u16).to_be_bytes());
    packet.extend_from_slice(&[0, 0]);
    let body = packet.len();
    packet.extend_from_slice(mm1);
    // A cookie of 0 is refused before anything else; keep the flood to what costs the most.
    packet[body..body + 8].copy_from_slice(&cookie.max(1).to_be_bytes());
    packet
}

/// A raw IPv4 socket that sends whole packets (`IP_HDRINCL`), in the network namespace of
/// the calling thread.
pub(crate) fn raw_sender() -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP))?;
    socket.set_header_included_v4(true)?;
    Ok(socket)
}

/// Sends one spoofed packet (see [`spoofed`]) on `socket`.
pub(crate) fn send(socket: &Socket, packet: &[u8], to: SocketAddrV4) -> std::io::Result<usize> {
    socket.send_to(packet, &SockAddr::from(SocketAddr::V4(to)))
}
