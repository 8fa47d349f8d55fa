//! `ip route-static`: the operator's static routes, installed through rtnetlink (the
//! `netlink` crate; no program is spawned) with keysteward's route protocol
//! ([`netlink::PROTOCOL`], `ip route show proto 245`).
//!
//! ```text
//! 198.51.100.0/24 via 192.0.2.2 dev eth1 proto 245 metric 60
//! ```
//!
//! The VRP preference (default 60) is the route's metric: lower wins in both. The routes live
//! as long as the configuration says them: a reload adds and removes them, an orderly stop
//! and the daemon's end remove them, as the TUN routes go with the TUN; a route an earlier run
//! left after a crash is removed at start ([`super::routes::Routes::start`]) and installed
//! again from the configuration. A route is added, never replaced: a route of the same prefix
//! and metric that is already there (the operator's) stays, and ours is reported as not
//! installed. A route the kernel refuses (a next hop it cannot reach) is logged and shown as
//! not installed by `display ip routing-table`; it does not stop the daemon, as an unreachable
//! next hop leaves a USG's static route inactive.
//!
//! A static route whose destination an IPsec policy protects (on a USG, the route that steers
//! the traffic into the policy) is never installed: the TUN route takes that traffic here,
//! and a static route as specific or more would carry it in clear (`vrp::validate::
//! protecting_policy`; `check` says so).

use std::net::Ipv4Addr;

use esp::Prefix;
use netlink::{Netlink, Route, RouteKind, MAIN_TABLE};
use tracing::{info, warn};

use super::OsError;

/// One `ip route-static` as the daemon applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    /// The destination prefix.
    pub destination: Prefix,
    /// The next hop.
    pub next_hop: Ipv4Addr,
    /// The Linux device (after `--interface-map`) when the route names an interface.
    pub device: Option<String>,
    /// The interface for displays: the VRP name the route gives, or the configured interface
    /// whose subnet holds the next hop, or empty.
    pub interface: String,
    /// The VRP preference, installed as the metric.
    pub preference: u8,
    /// The policy entry (`policy1 1`) whose TUN route takes this traffic: never installed.
    pub superseded_by: Option<String>,
}

/// What became of one static route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// In the kernel's main table.
    Installed(Route),
    /// Not installed, and why (for `display ip routing-table` and the log).
    NotInstalled(String),
}

/// The configuration's static routes and what became of each.
pub struct StaticRoutes {
    netlink: Netlink,
    routes: Vec<(StaticRoute, State)>,
}

impl StaticRoutes {
    /// No routes yet.
    pub fn new() -> Result<Self, OsError> {
        let netlink =
            Netlink::open().map_err(|source| OsError::Netlink { action: "open rtnetlink".into(), source })?;
        Ok(Self { netlink, routes: Vec::new() })
    }

    /// Brings the installed routes to `wanted`: the routes no longer configured are removed,
    /// the new ones added; those configured before and still are stay as they are.
    pub fn apply(&mut self, wanted: Vec<StaticRoute>) {
        let (kept, gone): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.routes).into_iter().partition(|(r, _)| wanted.contains(r));
        for (route, state) in gone {
            self.remove(&route, &state);
        }
        self.routes = kept;
        for route in wanted {
            if self.routes.iter().any(|(r, _)| *r == route) {
                continue;
            }
            let state = self.install(&route);
            self.routes.push((route, state));
        }
    }

    /// The routes and what became of each, in configuration order of their arrival.
    pub fn routes(&self) -> &[(StaticRoute, State)] {
        &self.routes
    }

    /// Removes every installed route (an orderly stop; dropping does the same).
    pub fn shutdown(&mut self) {
        for (route, state) in std::mem::take(&mut self.routes) {
            self.remove(&route, &state);
        }
    }

    fn install(&mut self, route: &StaticRoute) -> State {
        let text = route_text(route);
        if let Some(policy) = &route.superseded_by {
            let why = format!(
                "traffic to {} is protected by ipsec policy {policy}: its TUN route takes it",
                route.destination
            );
            info!("static route {text} not installed: {why}");
            return State::NotInstalled(why);
        }
        let device = match &route.device {
            Some(name) => match self.netlink.link_index(name) {
                Ok(index) => Some(index),
                Err(e) => return self.refused(&text, format!("no device {name}: {e}")),
            },
            None => None,
        };
        let kernel = Route {
            table: MAIN_TABLE,
            destination: route.destination,
            kind: RouteKind::Via(route.next_hop, device),
            metric: u32::from(route.preference),
        };
        match self.netlink.add_route(&kernel) {
            Ok(()) => {
                info!("static route {text} installed (proto {})", netlink::PROTOCOL);
                State::Installed(kernel)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.refused(
                &text,
                format!("a route for {} with metric {} exists already", route.destination, route.preference),
            ),
            Err(e) => self.refused(&text, format!("the kernel refused it: {e}")),
        }
    }

    fn refused(&self, text: &str, why: String) -> State {
        warn!("static route {text} not installed: {why}");
        State::NotInstalled(why)
    }

    fn remove(&mut self, route: &StaticRoute, state: &State) {
        let State::Installed(kernel) = state else { return };
        match self.netlink.delete_route(kernel) {
            Ok(()) => info!("static route {} removed", route_text(route)),
            // Gone with its device, or by hand: nothing to do.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) || e.raw_os_error() == Some(libc::ENODEV) => {}
            Err(source) => warn!(
                "{}",
                OsError::Netlink { action: format!("delete route {}", route_text(route)), source }
            ),
        }
    }
}

impl Drop for StaticRoutes {
    /// The routes go with the daemon, as the TUN routes do.
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A route as `ip route` writes it: `198.51.100.0/24 via 192.0.2.2 dev eth1 metric 60`.
fn route_text(route: &StaticRoute) -> String {
    let device = route.device.as_ref().map(|d| format!(" dev {d}")).unwrap_or_default();
    format!("{} via {}{device} metric {}", route.destination, route.next_hop, route.preference)
}
