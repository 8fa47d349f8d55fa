//! The host's network interfaces and their IPv4 addresses, read through rtnetlink.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::OsError;
use netlink::Netlink;

/// Every interface of this host (in the daemon's network namespace) by name, with its IPv4
/// addresses: what `ip addr show` lists.
pub fn interfaces() -> Result<BTreeMap<String, Vec<Ipv4Addr>>, OsError> {
    let action = || "list the host's interfaces and addresses".to_owned();
    Netlink::open()
        .and_then(|mut netlink| netlink.addresses())
        .map_err(|source| OsError::Netlink { action: action(), source })
}
