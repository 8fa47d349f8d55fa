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
//! `keysteward run --config FILE` starts the daemon (IKE and the ESP data path over TUN, see `daemon/`);
//! `keysteward display …` asks a running daemon over its control socket; `keysteward shell`
//! is the interactive VRP console on it (crate `console`).
#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]

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
    /// An interactive VRP console on the running daemon: `<sysname>`, `system-view`, views,
    /// abbreviations, `?`, Tab, history; each command changes the running configuration at
    /// once, `save` writes it to the configuration file.
    Shell {
        /// The daemon's control socket.
        #[arg(long, default_value = keysteward::control::DEFAULT_CONTROL_PATH)]
        control: PathBuf,
        /// Run this line instead of reading the terminal (repeatable, in order); lines are also
        /// read from standard input when it is not a terminal. No prompts are printed then,
        /// and the first line that fails ends the shell with status 1.
        #[arg(short = 'c', long = "command", value_name = "LINE")]
        commands: Vec<String>,
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
        /// `RUST_LOG`, when set, takes its place.
        #[arg(long, default_value = "info")]
        log_level: String,
        /// How log lines on stderr look; under systemd they go to the journal, with fields.
        #[arg(long, value_enum, default_value_t)]
        log_format: telemetry::logging::LogFormat,
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
        /// Started as root: become user NAME at once, keeping only CAP_NET_ADMIN, CAP_NET_RAW
        /// and CAP_NET_BIND_SERVICE. NAME must be able to read the configuration file (and
        /// the key log). Without it the daemon stays the user it was started as.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Serve Prometheus metrics on ADDR:PORT (`GET /metrics`); off by default.
        #[arg(long, value_name = "ADDR:PORT")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Write the man page (keysteward.8) and the bash and zsh completions (keysteward.bash,
    /// _keysteward) into DIR, for the package (scripts/package).
    #[command(hide = true)]
    GenerateManual {
        /// Where to write them.
        dir: PathBuf,
    },
    /// Delete SAs of a running daemon; traffic renegotiates them.
    Reset {
        #[command(subcommand)]
        what: Reset,
        /// The daemon's control socket.
        #[arg(long, global = true, default_value = keysteward::control::DEFAULT_CONTROL_PATH)]
        control: PathBuf,
    },
    /// Raise a running daemon's log level for one part at run time (`debugging ike`).
    Debugging {
        #[command(subcommand)]
        what: Debugging,
        /// The daemon's control socket.
        #[arg(long, global = true, default_value = keysteward::control::DEFAULT_CONTROL_PATH)]
        control: PathBuf,
    },
    /// Lower it again (`undo debugging ike`).
    Undo {
        #[command(subcommand)]
        what: Undo,
        /// The daemon's control socket.
        #[arg(long, global = true, default_value = keysteward::control::DEFAULT_CONTROL_PATH)]
        control: PathBuf,
    },
    /// Print the configuration in force of a running daemon, in canonical VRP form, with
    /// every pre-shared key masked.
    ShowConfig {
        /// The daemon's control socket.
        #[arg(long, default_value = keysteward::control::DEFAULT_CONTROL_PATH)]
        control: PathBuf,
        /// Print JSON (`{"config": TEXT}`, keys masked the same way) instead of the text.
        #[arg(long)]
        json: bool,
    },
    /// Show state of a running daemon.
    Display {
        #[command(subcommand)]
        what: Display,
        /// The daemon's control socket.
        #[arg(long, global = true, default_value = keysteward::control::DEFAULT_CONTROL_PATH)]
        control: PathBuf,
        /// Print JSON with the same facts instead of the device's text: one JSON object a
        /// line, one line per page of the SA displays (JSON lines).
        #[arg(long, global = true)]
        json: bool,
        /// Print only how many lines the display has (`Total lines: N.`, VRP's `| count`).
        #[arg(long, global = true, conflicts_with = "json")]
        count: bool,
    },
}

/// `display` subcommands.
#[derive(Debug, Subcommand)]
enum Display {
    /// `display ike …`: IKE SAs, proposals, peers, errors.
    Ike {
        #[command(subcommand)]
        what: DisplayIke,
    },
    /// `display ipsec …`: IPsec SAs, proposals, policies, statistics.
    Ipsec {
        #[command(subcommand)]
        what: DisplayIpsec,
    },
    /// `display firewall session table [verbose]`: the IKE and ESP sessions of the gateway.
    Firewall {
        #[command(subcommand)]
        what: DisplayFirewall,
    },
    /// `display ip routing-table`: the static routes (`ip route-static`) and whether each is
    /// installed.
    Ip {
        #[command(subcommand)]
        what: DisplayIp,
    },
}

