//! Loading a configuration file the way `check`, `run` and `reload` all need it: parse and
//! validate the VRP text (`vrp`), compare its interfaces and addresses with this host, and
//! convert it to the engine's configuration (`engine_config`), every finding with
//! `file:line:column`. `run` and `reload` use the engine configuration only when nothing
//! was an error, so a file is applied whole or not at all.
//!
//! Interfaces: a configuration may name Linux interfaces directly (`interface out0`) or
//! keep the device's VRP names (`interface GigabitEthernet0/0/2`, as the article's files
//! do) and map them with `--interface-map GigabitEthernet0/0/2=eth1`. An interface that is
//! neither on the host nor mapped stops `run` and `reload` (an error); `check`, which may run
//! on another machine than the gateway, reports it as a warning. An `ip address` that the
//! host does not have is a warning everywhere (issue 4): the daemon cannot receive IKE on
//! it, but an operator may be about to add it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::SystemTime;
use vrp::{Diagnostic, DiagnosticKind, Severity};

use crate::engine_config::{engine_config_with, Unsupported};
use crate::os::OsError;

/// A malformed `--interface-map` argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterfaceMapError {
    /// Not of the form `VRPNAME=LINUXNAME`.
    #[error("--interface-map {argument}: expected VRPNAME=LINUXNAME")]
    Malformed {
        /// The argument as given.
        argument: String,
    },
    /// The same VRP name mapped twice.
    #[error("--interface-map maps {vrp} twice")]
    Repeated {
        /// The VRP interface name.
        vrp: String,
    },
}

/// Why this host's interfaces could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The kernel did not list the interfaces.
    #[error(transparent)]
    Os(#[from] OsError),
    /// It printed something that is not its JSON.
    #[error("unreadable `ip -j addr show` output: {0}")]
    Unreadable(#[source] serde_json::Error),
}

/// `--interface-map VRPNAME=LINUXNAME`, repeatable: VRP interface names to Linux ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceMap(BTreeMap<String, String>);

impl InterfaceMap {
    /// A map from `VRPNAME=LINUXNAME` arguments; a malformed or repeated one is an error
    /// naming it.
    pub fn parse<S: AsRef<str>>(arguments: &[S]) -> Result<Self, InterfaceMapError> {
        let mut map = BTreeMap::new();
        for argument in arguments {
            let argument = argument.as_ref();
            let (vrp, linux) = argument
                .split_once('=')
                .filter(|(v, l)| !v.is_empty() && !l.is_empty() && !l.contains('='))
                .ok_or_else(|| InterfaceMapError::Malformed { argument: argument.to_owned() })?;
            if map.insert(vrp.to_owned(), linux.to_owned()).is_some() {
                return Err(InterfaceMapError::Repeated { vrp: vrp.to_owned() });
            }
        }
        Ok(Self(map))
    }

    /// The Linux name of VRP interface `name`: its mapping, or the name itself.
    pub fn linux_name<'a>(&'a self, name: &'a str) -> &'a str {
        self.0.get(name).map_or(name, String::as_str)
    }
}

/// This host's network interfaces and their IPv4 addresses, as the kernel lists them (in the
/// daemon's network namespace), or as `ip -j addr show` printed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Host {
    interfaces: BTreeMap<String, Vec<Ipv4Addr>>,
}

impl Host {
    /// Reads the host's interfaces from the kernel (rtnetlink).
    pub fn current() -> Result<Self, HostError> {
        Ok(Self { interfaces: crate::os::host::interfaces()? })
    }

    /// Reads `ip -j addr show` output.
    pub fn from_ip_json(text: &str) -> Result<Self, HostError> {
        #[derive(serde::Deserialize)]
        struct Link {
            ifname: String,
            #[serde(default)]
            addr_info: Vec<Address>,
        }
        #[derive(serde::Deserialize)]
        struct Address {
            family: String,
            local: String,
        }
        let links: Vec<Link> = serde_json::from_str(text).map_err(HostError::Unreadable)?;
        let interfaces = links
            .into_iter()
            .map(|link| {
                let addresses = link
                    .addr_info
                    .iter()
                    .filter(|a| a.family == "inet")
                    .filter_map(|a| a.local.parse().ok())
                    .collect();
                (link.ifname, addresses)
            })
            .collect();
        Ok(Self { interfaces })
    }

