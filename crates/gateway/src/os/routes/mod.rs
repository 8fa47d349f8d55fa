//! Routes and policy rules into the TUN, through rtnetlink (the `netlink` crate), and the
//! fail-closed routes that outlive the daemon.
//!
//! Each protected remote prefix gets two routes in the main table, both marked with
//! keysteward's route protocol ([`netlink::PROTOCOL`], `proto 245`):
//!
//! ```text
//! 10.2.2.0/24 dev ks0 proto 245 scope link          (metric 0: the tunnel)
//! unreachable 10.2.2.0/24 proto 245 metric 1        (the fail-closed route)
//! ```
//!
//! While the daemon runs the TUN route wins (lower metric). When the process ends in any way
//! (a crash, `kill -9`, an upgrade) the kernel deletes the TUN and its routes, and the
//! unreachable route is what is left for the prefix: packets for it are refused ("host
//! unreachable") instead of falling back to a default route or an `ip route-static` toward
//! the peer and leaving in clear. Metric 1 sits right under the TUN route, so an operator's
//! route for the same prefix with any larger metric (a backup path) cannot win either. Only
//! an orderly shutdown removes them ([`Routes::shutdown`]), unless `ipsec fail-closed keep`
//! says to keep them; the next start adopts them ([`Routes::start`]).
//!
//! Flows to a peer gateway's own address are policy-routed ([`Routes::set_gateway_flows`]):
//! their table holds the TUN route and an unreachable default route in the same way, and
//! their rules (also `proto 245`) stay with it.
//!
//! What to route comes from the caller (the bridge's `routing` module decides it from the
//! engine's configuration); this module only applies it and undoes it.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use esp::Prefix;
use tracing::{debug, info, warn};

use super::OsError;
use netlink::{Netlink, Route, RouteKind, Rule, MAIN_TABLE};

/// The routing table that holds the TUN routes of flows to a peer gateway's own address.
pub const GATEWAY_TABLE: u32 = 4500;
/// Rule priorities: our own IKE, ESP and AH to the peer first (main table), then the
/// protected flows to the peer (the TUN table); both before the main table's 32766.
const GATEWAY_BYPASS_PREF: u32 = 4500;
const GATEWAY_PROTECT_PREF: u32 = 4501;
/// The metric of a route into the TUN.
pub const TUN_METRIC: u32 = 0;
/// The metric of a fail-closed route: the best after the TUN's.
pub const BLOCK_METRIC: u32 = 1;

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

/// The routes into the TUN for every protected remote prefix, with their fail-closed routes.
/// Dropping it removes the TUN routes and leaves the fail-closed ones.
pub struct Routes {
    netlink: Netlink,
    device: String,
    index: Option<u32>,
    /// Prefixes with a TUN route and a fail-closed route (a set: a hub adds one per branch).
    prefixes: HashSet<Prefix>,
    /// Fail-closed routes adopted from an earlier run for flows a template may negotiate
    /// again; no TUN route until it does.
    held: Vec<Prefix>,
    /// True when the gateway-flow table holds our routes.
    gateway_table: bool,
    /// How many remote prefixes are policy-routed into it.
    gateway_prefixes: usize,
}

impl Routes {
    /// No routes yet, on `device`.
    pub fn empty(device: &str) -> Result<Self, OsError> {
        let netlink =
            Netlink::open().map_err(|source| OsError::Netlink { action: "open rtnetlink".into(), source })?;
        Ok(Self {
            netlink,
            device: device.to_owned(),
            index: None,
            prefixes: HashSet::new(),
            held: Vec::new(),
            gateway_table: false,
            gateway_prefixes: 0,
        })
    }

