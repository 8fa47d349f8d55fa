//! The protected inner flows (issue 15): what `display firewall session table` lists next to
//! the IKE and ESP sessions, in USG's form (`icmp  VPN:public --> public
//! 172.16.2.2:7264-->192.168.0.2:2048`, reference `vrp-cli.md` §5.12).
//!
//! The data-plane thread owns one [`FlowTable`] and calls [`FlowTable::observe`] once per inner
//! packet: each packet it sealed (read from the TUN) and each it opened (written to the TUN).
//! The call reads the IPv4 header and the first four bytes after it, hashes the flow and
//! updates one slot of a fixed array: no allocation, no lock, no clock. The thread calls
//! [`FlowTable::tick`] once per wake-up with the time; at most once a second, when something
//! changed, the table copies its live flows into a [`Published`] snapshot (one short lock),
//! which the display reads. A display is therefore up to a second old; flows age as they
//! would have on the device.
//!
//! Bounded memory: [`FlowTable::with_capacity`] allocates every slot at once (72 bytes each;
//! the default [`DEFAULT_CAPACITY`] of 8,192 flows takes 576 KiB, and the published snapshot
//! at most 400 KiB more). A flow is looked for in a window of [`PROBE`] slots from its hash; a new flow
//! takes an empty or aged slot of the window, or else the least recently seen one (counted
//! in [`FlowTable::evicted`]). Aging as USG's session defaults: ICMP 20 s, UDP 120 s, TCP
//! 600 s, other protocols 120 s of silence.
//!
//! A flow is both directions of one conversation: TCP and UDP by the two address and port
//! pairs, the side of the first packet seen being the source; ICMP echo by the requester's
//! address and identifier, shown as USG does with the identifier as the source port and
//! type and code (`8 << 8`, 2048) as the destination port; other ICMP messages and other
//! protocols by their addresses (and ICMP type and code). Later fragments carry no ports and
//! are not counted. IPv4 only (keysteward's policies are IPv4).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Default number of flows a table holds.
pub const DEFAULT_CAPACITY: usize = 8192;
/// Slots searched for a flow from its hash.
pub const PROBE: usize = 8;

/// One end of a flow: address and port (ICMP: identifier, or type and code).
type End = (u32, u16);

/// A flow's identity: IP protocol and its two ends, `a` always the lower one except for
/// ICMP echo, where `a` is the requester.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct Key {
    protocol: u8,
    a: End,
    b: End,
}

/// One slot of the table.
#[derive(Clone, Copy, Default)]
struct Slot {
    key: Key,
    used: bool,
    /// The source of the flow (its first packet, or the ICMP requester) is `a`.
    a_opened: bool,
    last_seen: u32,
    order: u64,
    /// Packets and bytes from the source, and back.
    forward: Counters,
    reverse: Counters,
}

/// Packets and bytes one way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets.
    pub packets: u64,
    /// Bytes of the inner IPv4 packets.
    pub bytes: u64,
}

/// One flow as the display shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRow {
    /// IP protocol number (1 ICMP, 6 TCP, 17 UDP, …).
    pub protocol: u8,
    /// The side that opened the flow, with its port (ICMP echo: its identifier).
    pub source: SocketAddrV4,
    /// The other side, with its port (ICMP: type and code, `type << 8 | code`).
    pub destination: SocketAddrV4,
    /// From the source.
    pub forward: Counters,
    /// To the source.
    pub reverse: Counters,
    /// Silence when published (whole seconds).
    pub idle: Duration,
    /// When the flow was first seen, relative to the others (lower is older).
    pub order: u64,
}

impl FlowRow {
    /// The protocol's name in USG's session table (`icmp`, `tcp`, `udp`, `gre`, …), or `ip`.
    pub fn protocol_name(&self) -> &'static str {
        match self.protocol {
            1 => "icmp",
            6 => "tcp",
            17 => "udp",
            47 => "gre",
            50 => "esp",
            51 => "ah",
            _ => "ip",
        }
    }
}