    /// A host with these interfaces and addresses (tests).
    pub fn with_interfaces(interfaces: &[(&str, &[Ipv4Addr])]) -> Self {
        Self { interfaces: interfaces.iter().map(|(n, a)| ((*n).to_owned(), a.to_vec())).collect() }
    }

    /// Every IPv4 address of the host.
    pub fn addresses(&self) -> Vec<Ipv4Addr> {
        self.interfaces.values().flatten().copied().collect()
    }

    /// True when the host has an interface of that name.
    pub fn has_interface(&self, name: &str) -> bool {
        self.interfaces.contains_key(name)
    }
}

/// Who is loading: `check` reports a missing interface as a warning, `run` and `reload`
/// refuse the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `keysteward check`.
    Check,
    /// `keysteward run` or a reload of the running daemon.
    Run,
}

/// The outcome of loading a file: both configurations when nothing was an error, and every
/// finding in file order.
#[derive(Debug)]
pub struct Loaded {
    /// The VRP configuration and the engine configuration made from it, when no finding is
    /// an error.
    pub config: Option<(vrp::Config, ike::Config)>,
    /// Errors and warnings, by line and column.
    pub diagnostics: Vec<Diagnostic>,
    /// When each configured certificate and CRL file runs out (for the metrics).
    pub expiries: Vec<statistics::Expiry>,
}