/// `display ip …`.
#[derive(Debug, Subcommand)]
enum DisplayIp {
    /// `display ip routing-table`.
    RoutingTable,
}

/// `display firewall …`.
#[derive(Debug, Subcommand)]
enum DisplayFirewall {
    /// `display firewall session table [verbose]`.
    Session {
        /// The word `table`, as on the device.
        #[arg(value_parser = ["table"])]
        table: String,
        /// `verbose`: each session's packet and byte counters too.
        #[arg(value_parser = ["verbose"])]
        verbose: Option<String>,
    },
}

/// `display ipsec …`.
#[derive(Debug, Subcommand)]
enum DisplayIpsec {
    /// `display ipsec sa [brief] [--remote IP]`: every SA in detail, or the article's
    /// one-line-per-SA table with `brief`.
    Sa {
        /// `brief`: the one-line-per-SA table.
        #[arg(value_parser = ["brief"])]
        brief: Option<String>,
        /// Only SAs with this peer (detailed form).
        #[arg(long, conflicts_with = "brief")]
        remote: Option<std::net::IpAddr>,
    },
    /// `display ipsec proposal [brief | name N]`.
    Proposal {
        #[command(subcommand)]
        form: Option<BriefOrName>,
    },
    /// `display ipsec policy [name N]`.
    Policy {
        #[command(subcommand)]
        form: Option<Name>,
    },
    /// `display ipsec statistics`: packets sealed, opened, queued and dropped.
    Statistics,
}

/// `brief` or `name N`, after `display ike peer` and `display ipsec proposal`.
#[derive(Debug, Subcommand)]
enum BriefOrName {
    /// One line each.
    Brief,
    /// One of them in detail.
    Name {
        /// Its name.
        name: String,
    },
}

/// `name N`, after `display ipsec policy`.
#[derive(Debug, Subcommand)]
enum Name {
    /// Only this one.
    Name {
        /// Its name.
        name: String,
    },
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
    /// `reset ike statistics`: `display ike statistics` counts from now on (the exported
    /// metrics do not go backwards).
    Statistics,
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
    /// `reset ipsec statistics`: `display ipsec statistics` counts from now on (the exported
    /// metrics do not go backwards).
    Statistics,
}

/// `debugging …` and `undo debugging …`.
#[derive(Debug, Subcommand)]
enum Debugging {
    /// `debugging ike`: log every IKE message (step and payloads) at debug level.
    Ike,
}

/// `undo …`.
#[derive(Debug, Subcommand)]
enum Undo {
    /// `undo debugging ike`: the IKE log back to the level the daemon started with.
    Debugging {
        #[command(subcommand)]
        what: Debugging,
    },
}

/// `display ike …`.
#[derive(Debug, Subcommand)]
enum DisplayIke {
    /// `display ike sa [verbose [--remote IP] [--conn-id N]]`.
    Sa {
        #[command(subcommand)]
        form: Option<IkeSaForm>,
    },
    /// `display ike proposal`.
    Proposal,
    /// `display ike peer [brief | name P]`.
    Peer {
        #[command(subcommand)]
        form: Option<BriefOrName>,
    },
    /// `display ike error-info`.
    ErrorInfo,
    /// `display ike statistics`: what the IKE engine refused or evicted, and the half-open
    /// IKE SAs against their memory budget.
    Statistics,
}

/// `display ike sa verbose`.
#[derive(Debug, Subcommand)]
enum IkeSaForm {
    /// Every field of each phase-1 SA.
    Verbose {
        /// Only SAs with this peer.
        #[arg(long)]
        remote: Option<std::net::IpAddr>,
        /// Only the SA with this conn-id.
        #[arg(long = "conn-id")]
        conn_id: Option<u64>,
    },
}

