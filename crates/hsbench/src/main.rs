//! `hsbench`: many IKEv1 initiators against one running responder, over real UDP.
//!
//! Each initiator is its own sans-IO [`ike::Engine`] (main mode with a pre-shared key + quick
//! mode, aes128/sha256, ESP aes128-sha256) with its own address: initiator *i* (from 0) is
//! `--base` + *i* and protects the single address 10.0.0.0 + *i* + 1 toward `--far` (the
//! responder's side). All of them share ONE UDP socket bound to port 500: the source address
//! of each datagram is chosen with `IP_PKTINFO`, and the destination of each reply read from
//! it, so the initiator namespace needs the whole range local (`ip route add local
//! 198.18.0.0/15 dev lo`, as scripts/bench-handshakes does), not one address per interface.
//!
//! `--in-flight` handshakes run at once; an initiator is dropped as soon as its IPsec SA pair
//! is installed (its last message sent), so the initiators' memory stays bounded whatever
//! `--sas` is, while the responder keeps every SA. With `--pid`, the responder's CPU time
//! (the sum over its threads of `/proc/PID/task/*/schedstat`, nanoseconds of CPU, and
//! utime+stime of `/proc/PID/stat`, clock ticks) and its VmRSS are read at start and at every
//! `--report` count, and one table row is printed per count: SAs per second, responder CPU per
//! SA (over the whole run and over the last interval, to show flatness) and RSS per SA.
//!
//! Randomness is the operating system's ([`crypto::OsRandom`]). This is a benchmark tool: it
//! trusts its responder, and gives up a handshake that fails or times out (counted).
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crypto::{DhGroup, EspCipher, HashAlgorithm, Integrity, Phase1Cipher, SecretBytes};
use ike::{
    Acquire, AuthMethod, Config, EncapsulationMode, Engine, Event, ExchangeMode, IkeProposal, IpsecProposal,
    IpsecProtocols, Limits, PeerConfig, PolicyConfig, PolicyId, Subnet, TrafficSelector, Transmit,
};
use nix::sys::socket::{self, sockopt, ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn};

mod measure;

use measure::{Responder, Sample};

/// The run, as the command line sets it.
struct Options {
    responder: Ipv4Addr,
    base: Ipv4Addr,
    far: Subnet,
    group: DhGroup,
    psk: String,
    sas: usize,
    in_flight: usize,
    pid: Option<u32>,
    reports: Vec<usize>,
    timeout: Duration,
}

const USAGE: &str = "usage: hsbench --responder IP --base IP [--far NET/LEN] [--group modp2048|ecp256] \
[--psk KEY] [--sas N] [--in-flight N] [--pid PID] [--report N,N,...] [--timeout SECONDS]";

fn parse_options() -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut options = Options {
        responder: Ipv4Addr::new(192, 0, 2, 1),
        base: Ipv4Addr::new(198, 18, 0, 1),
        far: Subnet::new(Ipv4Addr::new(172, 16, 0, 0), 24),
        group: DhGroup::Modp2048,
        psk: "hsbench-key".into(),
        sas: 1000,
        in_flight: 16,
        pid: None,
        reports: Vec::new(),
        timeout: Duration::from_secs(30),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag} {value}: {what}");
        match flag.as_str() {
            "--responder" => options.responder = value.parse().map_err(|_| bad("not an IPv4 address"))?,
            "--base" => options.base = value.parse().map_err(|_| bad("not an IPv4 address"))?,
            "--far" => {
                let (net, len) = value.split_once('/').ok_or_else(|| bad("not NET/LEN"))?;
                let net: Ipv4Addr = net.parse().map_err(|_| bad("not an IPv4 network"))?;
                let len: u8 = len.parse().map_err(|_| bad("not a prefix length"))?;
                options.far = Subnet::new(net, len);
            }
            "--group" => {
                options.group = match value.as_str() {
                    "modp2048" => DhGroup::Modp2048,
                    "ecp256" => DhGroup::Ecp256,
                    _ => return Err(bad("modp2048 or ecp256")),
                }
            }
            "--psk" => options.psk = value.clone(),
            "--sas" => options.sas = value.parse().map_err(|_| bad("not a count"))?,
            "--in-flight" => options.in_flight = value.parse().map_err(|_| bad("not a count"))?,
            "--pid" => options.pid = Some(value.parse().map_err(|_| bad("not a process id"))?),
            "--report" => {
                options.reports = value
                    .split(',')
                    .map(|n| n.parse().map_err(|_| bad("not a list of counts")))
                    .collect::<Result<_, _>>()?
            }
            "--timeout" => {
                options.timeout = Duration::from_secs(value.parse().map_err(|_| bad("not seconds"))?)
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    options.in_flight = options.in_flight.max(1);
    options.reports.retain(|&n| n > 0 && n < options.sas);
    options.reports.push(options.sas);
    options.reports.sort_unstable();
    options.reports.dedup();
    Ok(options)
}

// ---------------------------------------------------------------------------------------------
// The initiators' configuration

fn initiator_address(options: &Options, i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(options.base) + i as u32)
}

