//! `keysteward demo`: the reference scenario, live, on this machine (root).
//!
//! ```text
//!  PC_A 10.1.1.2 ── 10.1.1.1 FW_A 192.0.2.1 ══ 192.0.2.2 FW_B 10.2.2.1 ── 10.2.2.2 PC_B
//! ```
//!
//! Four network namespaces joined by veth pairs; FW_A and FW_B each run `keysteward run`
//! with the unchanged `examples/fw_a.cfg` / `examples/fw_b.cfg` (compiled into the binary, so
//! the demo works from any directory; `--aggressive` and `--pfs` edit them in memory and say
//! so). PC_A pings PC_B: the first packet raises the acquire, IKE negotiates main mode (or
//! aggressive mode) and quick mode, and the pings cross the public link in ESP. The demo
//! prints the ping, the IKE message flow as the article draws it (MM1…MM6, QM1…QM3, who sent
//! each message to whom and its payloads), then both gateways' `display ike sa`,
//! `display ipsec sa brief` and `display firewall session table`, and removes everything it
//! made (daemons, namespaces, files) on every path out.
//!
//! The message flow is not a canned list: both daemons run with debug logging, under which
//! the IKE engine traces every message it sends or accepts (`ike::MessageTrace`, logged with
//! [`crate::daemon::MESSAGE_TRACE_PREFIX`]); the demo merges the two logs in time order and
//! checks each message sent by one gateway against the other's record of accepting it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::control::{call, Request, Response};

const FW_A_CONFIG: &str = include_str!("../../../examples/fw_a.cfg");
const FW_B_CONFIG: &str = include_str!("../../../examples/fw_b.cfg");

/// The variant of the reference scenario to show (`keysteward demo [--aggressive] [--pfs]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemoOptions {
    /// `exchange-mode aggressive` on both peers: AM1…AM3 instead of MM1…MM6.
    pub aggressive: bool,
    /// `pfs dh-group14` on both policies: a KE in QM1 and QM2.
    pub pfs: bool,
}

/// Why the demo stopped; each names the program, file or gateway involved.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A variant's edit found nothing to change in the embedded example.
    #[error("the embedded example configuration has no `{0}` to change")]
    MissingText(String),
    /// A variant needs a line the embedded example does not have.
    #[error("the embedded example configuration has no `{0}` line")]
    MissingLine(String),
    /// The demo was not run as root.
    #[error(
        "the demo creates network namespaces, veth links and TUN devices: run it as root \
         (sudo keysteward demo); it also needs iproute2 and ping"
    )]
    NotRoot,
    /// A program could not be started.
    #[error("cannot run {program}: {source} (is it installed?)")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A program failed, with what it printed on stderr.
    #[error("{command}: {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its diagnostics.
        stderr: String,
    },
    /// The demo's own executable could not be found, to start the daemons.
    #[error("cannot find the keysteward binary: {0}")]
    CurrentExe(#[source] std::io::Error),
    /// A file or directory of the demo could not be created or written.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// `create` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A gateway daemon could not be started.
    #[error("cannot start keysteward in {namespace}: {source}")]
    StartDaemon {
        /// The gateway's namespace.
        namespace: String,
        /// Why.
        source: std::io::Error,
    },
    /// A gateway daemon did not open its control socket in time, with its log.
    #[error("keysteward on {name} did not start:\n{log}")]
    DaemonSilent {
        /// `fw_a` or `fw_b`.
        name: String,
        /// Its log so far.
        log: String,
    },
    /// `ping` could not be started.
    #[error("cannot run ping: {0} (is iputils-ping installed?)")]
    Ping(#[source] std::io::Error),
    /// The tunnel did not carry every ping.
    #[error("some pings got no answer (see above)")]
    PingsLost,
}

/// The two example configurations (FW_A, FW_B) with the variant's edits, and one sentence per
/// edit for the output. An edit that finds nothing to change is an error rather than a demo
/// that silently shows the unedited scenario.
pub fn configs(options: DemoOptions) -> Result<(String, String, Vec<String>), DemoError> {
    let (mut a, mut b) = (FW_A_CONFIG.to_string(), FW_B_CONFIG.to_string());
    let mut notes = Vec::new();
    let mut edit = |from: &str, to: &str| -> Result<(), DemoError> {
        for text in [&mut a, &mut b] {
            if !text.contains(from) {
                return Err(DemoError::MissingText(from.trim().to_owned()));
            }
            *text = text.replacen(from, to, 1);
        }
        Ok(())
    };
    if options.aggressive {
        edit("\n exchange-mode main\n", "\n exchange-mode aggressive\n")?;
        notes.push("ike peer: exchange-mode main -> exchange-mode aggressive (both gateways)".to_string());
    }
    if options.pfs {
        for (text, peer) in [(&mut a, " ike-peer b\n"), (&mut b, " ike-peer a\n")] {
            if !text.contains(peer) {
                return Err(DemoError::MissingLine(peer.trim().to_owned()));
            }
            *text = text.replacen(peer, &format!("{peer} pfs dh-group14\n"), 1);
        }
        notes.push("ipsec policy policy1 1: pfs dh-group14 added (both gateways)".to_string());
    }
    Ok((a, b, notes))
}

/// One message of the flow: who sent it to whom, its step and payloads, from the sender's
/// trace, checked against the receiver's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLine {
    /// `FW_A` or `FW_B`.
    pub from: &'static str,
    /// The other one.
    pub to: &'static str,
    /// `MM1`, `AM2`, `QM3`, …
    pub step: String,
    /// `HDR, SA(1 proposal), VID×5`, …
    pub payloads: String,
    /// What the receiver's log says about it: `None` when it accepted the same payloads,
    /// otherwise why the line is suspect (not accepted, or read differently).
    pub remark: Option<String>,
}

