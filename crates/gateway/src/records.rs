//! What the daemon remembers of the engine's reports for the displays the engine cannot
//! answer from its own tables: the IPsec SA pairs in install order (the `v1:2` lines of
//! `display ike sa` and their conn-ids) and the recent failures (`display ike error-info`).
//! The pairs are kept by display number with indexes by inbound SPI, by (connection, peer's
//! SPI) and by connection, so that an event removes its pairs in O(log N) each on a hub with
//! 10,000s of pairs rather than scanning them all.

use std::collections::{hash_map, BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::SystemTime;

use ike::Event;

/// The conn-ids of the `v1:2` lines of `display ike sa` start above this, apart from the
/// engine's phase-1 numbers.
pub const PHASE2_CONN_ID_BASE: u64 = 10_000;

/// How many failures `display ike error-info` remembers.
const ERROR_HISTORY: usize = 64;

/// An IPsec SA pair the engine reported, for `display ike sa`'s phase-2 lines.
#[derive(Debug, Clone)]
pub struct InstalledPair {
    /// The pair's number on the display (added to [`PHASE2_CONN_ID_BASE`]).
    pub display_id: u64,
    /// The IKE SA that negotiated it.
    pub connection: ike::ConnectionId,
    /// The peer's address.
    pub remote: SocketAddr,
    /// We started the quick mode.
    pub initiator: bool,
    /// Our SPI, so that the pair leaves the display when the engine ends it.
    pub inbound_spi: u32,
    /// The peer's SPI, so that the pair leaves the display when the peer deletes it.
    pub outbound_spi: u32,
}

/// The display numbers of the pairs under each key of an index.
type Index<K> = HashMap<K, Ids>;

/// The display numbers under one key of an index, ascending, never empty: one inline (a
/// branch's keys name one pair but for the moments of a rekey), more in a boxed slice. A
/// `BTreeSet` allocated a node of about 100 bytes for each of the three keys of every pair
/// (issue 16: memory per SA).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ids {
    One(u64),
    Many(Box<[u64]>),
}

impl Ids {
    fn as_slice(&self) -> &[u64] {
        match self {
            Self::One(id) => core::slice::from_ref(id),
            Self::Many(ids) => ids,
        }
    }

    /// These numbers and `id`, ascending.
    fn with(&self, id: u64) -> Self {
        let mut ids = self.as_slice().to_vec();
        if let Err(at) = ids.binary_search(&id) {
            ids.insert(at, id);
        }
        Self::Many(ids.into_boxed_slice())
    }

    /// These numbers without `id`; `None` when none are left.
    fn without(&self, id: u64) -> Option<Self> {
        let ids: Vec<u64> = self.iter().filter(|&n| n != id).collect();
        match ids[..] {
            [] => None,
            [one] => Some(Self::One(one)),
            _ => Some(Self::Many(ids.into_boxed_slice())),
        }
    }

    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.as_slice().iter().copied()
    }

    fn last(&self) -> Option<u64> {
        self.as_slice().last().copied()
    }

    #[cfg(test)]
    fn contains(&self, id: u64) -> bool {
        self.as_slice().contains(&id)
    }
}

/// Adds `id` to `index`'s numbers under `key`.
fn index<K: std::hash::Hash + Eq>(index: &mut Index<K>, key: K, id: u64) {
    match index.entry(key) {
        hash_map::Entry::Occupied(mut ids) => {
            let more = ids.get().with(id);
            ids.insert(more);
        }
        hash_map::Entry::Vacant(slot) => {
            slot.insert(Ids::One(id));
        }
    }
}

/// The daemon's own records of what the engine reported.
#[derive(Debug)]
pub struct Records {
    /// The installed pairs by display number (oldest first).
    installed: BTreeMap<u64, InstalledPair>,
    by_inbound: Index<u32>,
    by_outbound: Index<(ike::ConnectionId, u32)>,
    by_connection: Index<ike::ConnectionId>,
    /// The latest failures (at most 64), oldest first, as the log printed them.
    pub failures: VecDeque<(SystemTime, String)>,
    next_display_id: u64,
    /// The pairs the removals looked at, for the tests that removal does not scan.
    #[cfg(test)]
    visited: usize,
}

impl Default for Records {
    fn default() -> Self {
        Self {
            installed: BTreeMap::new(),
            by_inbound: HashMap::new(),
            by_outbound: HashMap::new(),
            by_connection: HashMap::new(),
            failures: VecDeque::new(),
            next_display_id: 1,
            #[cfg(test)]
            visited: 0,
        }
    }
}