/// Initiator `i` protects 10.0.0.0 + i + 1 (one address: 16 million initiators fit).
fn initiator_inside(i: usize) -> Subnet {
    Subnet::new(Ipv4Addr::from(0x0A00_0001 + i as u32), 32)
}

fn initiator_config(options: &Options, i: usize) -> Config {
    let peer = PeerConfig {
        name: "hub".into(),
        local_address: IpAddr::V4(initiator_address(options, i)),
        remote_address: Some(IpAddr::V4(options.responder)),
        exchange_mode: ExchangeMode::Main,
        proposals: vec![IkeProposal {
            encryption: Phase1Cipher::Aes128,
            hash: HashAlgorithm::Sha256,
            auth_method: AuthMethod::PreSharedKey,
            group: options.group,
            lifetime: Duration::from_secs(86_400),
        }],
        pre_shared_key: SecretBytes::from_slice(options.psk.as_bytes()),
        site_keys: Vec::new(),
        local_id: None,
        remote_id: None,
        // As deployed (NAT-T on by default, as strongSwan's): VIDs and NAT-D cost their part.
        nat_traversal: true,
        force_encapsulation: false,
        dpd: None,
        accept_aggressive_mode: false,
        certificate: None,
    };
    let policy = PolicyConfig {
        id: PolicyId { name: "branch".into(), sequence: 1 },
        peer: 0,
        selectors: vec![TrafficSelector::between(initiator_inside(i), options.far)],
        proposals: vec![IpsecProposal {
            protocols: IpsecProtocols::Esp {
                encryption: EspCipher::AesCbc128,
                integrity: Some(Integrity::HmacSha256_128),
            },
            mode: EncapsulationMode::Tunnel,
        }],
        pfs: None,
        lifetime: Duration::from_secs(3600),
        lifetime_kilobytes: None,
        template: None,
    };
    Config {
        peers: vec![peer],
        policies: vec![policy],
        limits: Limits::default(),
        own_addresses: Vec::new(),
        sha2_256_truncation_96: false,
    }
}

// ---------------------------------------------------------------------------------------------
// The socket

/// One UDP socket on port 500 for every initiator address.
struct Wire {
    socket: std::net::UdpSocket,
}