    /// The routes of `prefixes` into `device` and the policy routing of `gateway`, adopting
    /// what an earlier run left: its fail-closed routes are replaced in place (no gap in
    /// which a prefix is unprotected), those for prefixes inside `templates` (the remote
    /// ranges of template policies, whose flows come back when the branches do) are held,
    /// and the rest (prefixes no longer protected) are removed.
    pub fn start(
        device: &str,
        prefixes: impl IntoIterator<Item = Prefix>,
        templates: &[Prefix],
        gateway: &GatewayFlows,
    ) -> Result<Self, OsError> {
        let mut routes = Self::empty(device)?;
        let leftover = routes.ours(MAIN_TABLE)?;
        for p in prefixes {
            routes.add_one(p)?;
        }
        // The policy rules before a leftover route goes: a prefix now routed by protocol is
        // never without one or the other.
        routes.set_gateway_flows(gateway)?;
        let mut adopted = 0;
        for route in leftover {
            let p = route.destination;
            if matches!(route.kind, RouteKind::Via(..)) {
                // An `ip route-static` of an earlier run: `os::static_routes` installs the
                // configuration's again.
                routes.delete(&route);
            } else if routes.prefixes.contains(&p) || routes.held.contains(&p) {
                adopted += usize::from(route.kind == RouteKind::Unreachable);
            } else if route.kind == RouteKind::Unreachable && templates.iter().any(|t| t.covers(&p)) {
                info!("fail-closed route for {p} held: a template flow from an earlier run");
                routes.held.push(p);
                adopted += 1;
            } else {
                routes.delete(&route);
                if route.kind == RouteKind::Unreachable {
                    info!("fail-closed route for {p} removed: the configuration no longer protects it");
                }
            }
        }
        if adopted > 0 {
            info!("fail-closed routes for {adopted} protected prefixes adopted from an earlier run");
        }
        Ok(routes)
    }

    /// A protected remote prefix that contains a peer gateway's address (transport mode
    /// between the gateways, or a tunnel covering them) cannot simply be routed into the
    /// TUN: the daemon's own IKE (UDP 500/4500), ESP and AH to that peer would go there too.
    /// Those flows are policy-routed instead: rules send our IKE, ESP and AH to the main
    /// table first, then the protected flow (with the ACL's protocol when it names one) to a
    /// table whose routes are the TUN and, under it, an unreachable default route. The rules
    /// in the kernel are brought to the plan (a reload, or a start after an earlier run):
    /// those that stay are not touched.
    pub fn set_gateway_flows(&mut self, plan: &GatewayFlows) -> Result<(), OsError> {
        let wanted = planned_rules(plan, &self.device);
        let present = self
            .netlink
            .rules()
            .map_err(|source| OsError::Netlink { action: "list policy rules".into(), source })?;
        for rule in present.iter().filter(|r| !wanted.contains(r)) {
            if let Err(source) = self.netlink.delete_rule(rule) {
                warn!("{}", OsError::Netlink { action: format!("delete rule {}", rule_text(rule)), source });
            }
        }
        if plan.flows.is_empty() {
            self.clear_gateway_table(true);
            return Ok(());
        }
        let source = plan.source.as_deref().and_then(|s| s.parse().ok());
        let index = self.index()?;
        for route in [
            gateway_route(RouteKind::Unreachable, BLOCK_METRIC),
            gateway_route(RouteKind::Device(index, source), TUN_METRIC),
        ] {
            self.replace(&route)?;
        }
        self.gateway_table = true;
        let mut remotes: Vec<Prefix> = Vec::new();
        for (remote, _) in &plan.flows {
            if !remotes.contains(remote) {
                remotes.push(*remote);
            }
        }
        self.gateway_prefixes = remotes.len();
        for rule in wanted.iter().filter(|r| !present.contains(r)) {
            self.netlink.add_rule(rule).map_err(|source| OsError::Netlink {
                action: format!("add rule {}", rule_text(rule)),
                source,
            })?;
            if rule.priority == GATEWAY_PROTECT_PREF {
                info!(
                    "policy route: {} via {} (a flow to a peer gateway's own address, or by protocol)",
                    rule_text(rule),
                    self.device
                );
            }
        }
        Ok(())
    }

    /// Adds the routes of one prefix (a template flow): the fail-closed route first, then the
    /// TUN route; a prefix already routed is kept once.
    pub fn add_one(&mut self, p: Prefix) -> Result<(), OsError> {
        if self.prefixes.contains(&p) {
            return Ok(());
        }
        let index = self.index()?;
        // The fail-closed route first, then the TUN's: one send, applied in that order.
        let routes = [block(p), tun(p, index)];
        let results = self.netlink.replace_routes(&routes);
        if let Some((route, source)) =
            routes.iter().zip(results).find_map(|(r, done)| done.err().map(|e| (r, e)))
        {
            let action = format!("add route {}", route_text(route, &self.device));
            self.delete(&routes[1]);
            if !self.held.contains(&p) {
                self.delete(&routes[0]);
            }
            return Err(OsError::Netlink { action, source });
        }
        debug!("route {p} via {}", self.device);
        self.held.retain(|q| *q != p);
        self.prefixes.insert(p);
        Ok(())
    }

    /// Removes the routes of one prefix, if this set added it: the prefix is no longer
    /// protected, so its fail-closed route goes too.
    pub fn remove_one(&mut self, p: Prefix) {
        if self.prefixes.remove(&p) {
            self.remove_routes(p);
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
            if let Err(e) = self.add_one(*p) {
                for q in added {
                    self.remove_one(q);
                }
                return Err(e);
            }
            added.push(*p);
        }
        Ok(())
    }