impl Loaded {
    /// The errors, one per line, for a caller that refuses the file.
    pub fn errors(&self) -> String {
        self.diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Reads and checks the file at `path`: the VRP checks, the host's interfaces and addresses
/// (when `host` is given), and the conversion to the engine's configuration.
pub fn load(path: &Path, interfaces: &InterfaceMap, host: Option<&Host>, purpose: Purpose) -> Loaded {
    use crate::service::config_file;
    let file = path.display().to_string();
    match config_file::read(path) {
        Ok((text, mode)) => {
            let mut loaded = check_text(&file, &text, interfaces, host, purpose);
            // A secret in a file group or others can read: `run` refuses it, `check` warns.
            let exposed =
                loaded.config.as_ref().and_then(|(config, _)| config_file::exposed(path, mode, config));
            if let Some(exposed) = exposed {
                let severity = match purpose {
                    Purpose::Check => Severity::Warning,
                    Purpose::Run => {
                        loaded.config = None;
                        Severity::Error
                    }
                };
                let message = exposed.to_string();
                loaded
                    .diagnostics
                    .insert(0, finding(&file, None, severity, DiagnosticKind::Incomplete, message));
            }
            loaded
        }
        Err(e) => Loaded {
            config: None,
            expiries: Vec::new(),
            diagnostics: vec![finding(
                &file,
                None,
                Severity::Error,
                DiagnosticKind::Incomplete,
                e.to_string(),
            )],
        },
    }
}

/// [`load`] on text already read, naming `file` in findings.
pub fn check_text(
    file: &str,
    text: &str,
    interfaces: &InterfaceMap,
    host: Option<&Host>,
    purpose: Purpose,
) -> Loaded {
    let parsed = match vrp::parse(file, text) {
        Ok(parsed) => parsed,
        Err(vrp::Diagnostics(diagnostics)) => {
            return Loaded { config: None, diagnostics, expiries: Vec::new() }
        }
    };
    let host_addresses = host.map(Host::addresses);
    let mut diagnostics = parsed.warnings;
    diagnostics.extend(vrp::validate(
        file,
        &parsed.config,
        Some(&parsed.source_map),
        host_addresses.as_deref(),
    ));
    if let Some(host) = host {
        let severity = match purpose {
            Purpose::Check => Severity::Warning,
            Purpose::Run => Severity::Error,
        };
        for name in parsed.config.interfaces.keys() {
            let linux = interfaces.linux_name(name);
            if host.has_interface(linux) {
                continue;
            }
            let message = if linux == name {
                format!(
                    "interface {name} is not an interface of this host; map it to one with \
                     --interface-map {name}=LINUXNAME"
                )
            } else {
                format!("interface {name} is mapped to {linux}, which this host does not have")
            };
            let at = parsed.source_map.get(&format!("interface {name}"));
            diagnostics.push(finding(file, at, severity, DiagnosticKind::MissingReference, message));
        }
    }
    for (name, linux) in &interfaces.0 {
        if !parsed.config.interfaces.contains_key(name) {
            let message =
                format!("--interface-map {name}={linux}: the configuration has no interface {name}");
            diagnostics.push(finding(
                file,
                None,
                Severity::Warning,
                DiagnosticKind::MissingReference,
                message,
            ));
        }
    }
    let mut config = None;
    let mut expiries = Vec::new();
    // Certificate files (relative to the configuration's directory): a missing or broken one
    // is an error at the line that named it, for `check`, `run` and a reload alike.
    let certificates = if diagnostics.iter().any(Diagnostic::is_error) {
        None
    } else {
        match crate::pki::load(Path::new(file), &parsed.config, &parsed.source_map) {
            Ok(certificates) => Some(certificates),
            Err(errors) => {
                diagnostics.extend(errors);
                None
            }
        }
    };
    if let Some(certificates) = certificates {
        diagnostics.extend(stale_crls(file, &parsed.source_map, &certificates.expiries));
        expiries.clone_from(&certificates.expiries);
        match engine_config_with(&parsed.config, &certificates) {
            Ok(engine) => config = Some((parsed.config, engine)),
            Err(Unsupported { item, what }) => {
                let at = location_of(&parsed.source_map, &item);
                let message = format!("{item}: {what}");
                diagnostics.push(finding(file, at, Severity::Error, DiagnosticKind::Unsupported, message));
            }
        }
    }
    diagnostics.sort_by_key(|d| (d.line, d.column));
    Loaded { config, diagnostics, expiries }
}

/// A CRL past its next update still loads (the revocations up to it are known), with a
/// warning at the line that names it.
fn stale_crls(file: &str, map: &vrp::SourceMap, expiries: &[statistics::Expiry]) -> Vec<Diagnostic> {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let stale = expiries.iter().filter_map(|e| Some((e, e.stale_crl(now)?)));
    stale
        .map(|(e, message)| {
            let at = map.certificate_file(&e.peer, &e.setting, &e.file);
            finding(file, at, Severity::Warning, DiagnosticKind::InvalidValue, message)
        })
        .collect()
}

/// Where the item an engine refusal names was written: its own line, else its view's
/// (`acl 3001 rule 5` is found at `acl 3001`).
fn location_of(map: &vrp::SourceMap, item: &str) -> Option<vrp::Location> {
    map.get(item).or_else(|| item.split_once(" rule ").and_then(|(view, _)| map.get(view)))
}

fn finding(
    file: &str,
    at: Option<vrp::Location>,
    severity: Severity,
    kind: DiagnosticKind,
    message: String,
) -> Diagnostic {
    let at = at.unwrap_or_default();
    Diagnostic { file: file.to_owned(), line: at.line, column: at.column, severity, kind, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FW_A: &str = include_str!("../../../examples/fw_a.cfg");

    fn host() -> Host {
        Host::with_interfaces(&[("lo", &[Ipv4Addr::LOCALHOST]), ("eth1", &[Ipv4Addr::new(192, 0, 2, 1)])])
    }

    #[test]
    fn interface_map_parses_pairs_and_refuses_the_rest() {
        let map = InterfaceMap::parse(&["GigabitEthernet0/0/2=eth1"]).unwrap();
        assert_eq!(map.linux_name("GigabitEthernet0/0/2"), "eth1");
        assert_eq!(map.linux_name("out0"), "out0", "unmapped names are Linux names");
        for bad in ["eth1", "=eth1", "GE0/0/2=", "a=b=c"] {
            let e = InterfaceMap::parse(&[bad]).unwrap_err().to_string();
            assert!(e.contains("expected VRPNAME=LINUXNAME"), "{bad}: {e}");
        }
        let e = InterfaceMap::parse(&["a=x", "a=y"]).unwrap_err().to_string();
        assert_eq!(e, "--interface-map maps a twice");
    }

    #[test]
    fn an_unmapped_vrp_interface_stops_run_and_warns_in_check() {
        let none = InterfaceMap::default();
        let run = check_text("fw_a.cfg", FW_A, &none, Some(&host()), Purpose::Run);
        assert!(run.config.is_none());
        assert_eq!(
            run.errors(),
            "fw_a.cfg:24:1: error: interface GigabitEthernet0/0/2 is not an interface of this host; \
             map it to one with --interface-map GigabitEthernet0/0/2=LINUXNAME"
        );
        let check = check_text("fw_a.cfg", FW_A, &none, Some(&host()), Purpose::Check);
        assert!(check.config.is_some(), "{:?}", check.diagnostics);
        assert!(check.diagnostics.iter().any(|d| d.line == 24 && d.message.contains("--interface-map")));

        let mapped = InterfaceMap::parse(&["GigabitEthernet0/0/2=eth1"]).unwrap();
        let run = check_text("fw_a.cfg", FW_A, &mapped, Some(&host()), Purpose::Run);
        assert!(run.config.is_some(), "{:?}", run.diagnostics);
        assert!(!run.diagnostics.iter().any(|d| d.kind == DiagnosticKind::AddressNotOnHost));

        let wrong = InterfaceMap::parse(&["GigabitEthernet0/0/2=eth9"]).unwrap();
        let run = check_text("fw_a.cfg", FW_A, &wrong, Some(&host()), Purpose::Run);
        assert!(
            run.errors().contains("is mapped to eth9, which this host does not have"),
            "{}",
            run.errors()
        );
    }

    #[test]
    fn an_address_the_host_lacks_is_a_warning() {
        let map = InterfaceMap::parse(&["GigabitEthernet0/0/2=lo"]).unwrap();
        let only_lo = Host::with_interfaces(&[("lo", &[Ipv4Addr::LOCALHOST])]);
        let loaded = check_text("fw_a.cfg", FW_A, &map, Some(&only_lo), Purpose::Run);
        assert!(loaded.config.is_some(), "a warning only: {:?}", loaded.diagnostics);
        let warning = loaded.diagnostics.iter().find(|d| d.kind == DiagnosticKind::AddressNotOnHost).unwrap();
        assert_eq!(
            warning.to_string(),
            "fw_a.cfg:25:2: warning: interface GigabitEthernet0/0/2 address 192.0.2.1 is not an address of this host"
        );
    }

    #[test]
    fn an_engine_refusal_names_the_line_of_the_item() {
        let auto = FW_A.replace(" encapsulation-mode tunnel\n", " encapsulation-mode auto\n");
        let loaded = check_text("fw_a.cfg", &auto, &InterfaceMap::default(), None, Purpose::Run);
        assert!(loaded.config.is_none());
        assert_eq!(
            loaded.errors(),
            "fw_a.cfg:15:1: error: ipsec proposal a: encapsulation-mode auto is not supported yet"
        );
    }

    #[test]
    fn ip_json_lists_interfaces_with_their_ipv4_addresses() {
        let text = r#"[{"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1"},{"family":"inet6","local":"::1"}]},{"ifname":"eth0"}]"#;
        let host = Host::from_ip_json(text).unwrap();
        assert!(host.has_interface("eth0") && host.has_interface("lo"));
        assert_eq!(host.addresses(), vec![Ipv4Addr::LOCALHOST]);
        assert!(Host::from_ip_json("not json").is_err());
    }
}
