//! The half-open table: responder IKE SAs not yet authenticated, admitted by memory rather
//! than by count. Each is charged what it really holds; when the charges pass
//! [`crate::Limits::half_open_memory_budget`] the oldest are evicted (DESIGN.md, "Admission").

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::mem::size_of;
use std::net::SocketAddr;
use std::time::Instant;

use isakmp::Cookie;

use crate::event::ConnectionId;
use crate::ike_sa::IkeSa;

/// What a half-open SA costs besides its heap bytes ([`IkeSa::held_bytes`]): its slot and its
/// entry in each engine index (hash-table entries twice their size: load factor, growth).
pub(crate) const ENTRY_OVERHEAD: usize = size_of::<Option<IkeSa>>()
    + 2 * size_of::<(Cookie, usize)>()
    + 2 * size_of::<(ConnectionId, usize)>()
    + 2 * size_of::<((Cookie, SocketAddr), usize)>()
    + size_of::<usize>()
    + 2 * size_of::<Reverse<(Instant, usize, u64)>>()
    + size_of::<Option<(Instant, u64)>>()
    + 2 * size_of::<(u64, usize)>()
    + 2 * size_of::<(usize, (u64, usize))>();

/// The bytes one half-open SA is charged: [`ENTRY_OVERHEAD`] and what it holds.
pub(crate) fn charge(sa: &IkeSa) -> usize {
    ENTRY_OVERHEAD + sa.held_bytes()
}

/// The half-open responder SAs, oldest first, with what each is charged.
#[derive(Debug, Default)]
pub(crate) struct HalfOpenTable {
    /// Admission number → slot; the first entry is the oldest.
    by_age: BTreeMap<u64, usize>,
    /// Slot → (admission number, bytes charged).
    of_slot: HashMap<usize, (u64, usize)>,
    next: u64,
    bytes: usize,
}

impl HalfOpenTable {
    /// How many there are.
    pub(crate) fn len(&self) -> usize {
        self.of_slot.len()
    }

    /// The bytes charged to them together.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Records the SA in `slot` as half-open (the newest), charged `bytes`.
    pub(crate) fn admit(&mut self, slot: usize, bytes: usize) {
        self.remove(slot);
        self.next += 1;
        self.by_age.insert(self.next, slot);
        self.of_slot.insert(slot, (self.next, bytes));
        self.bytes += bytes;
    }

    /// Charges the SA in `slot` `bytes` from now on, if it is half-open.
    pub(crate) fn recharge(&mut self, slot: usize, bytes: usize) {
        if let Some((_, charged)) = self.of_slot.get_mut(&slot) {
            self.bytes = self.bytes - *charged + bytes;
            *charged = bytes;
        }
    }

    /// The SA in `slot` is no longer half-open (established or gone); true if it was.
    pub(crate) fn remove(&mut self, slot: usize) -> bool {
        let Some((age, bytes)) = self.of_slot.remove(&slot) else { return false };
        self.by_age.remove(&age);
        self.bytes -= bytes;
        true
    }

    /// True when the SA in `slot` is half-open.
    pub(crate) fn contains(&self, slot: usize) -> bool {
        self.of_slot.contains_key(&slot)
    }

    /// The slot of the oldest half-open SA other than `keep`.
    pub(crate) fn oldest_except(&self, keep: Option<usize>) -> Option<usize> {
        self.by_age.values().copied().find(|&slot| Some(slot) != keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_goes_first_and_the_charges_add_up() {
        let mut table = HalfOpenTable::default();
        table.admit(7, 100);
        table.admit(3, 50);
        table.admit(9, 10);
        assert_eq!((table.len(), table.bytes()), (3, 160));
        assert_eq!(table.oldest_except(None), Some(7));
        assert_eq!(table.oldest_except(Some(7)), Some(3));
        table.recharge(3, 500);
        assert_eq!(table.bytes(), 610);
        assert!(table.remove(7));
        assert!(!table.remove(7));
        assert_eq!((table.len(), table.bytes()), (2, 510));
        assert_eq!(table.oldest_except(None), Some(3));
        table.recharge(42, 1_000);
        assert_eq!(table.bytes(), 510, "a slot that is not half-open is not charged");
    }
}