/// The control request of a `display` command.
fn display_request(what: Display) -> keysteward::control::Request {
    use keysteward::control::Request;
    match what {
        Display::Ike { what: DisplayIke::Sa { form: None } } => Request::DisplayIkeSa,
        Display::Ike { what: DisplayIke::Sa { form: Some(IkeSaForm::Verbose { remote, conn_id }) } } => {
            Request::DisplayIkeSaVerbose { remote, conn_id }
        }
        Display::Ike { what: DisplayIke::Proposal } => Request::DisplayIkeProposal,
        Display::Ike { what: DisplayIke::Peer { form } } => Request::DisplayIkePeer {
            name: match form {
                Some(BriefOrName::Name { name }) => Some(name),
                Some(BriefOrName::Brief) | None => None,
            },
        },
        Display::Ike { what: DisplayIke::ErrorInfo } => Request::DisplayIkeErrorInfo,
        Display::Ike { what: DisplayIke::Statistics } => Request::DisplayIkeStatistics,
        Display::Ipsec { what: DisplayIpsec::Sa { brief: Some(_), .. } } => Request::DisplayIpsecSaBrief,
        Display::Ipsec { what: DisplayIpsec::Sa { brief: None, remote } } => {
            Request::DisplayIpsecSa { remote }
        }
        Display::Ipsec { what: DisplayIpsec::Proposal { form } } => match form {
            None => Request::DisplayIpsecProposal { name: None, brief: false },
            Some(BriefOrName::Brief) => Request::DisplayIpsecProposal { name: None, brief: true },
            Some(BriefOrName::Name { name }) => {
                Request::DisplayIpsecProposal { name: Some(name), brief: false }
            }
        },
        Display::Ipsec { what: DisplayIpsec::Policy { form } } => {
            Request::DisplayIpsecPolicy { name: form.map(|Name::Name { name }| name) }
        }
        Display::Ipsec { what: DisplayIpsec::Statistics } => Request::DisplayIpsecStatistics,
        Display::Firewall { what: DisplayFirewall::Session { verbose, .. } } => {
            Request::DisplayFirewallSessionTable { verbose: verbose.is_some() }
        }
        Display::Ip { what: DisplayIp::RoutingTable } => Request::DisplayIpRoutingTable,
    }
}

