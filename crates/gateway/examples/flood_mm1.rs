//! The flooder of `scripts/bench-flood` (issue 13): spoofed main-mode MM1 at a fixed rate.
//!
//! ```text
//! flood_mm1 --config fw_b.cfg --target 192.0.2.1:500 --rate 5000 --seconds 6 \
//!           (--random 198.18.0.0/15 | --peer 192.0.2.2)
//! ```
//!
//! The MM1 is the one the engine configured with `--config` sends first (so the target's
//! proposal matches), each copy with a fresh initiator cookie, sent through a raw socket
//! (`IP_HDRINCL`, root) from a random address of `--random` (port 500), or from the real
//! peer's own address `--peer` with random ports other than 500 and 4500. Paced by the clock:
//! after `t` seconds, `rate × t` datagrams have left. Prints one line: datagrams sent, seconds,
//! achieved rate. Build with `cargo build --release -p keysteward --example flood_mm1`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

#[path = "../tests/common/flood.rs"]
mod flood;

/// Where the spoofed datagrams come from.
enum Sources {
    /// Random addresses of a prefix, port 500.
    Random(Ipv4Addr, u8),
    /// The real peer's address, random ports other than 500 and 4500.
    Peer(Ipv4Addr),
}

struct Options {
    config: String,
    target: SocketAddrV4,
    rate: u64,
    seconds: f64,
    sources: Sources,
}

fn usage() -> ! {
    eprintln!(
        "usage: flood_mm1 --config FILE --target ADDR:PORT --rate N --seconds S \
         (--random NET/PREFIX | --peer ADDR)"
    );
    std::process::exit(2)
}

fn parse() -> Options {
    let mut args = std::env::args().skip(1);
    let (mut config, mut target, mut rate, mut seconds, mut sources) = (None, None, None, None, None);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--config" => config = std::fs::read_to_string(&value).ok(),
            "--target" => target = value.parse().ok(),
            "--rate" => rate = value.parse().ok(),
            "--seconds" => seconds = value.parse().ok(),
            "--random" => {
                let (net, prefix) = value.split_once('/').unwrap_or_else(|| usage());
                let net = net.parse().unwrap_or_else(|_| usage());
                let prefix = prefix.parse().ok().filter(|p| *p <= 32).unwrap_or_else(|| usage());
                sources = Some(Sources::Random(net, prefix));
            }
            "--peer" => sources = Some(Sources::Peer(value.parse().unwrap_or_else(|_| usage()))),
            _ => usage(),
        }
    }
    match (config, target, rate, seconds, sources) {
        (Some(config), Some(target), Some(rate), Some(seconds), Some(sources)) => {
            Options { config, target, rate, seconds, sources }
        }
        _ => usage(),
    }
}

fn main() {
    let options = parse();
    let mm1 = flood::mm1(&options.config);
    let socket = flood::raw_sender().unwrap_or_else(|e| {
        eprintln!("flood_mm1: raw socket: {e} (needs root)");
        std::process::exit(1)
    });
    let mut variety = flood::Variety::new(u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15);
    let duration = Duration::from_secs_f64(options.seconds);
    let start = Instant::now();
    let (mut sent, mut failed) = (0u64, 0u64);
    loop {
        let elapsed = start.elapsed();
        if elapsed >= duration {
            break;
        }
        let due = (options.rate as f64 * elapsed.as_secs_f64()) as u64;
        while sent + failed < due {
            let from = match options.sources {
                Sources::Random(net, prefix) => SocketAddrV4::new(variety.address_in(net, prefix), 500),
                Sources::Peer(address) => {
                    let port = 1024 + (variety.next() % (65_536 - 1024)) as u16;
                    let port = if port == 4500 { 4501 } else { port };
                    SocketAddrV4::new(address, port)
                }
            };
            let packet = flood::spoofed(&mm1, variety.next(), from, options.target);
            match flood::send(&socket, &packet, options.target) {
                Ok(_) => sent += 1,
                Err(_) => failed += 1,
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "sent {sent} datagrams ({failed} refused by the local kernel) in {seconds:.2} s: {:.0}/s",
        sent as f64 / seconds
    );
}