    /// Keeps `prefixes` fail-closed without a TUN route (their policy entry is incomplete):
    /// a routed one loses its TUN route and keeps its fail-closed route, and one not routed
    /// gets a fail-closed route. Held so, [`Routes::remove_except`] keeps them while its
    /// `templates` cover them; [`Routes::add_one`] routes them again.
    pub fn hold(&mut self, prefixes: &[Prefix]) -> Result<(), OsError> {
        for p in prefixes {
            if self.held.contains(p) {
                continue;
            }
            if self.prefixes.remove(p) {
                if let Some(index) = self.index {
                    self.delete(&tun(*p, index));
                }
            } else {
                self.replace(&block(*p))?;
            }
            self.held.push(*p);
            info!("route {p} via {} held fail-closed: its ipsec policy is incomplete", self.device);
        }
        Ok(())
    }

    /// Removes the routes not in `keep` (a reload removed their policies), and the held
    /// fail-closed routes no template range in `templates` covers any more.
    pub fn remove_except(&mut self, keep: &[Prefix], templates: &[Prefix]) {
        let gone: Vec<Prefix> = self.prefixes.iter().copied().filter(|p| !keep.contains(p)).collect();
        for p in gone {
            self.remove_one(p);
        }
        let released: Vec<Prefix> =
            self.held.iter().copied().filter(|p| !templates.iter().any(|t| t.covers(p))).collect();
        for p in released {
            self.held.retain(|q| *q != p);
            self.delete(&block(p));
            info!("fail-closed route for {p} removed: no template covers it any more");
        }
    }

    /// The prefixes routed into the TUN.
    pub fn prefixes(&self) -> impl Iterator<Item = &Prefix> {
        self.prefixes.iter()
    }

    /// The prefixes that have a fail-closed route (routed or held).
    pub fn guarded(&self) -> usize {
        self.prefixes.len() + self.held.len()
    }

    /// An orderly shutdown: the TUN routes go; the fail-closed routes and rules go too unless
    /// `keep` (`ipsec fail-closed keep`). Returns how many prefixes had a fail-closed route.
    pub fn shutdown(&mut self, keep: bool) -> usize {
        let guarded = self.guarded() + if self.gateway_table { self.gateway_prefixes } else { 0 };
        let index = self.index;
        for p in std::mem::take(&mut self.prefixes) {
            if let Some(index) = index {
                self.delete(&tun(p, index));
            }
            if !keep {
                self.delete(&block(p));
            }
        }
        if keep {
            self.held.clear();
            self.clear_gateway_table(false);
            return guarded;
        }
        for p in std::mem::take(&mut self.held) {
            self.delete(&block(p));
        }
        match self.netlink.rules() {
            Ok(rules) => {
                for rule in rules {
                    let _ = self.netlink.delete_rule(&rule);
                }
            }
            Err(source) => warn!("{}", OsError::Netlink { action: "list policy rules".into(), source }),
        }
        self.clear_gateway_table(true);
        guarded
    }

    /// Removes our routes from the gateway-flow table: all of them, or only the TUN's.
    fn clear_gateway_table(&mut self, with_block: bool) {
        match self.ours(GATEWAY_TABLE) {
            Ok(routes) => {
                for route in routes.iter().filter(|r| with_block || r.kind != RouteKind::Unreachable) {
                    self.delete(route);
                }
            }
            Err(e) => warn!("{e}"),
        }
        self.gateway_table = false;
        self.gateway_prefixes = 0;
    }

    fn remove_routes(&mut self, p: Prefix) {
        if let Some(index) = self.index {
            self.delete(&tun(p, index));
        }
        self.delete(&block(p));
        info!("route {p} via {} removed", self.device);
    }

    /// The TUN's interface index, looked up once.
    fn index(&mut self) -> Result<u32, OsError> {
        if let Some(index) = self.index {
            return Ok(index);
        }
        let index = self
            .netlink
            .link_index(&self.device)
            .map_err(|source| OsError::Netlink { action: format!("find device {}", self.device), source })?;
        self.index = Some(index);
        Ok(index)
    }

    fn ours(&mut self, table: u32) -> Result<Vec<Route>, OsError> {
        self.netlink.routes(table).map_err(|source| OsError::Netlink {
            action: format!("list the routes of table {table}"),
            source,
        })
    }