impl std::fmt::Display for FlowLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}  {:<4} {}", self.from, self.to, self.step, self.payloads)?;
        if let Some(remark) = &self.remark {
            write!(f, "   <- {remark}")?;
        }
        Ok(())
    }
}

/// A traced message parsed back from a daemon's log line.
struct Traced<'l> {
    /// The log line's timestamp (RFC 3339, UTC, the same clock and format for both daemons,
    /// so it sorts as text).
    at: &'l str,
    sent: bool,
    step: &'l str,
    /// `icookie=… mid=…`: what both sides' records of one message share.
    key: (&'l str, &'l str),
    payloads: &'l str,
}

fn parse_traces(log: &str) -> Vec<Traced<'_>> {
    let prefix = crate::daemon::MESSAGE_TRACE_PREFIX;
    log.lines()
        .filter_map(|line| {
            let (before, record) = line.split_once(prefix)?;
            let at = before.split_whitespace().next()?;
            let (fields, payloads) = record.split_once(" | ")?;
            let mut words = fields.split_whitespace();
            let sent = match words.next()? {
                "sent" => true,
                "received" => false,
                _ => return None,
            };
            let step = words.next()?;
            let field = |name: &str| fields.split_whitespace().find_map(|w| w.strip_prefix(name));
            Some(Traced { at, sent, step, key: (field("icookie=")?, field("mid=")?), payloads })
        })
        .collect()
}

/// The IKE message flow from the two daemons' logs: every message either sent, in time order,
/// each checked against the other side's record of accepting it.
pub fn message_flow(fw_a_log: &str, fw_b_log: &str) -> Vec<FlowLine> {
    let (on_a, on_b) = (parse_traces(fw_a_log), parse_traces(fw_b_log));
    let mut flow: Vec<(&str, FlowLine)> = Vec::new();
    for (from, to, sender, receiver) in [("FW_A", "FW_B", &on_a, &on_b), ("FW_B", "FW_A", &on_b, &on_a)] {
        for sent in sender.iter().filter(|t| t.sent) {
            let received = receiver.iter().find(|r| !r.sent && r.step == sent.step && r.key == sent.key);
            let remark = match received {
                None => Some(format!("{to} did not accept it")),
                Some(r) if r.payloads != sent.payloads => Some(format!("{to} read {}", r.payloads)),
                Some(_) => None,
            };
            let line = FlowLine {
                from,
                to,
                step: sent.step.to_string(),
                payloads: sent.payloads.to_string(),
                remark,
            };
            flow.push((sent.at, line));
        }
    }
    // Stable: within one log, lines are already in order.
    flow.sort_by(|x, y| x.0.cmp(y.0));
    flow.into_iter().map(|(_, line)| line).collect()
}

