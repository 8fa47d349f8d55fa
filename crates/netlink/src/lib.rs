//! keysteward's rtnetlink layer: a small synchronous client (`NETLINK_ROUTE`, the kernel interface `ip(8)` itself
//! uses): routes, policy rules, link state, MTU and per-device IPv4 settings, and the host's
//! addresses. Messages are built and parsed by `netlink-packet-route`; the socket is
//! `netlink-sys`'s. Each request waits for the kernel's acknowledgement, so an error names
//! the request that failed; a dump reads until the kernel says it is done.
//!
//! Every route and rule keysteward adds carries [`PROTOCOL`] (the route protocol field
//! `ip route` shows as `proto 245`): that is how the daemon finds its own routes from an
//! earlier run and never touches the operator's.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    AfSpecInet, AfSpecUnspec, InetDevConf, LinkAttribute, LinkFlags, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage, RulePortRange};
use netlink_packet_route::{AddressFamily, IpProtocol, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use spd::Prefix;

/// The route protocol number of every route and rule keysteward adds (`proto 245`).
pub const PROTOCOL: u8 = 245;

/// The main routing table.
pub const MAIN_TABLE: u32 = RouteHeader::RT_TABLE_MAIN as u32;

/// What a route does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Out through the device of that index (`dev ks0`), with this source address for the
    /// host's own packets, if any (`src`).
    Device(u32, Option<Ipv4Addr>),
    /// Refused: the sender gets "host unreachable" (`unreachable`).
    Unreachable,
    /// Through a next hop (`via 192.0.2.2`), out of the device of that index when given
    /// (`dev eth1`): an `ip route-static`.
    Via(Ipv4Addr, Option<u32>),
}

/// One IPv4 route of keysteward's: a prefix in a table, what it does, its metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The table (`main` is 254).
    pub table: u32,
    /// The destination.
    pub destination: Prefix,
    /// What the route does.
    pub kind: RouteKind,
    /// Its metric (`metric N`; lower wins among routes of the same prefix).
    pub metric: u32,
}

/// One IPv4 policy rule of keysteward's: `[iif DEV] to PREFIX [ipproto P] [sport N] lookup
/// TABLE pref N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `pref`.
    pub priority: u32,
    /// `lookup`.
    pub table: u32,
    /// `to`.
    pub to: Prefix,
    /// `ipproto`.
    pub ip_protocol: Option<u8>,
    /// `sport`.
    pub source_port: Option<u16>,
    /// `iif`: only packets that came in on this device.
    pub iif: Option<String>,
}

