//! CPU per datagram of each way the data plane could send ESP (issue 16: "measured before
//! chosen"): raw ESP (IP protocol 50, the kernel writes the IPv4 header), raw ESP with
//! `IP_HDRINCL` (our pre-built header), ESP-in-UDP by `sendmmsg`, and ESP-in-UDP in GSO runs.
//!
//! Run as root inside a namespace whose route to 198.51.100.2 goes to a `dummy` device, which
//! drops what it is given: the figure is the sending side's kernel work alone, per datagram,
//! as the thread's CPU time (`/proc/thread-self/schedstat`) over the sends. `scripts/bench-send`
//! sets that up and runs it.
//!
//! usage: send_cost [DATAGRAMS] [SIZE]      (default 400000 datagrams of 1436 bytes)

use std::io::IoSlice;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;

use batch_io::{gso_run, send_each, send_segments, BATCH, MAX_SEGMENTS};
use socket2::{Domain, Protocol, Socket, Type};

const TO: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const FROM: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

fn cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    text.split_whitespace().next().and_then(|t| t.parse().ok()).expect("CPU time in ns")
}

/// Sends `total` datagrams with `send` (which returns how many it sent), and prints the CPU
/// time per datagram.
fn measure(name: &str, total: usize, mut send: impl FnMut() -> usize) {
    let start = cpu_ns();
    let mut sent = 0;
    while sent < total {
        sent += send();
    }
    let per = (cpu_ns() - start) as f64 / sent as f64;
    println!("| {name:<28} | {per:>7.0} ns |");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(400_000);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1436);
    let esp = vec![0x5au8; size];
    let raw_to = SocketAddrV4::new(TO, 0);
    let udp_to = SocketAddrV4::new(TO, 4500);

    let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(50))).expect("raw ESP socket (root)");
    raw.set_send_buffer_size(4 << 20).ok();
    let batch: Vec<(SocketAddrV4, &[u8])> = (0..BATCH).map(|_| (raw_to, &esp[..])).collect();
    measure("raw ESP, sendmmsg", total, || send_each(raw.as_fd(), &batch).unwrap_or(0));

    let hdrincl = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(50))).expect("raw socket");
    hdrincl.set_header_included_v4(true).expect("IP_HDRINCL");
    hdrincl.set_send_buffer_size(4 << 20).ok();
    let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 50, 0, 0];
    packet.extend_from_slice(&FROM.octets());
    packet.extend_from_slice(&TO.octets());
    packet.extend_from_slice(&esp);
    let total_len = u16::try_from(packet.len()).expect("fits").to_be_bytes();
    packet[2..4].copy_from_slice(&total_len);
    let batch: Vec<(SocketAddrV4, &[u8])> = (0..BATCH).map(|_| (raw_to, &packet[..])).collect();
    measure("raw ESP + IP_HDRINCL, sendmmsg", total, || send_each(hdrincl.as_fd(), &batch).unwrap_or(0));

    let udp = UdpSocket::bind((FROM, 4500)).expect("UDP 4500");
    socket2::SockRef::from(&udp).set_send_buffer_size(4 << 20).ok();
    let batch: Vec<(SocketAddrV4, &[u8])> = (0..BATCH).map(|_| (udp_to, &esp[..])).collect();
    measure("ESP-in-UDP, sendmmsg", total, || send_each(udp.as_fd(), &batch).unwrap_or(0));

    let run = gso_run((0..MAX_SEGMENTS).map(|_| (udp_to, size)));
    let slices: Vec<IoSlice<'_>> = (0..run).map(|_| IoSlice::new(&esp)).collect();
    let segment = u16::try_from(size).expect("fits");
    let name = format!("ESP-in-UDP, GSO runs of {run}");
    measure(&name, total, || send_segments(udp.as_fd(), udp_to, &slices, segment).map_or(0, |_| run));
}
