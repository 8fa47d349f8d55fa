//! `display ip routing-table`: the static routes of the configuration (`ip route-static`) in
//! VRP's routing-table layout, with whether each is in the kernel's table.
//!
//! ```text
//! Route Flags: R - relay, D - download to fib
//! ------------------------------------------------------------------------------
//! Routing Tables: Public
//!          Destinations : 1        Routes : 1
//!
//! Destination/Mask    Proto   Pre  Cost      Flags NextHop         Interface
//!
//!   198.51.100.0/24   Static  60   0          RD   192.0.2.2       GigabitEthernet0/0/2
//! ```
//!
//! `D` (downloaded to the forwarding table) marks a route keysteward installed; a route it did
//! not install (one an IPsec policy's TUN route supersedes, or one the kernel refused) shows
//! `R` alone, and a note under the table says why.

use std::fmt::Write as _;

use serde::Serialize;

/// One route of `display ip routing-table`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteRow {
    /// `198.51.100.0/24`.
    pub destination: String,
    /// `Static`.
    pub proto: &'static str,
    /// The VRP preference (the kernel route's metric).
    pub preference: u8,
    /// The cost (0 for a static route).
    pub cost: u32,
    /// `RD` when installed, `R` when not.
    pub flags: &'static str,
    /// The next hop.
    pub next_hop: String,
    /// The interface (VRP name), or empty.
    pub interface: String,
    /// True when the route is in the kernel's main table (protocol 245).
    pub installed: bool,
    /// Why it is not installed, or empty.
    pub reason: String,
}

/// `display ip routing-table`, VRP layout.
pub fn routing_table_text(rows: &[RouteRow]) -> String {
    let mut destinations: Vec<&str> = rows.iter().map(|r| r.destination.as_str()).collect();
    destinations.sort_unstable();
    destinations.dedup();
    let mut out = String::from("Route Flags: R - relay, D - download to fib\n");
    let _ = writeln!(out, "{}", "-".repeat(78));
    out.push_str("Routing Tables: Public\n");
    let _ = writeln!(out, "         Destinations : {:<9}Routes : {}", destinations.len(), rows.len());
    out.push('\n');
    out.push_str("Destination/Mask    Proto   Pre  Cost      Flags NextHop         Interface\n\n");
    for r in rows {
        let line = format!(
            "{:>17}   {:<8}{:<5}{:<10}{:>3}   {:<16}{}",
            r.destination, r.proto, r.preference, r.cost, r.flags, r.next_hop, r.interface
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let notes: Vec<&RouteRow> = rows.iter().filter(|r| !r.installed).collect();
    if !notes.is_empty() {
        out.push('\n');
        for r in notes {
            let _ = writeln!(out, "  {} via {} not installed: {}", r.destination, r.next_hop, r.reason);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(destination: &str, installed: bool) -> RouteRow {
        RouteRow {
            destination: destination.into(),
            proto: "Static",
            preference: 60,
            cost: 0,
            flags: if installed { "RD" } else { "R" },
            next_hop: "192.0.2.2".into(),
            interface: "GigabitEthernet0/0/2".into(),
            installed,
            reason: if installed { String::new() } else { "protected by ipsec policy policy1 1".into() },
        }
    }

    /// The columns of VRP's table, a route per line, the ones not installed explained.
    #[test]
    fn the_vrp_layout() {
        let text = routing_table_text(&[row("198.51.100.0/24", true), row("10.2.2.0/24", false)]);
        assert_eq!(
            text,
            "\
Route Flags: R - relay, D - download to fib
------------------------------------------------------------------------------
Routing Tables: Public
         Destinations : 2        Routes : 2

Destination/Mask    Proto   Pre  Cost      Flags NextHop         Interface

  198.51.100.0/24   Static  60   0          RD   192.0.2.2       GigabitEthernet0/0/2
      10.2.2.0/24   Static  60   0           R   192.0.2.2       GigabitEthernet0/0/2

  10.2.2.0/24 via 192.0.2.2 not installed: protected by ipsec policy policy1 1
"
        );
    }
}