/// How long a flow of `protocol` lives without packets (USG's session aging defaults).
pub fn aging(protocol: u8) -> Duration {
    Duration::from_secs(match protocol {
        1 => 20,
        6 => 600,
        _ => 120,
    })
}

/// The flows a data-plane thread last published, for the display.
#[derive(Clone, Default)]
pub struct Published(Arc<Mutex<Snapshot>>);

#[derive(Default)]
struct Snapshot {
    rows: Vec<FlowRow>,
    at: Option<Instant>,
}

impl Published {
    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        // A panic while copying leaves a snapshot that is still rows: keep using it.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The flows alive at `now` (aged as if the table had been read now), oldest first.
    pub fn rows(&self, now: Instant) -> Vec<FlowRow> {
        let snapshot = self.lock();
        let since = snapshot.at.map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        let mut rows: Vec<FlowRow> = snapshot
            .rows
            .iter()
            .map(|r| FlowRow { idle: r.idle + since, ..*r })
            .filter(|r| r.idle <= aging(r.protocol))
            .collect();
        rows.sort_by_key(|r| r.order);
        rows
    }
}

/// The bounded flow table of one data-plane thread (see the module documentation).
pub struct FlowTable {
    slots: Box<[Slot]>,
    mask: usize,
    epoch: Option<Instant>,
    /// Seconds since `epoch`, as of the last [`FlowTable::tick`].
    now: u32,
    next_order: u64,
    changed: bool,
    published_at: u32,
    evicted: u64,
}

impl Default for FlowTable {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl FlowTable {
    /// A table of `capacity` flows (rounded up to a power of two, at least [`PROBE`]), all
    /// allocated now.
    pub fn with_capacity(capacity: usize) -> Self {
        let size = capacity.max(PROBE).next_power_of_two();
        Self {
            slots: vec![Slot::default(); size].into_boxed_slice(),
            mask: size - 1,
            epoch: None,
            now: 0,
            next_order: 0,
            changed: false,
            published_at: u32::MAX,
            evicted: 0,
        }
    }

    /// Flows pushed out by newer ones while still alive (the table was full).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Counts one inner IPv4 packet (`packet` starts with its IPv4 header). Anything else is
    /// ignored.
    #[inline]
    pub fn observe(&mut self, packet: &[u8]) {
        let Some((key, from_a)) = parse(packet) else { return };
        let bytes = packet.len() as u64;
        let index = self.find(key, from_a);
        let slot = &mut self.slots[index];
        slot.last_seen = self.now;
        let counters = if from_a == slot.a_opened { &mut slot.forward } else { &mut slot.reverse };
        counters.packets += 1;
        counters.bytes += bytes;
        self.changed = true;
    }

    /// The slot of `key`, claimed for it when it is new (or its old flow aged out): an empty
    /// or aged slot of the window, else the least recently seen one.
    fn find(&mut self, key: Key, from_a: bool) -> usize {
        let start = hash(&key) & self.mask;
        let (mut free, mut oldest) = (None, start);
        for step in 0..PROBE {
            let index = (start + step) & self.mask;
            let slot = &self.slots[index];
            let aged = !slot.used || self.expired(slot);
            if slot.used && slot.key == key && !aged {
                return index;
            }
            if aged && free.is_none() {
                free = Some(index);
            }
            if slot.last_seen < self.slots[oldest].last_seen {
                oldest = index;
            }
        }
        let index = free.unwrap_or_else(|| {
            self.evicted += 1;
            oldest
        });
        // An echo request opens its flow even when its reply was seen first.
        let a_opened = (key.protocol == 1 && key.b.1 == ECHO_REQUEST) || from_a;
        self.slots[index] = Slot {
            key,
            used: true,
            a_opened,
            last_seen: self.now,
            order: self.next_order,
            ..Slot::default()
        };
        self.next_order += 1;
        index
    }

