//! Policy and SA lookup on a hub (issue 13, finding 8): the time of one outbound decision
//! (`DataPlane::decide`: SPD lookup, then the SA that carries the flow) and of the SPD lookup
//! alone, with 10 to 100,000 flows: a few configured rules first (a deny, the site-to-site
//! entries), then template-made flows, one SPD rule and one SA pair each, as a hub holds them
//! after its branches came up. Each iteration looks up 1,024 packets to template flows, the
//! time is per batch, in two patterns: "hot" spreads them over 16 flows (what the algorithm
//! costs: the table's working set stays in cache whatever its size) and "spread" over all the
//! flows in a random order (what a hub pays when every packet goes to another branch: with
//! 100,000 flows most lookups miss the CPU caches).
//!
//! `cargo bench -p keysteward-esp --bench lookup -- --warm-up-time 1 --measurement-time 2`
//!
//! On a shared machine criterion's means move by tens of percent with the other jobs. With
//! `LOOKUP_TABLE=1` the bench instead builds every hub once and times the sizes in turn, round
//! after round, keeping the fastest round of each (what the lookup costs when nothing else
//! runs), and prints a table in nanoseconds per packet:
//! `LOOKUP_TABLE=1 cargo bench -p keysteward-esp --bench lookup`
// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

use criterion::{criterion_group, Criterion, Throughput};
use crypto::{EspCipher, SecureRandom};
use esp::{Action, DataPlane, DataPlaneConfig, Decision, Flow, PolicyIndex, Prefix, Rule, SaKeys, SaPair};
use esp::{SaParams, Selector, Spd, Spi};

const SIZES: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];
const BATCH: usize = 1_024;

struct CounterRandom(u64);

impl SecureRandom for CounterRandom {
    fn fill(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            *b = (self.0 >> 33) as u8;
        }
    }
}

/// The hub's own inside network, the local side of every flow.
fn inside() -> Prefix {
    Prefix::new(Ipv4Addr::new(172, 16, 0, 0), 16)
}

/// The branch network of template flow `i`: a /26 of 10/8.
fn branch(i: usize) -> Prefix {
    Prefix::new(Ipv4Addr::from(0x0a00_0000 + (i as u32) * 64), 26)
}

/// The configured rules: a deny for DNS to anywhere, then `n` site-to-site entries to
/// 192.168.x.0/24, each its own policy.
fn configured(n: usize) -> Vec<Rule> {
    let mut dns = Selector::between(inside(), Prefix::ANY);
    dns.protocol = Some(17);
    dns.remote_ports = Some(esp::PortRange::single(53));
    let mut rules = vec![Rule { selector: dns, action: Action::Bypass }];
    for i in 0..n.saturating_sub(1) {
        let remote = Prefix::new(Ipv4Addr::new(192, 168, i as u8, 0), 24);
        rules.push(Rule {
            selector: Selector::between(inside(), remote),
            action: Action::Protect(PolicyIndex(i)),
        });
    }
    rules
}

