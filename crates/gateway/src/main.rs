//! `keysteward`: the gateway daemon and its command-line interface.
//!
//! `keysteward check FILE` loads a VRP configuration (the language of `crates/vrp`, reference
//! `vrp-cli.md`) and prints every error and warning, one per line, in the
//! `file:line:column: error: message` form editors understand. It exits 1 when the file has an
//! error, so that scripts can gate a deployment on it, and 0 otherwise.
//!
//! `check` also compares the file with this host: an interface the host does not have (after
//! `--interface-map`) and an `ip address` it does not own are warnings; `--offline` skips
//! that, for checking a file on another machine than the gateway. It also converts the file
//! for the engine, so that `check` refuses what `run` would refuse.
//!
//! `keysteward reload` makes a running daemon read its file again (as SIGHUP does) and prints
//! what was kept and what was deleted, or every reason the file was refused (exit 1).
//!
//! `keysteward run --config FILE` starts the daemon (IKE and the ESP data path over TUN, see `daemon.rs`);
//! `keysteward display …` asks a running daemon over its control socket.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The keysteward IKEv1/IPsec gateway.
#[derive(Debug, Parser)]
#[command(name = "keysteward", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Check a configuration file: print its errors and warnings, exit 1 on any error.
    Check {
        /// The VRP configuration file.
        file: PathBuf,
        /// Map a VRP interface name of the file to a Linux interface (repeatable).
        #[arg(long = "interface-map", value_name = "VRPNAME=LINUXNAME")]
        interface_map: Vec<String>,
        /// Do not compare interfaces and addresses with this host.
        #[arg(long)]
        offline: bool,
    },
    /// Make the running daemon read its configuration file again (as SIGHUP does): the file
    /// is checked whole first; SAs whose configuration did not change stay up.
    Reload {
        /// The daemon's control socket.
        #[arg(long, default_value = keysteward::control::DEFAULT_CONTROL_PATH)]
        control: PathBuf,
    },
    /// Bring up the reference scenario in network namespaces, ping through it, show the IKE
    /// message flow and both gateways' SAs, tear it down (root).
    Demo {
        /// `exchange-mode aggressive` on both peers (AM1…AM3 instead of MM1…MM6).
        #[arg(long)]
        aggressive: bool,
        /// `pfs dh-group14` on both policies (a KE in QM1 and QM2).
        #[arg(long)]
        pfs: bool,
    },
    /// Run the gateway daemon.
    Run {
        /// The VRP configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The control socket.
        #[arg(long, default_value = keysteward::control::DEFAULT_CONTROL_PATH)]
        control: PathBuf,
        /// The TUN device the daemon creates for the protected traffic.
        #[arg(long, default_value = "ks0")]
        tun: String,
        /// Log filter (error, warn, info, debug, trace, or a tracing filter).
        #[arg(long, default_value = "info")]
        log_level: String,
        /// Append the keys of every IKE and IPsec SA to FILE as Wireshark decryption records
        /// (`ikev1_decryption_table` and `esp_sa`, one `tshark -o` argument per line), for
        /// debugging only: anyone who reads FILE can decrypt the tunnels. Off by default. FILE
        /// is created with mode 0600; an existing FILE must be a regular file owned by the
        /// daemon's user with no group or other permissions, or the daemon refuses to start.
        #[arg(long, value_name = "FILE")]
        key_log: Option<PathBuf>,
        /// Map a VRP interface name of the configuration (`GigabitEthernet0/0/2`) to a Linux
        /// interface (`eth1`); repeatable. Unmapped names must be Linux interfaces.
        #[arg(long = "interface-map", value_name = "VRPNAME=LINUXNAME")]
        interface_map: Vec<String>,
    },
    /// Delete SAs of a running daemon; traffic renegotiates them.
    Reset {
        #[command(subcommand)]
        what: Reset,
        /// The daemon's control socket.
        #[arg(long, global = true, default_value = keysteward::control::DEFAULT_CONTROL_PATH)]
        control: PathBuf,
    },
    /// Show state of a running daemon.
    Display {
        #[command(subcommand)]
        what: Display,
        /// The daemon's control socket.
        #[arg(long, global = true, default_value = keysteward::control::DEFAULT_CONTROL_PATH)]
        control: PathBuf,
        /// Print JSON with the same facts instead of the device's text.
        #[arg(long, global = true)]
        json: bool,
    },
}

/// `display` subcommands.
#[derive(Debug, Subcommand)]
enum Display {
    /// IKE and IPsec SAs (`display ike sa`).
    Ike {
        #[command(subcommand)]
        what: DisplayIke,
    },
    /// IPsec SAs (`display ipsec sa brief`).
    Ipsec {
        #[command(subcommand)]
        what: DisplayIpsec,
    },
}

/// `display ipsec …`.
#[derive(Debug, Subcommand)]
enum DisplayIpsec {
    /// `display ipsec sa brief`.
    Sa {
        /// The article's one-line-per-SA table (the only form so far).
        #[arg(value_parser = ["brief"])]
        brief: String,
    },
    /// `display ipsec statistics`: packets sealed, opened, queued and dropped.
    Statistics,
}