impl Records {
    /// Notes what `event` changes in the records: a pair installed or gone, a failure.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::IpsecSaInstalled(pair) => self.install(InstalledPair {
                display_id: 0,
                connection: pair.connection,
                remote: pair.remote,
                initiator: pair.initiator,
                inbound_spi: pair.inbound.spi().0,
                outbound_spi: pair.outbound.spi().0,
            }),
            Event::Failed(failure) => {
                if self.failures.len() == ERROR_HISTORY {
                    self.failures.pop_front();
                }
                self.failures.push_back((SystemTime::now(), failure.to_string()));
            }
            Event::IpsecSaDeleted { connection, spis } => {
                for spi in spis {
                    self.remove_all(self.by_outbound.get(&(*connection, *spi)).cloned());
                }
            }
            Event::IpsecSaExpired { inbound_spi, .. } => {
                self.remove_all(self.by_inbound.get(inbound_spi).cloned());
            }
            Event::SasCleared { connection, .. } => {
                self.remove_all(self.by_connection.get(connection).cloned());
            }
            Event::IkeSaEstablished { .. }
            | Event::IkeSaDeleted { .. }
            | Event::IkeSaExpired { .. }
            | Event::IpsecSaInbound(_)
            | Event::PeerMoved { .. } => {}
        }
    }

    /// Records `pair` under the next display number.
    fn install(&mut self, mut pair: InstalledPair) {
        let id = self.next_display_id;
        self.next_display_id += 1;
        pair.display_id = id;
        index(&mut self.by_inbound, pair.inbound_spi, id);
        index(&mut self.by_outbound, (pair.connection, pair.outbound_spi), id);
        index(&mut self.by_connection, pair.connection, id);
        self.installed.insert(id, pair);
    }

    /// Removes the pairs numbered `ids` from the list and every index.
    fn remove_all(&mut self, ids: Option<Ids>) {
        for id in ids.iter().flat_map(Ids::iter) {
            let Some(pair) = self.installed.remove(&id) else { continue };
            #[cfg(test)]
            {
                self.visited += 1;
            }
            unindex(&mut self.by_inbound, pair.inbound_spi, id);
            unindex(&mut self.by_outbound, (pair.connection, pair.outbound_spi), id);
            unindex(&mut self.by_connection, pair.connection, id);
        }
    }

    /// How many pairs are recorded.
    pub fn installed_len(&self) -> usize {
        self.installed.len()
    }

    /// The recorded pairs numbered below `below`, newest first.
    pub fn installed_before(&self, below: u64) -> impl DoubleEndedIterator<Item = &InstalledPair> + '_ {
        self.installed.range(..below).rev().map(|(_, p)| p)
    }

    /// The conn-id `display ike sa` gives the `v1:2` line of the pair whose inbound SPI is
    /// `spi` (the newest such pair), in constant time.
    pub fn phase2_conn_id(&self, spi: u32) -> Option<u64> {
        self.by_inbound.get(&spi)?.last().map(|id| id + PHASE2_CONN_ID_BASE)
    }
}