    fn replace(&mut self, route: &Route) -> Result<(), OsError> {
        self.netlink.replace_route(route).map_err(|source| OsError::Netlink {
            action: format!("add route {}", route_text(route, &self.device)),
            source,
        })
    }

    /// Deletes `route`; one already gone (with its device) is not worth a warning.
    fn delete(&mut self, route: &Route) {
        match self.netlink.delete_route(route) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) || e.raw_os_error() == Some(libc::ENODEV) => {}
            Err(source) => warn!(
                "{}",
                OsError::Netlink {
                    action: format!("delete route {}", route_text(route, &self.device)),
                    source
                }
            ),
        }
    }
}

impl Drop for Routes {
    /// The TUN routes go (they would with the TUN anyway); the fail-closed routes stay.
    fn drop(&mut self) {
        if let Some(index) = self.index {
            for p in std::mem::take(&mut self.prefixes) {
                self.delete(&tun(p, index));
            }
        }
        if self.gateway_table {
            self.clear_gateway_table(false);
        }
    }
}

fn tun(p: Prefix, index: u32) -> Route {
    Route { table: MAIN_TABLE, destination: p, kind: RouteKind::Device(index, None), metric: TUN_METRIC }
}

fn block(p: Prefix) -> Route {
    Route { table: MAIN_TABLE, destination: p, kind: RouteKind::Unreachable, metric: BLOCK_METRIC }
}

fn gateway_route(kind: RouteKind, metric: u32) -> Route {
    Route { table: GATEWAY_TABLE, destination: Prefix::ANY, kind, metric }
}

/// The rules of `plan`: for each peer, its IKE from ports 500 and 4500 and its ESP and AH
/// from our raw sockets (AH's with `IP_HDRINCL` may be looked up as protocol 255) in the main
/// table; then each flow in the gateway-flow table.
fn planned_rules(plan: &GatewayFlows, device: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    if plan.flows.is_empty() {
        return rules;
    }
    let bypass = |ip_protocol, source_port| Rule {
        priority: GATEWAY_BYPASS_PREF,
        table: MAIN_TABLE,
        to: Prefix::ANY,
        ip_protocol: Some(ip_protocol),
        source_port,
        iif: None,
    };
    for peer in &plan.peers {
        let to = Prefix::host(*peer);
        for port in [500, 4500] {
            rules.push(Rule { to, ..bypass(17, Some(port)) });
        }
        for protocol in [50, 51, 255] {
            rules.push(Rule { to, ..bypass(protocol, None) });
        }
    }
    for (remote, protocol) in &plan.flows {
        let rule = Rule {
            priority: GATEWAY_PROTECT_PREF,
            table: GATEWAY_TABLE,
            to: *remote,
            ip_protocol: *protocol,
            source_port: None,
            iif: None,
        };
        // What the data plane hands back (a packet of the flow's protocol that no rule
        // protects or a deny rule exempts, `spd::Spd::leaves_in_clear`) takes the main table:
        // its clear path. Not for a flow to a peer's own address with every protocol.
        let to_peer = plan.peers.iter().any(|a| remote.contains(*a));
        let back = (protocol.is_some() || !to_peer).then(|| Rule {
            priority: GATEWAY_BYPASS_PREF,
            table: MAIN_TABLE,
            iif: Some(device.to_owned()),
            ..rule.clone()
        });
        for rule in [Some(rule), back].into_iter().flatten() {
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
    }
    rules
}

/// A rule as `ip rule` writes it.
fn rule_text(rule: &Rule) -> String {
    let mut text = format!("to {}", rule.to);
    if let Some(device) = &rule.iif {
        text += &format!(" iif {device}");
    }
    if let Some(protocol) = rule.ip_protocol {
        text += &format!(" ipproto {protocol}");
    }
    if let Some(port) = rule.source_port {
        text += &format!(" sport {port}");
    }
    let table = if rule.table == MAIN_TABLE { "main".to_owned() } else { rule.table.to_string() };
    text + &format!(" lookup {table} pref {}", rule.priority)
}

/// A route as `ip route` writes it.
fn route_text(route: &Route, device: &str) -> String {
    let mut text = match route.kind {
        RouteKind::Device(..) => format!("{} dev {device}", route.destination),
        RouteKind::Unreachable => format!("unreachable {}", route.destination),
        RouteKind::Via(gateway, _) => format!("{} via {gateway}", route.destination),
    };
    if route.table != MAIN_TABLE {
        text += &format!(" table {}", route.table);
    }
    text + &format!(" metric {}", route.metric)
}

#[cfg(test)]
mod tests;
