//! `keysteward demo`: the reference scenario, live, on this machine (root).
//!
//! ```text
//!  PC_A 10.1.1.2 ── 10.1.1.1 FW_A 192.0.2.1 ══ 192.0.2.2 FW_B 10.2.2.1 ── 10.2.2.2 PC_B
//! ```
//!
//! Four network namespaces joined by veth pairs; FW_A and FW_B each run `keysteward run`
//! with the unchanged `examples/fw_a.cfg` / `examples/fw_b.cfg` (compiled into the binary, so
//! the demo works from any directory). PC_A pings PC_B: the first packet raises the acquire,
//! IKE negotiates main mode and quick mode, and the pings cross the public link in ESP. The
//! demo prints the ping, then FW_A's `display ike sa` and `display ipsec sa brief`, and removes
//! everything it made (daemons, namespaces, files) on every path out.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::control::{call, Request, Response};

const FW_A_CONFIG: &str = include_str!("../../../examples/fw_a.cfg");
const FW_B_CONFIG: &str = include_str!("../../../examples/fw_b.cfg");

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

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e} (is it installed?)"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args).map(|_| ())
}

/// Links `a` in `ns_a` (address `addr_a`) and `b` in `ns_b` (address `addr_b`).
fn link(ns_a: &str, a: &str, addr_a: &str, ns_b: &str, b: &str, addr_b: &str) -> Result<(), String> {
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
        Ok(Response::Error(e)) | Err(e) => format!("({e})\n"),
    }
}

/// Runs the demo, printing as it goes. Returns an error naming what failed.
pub fn demo() -> Result<(), String> {
    let uid = run("id", &["-u"])?;
    if uid.trim() != "0" {
        return Err("the demo creates network namespaces: run it as root".into());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the keysteward binary: {e}"))?;
    let exe = exe.to_string_lossy().into_owned();
    let tag = format!("ksd{}", std::process::id());
    let [pc_a, fw_a, fw_b, pc_b] = ["pa", "fa", "fb", "pb"].map(|n| format!("{tag}{n}"));
    let dir = std::env::temp_dir().join(format!("keysteward-demo-{tag}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut topology = Topology { namespaces: Vec::new(), daemons: Vec::new(), dir: dir.clone() };

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

    let control_a = dir.join("fw_a.sock");
    let control_b = dir.join("fw_b.sock");
    // The article's files name the public interface GigabitEthernet0/0/2; here it is the
    // veth end of each firewall, which `--interface-map` says.
    let (public_a, public_b) =
        (format!("GigabitEthernet0/0/2={tag}ab"), format!("GigabitEthernet0/0/2={tag}ba"));
    for (ns, name, text, control, public) in [
        (&fw_b, "fw_b", FW_B_CONFIG, &control_b, &public_b),
        (&fw_a, "fw_a", FW_A_CONFIG, &control_a, &public_a),
    ] {
        let config = dir.join(format!("{name}.cfg"));
        std::fs::write(&config, text).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).map_err(|e| e.to_string())?;
        println!("==> starting keysteward on {} with examples/{name}.cfg", name.to_uppercase());
        let daemon = Command::new("ip")
            .args(["netns", "exec", ns, &exe, "run", "--config"])
            .arg(&config)
            .arg("--control")
            .arg(control)
            .args(["--interface-map", public])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start keysteward in {ns}: {e}"))?;
        topology.daemons.push(daemon);
        let start = Instant::now();
        while !control.exists() {
            if start.elapsed() > Duration::from_secs(10) {
                let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
                return Err(format!("keysteward on {name} did not start:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    println!("==> PC_A pings PC_B: the first packet triggers IKE (main mode + quick mode)");
    let ping = Command::new("ip")
        .args(["netns", "exec", &pc_a, "ping", "-c", "5", "-i", "0.2", "-W", "2", "10.2.2.2"])
        .status()
        .map_err(|e| format!("cannot run ping: {e} (is iputils-ping installed?)"))?;
    println!("\n<FW_A> display ike sa\n{}", show(&control_a, &Request::DisplayIkeSa));
    println!("<FW_A> display ipsec sa brief\n{}", show(&control_a, &Request::DisplayIpsecSaBrief));
    println!("<FW_B> display ike sa\n{}", show(&control_b, &Request::DisplayIkeSa));
    println!("==> removing the namespaces");
    drop(topology);
    if ping.success() {
        Ok(())
    } else {
        Err("some pings got no answer (see above)".into())
    }
}
