//! The routes and rules through rtnetlink, in a network namespace of the test's own: each
//! test runs itself again under `unshare --net` (root; as another user it says so and
//! passes), so nothing it makes can reach the host's routing, and everything goes with the
//! namespace when the child ends, failed or not. `ip` only sets the scene and reads the
//! kernel's answer, as an operator would.
//!
//! The scene: a public interface `ksfcpub` (198.51.100.1/24, one end of a veth pair) carrying the
//! default route, as on a gateway whose protected traffic would otherwise leave that way.

use std::net::Ipv4Addr;
use std::process::Command;

use super::*;
use crate::os::tun::open_tun;

const CHILD: &str = "KEYSTEWARD_ROUTES_TEST_IN_NAMESPACE";
const TUN: &str = "ksfc0";

/// Runs the test `name` again in a fresh network namespace; returns true in the child (the
/// caller then does the work), false in the parent after the child passed.
fn in_own_namespace(name: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if !root.unwrap_or(false) {
        eprintln!("skipped: needs root for a network namespace (CI runs it as root)");
        return false;
    }
    let out = Command::new("unshare")
        .arg("--net")
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("unshare runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "in its namespace, {name} failed:\n{text}");
    assert!(text.contains("1 passed"), "{text}");
    false
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("ip(8) runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ip {}: {text}", args.join(" "));
    text
}

/// `ip route get ARGS`: where the kernel would send the packet, or why it would not.
fn route_get(args: &[&str]) -> String {
    let out = Command::new("ip").args(["route", "get"]).args(args).output().expect("ip(8) runs");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Loopback up and the public interface with the default route.
fn scene() {
    ip(&["link", "set", "lo", "up"]);
    ip(&["link", "add", "ksfcpub", "type", "veth", "peer", "name", "ksfcwire"]);
    ip(&["addr", "add", "198.51.100.1/24", "dev", "ksfcpub"]);
    ip(&["link", "set", "ksfcwire", "up"]);
    ip(&["link", "set", "ksfcpub", "up"]);
    ip(&["route", "add", "default", "via", "198.51.100.2"]);
}

fn prefix(text: &str) -> Prefix {
    let (address, length) = text.split_once('/').unwrap();
    Prefix::new(address.parse().unwrap(), length.parse().unwrap())
}

/// Lines of `ip route show table all proto 245`: keysteward's routes (`ip` leaves out the
/// protocol it filtered on).
fn ours() -> Vec<String> {
    ip(&["route", "show", "table", "all", "proto", "245"]).lines().map(|l| l.trim().to_owned()).collect()
}

/// Issue 14: the TUN is up with its MTU and `accept_local` through rtnetlink (the daemon
/// writes nothing under /proc/sys, which the test only reads), and the host's addresses come
/// from the kernel without `ip`.
#[test]
fn tun_link_state_mtu_accept_local_and_addresses_through_netlink() {
    if !in_own_namespace("os::routes::tests::tun_link_state_mtu_accept_local_and_addresses_through_netlink") {
        return;
    }
    scene();
    let device = open_tun(TUN).unwrap();
    let link = ip(&["link", "show", TUN]);
    assert!(link.contains("mtu 1400") && link.contains(",UP"), "{link}");
    let accept_local =
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{TUN}/accept_local")).unwrap();
    assert_eq!(accept_local.trim(), "1");
    let mut netlink = Netlink::open().unwrap();
    let index = netlink.link_index(TUN).unwrap();
    assert!(netlink.accept_local(index).unwrap());
    let interfaces = crate::os::host::interfaces().unwrap();
    assert_eq!(interfaces["ksfcpub"], [Ipv4Addr::new(198, 51, 100, 1)]);
    assert_eq!(interfaces["lo"], [Ipv4Addr::LOCALHOST]);
    assert!(interfaces[TUN].is_empty() && interfaces["ksfcwire"].is_empty());
    drop(device);
}

/// Issue 13, fail closed: while the TUN exists a protected prefix goes into it; once the TUN
/// is gone (as when the process dies: the kernel deletes it and its routes) the prefix is
/// unreachable instead of following the default route out of the public interface. Before,
/// only the TUN route existed and `ip route get` answered `via 198.51.100.2 dev ksfcpub`.
#[test]
fn a_protected_prefix_is_unreachable_once_the_tun_is_gone() {
    if !in_own_namespace("os::routes::tests::a_protected_prefix_is_unreachable_once_the_tun_is_gone") {
        return;
    }
    scene();
    let device = open_tun(TUN).unwrap();
    let routes = Routes::start(TUN, [prefix("10.2.2.0/24")], &[], &GatewayFlows::default()).unwrap();
    let get = route_get(&["10.2.2.2"]);
    assert!(get.contains(&format!("dev {TUN}")), "{get}");
    // An operator's backup route for the same prefix, with any larger metric, does not win
    // over the fail-closed route either.
    ip(&["route", "add", "10.2.2.0/24", "via", "198.51.100.3", "metric", "10"]);
    std::mem::forget(routes); // the process "dies": nothing of it runs any more
    drop(device);
    let get = route_get(&["10.2.2.2"]);
    assert!(get.contains("unreachable") || get.contains("No route to host"), "{get}");
    assert!(!get.contains("ksfcpub"), "protected traffic would leave in clear: {get}");
    assert_eq!(ours(), ["unreachable 10.2.2.0/24 metric 1"]);
    // Traffic outside the protected prefix still takes the default route.
    assert!(route_get(&["10.3.3.3"]).contains("via 198.51.100.2 dev ksfcpub"));
}

/// Issue 13: a start after an earlier run adopts its fail-closed routes in place (one route
/// per prefix, never two, never a moment without one), holds those of template flows, removes
/// those the configuration no longer protects, and never touches the operator's routes, even
/// an unreachable route of the operator's for a prefix keysteward also protects.
#[test]
fn a_start_adopts_what_an_earlier_run_left_and_touches_nothing_else() {
    if !in_own_namespace(
        "os::routes::tests::a_start_adopts_what_an_earlier_run_left_and_touches_nothing_else",
    ) {
        return;
    }
    scene();
    ip(&["route", "add", "unreachable", "10.2.2.0/24", "metric", "7"]);
    ip(&["route", "add", "10.9.0.0/16", "via", "198.51.100.9"]);
    let device = open_tun(TUN).unwrap();
    let earlier = Routes::start(
        TUN,
        ["10.2.2.0/24", "10.4.4.0/24", "10.5.5.0/24"].map(prefix),
        &[],
        &GatewayFlows::default(),
    )
    .unwrap();
    std::mem::forget(earlier);
    drop(device);
    assert_eq!(ours().len(), 3, "{:?}", ours());

    let device = open_tun(TUN).unwrap();
    // 10.5.5.0/24 left the configuration; 10.4.4.0/24 is inside a template's range now.
    let mut routes =
        Routes::start(TUN, [prefix("10.2.2.0/24")], &[prefix("10.4.0.0/16")], &GatewayFlows::default())
            .unwrap();
    assert_eq!(
        ours(),
        [
            format!("10.2.2.0/24 dev {TUN} scope link"),
            "unreachable 10.2.2.0/24 metric 1".to_owned(),
            "unreachable 10.4.4.0/24 metric 1".to_owned(),
        ]
    );
    let operator = ip(&["route", "show", "table", "all"]);
    assert!(operator.contains("unreachable 10.2.2.0/24 metric 7"), "{operator}");
    assert!(operator.contains("10.9.0.0/16 via 198.51.100.9"), "{operator}");
    assert_eq!(routes.guarded(), 2);

    // A template flow to the held prefix comes up and goes: its route goes with it.
    routes.add_one(prefix("10.4.4.0/24")).unwrap();
    assert!(route_get(&["10.4.4.4"]).contains(&format!("dev {TUN}")));
    routes.remove_one(prefix("10.4.4.0/24"));
    assert!(route_get(&["10.4.4.4"]).contains("via 198.51.100.2"), "an unprotected flow is not blocked");

    // An orderly shutdown removes ours and only ours.
    assert_eq!(routes.shutdown(false), 1);
    assert!(ours().is_empty(), "{:?}", ours());
    let operator = ip(&["route", "show", "table", "all"]);
    assert!(operator.contains("unreachable 10.2.2.0/24 metric 7"), "{operator}");
    assert!(operator.contains("10.9.0.0/16 via 198.51.100.9"), "{operator}");
    drop(device);
}

/// `ipsec fail-closed keep`: an orderly shutdown removes the TUN routes and keeps the
/// fail-closed ones; a reload that drops a prefix removes its routes, and one that adds a
/// prefix and fails on the way leaves the routes as they were.
#[test]
fn shutdown_keeps_on_request_and_reloads_add_and_remove() {
    if !in_own_namespace("os::routes::tests::shutdown_keeps_on_request_and_reloads_add_and_remove") {
        return;
    }
    scene();
    let device = open_tun(TUN).unwrap();
    let mut routes = Routes::start(TUN, [prefix("10.2.2.0/24")], &[], &GatewayFlows::default()).unwrap();
    routes.add_missing(&[prefix("10.2.2.0/24"), prefix("10.6.6.0/24")]).unwrap();
    assert_eq!(ours().len(), 4, "{:?}", ours());
    routes.remove_except(&[prefix("10.6.6.0/24")], &[]);
    assert_eq!(
        ours(),
        [format!("10.6.6.0/24 dev {TUN} scope link"), "unreachable 10.6.6.0/24 metric 1".to_owned()]
    );
    assert_eq!(routes.shutdown(true), 1);
    assert_eq!(ours(), ["unreachable 10.6.6.0/24 metric 1"]);
    drop(routes);
    assert_eq!(ours(), ["unreachable 10.6.6.0/24 metric 1"]);
    drop(device);
}

/// Flows to a peer gateway's own address (here ICMP to the peer, which `ip route get` can
/// ask about): the rules (proto 245) keep our IKE, ESP and AH to
/// the peer in the main table and send the flow to the gateway-flow table, whose TUN route is
/// backed by an unreachable default; applying the plan again adds no duplicate, an empty plan
/// removes them, and without the TUN the flow is unreachable while our own IKE to the peer
/// still leaves.
#[test]
fn gateway_flows_fail_closed_and_are_idempotent() {
    if !in_own_namespace("os::routes::tests::gateway_flows_fail_closed_and_are_idempotent") {
        return;
    }
    scene();
    let peer = Ipv4Addr::new(198, 51, 100, 2);
    let plan = GatewayFlows {
        peers: vec![peer],
        flows: vec![(Prefix::host(peer), Some(1))],
        source: Some("198.51.100.1".into()),
    };
    let device = open_tun(TUN).unwrap();
    let mut routes = Routes::start(TUN, [], &[], &plan).unwrap();
    let rules = ip(&["rule", "show"]);
    routes.set_gateway_flows(&plan).unwrap();
    assert_eq!(ip(&["rule", "show"]), rules, "applied twice, nothing changes");
    assert!(rules.contains("to 198.51.100.2 ipproto icmp lookup 4500 proto 245"), "{rules}");
    assert!(rules.contains("to 198.51.100.2 ipproto udp sport 500 lookup main proto 245"), "{rules}");
    // What the data plane hands back from the TUN takes the main table (issue 15).
    assert!(
        rules.contains(&format!("to 198.51.100.2 iif {TUN} ipproto icmp lookup main proto 245")),
        "{rules}"
    );
    assert_eq!(rules.lines().filter(|l| l.contains("proto 245")).count(), 7, "{rules}");
    let icmp = route_get(&["198.51.100.2", "ipproto", "icmp"]);
    assert!(icmp.contains(&format!("dev {TUN}")), "{icmp}\n{rules}\n{:?}", ours());
    std::mem::forget(routes);
    drop(device);
    let icmp = route_get(&["198.51.100.2", "ipproto", "icmp"]);
    assert!(icmp.contains("unreachable") || icmp.contains("No route to host"), "{icmp}");
    let ike = route_get(&["198.51.100.2", "ipproto", "udp", "sport", "500"]);
    assert!(ike.contains("dev ksfcpub"), "{ike}");

    let device = open_tun(TUN).unwrap();
    let mut routes = Routes::start(TUN, [], &[], &plan).unwrap();
    assert_eq!(ip(&["rule", "show"]), rules, "a restart adopts the rules");
    // `ipsec fail-closed keep`: an orderly stop keeps the rules and the unreachable default.
    assert_eq!(routes.shutdown(true), 1);
    assert_eq!(ip(&["rule", "show"]), rules);
    assert_eq!(ours(), ["unreachable default table 4500 metric 1"]);
    // A configuration without such flows removes them.
    routes.set_gateway_flows(&GatewayFlows::default()).unwrap();
    assert!(!ip(&["rule", "show"]).contains("proto 245"));
    assert!(ours().is_empty(), "{:?}", ours());
    // An orderly stop without `keep` removes the rules and routes it made.
    let mut routes = Routes::start(TUN, [], &[], &plan).unwrap();
    assert_eq!(ip(&["rule", "show"]), rules);
    assert_eq!(routes.shutdown(false), 1);
    assert!(!ip(&["rule", "show"]).contains("proto 245"));
    assert!(ours().is_empty(), "{:?}", ours());
    drop(device);
}

/// Issue 15: a flow routed by its protocol (`rule permit udp … destination-port eq 1701`):
/// UDP to the remote prefix goes into the TUN, other protocols keep the clear path, and what
/// the data plane hands back through the TUN takes the clear path too; once the TUN is gone
/// UDP to the prefix is unreachable while the rest still leaves in clear.
#[test]
fn a_flow_routed_by_protocol_leaves_the_rest_of_the_prefix_in_clear() {
    if !in_own_namespace(
        "os::routes::tests::a_flow_routed_by_protocol_leaves_the_rest_of_the_prefix_in_clear",
    ) {
        return;
    }
    scene();
    assert!(Command::new("sysctl").args(["-qw", "net.ipv4.ip_forward=1"]).status().unwrap().success());
    let plan = GatewayFlows { peers: vec![], flows: vec![(prefix("10.2.2.0/24"), Some(17))], source: None };
    let device = open_tun(TUN).unwrap();
    // An earlier run protected the whole prefix (`rule permit ip …`) and left its routes.
    std::mem::forget(Routes::start(TUN, [prefix("10.2.2.0/24")], &[], &GatewayFlows::default()).unwrap());
    let routes = Routes::start(TUN, [], &[], &plan).unwrap();
    assert_eq!(
        ours(),
        ["default dev ksfc0 table 4500 scope link", "unreachable default table 4500 metric 1"]
    );
    let rules = ip(&["rule", "show"]);
    assert!(rules.contains("to 10.2.2.0/24 ipproto udp lookup 4500 proto 245"), "{rules}");
    assert!(
        rules.contains(&format!("to 10.2.2.0/24 iif {TUN} ipproto udp lookup main proto 245")),
        "{rules}"
    );
    let udp = route_get(&["10.2.2.2", "ipproto", "udp", "dport", "1701"]);
    assert!(udp.contains(&format!("dev {TUN}")), "{udp}\n{rules}");
    let tcp = route_get(&["10.2.2.2", "ipproto", "tcp"]);
    assert!(tcp.contains("via 198.51.100.2 dev ksfcpub"), "{tcp}");
    // A packet the data plane wrote back into the TUN is forwarded by the main table.
    let back = route_get(&["10.2.2.2", "from", "10.1.1.2", "iif", TUN, "ipproto", "udp", "dport", "9999"]);
    assert!(back.contains("via 198.51.100.2 dev ksfcpub"), "{back}\n{rules}");
    std::mem::forget(routes);
    drop(device);
    let udp = route_get(&["10.2.2.2", "ipproto", "udp", "dport", "1701"]);
    assert!(udp.contains("unreachable") || udp.contains("No route to host"), "{udp}");
    assert!(route_get(&["10.2.2.2", "ipproto", "tcp"]).contains("dev ksfcpub"));
}
