//! Indices that find the selectors covering a packet without looking at every selector, so
//! that a hub's lookup costs about the same with 10 flows as with 100,000 (issue 13).
//!
//! [`PairIndex`] groups selectors by the pair of their prefix lengths (our side, the peer's
//! side). Within a group a selector is found by exact match on both masked prefixes, with one
//! hash lookup; a packet is looked up once per group. Real databases have a handful of length
//! pairs (a hub's template flows are mostly /24 ↔ /24 or host ↔ prefix), so the cost of a
//! lookup depends on the number of length pairs, not on the number of selectors. Protocol and
//! ports are checked on the few candidates each group returns.
//!
//! [`SelectorTable`] is a slab of values (the data plane's SAs) with a [`PairIndex`] over their
//! selectors: slots stay where they are when others are removed, so a slot found by a lookup
//! can be used to reach its value again.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;

use crate::selector::{Flow, Prefix, Selector};

/// Mixes the 64-bit key of a bucket (both masked prefixes) with SplitMix64's finalizer. The
/// keys are prefixes we configured or accepted, so flooding resistance buys nothing; a plain
/// multiplication would not do either, since masked prefixes have all their low bits clear
/// and the table takes its bucket from the low bits.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// The values filed under one pair of prefixes, in insertion order. The first is kept in
/// the hash table itself: most buckets hold one value, and a lookup then costs no second
/// memory access.
#[derive(Debug, Clone)]
pub struct Bucket<V> {
    first: V,
    rest: Vec<V>,
}

impl<V: Copy> Bucket<V> {
    /// The values, in insertion order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = V> + '_ {
        std::iter::once(self.first).chain(self.rest.iter().copied())
    }
}

/// The selectors of one pair of prefix lengths.
#[derive(Debug, Clone)]
struct Group<V> {
    local_mask: u32,
    remote_mask: u32,
    buckets: KeyMap<Bucket<V>>,
}

impl<V> Group<V> {
    #[inline]
    fn key(&self, local: Ipv4Addr, remote: Ipv4Addr) -> u64 {
        (u64::from(u32::from(local) & self.local_mask) << 32)
            | u64::from(u32::from(remote) & self.remote_mask)
    }
}

#[inline]
fn mask(length: u8) -> u32 {
    match length {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n.min(32))),
    }
}

/// Values filed under the two prefixes of a selector, found by the addresses of a packet.
/// Values under one pair of prefixes keep their insertion order.
#[derive(Debug, Clone)]
pub struct PairIndex<V> {
    groups: Vec<Group<V>>,
    len: usize,
}

impl<V> Default for PairIndex<V> {
    fn default() -> Self {
        Self { groups: Vec::new(), len: 0 }
    }
}

impl<V: Copy + PartialEq> PairIndex<V> {
    /// Files `value` under `local` and `remote`, after the values already there.
    pub fn insert(&mut self, local: Prefix, remote: Prefix, value: V) {
        let (local_mask, remote_mask) = (mask(local.length()), mask(remote.length()));
        let position =
            self.groups.iter().position(|g| g.local_mask == local_mask && g.remote_mask == remote_mask);
        let group = match position {
            Some(i) => &mut self.groups[i],
            None => {
                self.groups.push(Group { local_mask, remote_mask, buckets: KeyMap::default() });
                let last = self.groups.len() - 1;
                &mut self.groups[last]
            }
        };
        let key = group.key(local.address(), remote.address());
        match group.buckets.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut bucket) => bucket.get_mut().rest.push(value),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(Bucket { first: value, rest: Vec::new() });
            }
        }
        self.len += 1;
    }

    /// Removes `value` from under `local` and `remote`; false when it is not there.
    pub fn remove(&mut self, local: Prefix, remote: Prefix, value: V) -> bool {
        let (local_mask, remote_mask) = (mask(local.length()), mask(remote.length()));
        let Some(g) =
            self.groups.iter().position(|g| g.local_mask == local_mask && g.remote_mask == remote_mask)
        else {
            return false;
        };
        let group = &mut self.groups[g];
        let key = group.key(local.address(), remote.address());
        let Some(bucket) = group.buckets.get_mut(&key) else { return false };
        if bucket.first == value {
            if bucket.rest.is_empty() {
                group.buckets.remove(&key);
            } else {
                bucket.first = bucket.rest.remove(0);
            }
        } else {
            let Some(i) = bucket.rest.iter().position(|v| *v == value) else { return false };
            bucket.rest.remove(i);
        }
        if group.buckets.is_empty() {
            self.groups.swap_remove(g);
        }
        self.len -= 1;
        true
    }

    /// The values filed under exactly `local` and `remote`, in insertion order.
    pub fn exact(&self, local: Prefix, remote: Prefix) -> impl Iterator<Item = V> + '_ {
        let (local_mask, remote_mask) = (mask(local.length()), mask(remote.length()));
        self.groups
            .iter()
            .find(|g| g.local_mask == local_mask && g.remote_mask == remote_mask)
            .and_then(|g| g.buckets.get(&g.key(local.address(), remote.address())))
            .into_iter()
            .flat_map(Bucket::iter)
    }

    /// For each group whose prefixes contain `local` and `remote`, the values filed there, in
    /// insertion order (the groups in no particular order).
    #[inline]
    pub fn candidates(&self, local: Ipv4Addr, remote: Ipv4Addr) -> impl Iterator<Item = &Bucket<V>> + '_ {
        self.groups.iter().filter_map(move |g| g.buckets.get(&g.key(local, remote)))
    }

    /// Every value, to renumber them in place (their buckets keep their order).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> + '_ {
        self.groups.iter_mut().flat_map(|g| {
            g.buckets.values_mut().flat_map(|b| std::iter::once(&mut b.first).chain(b.rest.iter_mut()))
        })
    }

    /// How many values are filed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is filed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many pairs of prefix lengths are in use: the number of hash lookups per packet.
    pub fn length_pairs(&self) -> usize {
        self.groups.len()
    }
}