impl Wire {
    fn bind() -> std::io::Result<Self> {
        let socket = std::net::UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 500)))?;
        socket::setsockopt(&socket, sockopt::Ipv4PacketInfo, &true).map_err(std::io::Error::from)?;
        // Bursts of replies from a fast responder must not be dropped.
        socket::setsockopt(&socket, sockopt::RcvBuf, &(8 << 20)).map_err(std::io::Error::from)?;
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        Ok(Self { socket })
    }

    /// Sends `t` from its own local address (which must be local to the namespace).
    fn send(&self, t: &Transmit) -> std::io::Result<()> {
        let (IpAddr::V4(from), SocketAddr::V4(to)) = (t.local.ip(), t.remote) else {
            return Err(std::io::Error::other("IPv4 only"));
        };
        if t.non_esp_marker {
            return Err(std::io::Error::other("the responder moved to UDP 4500: a NAT between us?"));
        }
        let info = libc::in_pktinfo {
            ipi_ifindex: 0,
            ipi_spec_dst: libc::in_addr { s_addr: u32::from(from).to_be() },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        let iov = [std::io::IoSlice::new(&t.payload)];
        let to = SockaddrIn::from(to);
        let fd = self.socket.as_raw_fd();
        socket::sendmsg(fd, &iov, &[ControlMessage::Ipv4PacketInfo(&info)], MsgFlags::empty(), Some(&to))
            .map(drop)
            .map_err(std::io::Error::from)
    }

    /// One datagram: (to whom of ours, from whom, length); None on timeout.
    fn receive(&self, buf: &mut [u8]) -> std::io::Result<Option<(SocketAddr, SocketAddr, usize)>> {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        let mut space = nix::cmsg_space!(libc::in_pktinfo);
        let fd = self.socket.as_raw_fd();
        let message =
            match socket::recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut space[..]), MsgFlags::empty()) {
                Ok(m) => m,
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
        let Some(from) = message.address else { return Ok(None) };
        let mut to = None;
        for cmsg in message.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::Ipv4PacketInfo(info) = cmsg {
                to = Some(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)));
            }
        }
        let Some(to) = to else { return Ok(None) };
        let from = SocketAddr::V4(SocketAddrV4::new(from.ip(), from.port()));
        Ok(Some((SocketAddr::new(IpAddr::V4(to), 500), from, message.bytes)))
    }
}

// ---------------------------------------------------------------------------------------------
// The run

/// How the initiators fared.
#[derive(Default)]
struct Counts {
    started: usize,
    done: usize,
    failed: usize,
}

fn drain(engine: &mut Engine, wire: &Wire) -> Result<Option<bool>, String> {
    while let Some(t) = engine.poll_transmit() {
        wire.send(&t).map_err(|e| format!("send from {} to {}: {e}", t.local, t.remote))?;
    }
    let mut outcome = None;
    while let Some(event) = engine.poll_event() {
        match event {
            Event::IpsecSaInstalled(_) => outcome = Some(true),
            Event::Failed(f) => {
                eprintln!("initiator {}: {f}", f.remote);
                outcome = Some(false);
            }
            _ => {}
        }
    }
    Ok(outcome)
}