/// An open rtnetlink socket.
pub struct Netlink {
    socket: Socket,
    sequence: u32,
    /// Datagrams read from the kernel (the tests count them).
    #[cfg(test)]
    reads: usize,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Self {
            socket,
            sequence: 0,
            #[cfg(test)]
            reads: 0,
        })
    }

    /// The index of the device called `name`.
    pub fn link_index(&mut self, name: &str) -> io::Result<u32> {
        let mut message = LinkMessage::default();
        message.attributes.push(LinkAttribute::IfName(name.to_owned()));
        let replies = self.exchange(RouteNetlinkMessage::GetLink(message), NLM_F_REQUEST)?;
        replies
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(link.header.index),
                _ => None,
            })
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such device"))
    }

    /// Sets the device up with this MTU (`ip link set DEV mtu MTU up`).
    pub fn set_link_up(&mut self, index: u32, mtu: u32) -> io::Result<()> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        message.attributes.push(LinkAttribute::Mtu(mtu));
        self.request(RouteNetlinkMessage::SetLink(message), 0)
    }

    /// Turns on the device's IPv4 `accept_local` (what `/proc/sys/net/ipv4/conf/DEV/accept_local`
    /// holds), through `IFLA_AF_SPEC`/`IFLA_INET_CONF` rather than a file under `/proc/sys`.
    pub fn set_accept_local(&mut self, index: u32) -> io::Result<()> {
        let mut conf = InetDevConf::default();
        conf.accept_local = 1;
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.attributes.push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![
            AfSpecInet::DevConfRequest(conf),
        ])]));
        self.request(RouteNetlinkMessage::SetLink(message), 0)
    }

    /// The device's IPv4 `accept_local`, as the kernel reports it.
    pub fn accept_local(&mut self, index: u32) -> io::Result<bool> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        let replies = self.exchange(RouteNetlinkMessage::GetLink(message), NLM_F_REQUEST)?;
        for reply in replies {
            let RouteNetlinkMessage::NewLink(link) = reply else { continue };
            for attribute in link.attributes {
                let LinkAttribute::AfSpecUnspec(specs) = attribute else { continue };
                for spec in specs {
                    let AfSpecUnspec::Inet(inet) = spec else { continue };
                    for entry in inet {
                        if let AfSpecInet::DevConf(conf) = entry {
                            return Ok(conf.accept_local != 0);
                        }
                    }
                }
            }
        }
        Err(io::Error::new(io::ErrorKind::NotFound, "the kernel reported no IPv4 settings"))
    }

    /// Adds `route`, or replaces the route of the same table, prefix and metric.
    pub fn replace_route(&mut self, route: &Route) -> io::Result<()> {
        self.request(RouteNetlinkMessage::NewRoute(route_message(route)), NLM_F_CREATE | NLM_F_REPLACE)
    }

    /// Adds or replaces each of `routes`, as [`Netlink::replace_route`] does, in one send:
    /// the kernel applies them in order. The result of each, in order. Only the last asks
    /// for an acknowledgement: the kernel answers a refusal whatever the flags, in order, so
    /// once the last is answered every earlier one without a refusal went in, and a send
    /// that succeeds whole costs one datagram read (a hub replaces two routes per branch).
    pub fn replace_routes(&mut self, routes: &[Route]) -> Vec<io::Result<()>> {
        let first = self.sequence.wrapping_add(1);
        let mut buffer = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            self.sequence = self.sequence.wrapping_add(1);
            let mut header = NetlinkHeader::default();
            let ack = if i + 1 == routes.len() { NLM_F_ACK } else { 0 };
            header.flags = NLM_F_REQUEST | ack | NLM_F_CREATE | NLM_F_REPLACE;
            header.sequence_number = self.sequence;
            let message = RouteNetlinkMessage::NewRoute(route_message(route));
            let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
            packet.finalize();
            let start = buffer.len().next_multiple_of(4);
            buffer.resize(start + packet.buffer_len(), 0);
            packet.serialize(&mut buffer[start..]);
        }
        let mut results: Vec<Option<io::Result<()>>> = routes.iter().map(|_| None).collect();
        let Some(last) = routes.len().checked_sub(1) else { return Vec::new() };
        let mut failed = self.socket.send(&buffer, 0).err();
        while failed.is_none() && results[last].is_none() {
            #[cfg(test)]
            {
                self.reads += 1;
            }
            // One read, no peek: an answer to these requests (an acknowledgement, or a
            // refusal quoting its request) is far shorter than the room; a cut one fails to
            // decode, below.
            let mut room = [0u8; 8192];
            let read = self.socket.recv(&mut &mut room[..], 0).map(|n| (&room[..n.min(room.len())], ()));
            match read {
                // An undecodable reply ends the wait: the acknowledgements it held (or hid)
                // would otherwise be waited for forever, blocking the IKE loop.
                Ok((bytes, _)) if !acknowledgements(bytes, first, &mut results) => {
                    failed = Some(io::Error::new(io::ErrorKind::InvalidData, "undecodable netlink reply"));
                }
                Ok(_) => {}
                Err(e) => failed = Some(e),
            }
        }
        if failed.is_none() {
            for result in results.iter_mut().filter(|r| r.is_none()) {
                *result = Some(Ok(()));
            }
        }
        let failure = |e: &io::Error| io::Error::new(e.kind(), e.to_string());
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(failed.as_ref().map_or_else(|| io::ErrorKind::Other.into(), failure)))
            })
            .collect()
    }

    /// Adds `route`; fails with `AlreadyExists` (EEXIST) when the table has a route of the same
    /// prefix and metric, which stays as it is (it may be the operator's).
    pub fn add_route(&mut self, route: &Route) -> io::Result<()> {
        self.request(RouteNetlinkMessage::NewRoute(route_message(route)), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Deletes `route`.
    pub fn delete_route(&mut self, route: &Route) -> io::Result<()> {
        self.request(RouteNetlinkMessage::DelRoute(route_message(route)), 0)
    }

    /// keysteward's IPv4 routes ([`PROTOCOL`]) in `table`.
    pub fn routes(&mut self, table: u32) -> io::Result<Vec<Route>> {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        let replies = self.exchange(RouteNetlinkMessage::GetRoute(message), NLM_F_REQUEST | NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(route) => parse_route(&route),
                _ => None,
            })
            .filter(|route| route.table == table)
            .collect())
    }

    /// Adds `rule`.
    pub fn add_rule(&mut self, rule: &Rule) -> io::Result<()> {
        self.request(RouteNetlinkMessage::NewRule(rule_message(rule)), NLM_F_CREATE)
    }

    /// Deletes `rule`.
    pub fn delete_rule(&mut self, rule: &Rule) -> io::Result<()> {
        self.request(RouteNetlinkMessage::DelRule(rule_message(rule)), 0)
    }

    /// keysteward's IPv4 policy rules ([`PROTOCOL`]).
    pub fn rules(&mut self) -> io::Result<Vec<Rule>> {
        let mut message = RuleMessage::default();
        message.header.family = AddressFamily::Inet;
        let replies = self.exchange(RouteNetlinkMessage::GetRule(message), NLM_F_REQUEST | NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRule(rule) => parse_rule(&rule),
                _ => None,
            })
            .collect())
    }

    /// Every device by name, with its IPv4 addresses (`ip addr show`).
    pub fn addresses(&mut self) -> io::Result<BTreeMap<String, Vec<Ipv4Addr>>> {
        let links =
            self.exchange(RouteNetlinkMessage::GetLink(LinkMessage::default()), NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut names = BTreeMap::new();
        for link in links {
            let RouteNetlinkMessage::NewLink(link) = link else { continue };
            for attribute in link.attributes {
                if let LinkAttribute::IfName(name) = attribute {
                    names.insert(link.header.index, name);
                }
            }
        }
        let mut request = AddressMessage::default();
        request.header.family = AddressFamily::Inet;
        let addresses =
            self.exchange(RouteNetlinkMessage::GetAddress(request), NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut interfaces: BTreeMap<String, Vec<Ipv4Addr>> =
            names.values().map(|n| (n.clone(), Vec::new())).collect();
        for address in addresses {
            let RouteNetlinkMessage::NewAddress(address) = address else { continue };
            let Some(name) = names.get(&address.header.index) else { continue };
            // IFA_LOCAL is the interface's own address; IFA_ADDRESS the peer's on a
            // point-to-point link, and the same as IFA_LOCAL elsewhere.
            let local = address.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(IpAddr::V4(a)) => Some(*a),
                _ => None,
            });
            let any = address.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(IpAddr::V4(a)) => Some(*a),
                _ => None,
            });
            if let (Some(a), Some(list)) = (local.or(any), interfaces.get_mut(name)) {
                list.push(a);
            }
        }
        Ok(interfaces)
    }

    /// Sends `message` and waits for the kernel's acknowledgement.
    fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.exchange(message, NLM_F_REQUEST | NLM_F_ACK | flags).map(drop)
    }

    /// Sends `message` and reads the replies up to the acknowledgement or the end of a dump;
    /// a refusal is the kernel's error number.
    fn exchange(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buffer = vec![0; packet.buffer_len()];
        packet.serialize(&mut buffer);
        self.socket.send(&buffer, 0)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut replies = Vec::new();
        loop {
            let (bytes, _) = self.socket.recv_from_full()?;
            let mut offset = 0;
            while offset < bytes.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[offset..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let length = reply.header.length as usize;
                offset += length.max(1).next_multiple_of(4);
                if reply.header.sequence_number != self.sequence {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(error) => match error.code {
                        None => return Ok(replies),
                        Some(_) => return Err(error.to_io()),
                    },
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(inner) => {
                        replies.push(inner);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(replies);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Fills in `results` (request `first` + i at index i) from the acknowledgements in `bytes`;
/// false when a message in `bytes` cannot be decoded.
fn acknowledgements(bytes: &[u8], first: u32, results: &mut [Option<io::Result<()>>]) -> bool {
    let mut offset = 0;
    while offset < bytes.len() {
        let Ok(reply) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[offset..]) else {
            return false;
        };
        offset += (reply.header.length as usize).max(1).next_multiple_of(4);
        let index = reply.header.sequence_number.wrapping_sub(first) as usize;
        if let (NetlinkPayload::Error(error), Some(slot)) = (reply.payload, results.get_mut(index)) {
            *slot = Some(error.code.map_or(Ok(()), |_| Err(error.to_io())));
        }
    }
    true
}

fn route_message(route: &Route) -> RouteMessage {
    let mut message = RouteMessage::default();
    let header = &mut message.header;
    header.address_family = AddressFamily::Inet;
    header.destination_prefix_length = route.destination.length();
    header.table = u8::try_from(route.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    header.protocol = RouteProtocol::from(PROTOCOL);
    let attributes = &mut message.attributes;
    attributes.push(RouteAttribute::Table(route.table));
    if route.destination.length() > 0 {
        attributes.push(RouteAttribute::Destination(RouteAddress::Inet(route.destination.address())));
    }
    attributes.push(RouteAttribute::Priority(route.metric));
    match route.kind {
        RouteKind::Device(index, source) => {
            message.header.kind = RouteType::Unicast;
            message.header.scope = RouteScope::Link;
            attributes.push(RouteAttribute::Oif(index));
            if let Some(source) = source {
                attributes.push(RouteAttribute::PrefSource(RouteAddress::Inet(source)));
            }
        }
        RouteKind::Unreachable => {
            message.header.kind = RouteType::Unreachable;
            message.header.scope = RouteScope::Universe;
        }
        RouteKind::Via(gateway, device) => {
            message.header.kind = RouteType::Unicast;
            message.header.scope = RouteScope::Universe;
            attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
            if let Some(index) = device {
                attributes.push(RouteAttribute::Oif(index));
            }
        }
    }
    message
}

fn parse_route(message: &RouteMessage) -> Option<Route> {
    if message.header.protocol != RouteProtocol::from(PROTOCOL)
        || message.header.address_family != AddressFamily::Inet
    {
        return None;
    }
    let mut table = u32::from(message.header.table);
    let (mut destination, mut oif, mut source, mut metric) = (Ipv4Addr::UNSPECIFIED, None, None, 0);
    let mut gateway = None;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(a)) => destination = *a,
            RouteAttribute::Oif(index) => oif = Some(*index),
            RouteAttribute::PrefSource(RouteAddress::Inet(a)) => source = Some(*a),
            RouteAttribute::Priority(m) => metric = *m,
            RouteAttribute::Gateway(RouteAddress::Inet(a)) => gateway = Some(*a),
            _ => {}
        }
    }
    let kind = match (message.header.kind, oif) {
        (RouteType::Unreachable, _) => RouteKind::Unreachable,
        (RouteType::Unicast, oif) if gateway.is_some() => RouteKind::Via(gateway?, oif),
        (RouteType::Unicast, Some(index)) => RouteKind::Device(index, source),
        _ => return None,
    };
    let destination = Prefix::new(destination, message.header.destination_prefix_length);
    Some(Route { table, destination, kind, metric })
}

fn rule_message(rule: &Rule) -> RuleMessage {
    let mut message = RuleMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.dst_len = rule.to.length();
    message.header.table = u8::try_from(rule.table).unwrap_or(0);
    message.header.action = RuleAction::ToTable;
    let attributes = &mut message.attributes;
    attributes.push(RuleAttribute::Protocol(RouteProtocol::from(PROTOCOL)));
    attributes.push(RuleAttribute::Priority(rule.priority));
    attributes.push(RuleAttribute::Table(rule.table));
    if rule.to.length() > 0 {
        attributes.push(RuleAttribute::Destination(IpAddr::V4(rule.to.address())));
    }
    if let Some(protocol) = rule.ip_protocol {
        attributes.push(RuleAttribute::IpProtocol(IpProtocol::from(protocol)));
    }
    if let Some(port) = rule.source_port {
        attributes.push(RuleAttribute::SourcePortRange(RulePortRange { start: port, end: port }));
    }
    if let Some(device) = &rule.iif {
        attributes.push(RuleAttribute::Iifname(device.clone()));
    }
    message
}

fn parse_rule(message: &RuleMessage) -> Option<Rule> {
    if message.header.family != AddressFamily::Inet {
        return None;
    }
    let mut rule = Rule {
        priority: 0,
        table: u32::from(message.header.table),
        to: Prefix::new(Ipv4Addr::UNSPECIFIED, message.header.dst_len),
        ip_protocol: None,
        source_port: None,
        iif: None,
    };
    let mut ours = false;
    for attribute in &message.attributes {
        match attribute {
            RuleAttribute::Protocol(p) => ours = *p == RouteProtocol::from(PROTOCOL),
            RuleAttribute::Priority(p) => rule.priority = *p,
            RuleAttribute::Table(t) => rule.table = *t,
            RuleAttribute::Destination(IpAddr::V4(a)) => rule.to = Prefix::new(*a, message.header.dst_len),
            RuleAttribute::IpProtocol(p) => rule.ip_protocol = Some(u8::from(*p)),
            RuleAttribute::SourcePortRange(range) if range.start == range.end => {
                rule.source_port = Some(range.start);
            }
            RuleAttribute::Iifname(device) => rule.iif = Some(device.clone()),
            _ => {}
        }
    }
    ours.then_some(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHILD: &str = "KEYSTEWARD_NETLINK_TEST_IN_NAMESPACE";

    /// Runs the test `name` again under `unshare --net` (root; as another user it says so and
    /// passes), so its routes never reach the host's and go with the namespace; true in the
    /// child (which then does the work), false in the parent once the child passed.
    fn in_own_namespace(name: &str) -> bool {
        if std::env::var_os(CHILD).is_some() {
            return true;
        }
        let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
        if !root.unwrap_or(false) {
            eprintln!("skipped: needs root for a network namespace (CI runs it as root)");
            return false;
        }
        let out = std::process::Command::new("unshare")
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

    /// Routes replaced in one send come back with one result each, in order, a refused one
    /// among them included; and the kernel's answer to a send that succeeds whole is one
    /// datagram read, not one per route (a hub replaces two routes per branch).
    #[test]
    fn routes_replaced_in_one_send_read_one_answer() {
        if !in_own_namespace("tests::routes_replaced_in_one_send_read_one_answer") {
            return;
        }
        let mut netlink = Netlink::open().unwrap();
        let route = |last: u8, kind| Route {
            table: MAIN_TABLE,
            destination: Prefix::new(Ipv4Addr::new(198, 51, 100, last), 32),
            kind,
            metric: 60,
        };
        let both = [route(1, RouteKind::Unreachable), route(2, RouteKind::Unreachable)];
        let results = netlink.replace_routes(&both);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(netlink.reads, 1, "one datagram read for two routes");
        // No device 999 in a fresh namespace: the middle one is refused, the others go in.
        let mixed = [
            route(3, RouteKind::Unreachable),
            route(4, RouteKind::Device(999, None)),
            route(5, RouteKind::Unreachable),
        ];
        let results = netlink.replace_routes(&mixed);
        assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok(), "{results:?}");
        let ours: Vec<Prefix> = netlink.routes(MAIN_TABLE).unwrap().iter().map(|r| r.destination).collect();
        for last in [1, 2, 3, 5] {
            assert!(ours.contains(&Prefix::new(Ipv4Addr::new(198, 51, 100, last), 32)), "{ours:?}");
        }
        assert!(!ours.contains(&Prefix::new(Ipv4Addr::new(198, 51, 100, 4), 32)), "{ours:?}");
    }

    /// What keysteward sends for a route reads back as the same route: a static route through
    /// a next hop (with and without a device), a TUN route, a fail-closed route.
    #[test]
    fn routes_read_back_as_sent() {
        let prefix = Prefix::new(Ipv4Addr::new(198, 51, 100, 0), 24);
        for kind in [
            RouteKind::Via(Ipv4Addr::new(192, 0, 2, 2), None),
            RouteKind::Via(Ipv4Addr::new(192, 0, 2, 2), Some(7)),
            RouteKind::Device(3, Some(Ipv4Addr::new(192, 0, 2, 1))),
            RouteKind::Unreachable,
        ] {
            let route = Route { table: MAIN_TABLE, destination: prefix, kind, metric: 60 };
            assert_eq!(parse_route(&route_message(&route)), Some(route));
        }
        let mut foreign = route_message(&Route {
            table: MAIN_TABLE,
            destination: prefix,
            kind: RouteKind::Unreachable,
            metric: 1,
        });
        foreign.header.protocol = RouteProtocol::Static;
        assert_eq!(parse_route(&foreign), None, "only protocol 245 is ours");
    }

    /// An undecodable reply says so, so that `replace_routes` stops waiting for the
    /// acknowledgements it would have held; a decodable one fills its slot.
    #[test]
    fn an_undecodable_acknowledgement_ends_the_wait() {
        let mut results: Vec<Option<io::Result<()>>> = vec![None, None];
        assert!(!acknowledgements(&[0xff; 7], 1, &mut results));
        assert!(results.iter().all(Option::is_none));
        let mut header = NetlinkHeader::default();
        header.sequence_number = 2;
        let mut ack = NetlinkMessage::new(
            header,
            NetlinkPayload::<RouteNetlinkMessage>::Error(netlink_packet_core::ErrorMessage::default()),
        );
        ack.finalize();
        let mut bytes = vec![0; ack.buffer_len()];
        ack.serialize(&mut bytes);
        assert!(acknowledgements(&bytes, 1, &mut results));
        assert!(matches!(results[1], Some(Ok(()))), "error code 0 is an acknowledgement");
    }
}