/// What the demo made, removed when it goes out of scope.
struct Topology {
    namespaces: Vec<String>,
    daemons: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Topology {
    fn drop(&mut self) {
        for daemon in &mut self.daemons {
            // SIGTERM first: the daemon sends Deletes and removes its routes and TUN.
            let _ = Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status();
        }
        for daemon in &mut self.daemons {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(3) {
                if matches!(daemon.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(program: &str, args: &[&str]) -> Result<String, DemoError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| DemoError::Spawn { program: program.to_owned(), source })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(DemoError::Failed {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn ip(args: &[&str]) -> Result<(), DemoError> {
    run("ip", args).map(|_| ())
}

/// Links `a` in `ns_a` (address `addr_a`) and `b` in `ns_b` (address `addr_b`).
fn link(ns_a: &str, a: &str, addr_a: &str, ns_b: &str, b: &str, addr_b: &str) -> Result<(), DemoError> {
    ip(&["link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b])?;
    for (ns, dev, addr) in [(ns_a, a, addr_a), (ns_b, b, addr_b)] {
        ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
        ip(&["-n", ns, "link", "set", dev, "up"])?;
    }
    Ok(())
}

fn show(control: &Path, request: &Request) -> String {
    match call(control, request) {
        Ok(Response::Ok { text, .. }) => text,
        Ok(Response::Error(e)) => format!("({e})\n"),
        Err(e) => format!("({e})\n"),
    }
}

/// Runs the demo, printing as it goes. Returns an error naming what failed.
pub fn demo(options: DemoOptions) -> Result<(), DemoError> {
    let uid = run("id", &["-u"])?;
    if uid.trim() != "0" {
        return Err(DemoError::NotRoot);
    }
    let (fw_a_config, fw_b_config, notes) = configs(options)?;
    let exe = std::env::current_exe().map_err(DemoError::CurrentExe)?;
    let exe = exe.to_string_lossy().into_owned();
    let tag = format!("ksd{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-demo-{tag}"));
    std::fs::create_dir_all(&dir).map_err(|source| DemoError::File {
        action: "create",
        path: dir.clone(),
        source,
    })?;
    let mut topology = Topology { namespaces: Vec::new(), daemons: Vec::new(), dir: dir.clone() };

    for note in &notes {
        println!("==> variant: {note} — edited in memory, examples/*.cfg unchanged");
    }
    let [pc_a, fw_a, fw_b, _] = build_namespaces(&mut topology, &tag)?;
    let control_a = dir.join("fw_a.sock");
    let control_b = dir.join("fw_b.sock");
    // The article's files name the public interface GigabitEthernet0/0/2; here it is the
    // veth end of each firewall, which `--interface-map` says.
    let (public_a, public_b) =
        (format!("GigabitEthernet0/0/2={tag}ab"), format!("GigabitEthernet0/0/2={tag}ba"));
    let edited = !notes.is_empty();
    for (namespace, name, text, control, public) in [
        (&fw_b, "fw_b", fw_b_config.as_str(), &control_b, &public_b),
        (&fw_a, "fw_a", fw_a_config.as_str(), &control_a, &public_a),
    ] {
        let gateway = Gateway { namespace, name, config: text, control, public, edited };
        start_daemon(&mut topology, &exe, &gateway)?;
    }

    let phase1 = if options.aggressive { "aggressive mode" } else { "main mode" };
    println!("==> PC_A pings PC_B: the first packet triggers IKE ({phase1} + quick mode)");
    let ping = Command::new("ip")
        .args(["netns", "exec", &pc_a, "ping", "-c", "5", "-i", "0.2", "-W", "2", "10.2.2.2"])
        .status()
        .map_err(DemoError::Ping)?;
    print_results(&dir, &control_a, &control_b);
    println!("==> removing the namespaces");
    drop(topology);
    if ping.success() {
        Ok(())
    } else {
        Err(DemoError::PingsLost)
    }
}

/// Builds the reference topology (PC_A, FW_A, FW_B, PC_B in namespaces named after `tag`,
/// linked by veth pairs, the firewalls forwarding) and returns the namespaces' names.
fn build_namespaces(topology: &mut Topology, tag: &str) -> Result<[String; 4], DemoError> {
    let [pc_a, fw_a, fw_b, pc_b] = ["pa", "fa", "fb", "pb"].map(|n| format!("{tag}{n}"));
    println!("==> building the reference topology in namespaces {tag}{{pa,fa,fb,pb}}");
    for ns in [&pc_a, &fw_a, &fw_b, &pc_b] {
        ip(&["netns", "add", ns])?;
        topology.namespaces.push(ns.clone());
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
    }
    link(&pc_a, &format!("{tag}pa"), "10.1.1.2/24", &fw_a, &format!("{tag}ai"), "10.1.1.1/24")?;
    link(&fw_a, &format!("{tag}ab"), "192.0.2.1/24", &fw_b, &format!("{tag}ba"), "192.0.2.2/24")?;
    link(&fw_b, &format!("{tag}bi"), "10.2.2.1/24", &pc_b, &format!("{tag}pb"), "10.2.2.2/24")?;
    ip(&["-n", &pc_a, "route", "add", "default", "via", "10.1.1.1"])?;
    ip(&["-n", &pc_b, "route", "add", "default", "via", "10.2.2.1"])?;
    for ns in [&fw_a, &fw_b] {
        run("ip", &["netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])?;
    }
    Ok([pc_a, fw_a, fw_b, pc_b])
}

/// One gateway of the demo: where its daemon runs and with what.
struct Gateway<'a> {
    namespace: &'a str,
    /// `fw_a` or `fw_b`: its files' names.
    name: &'a str,
    config: &'a str,
    control: &'a Path,
    /// The `--interface-map` argument of its public interface.
    public: &'a str,
    /// Whether a variant edited its configuration.
    edited: bool,
}

/// Writes the gateway's configuration, starts its daemon (debug logging, which turns on the
/// engine's message trace read back for the flow) and waits for its control socket.
fn start_daemon(topology: &mut Topology, exe: &str, gateway: &Gateway<'_>) -> Result<(), DemoError> {
    let Gateway { namespace, name, config: text, control, public, edited } = *gateway;
    let dir = topology.dir.clone();
    let config = dir.join(format!("{name}.cfg"));
    // Mode 0600 from the start: the file holds the pre-shared key, and the daemon refuses a
    // file that group or others can read.
    crate::service::config_file::write_private(&config, text).map_err(|source| DemoError::File {
        action: "write",
        path: config.clone(),
        source,
    })?;
    let log_path = dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).map_err(|source| DemoError::File {
        action: "create",
        path: log_path.clone(),
        source,
    })?;
    let edited = if edited { " (edited as above)" } else { "" };
    println!("==> starting keysteward on {} with examples/{name}.cfg{edited}", name.to_uppercase());
    let daemon = Command::new("ip")
        .args(["netns", "exec", namespace, exe, "run", "--config"])
        .arg(&config)
        .arg("--control")
        .arg(control)
        .args(["--interface-map", public])
        .args(["--log-level", "debug"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|source| DemoError::StartDaemon { namespace: namespace.to_owned(), source })?;
    topology.daemons.push(daemon);
    let start = Instant::now();
    while !control.exists() {
        if start.elapsed() > Duration::from_secs(10) {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(DemoError::DaemonSilent { name: name.to_owned(), log });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Prints the IKE message flow read back from both logs, and each gateway's SAs and sessions.
fn print_results(dir: &Path, control_a: &Path, control_b: &Path) {
    let read_log = |name: &str| std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    let flow = message_flow(&read_log("fw_a"), &read_log("fw_b"));
    println!(
        "\n==> the IKE messages, from both gateways' logs (HDR* = encrypted, listed by what was inside)"
    );
    if flow.is_empty() {
        println!("(no IKE message was traced)");
    }
    for line in &flow {
        println!("{line}");
    }
    for (name, control) in [("FW_A", control_a), ("FW_B", control_b)] {
        for (command, request) in [
            ("display ike sa", Request::DisplayIkeSa),
            ("display ipsec sa brief", Request::DisplayIpsecSaBrief),
            ("display firewall session table", Request::DisplayFirewallSessionTable { verbose: false }),
        ] {
            println!("\n<{name}> {command}\n{}", show(control, &request));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine_configs(options: DemoOptions) -> (ike::Config, ike::Config) {
        let (a, b, _) = configs(options).expect("the variant applies");
        let convert = |name: &str, text: &str| {
            let checked = vrp::check(name, text, None);
            let config = checked.config.unwrap_or_else(|| panic!("{name}: {:?}", checked.diagnostics));
            crate::engine_config::engine_config(&config).expect("supported")
        };
        (convert("fw_a.cfg", &a), convert("fw_b.cfg", &b))
    }

    #[test]
    fn configs_are_the_examples_unless_a_variant_is_asked_for() {
        let (a, b, notes) = configs(DemoOptions::default()).unwrap();
        assert_eq!((a.as_str(), b.as_str()), (FW_A_CONFIG, FW_B_CONFIG));
        assert!(notes.is_empty());
    }

    #[test]
    fn configs_aggressive_sets_aggressive_mode_on_both_peers() {
        let (a, b) = engine_configs(DemoOptions { aggressive: true, pfs: false });
        for c in [&a, &b] {
            assert_eq!(c.peers[0].exchange_mode, ike::ExchangeMode::Aggressive);
            assert!(c.peers[0].accept_aggressive_mode, "each side answers aggressive mode from the other");
            assert_eq!(c.policies[0].pfs, None);
        }
    }

    #[test]
    fn configs_pfs_sets_group14_on_both_policies() {
        let (a, b) = engine_configs(DemoOptions { aggressive: true, pfs: true });
        for c in [&a, &b] {
            assert_eq!(c.policies[0].pfs, Some(crypto::DhGroup::Modp2048));
            assert_eq!(c.peers[0].exchange_mode, ike::ExchangeMode::Aggressive);
        }
        let (_, _, notes) = configs(DemoOptions { aggressive: true, pfs: true }).unwrap();
        assert_eq!(notes.len(), 2);
    }

    fn line(at: &str, direction: &str, step: &str, mid: &str, payloads: &str) -> String {
        format!(
            "{at} DEBUG {}{direction} {step} conn=1 peer=x local=192.0.2.1:500 remote=192.0.2.2:500 \
             icookie=0011223344556677 mid={mid} | {payloads}\n",
            crate::daemon::MESSAGE_TRACE_PREFIX
        )
    }

    #[test]
    fn message_flow_merges_both_logs_in_time_order_and_checks_the_receiver() {
        let a = [
            "2026-01-01T00:00:00.000001Z  INFO keysteward running\n".to_string(),
            line("2026-01-01T00:00:00.000010Z", "sent", "MM1", "00000000", "HDR, SA(1 proposal), VID×5"),
            line(
                "2026-01-01T00:00:00.000030Z",
                "received",
                "MM2",
                "00000000",
                "HDR, SA(1 proposal), VID, VID",
            ),
            line("2026-01-01T00:00:00.000040Z", "sent", "QM1", "0000abcd", "HDR*, HASH(1), SA(1 proposal)"),
        ]
        .concat();
        let b = [
            line("2026-01-01T00:00:00.000020Z", "received", "MM1", "00000000", "HDR, SA(1 proposal), VID×5"),
            line("2026-01-01T00:00:00.000021Z", "sent", "MM2", "00000000", "HDR, SA(1 proposal), VID, VID"),
            // Read differently from what A sent (cannot happen unless a log lies): said so.
            line("2026-01-01T00:00:00.000050Z", "received", "QM1", "0000abcd", "HDR*, HASH(1)"),
            // Sent, never accepted by A.
            line("2026-01-01T00:00:00.000060Z", "sent", "QM2", "0000abcd", "HDR*, HASH(2)"),
        ]
        .concat();
        let flow: Vec<String> = message_flow(&a, &b).iter().map(ToString::to_string).collect();
        assert_eq!(
            flow,
            [
                "FW_A -> FW_B  MM1  HDR, SA(1 proposal), VID×5",
                "FW_B -> FW_A  MM2  HDR, SA(1 proposal), VID, VID",
                "FW_A -> FW_B  QM1  HDR*, HASH(1), SA(1 proposal)   <- FW_B read HDR*, HASH(1)",
                "FW_B -> FW_A  QM2  HDR*, HASH(2)   <- FW_A did not accept it",
            ]
        );
        assert!(message_flow("", "garbage | with a bar\n").is_empty());
    }
}