fn run(options: &Options) -> Result<(), String> {
    let wire = Wire::bind().map_err(|e| format!("UDP 0.0.0.0:500: {e}"))?;
    let responder = options.pid.map(Responder::new).transpose()?;
    let base = u32::from(options.base);
    let mut active: HashMap<u32, Engine> = HashMap::new();
    let mut counts = Counts::default();
    let mut buf = vec![0u8; 65_536];
    let start = Instant::now();
    let mut last_timers = start;
    let mut last_progress = start;
    let mut reports = options.reports.iter().copied().peekable();
    let first = responder.as_ref().map(Responder::sample).transpose()?;
    let mut previous = first.clone().map(|s| (0usize, s));
    let floor_iterations = if matches!(options.group, DhGroup::Modp2048) { 200 } else { 2000 };
    let floor_before = measure::crypto_floor(options.group, floor_iterations)?;
    let own_start = measure::own_cpu();
    print_header(options);

    while counts.done + counts.failed < options.sas {
        while active.len() < options.in_flight && counts.started < options.sas {
            let i = counts.started;
            counts.started += 1;
            let mut engine = Engine::new(initiator_config(options, i), Box::new(crypto::OsRandom));
            let selector = TrafficSelector::between(initiator_inside(i), options.far);
            engine.handle_acquire(Instant::now(), Acquire { policy: 0, selector });
            drain(&mut engine, &wire)?;
            active.insert(i as u32, engine);
        }
        if let Some((to, from, len)) = wire.receive(&mut buf).map_err(|e| format!("receive: {e}"))? {
            let IpAddr::V4(to_v4) = to.ip() else { continue };
            let index = u32::from(to_v4).wrapping_sub(base);
            if let Some(engine) = active.get_mut(&index) {
                engine.handle_datagram(Instant::now(), to, from, &buf[..len]);
                if let Some(ok) = drain(engine, &wire)? {
                    active.remove(&index);
                    if ok {
                        counts.done += 1;
                    } else {
                        counts.failed += 1;
                    }
                    last_progress = Instant::now();
                }
            }
        }
        let now = Instant::now();
        if now - last_timers > Duration::from_millis(50) {
            last_timers = now;
            let mut ended = Vec::new();
            for (index, engine) in &mut active {
                if engine.poll_timeout().is_some_and(|t| t <= now) {
                    engine.handle_timeout(now);
                    if drain(engine, &wire)?.is_some() {
                        ended.push(*index);
                    }
                }
            }
            for index in ended {
                active.remove(&index);
                counts.failed += 1;
            }
        }
        if now - last_progress > options.timeout {
            return Err(format!("no handshake ended in {:?}; {} done", options.timeout, counts.done));
        }
        while reports.peek().is_some_and(|&n| counts.done + counts.failed >= n) {
            reports.next();
            let sample = responder.as_ref().map(Responder::sample).transpose()?;
            print_row(&counts, start.elapsed(), first.as_ref(), previous.as_ref(), sample.as_ref());
            previous = sample.map(|s| (counts.done, s));
        }
    }
    let own = measure::own_cpu() - own_start;
    println!(
        "initiators: {} done, {} failed, {:.1} ms of their own CPU per SA, {:.1} s wall",
        counts.done,
        counts.failed,
        own.as_secs_f64() * 1e3 / counts.done.max(1) as f64,
        start.elapsed().as_secs_f64()
    );
    let floor = (floor_before + measure::crypto_floor(options.group, floor_iterations)?) / 2;
    println!(
        "crypto floor per side (1 DH keygen + 1 shared secret + 20 HMAC-SHA256), before and after: {:.1} µs",
        floor.as_secs_f64() * 1e6
    );
    if let (Some(responder), Some(first)) = (responder, first) {
        responder.print_threads(&first, counts.done, floor)?;
    }
    if counts.failed > 0 {
        return Err(format!("{} handshakes failed", counts.failed));
    }
    Ok(())
}

fn print_header(options: &Options) {
    println!(
        "hsbench: {} initiators from {} to {}, group {}, {} in flight",
        options.sas, options.base, options.responder, options.group, options.in_flight
    );
    println!(
        "|   SAs   | setups/s (interval) | responder CPU/SA, run | CPU/SA, interval | ticks/SA, run | RSS MiB | RSS/SA |"
    );
    println!(
        "|--------:|--------------------:|----------------------:|-----------------:|--------------:|--------:|-------:|"
    );
}

fn print_row(
    counts: &Counts,
    elapsed: Duration,
    first: Option<&Sample>,
    previous: Option<&(usize, Sample)>,
    now: Option<&Sample>,
) {
    let (Some(first), Some((done_before, previous)), Some(now)) = (first, previous, now) else {
        println!("| {:>7} | {:>19.0} |", counts.done, counts.done as f64 / elapsed.as_secs_f64());
        return;
    };
    let done = counts.done.max(1) as f64;
    let interval = (counts.done - done_before).max(1) as f64;
    let wall = (now.wall - previous.wall).as_secs_f64();
    let ms = |ns: u64, n: f64| ns as f64 / 1e6 / n;
    println!(
        "| {:>7} | {:>19.0} | {:>18.3} ms | {:>13.3} ms | {:>10.3} ms | {:>7.1} | {:>4.0} B |",
        counts.done,
        interval / wall,
        ms(now.cpu_ns - first.cpu_ns, done),
        ms(now.cpu_ns - previous.cpu_ns, interval),
        (now.ticks - first.ticks) as f64 * 1e3 / measure::ticks_per_second() / done,
        now.rss_kib as f64 / 1024.0,
        (now.rss_kib as f64 - first.rss_kib as f64) * 1024.0 / done,
    );
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("hsbench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hsbench: {e}");
            ExitCode::FAILURE
        }
    }
}