/// The command line with its keywords in lower case, so that the words of a VRP command are
/// read in any case, as the device reads them (`display IPsec sa brief`, the article's
/// capitalisation). Only the words the command line defines are changed (subcommands, and
/// the values of arguments that take a fixed word like `brief`); names, addresses and
/// option values are left as typed.
fn vrp_words(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use clap::CommandFactory;
    let mut root = Cli::command();
    root.build();
    let mut command = &root;
    let mut option_value = false;
    let mut out = Vec::new();
    for (i, arg) in args.into_iter().enumerate() {
        let Some(text) = arg.to_str().filter(|_| i > 0 && !option_value) else {
            option_value = false;
            out.push(arg);
            continue;
        };
        if text.starts_with('-') {
            let long = text.trim_start_matches('-');
            option_value = !long.contains('=')
                && command.get_arguments().any(|a| {
                    (a.get_long() == Some(long) || a.get_short().is_some_and(|s| text == format!("-{s}")))
                        && a.get_action().takes_values()
                });
            out.push(arg);
            continue;
        }
        let lower = text.to_ascii_lowercase();
        if let Some(sub) = command.find_subcommand(&lower) {
            command = sub;
            out.push(sub.get_name().into());
        } else if command
            .get_positionals()
            .any(|a| a.get_possible_values().iter().any(|v| v.matches(&lower, false)))
        {
            out.push(lower.into());
        } else {
            out.push(arg);
        }
    }
    out
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(vrp_words(std::env::args_os()));
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
        Command::Run {
            config,
            control,
            tun,
            log_level,
            log_format,
            key_log,
            interface_map,
            user,
            metrics,
        } => {
            let interface_map = match keysteward::load::InterfaceMap::parse(&interface_map) {
                Ok(map) => map,
                Err(e) => {
                    eprintln!("keysteward: {e}");
                    return ExitCode::FAILURE;
                }
            };
            telemetry::logging::init(&log_level, log_format);
            match keysteward::daemon::run(keysteward::daemon::RunOptions {
                config,
                control,
                tun,
                key_log,
                interface_map,
                user,
                metrics,
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("keysteward: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::GenerateManual { dir } => match generate_manual(&dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("keysteward: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
        Command::Display { what, control, json, count } => show(&control, what, json, count),
        Command::Shell { control, commands } => console::run(console::Options { control, commands }),
        Command::ShowConfig { control, json } => {
            ask(&control, &keysteward::control::Request::ShowConfig, json)
        }
        Command::Reset { what, control } => {
            use keysteward::control::Request;
            let request = match what {
                Reset::Ike { what: ResetIke::Sa { conn_id } } => Request::ResetIkeSa { conn_id },
                Reset::Ike { what: ResetIke::Statistics } => Request::ResetIkeStatistics,
                Reset::Ipsec { what: ResetIpsec::Statistics } => Request::ResetIpsecStatistics,
                Reset::Ipsec { what: ResetIpsec::Sa { remote, policy, seq } } => {
                    Request::ResetIpsecSa { remote, policy: policy.zip(seq) }
                }
            };
            ask(&control, &request, false)
        }
        Command::Debugging { what: Debugging::Ike, control } => {
            ask(&control, &keysteward::control::Request::DebuggingIke { on: true }, false)
        }
        Command::Undo { what: Undo::Debugging { what: Debugging::Ike }, control } => {
            ask(&control, &keysteward::control::Request::DebuggingIke { on: false }, false)
        }
    }
}

/// The man pages and completions of the package (`keysteward generate-manual DIR`).
fn generate_manual(dir: &std::path::Path) -> std::io::Result<()> {
    use clap::CommandFactory;
    keysteward::service::manual::write(dir, &Cli::command())
}

/// `keysteward display …`: the SA displays page by page, through `---- More ----` on a
/// terminal, as JSON lines with `--json`, counted with `--count`.
fn show(control: &std::path::Path, what: Display, json: bool, count: bool) -> ExitCode {
    use keysteward::control::pager::{self, Output};
    let output = match (json, count) {
        (true, _) => Output::JsonLines,
        (false, true) => Output::Count,
        (false, false) => Output::Text,
    };
    match pager::show(control, &display_request(what), output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keysteward: {e}");
            ExitCode::FAILURE
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
        Ok(keysteward::control::Response::Error(e)) => {
            eprintln!("keysteward: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
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
    // A file that cannot be read (or is past the size bound) is one line on standard error.
    if let Err(e) = keysteward::service::config_file::read(file) {
        eprintln!("{}: error: {e}", file.display());
        return ExitCode::FAILURE;
    }
    let loaded = load::load(file, &map, host.as_ref(), Purpose::Check);
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

    /// The request a command line sends, or clap's error.
    fn request(args: &[&str]) -> Result<(keysteward::control::Request, bool, PathBuf), clap::Error> {
        let mut full = vec!["keysteward"];
        full.extend_from_slice(args);
        match Cli::try_parse_from(vrp_words(full.into_iter().map(Into::into)))?.command {
            Command::Display { what, control, json, .. } => Ok((display_request(what), json, control)),
            Command::ShowConfig { control, json } => {
                Ok((keysteward::control::Request::ShowConfig, json, control))
            }
            other => panic!("not a display: {other:?}"),
        }
    }

    fn parses(args: &str) -> keysteward::control::Request {
        let words: Vec<&str> = args.split_whitespace().collect();
        request(&words).unwrap_or_else(|e| panic!("{args}: {e}")).0
    }

    fn refused(args: &str) -> clap::error::ErrorKind {
        let words: Vec<&str> = args.split_whitespace().collect();
        match request(&words) {
            Ok(r) => panic!("{args} parsed as {r:?}"),
            Err(e) => e.kind(),
        }
    }

    /// Every display command line maps to its request.
    #[test]
    fn display_commands_parse() {
        use keysteward::control::Request as R;
        let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
        assert_eq!(parses("display ike sa"), R::DisplayIkeSa);
        assert_eq!(parses("display ike sa verbose"), R::DisplayIkeSaVerbose { remote: None, conn_id: None });
        assert_eq!(
            parses("display ike sa verbose --remote 192.0.2.2 --conn-id 3"),
            R::DisplayIkeSaVerbose { remote: ip("192.0.2.2"), conn_id: Some(3) }
        );
        assert_eq!(parses("display ike proposal"), R::DisplayIkeProposal);
        assert_eq!(parses("display ike peer"), R::DisplayIkePeer { name: None });
        assert_eq!(parses("display ike peer brief"), R::DisplayIkePeer { name: None });
        assert_eq!(parses("display ike peer name b"), R::DisplayIkePeer { name: Some("b".into()) });
        assert_eq!(parses("display ike error-info"), R::DisplayIkeErrorInfo);
        assert_eq!(parses("display ike statistics"), R::DisplayIkeStatistics);
        assert_eq!(parses("display ipsec sa"), R::DisplayIpsecSa { remote: None });
        assert_eq!(
            parses("display ipsec sa --remote 192.0.2.2"),
            R::DisplayIpsecSa { remote: ip("192.0.2.2") }
        );
        assert_eq!(parses("display ipsec sa brief"), R::DisplayIpsecSaBrief);
        assert_eq!(parses("display ipsec proposal"), R::DisplayIpsecProposal { name: None, brief: false });
        assert_eq!(
            parses("display ipsec proposal brief"),
            R::DisplayIpsecProposal { name: None, brief: true }
        );
        assert_eq!(
            parses("display ipsec proposal name a"),
            R::DisplayIpsecProposal { name: Some("a".into()), brief: false }
        );
        assert_eq!(parses("display ipsec policy"), R::DisplayIpsecPolicy { name: None });
        assert_eq!(
            parses("display ipsec policy name policy1"),
            R::DisplayIpsecPolicy { name: Some("policy1".into()) }
        );
        assert_eq!(parses("display ipsec statistics"), R::DisplayIpsecStatistics);
        assert_eq!(
            parses("display firewall session table"),
            R::DisplayFirewallSessionTable { verbose: false }
        );
        assert_eq!(
            parses("display firewall session table verbose"),
            R::DisplayFirewallSessionTable { verbose: true }
        );
        assert_eq!(parses("display ip routing-table"), R::DisplayIpRoutingTable);
        assert_eq!(parses("display IP Routing-Table"), R::DisplayIpRoutingTable);
        assert_eq!(parses("show-config"), R::ShowConfig);
    }

    /// Issue 15's known bug: the display words in any case, as the device reads them
    /// (`display IPsec sa brief` is the article's capitalisation); names keep their case.
    #[test]
    fn display_words_in_any_case() {
        use keysteward::control::Request as R;
        assert_eq!(parses("display IPsec sa brief"), R::DisplayIpsecSaBrief);
        assert_eq!(parses("Display IKE SA"), R::DisplayIkeSa);
        assert_eq!(
            parses("DISPLAY ike sa Verbose --remote 192.0.2.2"),
            R::DisplayIkeSaVerbose { remote: Some("192.0.2.2".parse().unwrap()), conn_id: None }
        );
        assert_eq!(
            parses("display Firewall Session Table VERBOSE"),
            R::DisplayFirewallSessionTable { verbose: true }
        );
        assert_eq!(parses("display ike peer Name Brief"), R::DisplayIkePeer { name: Some("Brief".into()) });
        let (_, _, control) = request(&["display", "--control", "/tmp/Ike", "IPSEC", "sa"]).unwrap();
        assert_eq!(control, PathBuf::from("/tmp/Ike"), "an option's value keeps its case");
    }

    /// `--json` and `--control` go anywhere after `display`, and on `show-config`.
    #[test]
    fn json_and_control_options() {
        let (r, json, control) = request(&["display", "--json", "ike", "peer", "name", "b"]).unwrap();
        assert_eq!(r, keysteward::control::Request::DisplayIkePeer { name: Some("b".into()) });
        assert!(json);
        assert_eq!(control, PathBuf::from(keysteward::control::DEFAULT_CONTROL_PATH));
        let (_, json, control) =
            request(&["display", "firewall", "session", "table", "--json", "--control", "/tmp/x.sock"])
                .unwrap();
        assert!(json);
        assert_eq!(control, PathBuf::from("/tmp/x.sock"));
        let (r, json, control) = request(&["show-config", "--json", "--control", "/tmp/y.sock"]).unwrap();
        assert_eq!(
            (r, json, control),
            (keysteward::control::Request::ShowConfig, true, PathBuf::from("/tmp/y.sock"))
        );
        assert!(!request(&["display", "ipsec", "policy"]).unwrap().1);
    }

    /// Each class of mistake is refused by the parser, before anything reaches the daemon.
    #[test]
    fn display_errors_are_refused() {
        use clap::error::ErrorKind as K;
        // Unknown subcommands and words.
        assert_eq!(refused("display ike bogus"), K::InvalidSubcommand);
        assert_eq!(refused("display firewall sessions table"), K::InvalidSubcommand);
        assert_eq!(refused("display ike peer full"), K::InvalidSubcommand);
        assert_eq!(refused("display ipsec sa detailed"), K::InvalidValue);
        assert_eq!(refused("display firewall session tables"), K::InvalidValue);
        assert_eq!(refused("display firewall session table brief"), K::InvalidValue);
        assert_eq!(refused("show-config extra"), K::UnknownArgument);
        // Missing arguments.
        assert_eq!(refused("display"), K::DisplayHelpOnMissingArgumentOrSubcommand);
        assert_eq!(refused("display ike peer name"), K::MissingRequiredArgument);
        assert_eq!(refused("display ipsec proposal name"), K::MissingRequiredArgument);
        assert_eq!(refused("display ipsec policy name"), K::MissingRequiredArgument);
        assert_eq!(refused("display firewall session"), K::MissingRequiredArgument);
        assert_eq!(refused("display ike sa verbose --remote"), K::InvalidValue);
        // Bad addresses and numbers.
        assert_eq!(refused("display ike sa verbose --remote 300.1.1.1"), K::ValueValidation);
        assert_eq!(refused("display ipsec sa --remote gateway-b"), K::ValueValidation);
        assert_eq!(refused("display ike sa verbose --conn-id -1"), K::UnknownArgument);
        assert_eq!(refused("display ike sa verbose --conn-id x"), K::ValueValidation);
        // Contradictions.
        assert_eq!(refused("display ipsec sa brief --remote 192.0.2.2"), K::ArgumentConflict);
    }

    /// The other commands: check, run, demo, reset, and their error classes.
    #[test]
    fn other_commands_parse() {
        let parse = |args: &str| {
            let mut words = vec!["keysteward"];
            words.extend(args.split_whitespace());
            Cli::try_parse_from(words).map(|c| c.command)
        };
        assert!(
            matches!(parse("check fw_a.cfg"), Ok(Command::Check { file, .. }) if file == std::path::Path::new("fw_a.cfg"))
        );
        assert!(matches!(parse("demo"), Ok(Command::Demo { aggressive: false, pfs: false })));
        assert!(matches!(
            parse("demo --aggressive --pfs"),
            Ok(Command::Demo { aggressive: true, pfs: true })
        ));
        assert!(parse("demo --pfs=group5").is_err(), "flags, not values");
        assert!(
            matches!(parse("run --config a.cfg --tun ks9"), Ok(Command::Run { tun, .. }) if tun == "ks9")
        );
        assert!(matches!(
            parse("reset ike sa --conn-id 7"),
            Ok(Command::Reset { what: Reset::Ike { what: ResetIke::Sa { conn_id: Some(7) } }, .. })
        ));
        assert!(matches!(
            parse("reset ipsec sa --policy policy1 --seq 1"),
            Ok(Command::Reset {
                what: Reset::Ipsec { what: ResetIpsec::Sa { policy: Some(_), seq: Some(1), .. } },
                ..
            })
        ));
        assert!(matches!(
            parse("reset ike statistics"),
            Ok(Command::Reset { what: Reset::Ike { what: ResetIke::Statistics }, .. })
        ));
        assert!(matches!(
            parse("reset ipsec statistics --control /tmp/c.sock"),
            Ok(Command::Reset { what: Reset::Ipsec { what: ResetIpsec::Statistics }, .. })
        ));
        assert!(matches!(parse("debugging ike"), Ok(Command::Debugging { what: Debugging::Ike, .. })));
        assert!(matches!(
            parse("undo debugging ike --control /tmp/c.sock"),
            Ok(Command::Undo { what: Undo::Debugging { what: Debugging::Ike }, .. })
        ));
        assert!(parse("debugging esp").is_err() && parse("undo debugging").is_err());
        assert!(matches!(
            parse("reset ipsec sa --remote 192.0.2.2"),
            Ok(Command::Reset { what: Reset::Ipsec { what: ResetIpsec::Sa { remote: Some(_), .. } }, .. })
        ));
        use clap::error::ErrorKind as K;
        let kind = |args: &str| parse(args).err().map(|e| e.kind());
        assert_eq!(kind("frobnicate"), Some(K::InvalidSubcommand));
        assert_eq!(kind("check"), Some(K::MissingRequiredArgument));
        assert_eq!(kind("run"), Some(K::MissingRequiredArgument));
        assert_eq!(kind("reset ipsec sa --policy policy1"), Some(K::MissingRequiredArgument));
        assert_eq!(kind("reset ipsec sa --remote 192.0.2"), Some(K::ValueValidation));
        assert_eq!(kind("reset ike sa --conn-id many"), Some(K::ValueValidation));
        assert_eq!(kind("reset ike tunnel"), Some(K::InvalidSubcommand));
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