/// Takes `id` out of `index`'s set under `key`, and the key once its set is empty.
fn unindex<K: std::hash::Hash + Eq>(index: &mut Index<K>, key: K, id: u64) {
    if let hash_map::Entry::Occupied(mut ids) = index.entry(key) {
        match ids.get().without(id) {
            Some(rest) => {
                ids.insert(rest);
            }
            None => {
                ids.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ike::ConnectionId;
    use proptest::prelude::*;

    /// What happens to the pairs: the engine's events, by their values.
    #[derive(Debug, Clone)]
    enum Op {
        Install { connection: u64, inbound: u32, outbound: u32 },
        Delete { connection: u64, spis: Vec<u32> },
        Expire { inbound: u32 },
        Clear { connection: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few connections and SPIs, so that keys repeat and removals hit.
        prop_oneof![
            4 => (0..4u64, 0..12u32, 0..12u32)
                .prop_map(|(connection, inbound, outbound)| Op::Install { connection, inbound, outbound }),
            1 => (0..4u64, proptest::collection::vec(0..12u32, 0..3))
                .prop_map(|(connection, spis)| Op::Delete { connection, spis }),
            1 => (0..12u32).prop_map(|inbound| Op::Expire { inbound }),
            1 => (0..4u64).prop_map(|connection| Op::Clear { connection }),
        ]
    }

    fn pair(connection: u64, inbound: u32, outbound: u32) -> InstalledPair {
        InstalledPair {
            display_id: 0,
            connection: ConnectionId(connection),
            remote: "192.0.2.1:500".parse().unwrap(),
            initiator: inbound.is_multiple_of(2),
            inbound_spi: inbound,
            outbound_spi: outbound,
        }
    }

    /// Applies `op` to the records through the indexes and to the model, the list in install
    /// order scanned on every removal (the daemon's records before the indexes).
    fn apply(records: &mut Records, model: &mut Vec<(u64, u64, u32, u32)>, next: &mut u64, op: &Op) {
        match op.clone() {
            Op::Install { connection, inbound, outbound } => {
                records.install(pair(connection, inbound, outbound));
                model.push((*next, connection, inbound, outbound));
                *next += 1;
            }
            Op::Delete { connection, spis } => {
                for spi in &spis {
                    records.remove_all(records.by_outbound.get(&(ConnectionId(connection), *spi)).cloned());
                }
                model.retain(|p| !(p.1 == connection && spis.contains(&p.3)));
            }
            Op::Expire { inbound } => {
                records.remove_all(records.by_inbound.get(&inbound).cloned());
                model.retain(|p| p.2 != inbound);
            }
            Op::Clear { connection } => {
                records.remove_all(records.by_connection.get(&ConnectionId(connection)).cloned());
                model.retain(|p| p.1 != connection);
            }
        }
    }

    proptest! {
        /// Under any sequence of installs and removals the records hold what the scanning
        /// model holds, in the same order, and every index names exactly the pairs there.
        #[test]
        fn records_match_the_scanning_model(ops in proptest::collection::vec(op(), 0..80)) {
            let (mut records, mut model, mut next) = (Records::default(), Vec::new(), 1);
            for op in &ops {
                apply(&mut records, &mut model, &mut next, op);
                let held: Vec<_> = records
                    .installed_before(u64::MAX)
                    .rev()
                    .map(|p| (p.display_id, p.connection.0, p.inbound_spi, p.outbound_spi))
                    .collect();
                prop_assert_eq!(&held, &*model);
                prop_assert_eq!(records.installed_len(), model.len());
                let indexed = |sets: Vec<&Ids>| {
                    let mut ids: Vec<u64> = sets.into_iter().flat_map(Ids::iter).collect();
                    ids.sort_unstable();
                    ids
                };
                let ids: Vec<u64> = model.iter().map(|p| p.0).collect();
                prop_assert_eq!(indexed(records.by_inbound.values().collect()), ids.clone());
                prop_assert_eq!(indexed(records.by_outbound.values().collect()), ids.clone());
                prop_assert_eq!(indexed(records.by_connection.values().collect()), ids);
                for (id, p) in &records.installed {
                    prop_assert!(records.by_inbound[&p.inbound_spi].contains(*id));
                    prop_assert!(records.by_outbound[&(p.connection, p.outbound_spi)].contains(*id));
                    prop_assert!(records.by_connection[&p.connection].contains(*id));
                }
                prop_assert!(records.by_inbound.values().all(|s| !s.as_slice().is_empty() && s.as_slice().is_sorted()));
                // The conn-id by SPI is the one the map built from the list in install order
                // gave (the newest pair with that SPI).
                let map: HashMap<u32, u64> =
                    model.iter().map(|p| (p.2, p.0 + PHASE2_CONN_ID_BASE)).collect();
                for spi in 0..12 {
                    prop_assert_eq!(records.phase2_conn_id(spi), map.get(&spi).copied());
                }
            }
        }
    }

    /// On a hub with 10,000 pairs, an expiry, a peer's Delete and a cleared IKE SA each look
    /// only at the pairs they remove (the scan looked at all 10,000 per event).
    #[test]
    fn removal_visits_only_the_removed_pairs() {
        let mut records = Records::default();
        for n in 0..10_000u32 {
            records.install(pair(u64::from(n % 5_000), 0x1000 + n, 0x9000 + n));
        }
        records.remove_all(records.by_inbound.get(&0x1007).cloned());
        assert_eq!(records.visited, 1);
        records.remove_all(records.by_outbound.get(&(ConnectionId(8), 0x9008)).cloned());
        assert_eq!(records.visited, 2);
        // Connection 9 holds the pairs 9 and 5,009.
        records.remove_all(records.by_connection.get(&ConnectionId(9)).cloned());
        assert_eq!(records.visited, 4);
        assert_eq!(records.installed_len(), 9_996);
        assert_eq!(records.phase2_conn_id(0x1007), None);
        assert_eq!(records.phase2_conn_id(0x1000 + 9_999), Some(PHASE2_CONN_ID_BASE + 10_000));
    }
}
