//! Routes and policy rules into the TUN, with `ip` (iproute2) for now: one `ip route replace`
//! per protected remote prefix, `del` when it goes and on exit ([`Routes`]'s `Drop`). A
//! netlink crate can replace the command later, here and nowhere else; the command keeps
//! the gateway free of `unsafe` and of another dependency meanwhile.
//!
//! What to route comes from the caller (the bridge's `routing` module decides it from the
//! engine's configuration); this module only applies it and undoes it.

use std::net::Ipv4Addr;
use std::process::Command;

use esp::Prefix;
use tracing::{info, warn};

use super::OsError;

/// The routing table that holds the TUN routes of flows to a peer gateway's own address.
const GATEWAY_TABLE: &str = "4500";
/// `ip rule` priorities: our own IKE, ESP and AH to the peer first (main table), then the
/// protected flows to the peer (the TUN table); both before the main table's 32766.
const GATEWAY_BYPASS_PREF: &str = "4500";
const GATEWAY_PROTECT_PREF: &str = "4501";

/// Protected flows whose remote prefix contains a peer gateway's own address, and what the
/// policy rules for them need (see [`Routes::set_gateway_flows`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayFlows {
    /// The peers whose own IKE, ESP and AH must keep using the main table.
    pub peers: Vec<Ipv4Addr>,
    /// Each flow's remote prefix and, when its ACL names one, its IP protocol.
    pub flows: Vec<(Prefix, Option<u8>)>,
    /// The source address for packets the gateway itself sends into those flows (the TUN
    /// has no address of its own).
    pub source: Option<String>,
}

/// The routes into the TUN for every protected remote prefix, removed on drop.
pub struct Routes {
    device: String,
    prefixes: Vec<Prefix>,
    /// `ip rule` arguments added for flows to a peer's own address.
    rules: Vec<Vec<String>>,
}

impl Routes {
    /// No routes yet, on `device`.
    pub fn empty(device: &str) -> Self {
        Self { device: device.to_owned(), prefixes: Vec::new(), rules: Vec::new() }
    }

    /// Adds (`ip route replace`) a route into `device` for each distinct prefix.
    pub fn add(device: &str, prefixes: impl IntoIterator<Item = Prefix>) -> Result<Self, OsError> {
        let mut routes = Self::empty(device);
        for p in prefixes {
            routes.add_one(p)?;
        }
        Ok(routes)
    }

    /// A protected remote prefix that contains a peer gateway's address (transport mode
    /// between the gateways, or a tunnel covering them) cannot simply be routed into the
    /// TUN: the daemon's own IKE (UDP 500/4500), ESP and AH to that peer would go there too.
    /// Those flows are policy-routed instead: `ip rule`s send our IKE, ESP and AH to the
    /// main table first, then the protected flow (with the ACL's protocol when it names one)
    /// to a table whose only route is the TUN. Replaces the rules of an earlier call (a
    /// reload).
    pub fn set_gateway_flows(&mut self, plan: &GatewayFlows) -> Result<(), OsError> {
        self.remove_gateway_flows();
        if plan.flows.is_empty() {
            return Ok(());
        }
        for peer in &plan.peers {
            for rule in bypass_rules(*peer) {
                let mut args = rule;
                args.extend(["lookup", "main", "pref", GATEWAY_BYPASS_PREF].map(String::from));
                ip_rule("add", &args)?;
                self.rules.push(args);
            }
        }
        for (remote, protocol) in &plan.flows {
            let mut args = vec!["to".to_owned(), remote.to_string()];
            if let Some(protocol) = protocol {
                args.extend(["ipproto".to_owned(), protocol.to_string()]);
            }
            args.extend(["lookup", GATEWAY_TABLE, "pref", GATEWAY_PROTECT_PREF].map(String::from));
            if self.rules.contains(&args) {
                continue;
            }
            ip_rule("add", &args)?;
            info!(
                "policy route: {} via {} (a flow to a peer gateway's own address)",
                args.join(" "),
                self.device
            );
            self.rules.push(args);
        }
        // The TUN has no address: without `src`, a packet the gateway itself sends (a ping
        // from FW_A) could take the inside address and miss the selector.
        let mut args =
            vec!["route", "replace", "default", "dev", self.device.as_str(), "table", GATEWAY_TABLE];
        if let Some(source) = &plan.source {
            args.extend(["src", source.as_str()]);
        }
        ip(&args)
    }