/// `reset` subcommands.
#[derive(Debug, Subcommand)]
enum Reset {
    /// `reset ike sa [--conn-id N]`: delete IKE SAs (and the IPsec SAs they manage).
    Ike {
        #[command(subcommand)]
        what: ResetIke,
    },
    /// `reset ipsec sa [--remote ADDRESS] [--policy NAME --seq N]`: delete IPsec SAs.
    Ipsec {
        #[command(subcommand)]
        what: ResetIpsec,
    },
}

/// `reset ike …`.
#[derive(Debug, Subcommand)]
enum ResetIke {
    /// `reset ike sa [--conn-id N]`.
    Sa {
        /// Only the IKE SA with this conn-id (as `display ike sa` shows).
        #[arg(long = "conn-id")]
        conn_id: Option<u64>,
    },
}

/// `reset ipsec …`.
#[derive(Debug, Subcommand)]
enum ResetIpsec {
    /// `reset ipsec sa`.
    Sa {
        /// Only SAs with this peer.
        #[arg(long)]
        remote: Option<std::net::IpAddr>,
        /// Only SAs of this policy (with --seq).
        #[arg(long, requires = "seq")]
        policy: Option<String>,
        /// The policy entry's sequence number.
        #[arg(long, requires = "policy")]
        seq: Option<u32>,
    },
}

/// `display ike …`.
#[derive(Debug, Subcommand)]
enum DisplayIke {
    /// `display ike sa`.
    Sa,
    /// `display ike error-info`.
    ErrorInfo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file, interface_map, offline } => check(&file, &interface_map, offline),
        Command::Reload { control } => ask(&control, &keysteward::control::Request::Reload, false),
        Command::Demo { aggressive, pfs } => {
            match keysteward::demo::demo(keysteward::demo::DemoOptions { aggressive, pfs }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("keysteward demo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { config, control, tun, log_level, key_log, interface_map } => {
            let interface_map = match keysteward::load::InterfaceMap::parse(&interface_map) {
                Ok(map) => map,
                Err(e) => {
                    eprintln!("keysteward: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let filter = tracing_subscriber::EnvFilter::try_new(&log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            use std::io::IsTerminal;
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_target(false)
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .init();
            match keysteward::daemon::run(keysteward::daemon::RunOptions {
                config,
                control,
                tun,
                key_log,
                interface_map,
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("keysteward: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Display { what, control, json } => {
            use keysteward::control::Request;
            let request = match what {
                Display::Ike { what: DisplayIke::Sa } => Request::DisplayIkeSa,
                Display::Ike { what: DisplayIke::ErrorInfo } => Request::DisplayIkeErrorInfo,
                Display::Ipsec { what: DisplayIpsec::Sa { .. } } => Request::DisplayIpsecSaBrief,
                Display::Ipsec { what: DisplayIpsec::Statistics } => Request::DisplayIpsecStatistics,
            };
            ask(&control, &request, json)
        }
        Command::Reset { what, control } => {
            use keysteward::control::Request;
            let request = match what {
                Reset::Ike { what: ResetIke::Sa { conn_id } } => Request::ResetIkeSa { conn_id },
                Reset::Ipsec { what: ResetIpsec::Sa { remote, policy, seq } } => {
                    Request::ResetIpsecSa { remote, policy: policy.zip(seq) }
                }
            };
            ask(&control, &request, false)
        }
    }
}

/// Sends `request` to the daemon and prints its answer (the text, or the JSON facts).
fn ask(control: &std::path::Path, request: &keysteward::control::Request, json: bool) -> ExitCode {
    match keysteward::control::call(control, request) {
        Ok(keysteward::control::Response::Ok { text, json: facts }) => {
            if json {
                println!("{facts}");
            } else {
                print!("{text}");
            }
            ExitCode::SUCCESS
        }
        Ok(keysteward::control::Response::Error(e)) | Err(e) => {
            eprintln!("keysteward: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(file: &std::path::Path, interface_map: &[String], offline: bool) -> ExitCode {
    use keysteward::load::{self, Host, InterfaceMap, Purpose};
    let map = match InterfaceMap::parse(interface_map) {
        Ok(map) => map,
        Err(e) => {
            eprintln!("keysteward: {e}");
            return ExitCode::FAILURE;
        }
    };
    let host = if offline {
        None
    } else {
        match Host::current() {
            Ok(host) => Some(host),
            Err(e) => {
                eprintln!("keysteward: {e}; interfaces and addresses not checked (--offline to skip)");
                None
            }
        }
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{}: error: cannot read: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let loaded = load::check_text(&file.display().to_string(), &text, &map, host.as_ref(), Purpose::Check);
    for d in &loaded.diagnostics {
        println!("{d}");
    }
    if loaded.config.is_none() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_log(args: &[&str]) -> Option<PathBuf> {
        match Cli::try_parse_from(args).unwrap().command {
            Command::Run { key_log, .. } => key_log,
            other => panic!("not run: {other:?}"),
        }
    }

    /// The key log hands out every session key: it must take an explicit option.
    #[test]
    fn key_log_is_off_unless_asked_for() {
        assert_eq!(key_log(&["keysteward", "run", "--config", "fw_a.cfg"]), None);
        assert_eq!(
            key_log(&["keysteward", "run", "--config", "fw_a.cfg", "--key-log", "/root/keys.log"]),
            Some(PathBuf::from("/root/keys.log"))
        );
    }
}