/// One occupied slot of a [`SelectorTable`].
#[derive(Debug, Clone)]
struct Entry<T> {
    selector: Selector,
    key: u64,
    value: T,
}

/// Values with a selector and a unique key each (the data plane's SAs: a selector and an
/// installation serial), found by the flow of a packet or by key. Slots are stable.
#[derive(Debug, Clone)]
pub struct SelectorTable<T> {
    slots: Vec<Option<Entry<T>>>,
    free: Vec<usize>,
    index: PairIndex<u32>,
    by_key: HashMap<u64, u32, BuildHasherDefault<KeyHasher>>,
}

impl<T> Default for SelectorTable<T> {
    fn default() -> Self {
        Self { slots: Vec::new(), free: Vec::new(), index: PairIndex::default(), by_key: HashMap::default() }
    }
}

impl<T> SelectorTable<T> {
    /// Adds `value` covering `selector` under the unique `key` (an existing value with that
    /// key is replaced) and returns its slot.
    pub fn insert(&mut self, selector: Selector, key: u64, value: T) -> usize {
        self.remove(key);
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        self.slots[slot] = Some(Entry { selector, key, value });
        self.index.insert(selector.local, selector.remote, slot as u32);
        self.by_key.insert(key, slot as u32);
        slot
    }

    /// Removes and returns the value with `key`.
    pub fn remove(&mut self, key: u64) -> Option<T> {
        let slot = self.by_key.remove(&key)? as usize;
        let entry = self.slots.get_mut(slot)?.take()?;
        self.index.remove(entry.selector.local, entry.selector.remote, slot as u32);
        self.free.push(slot);
        Some(entry.value)
    }

    /// The slot of the value with `key`.
    pub fn slot_of(&self, key: u64) -> Option<usize> {
        self.by_key.get(&key).map(|&slot| slot as usize)
    }

    /// The value in `slot`.
    #[inline]
    pub fn get(&self, slot: usize) -> Option<&T> {
        self.slots.get(slot)?.as_ref().map(|e| &e.value)
    }

    /// The value in `slot`, to change.
    #[inline]
    pub fn get_mut(&mut self, slot: usize) -> Option<&mut T> {
        self.slots.get_mut(slot)?.as_mut().map(|e| &mut e.value)
    }

    /// `(slot, key, value)` of every value whose selector covers an outbound packet's `flow`.
    #[inline]
    pub fn covering_outbound<'a>(&'a self, flow: &'a Flow) -> impl Iterator<Item = (usize, u64, &'a T)> + 'a {
        self.index.candidates(flow.source, flow.destination).flat_map(Bucket::iter).filter_map(move |slot| {
            let entry = self.slots.get(slot as usize)?.as_ref()?;
            entry.selector.matches_outbound(flow).then_some((slot as usize, entry.key, &entry.value))
        })
    }

    /// Every value with its key, in no particular order (no sorting, no allocation).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.slots.iter().flatten().map(|e| (e.key, &e.value))
    }

    /// Every value with its key, by ascending key.
    pub fn by_key_order(&self) -> Vec<(u64, &T)> {
        let mut all: Vec<(u64, &T)> = self.slots.iter().flatten().map(|e| (e.key, &e.value)).collect();
        all.sort_unstable_by_key(|(key, _)| *key);
        all
    }

    /// Takes every value out: `(selector, key, value)` by ascending key.
    pub fn drain(&mut self) -> Vec<(Selector, u64, T)> {
        let mut all: Vec<(Selector, u64, T)> = std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .map(|e| (e.selector, e.key, e.value))
            .collect();
        *self = Self::default();
        all.sort_unstable_by_key(|(_, key, _)| *key);
        all
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: u8, b: u8, c: u8, d: u8, len: u8) -> Prefix {
        Prefix::new(Ipv4Addr::new(a, b, c, d), len)
    }

    #[test]
    fn pair_index_files_and_finds() {
        let mut index = PairIndex::default();
        index.insert(p(10, 1, 1, 0, 24), p(10, 2, 2, 0, 24), 1u32);
        index.insert(p(10, 1, 1, 0, 24), p(10, 2, 2, 0, 24), 5);
        index.insert(p(10, 1, 0, 0, 16), p(0, 0, 0, 0, 0), 3);
        assert_eq!(index.len(), 3);
        assert_eq!(index.length_pairs(), 2);
        let found = index.candidates(Ipv4Addr::new(10, 1, 1, 9), Ipv4Addr::new(10, 2, 2, 9));
        assert_eq!(found.flat_map(Bucket::iter).count(), 3);
        assert_eq!(index.exact(p(10, 1, 1, 0, 24), p(10, 2, 2, 0, 24)).collect::<Vec<_>>(), [1, 5]);
        assert!(index.remove(p(10, 1, 1, 0, 24), p(10, 2, 2, 0, 24), 5));
        index.insert(p(10, 1, 1, 0, 24), p(10, 2, 2, 0, 24), 5);
        assert!(index.remove(p(10, 1, 1, 0, 24), p(10, 2, 2, 0, 24), 1));
        assert!(!index.remove(p(10, 1, 1, 0, 24), p(10, 2, 2, 0, 24), 1));
        assert!(index.remove(p(10, 1, 0, 0, 16), p(0, 0, 0, 0, 0), 3));
        assert_eq!(index.length_pairs(), 1);
        assert_eq!(index.candidates(Ipv4Addr::new(10, 1, 7, 9), Ipv4Addr::new(8, 8, 8, 8)).count(), 0);
    }
}