    fn expired(&self, slot: &Slot) -> bool {
        Duration::from_secs(u64::from(self.now.saturating_sub(slot.last_seen))) > aging(slot.key.protocol)
    }

    /// Sets the table's clock (once per wake-up of the thread) and, at most once a second and
    /// only after a change, publishes the live flows into `published`.
    pub fn tick(&mut self, now: Instant, published: &Published) {
        let epoch = *self.epoch.get_or_insert(now);
        self.now = u32::try_from(now.saturating_duration_since(epoch).as_secs()).unwrap_or(u32::MAX);
        if !self.changed || self.now == self.published_at {
            return;
        }
        self.changed = false;
        self.published_at = self.now;
        let mut snapshot = published.lock();
        snapshot.at = Some(now);
        snapshot.rows.clear();
        for slot in self.slots.iter().filter(|s| s.used && !self.expired(s)) {
            snapshot.rows.push(row(slot, self.now));
        }
    }
}

/// ICMP echo request as a destination port (type 8, code 0).
const ECHO_REQUEST: u16 = 8 << 8;

fn row(slot: &Slot, now: u32) -> FlowRow {
    let end = |(address, port): End| SocketAddrV4::new(Ipv4Addr::from(address), port);
    let (source, destination) =
        if slot.a_opened { (slot.key.a, slot.key.b) } else { (slot.key.b, slot.key.a) };
    FlowRow {
        protocol: slot.key.protocol,
        source: end(source),
        destination: end(destination),
        forward: slot.forward,
        reverse: slot.reverse,
        idle: Duration::from_secs(u64::from(now.saturating_sub(slot.last_seen))),
        order: slot.order,
    }
}

#[inline]
fn hash(key: &Key) -> usize {
    let ports = u64::from(key.a.1) << 24 | u64::from(key.b.1) << 8 | u64::from(key.protocol);
    let mut x = (u64::from(key.a.0) << 32 | u64::from(key.b.0)) ^ ports.rotate_left(17);
    // MurmurHash3's finalizer: every input bit reaches the low bits the mask keeps.
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x as usize
}

/// The flow of an IPv4 packet and whether the packet comes from its `a` end.
#[inline]
fn parse(packet: &[u8]) -> Option<(Key, bool)> {
    let header = packet.get(..20)?;
    if header[0] >> 4 != 4 {
        return None;
    }
    let header_len = usize::from(header[0] & 0x0f) * 4;
    let fragment_offset = u16::from_be_bytes([header[6] & 0x1f, header[7]]);
    if fragment_offset != 0 || header_len < 20 {
        return None;
    }
    let protocol = header[9];
    let source = u32::from_be_bytes([header[12], header[13], header[14], header[15]]);
    let destination = u32::from_be_bytes([header[16], header[17], header[18], header[19]]);
    let l4 = packet.get(header_len..header_len + 4);
    let (from, to) = match (protocol, l4) {
        (6 | 17, Some(p)) => {
            ((source, u16::from_be_bytes([p[0], p[1]])), (destination, u16::from_be_bytes([p[2], p[3]])))
        }
        (1, Some(p)) => {
            let identifier =
                packet.get(header_len + 4..header_len + 6).map_or(0, |i| u16::from_be_bytes([i[0], i[1]]));
            match p[0] {
                // Echo request and reply: one flow, the requester as `a`.
                8 => {
                    return Some((
                        Key { protocol, a: (source, identifier), b: (destination, ECHO_REQUEST) },
                        true,
                    ))
                }
                0 => {
                    return Some((
                        Key { protocol, a: (destination, identifier), b: (source, ECHO_REQUEST) },
                        false,
                    ))
                }
                kind => ((source, 0), (destination, u16::from_be_bytes([kind, p[1]]))),
            }
        }
        _ => ((source, 0), (destination, 0)),
    };
    Some(if from <= to {
        (Key { protocol, a: from, b: to }, true)
    } else {
        (Key { protocol, a: to, b: from }, false)
    })
}

#[cfg(test)]
mod tests;