/// A hub with `total` flows: up to 10 configured, the rest made through the template
/// (policy 100), each with an SA pair.
fn hub(total: usize, distinct: Option<usize>) -> (DataPlane, Vec<Flow>) {
    let configured_count = if total <= 10 { total / 2 } else { 10 };
    let template = PolicyIndex(100);
    let mut plane =
        DataPlane::new(Spd::new(configured(configured_count), Action::Bypass), DataPlaneConfig::default());
    let mut rng = CounterRandom(7);
    let key = [0x11u8; 20];
    let params = SaParams::new(EspCipher::AesGcm128, None);
    let flows_count = total - configured_count;
    for i in 0..flows_count {
        let selector = Selector::between(inside(), branch(i));
        plane.push_rule(Rule { selector, action: Action::Protect(template) });
        let remote = SocketAddr::from((Ipv4Addr::from(0xc633_6400 + i as u32), 500));
        let keys = |spi| SaKeys { spi: Spi(spi), cipher_key: &key, integrity_key: &[] };
        let pair = SaPair {
            policy: template,
            selector,
            params,
            local: SocketAddr::from(([192, 0, 2, 1], 500)),
            remote,
            inbound: keys(0x1000 + i as u32),
            outbound: keys(0x1000 + i as u32),
            protocols: esp::Protocols::Esp,
        };
        plane.install(pair, &mut rng).expect("install");
    }
    // Packets to template flows in a pseudo-random order over all of them.
    let mut flows = Vec::with_capacity(BATCH);
    let mut state = 12_345u64;
    for _ in 0..BATCH {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let i = (state >> 33) as usize % distinct.unwrap_or(flows_count).min(flows_count).max(1);
        let i = match distinct {
            // Hot flows spread over the table, not the first ones installed.
            Some(_) => i * (flows_count / 16).max(1) % flows_count.max(1),
            None => i,
        };
        let destination = Ipv4Addr::from(u32::from(branch(i).address()) + 5);
        flows.push(Flow {
            protocol: 6,
            source: Ipv4Addr::new(172, 16, 3, 4),
            destination,
            source_port: Some(40_000),
            destination_port: Some(443),
        });
    }
    (plane, flows)
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub lookup, 1024 packets");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    for total in SIZES {
        for (pattern, distinct) in [("hot", Some(16)), ("spread", None)] {
            let (plane, flows) = hub(total, distinct);
            assert!(flows.iter().all(|f| matches!(plane.decide(f), Decision::Protect { .. })));
            group.bench_function(format!("{pattern}: policy and SA, {total} flows"), |b| {
                b.iter(|| {
                    flows
                        .iter()
                        .filter(|f| matches!(plane.decide(black_box(f)), Decision::Protect { .. }))
                        .count()
                })
            });
            let spd = plane.spd();
            group.bench_function(format!("{pattern}: SPD alone, {total} flows"), |b| {
                b.iter(|| flows.iter().filter_map(|f| spd.lookup(black_box(f)).0).count())
            });
            if total <= 1_000 && distinct.is_none() {
                group.bench_function(format!("{pattern}: SPD linear (before), {total} flows"), |b| {
                    b.iter(|| flows.iter().filter_map(|f| spd.lookup_linear(black_box(f)).0).count())
                });
            }
        }
    }
    group.finish();
}

/// The fastest of `rounds` timings of `f`, in nanoseconds per packet of a batch.
#[allow(clippy::disallowed_methods)] // a benchmark measures time; the data plane itself never reads a clock
fn per_packet(samples: &mut [f64], round: usize, f: impl Fn() -> usize) {
    const REPEAT: usize = 20;
    let start = std::time::Instant::now();
    let mut found = 0;
    for _ in 0..REPEAT {
        found += f();
    }
    black_box(found);
    let ns = start.elapsed().as_nanos() as f64 / (REPEAT * BATCH) as f64;
    samples[round] = ns;
}

fn table() {
    const ROUNDS: usize = 30;
    let hubs: Vec<(usize, DataPlane, Vec<Flow>, Vec<Flow>)> = SIZES
        .iter()
        .map(|&total| {
            let (plane, hot) = hub(total, Some(16));
            let (_, spread) = hub(total, None);
            (total, plane, hot, spread)
        })
        .collect();
    // [size][hot SA, hot SPD, spread SA, spread SPD, spread SPD linear][round]; the linear
    // walk (the SPD before the index) only up to 10,000 flows and 3 rounds: it is slow.
    let mut samples = vec![[[f64::INFINITY; ROUNDS]; 5]; SIZES.len()];
    for round in 0..ROUNDS {
        for (i, (_, plane, hot, spread)) in hubs.iter().enumerate() {
            for (k, flows) in [hot, spread].into_iter().enumerate() {
                let decide = || {
                    flows
                        .iter()
                        .filter(|f| matches!(plane.decide(black_box(f)), Decision::Protect { .. }))
                        .count()
                };
                per_packet(&mut samples[i][2 * k], round, decide);
                let spd = plane.spd();
                per_packet(&mut samples[i][2 * k + 1], round, || {
                    flows.iter().filter_map(|f| spd.lookup(black_box(f)).0).count()
                });
            }
            if round < 3 && hubs[i].0 <= 10_000 {
                let spd = plane.spd();
                let linear = || spread.iter().filter_map(|f| spd.lookup_linear(black_box(f)).0).count();
                per_packet(&mut samples[i][4], round, linear);
            }
        }
    }
    println!(
        "| flows | hot: policy and SA | hot: SPD alone | spread: policy and SA | spread: SPD alone \
         | spread: SPD linear (before) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for (i, (total, ..)) in hubs.iter().enumerate() {
        let best = |k: usize| samples[i][k].iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "| {total} | {:.0} ns | {:.0} ns | {:.0} ns | {:.0} ns | {} |",
            best(0),
            best(1),
            best(2),
            best(3),
            if best(4).is_finite() { format!("{:.0} ns", best(4)) } else { "—".to_owned() }
        );
    }
}

criterion_group!(benches, lookup);

fn main() {
    if std::env::var_os("LOOKUP_TABLE").is_some() {
        table();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