    fn remove_gateway_flows(&mut self) {
        for rule in self.rules.drain(..).rev() {
            if let Err(e) = ip_rule("del", &rule) {
                warn!("{e}");
            }
        }
        // Flushed whether or not rules were there: `set_gateway_flows` may have failed
        // after the route and before the first rule was recorded.
        let _ = Command::new("ip")
            .args(["route", "flush", "table", GATEWAY_TABLE])
            .stderr(std::process::Stdio::null())
            .status();
    }

    /// Adds the route of one prefix (a template flow); a prefix already routed is kept once.
    pub fn add_one(&mut self, p: Prefix) -> Result<(), OsError> {
        if !self.prefixes.contains(&p) {
            ip_route("replace", &p, &self.device)?;
            info!("route {p} via {}", self.device);
            self.prefixes.push(p);
        }
        Ok(())
    }

    /// Removes the route of one prefix, if this set added it.
    pub fn remove_one(&mut self, p: Prefix) {
        if let Some(i) = self.prefixes.iter().position(|q| *q == p) {
            self.prefixes.swap_remove(i);
            match ip_route("del", &p, &self.device) {
                Ok(()) => info!("route {p} via {} removed", self.device),
                Err(e) => warn!("{e}"),
            }
        }
    }

    /// Adds the routes of `prefixes` that are not there yet (a reload). When one fails, the
    /// routes this call added are removed again, so a refused reload leaves the routes as
    /// they were.
    pub fn add_missing(&mut self, prefixes: &[Prefix]) -> Result<(), OsError> {
        let mut added: Vec<Prefix> = Vec::new();
        for p in prefixes {
            if self.prefixes.contains(p) || added.contains(p) {
                continue;
            }
            if let Err(e) = ip_route("replace", p, &self.device) {
                for q in &added {
                    if let Err(e) = ip_route("del", q, &self.device) {
                        warn!("{e}");
                    }
                }
                return Err(e);
            }
            info!("route {p} via {}", self.device);
            added.push(*p);
        }
        self.prefixes.extend(added);
        Ok(())
    }

    /// Removes the routes not in `keep` (a reload removed their policies).
    pub fn remove_except(&mut self, keep: &[Prefix]) {
        let device = self.device.clone();
        self.prefixes.retain(|p| {
            if keep.contains(p) {
                return true;
            }
            match ip_route("del", p, &device) {
                Ok(()) => info!("route {p} via {device} removed"),
                Err(e) => warn!("{e}"),
            }
            false
        });
    }

    /// The prefixes routed into the TUN.
    pub fn prefixes(&self) -> &[Prefix] {
        &self.prefixes
    }
}

impl Drop for Routes {
    fn drop(&mut self) {
        for p in &self.prefixes {
            if let Err(e) = ip_route("del", p, &self.device) {
                warn!("{e}");
            }
        }
        if !self.rules.is_empty() {
            self.remove_gateway_flows();
        }
    }
}

/// The `ip rule` selectors that keep our own traffic to `peer` in the main table: IKE from
/// ports 500 and 4500, ESP and AH from our raw sockets (AH's with `IP_HDRINCL` may be looked
/// up as protocol 255).
fn bypass_rules(peer: Ipv4Addr) -> Vec<Vec<String>> {
    let to = peer.to_string();
    let mut rules = Vec::new();
    for sport in ["500", "4500"] {
        rules.push(["to", &to, "ipproto", "udp", "sport", sport].map(String::from).to_vec());
    }
    for proto in ["50", "51", "255"] {
        rules.push(["to", &to, "ipproto", proto].map(String::from).to_vec());
    }
    rules
}

fn ip_rule(verb: &str, args: &[String]) -> Result<(), OsError> {
    let mut full = vec!["rule", verb];
    full.extend(args.iter().map(String::as_str));
    ip(&full)
}

fn ip_route(verb: &str, p: &Prefix, device: &str) -> Result<(), OsError> {
    let target = p.to_string();
    ip(&["route", verb, &target, "dev", device])
}

/// Runs `ip ARGS`, its output going where the daemon's goes.
fn ip(args: &[&str]) -> Result<(), OsError> {
    let command = || format!("ip {}", args.join(" "));
    let status = Command::new("ip")
        .args(args)
        .status()
        .map_err(|source| OsError::Spawn { command: command(), source })?;
    if status.success() {
        Ok(())
    } else {
        Err(OsError::CommandFailed { command: command(), status })
    }
}
