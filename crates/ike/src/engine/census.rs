//! What the hub checks and the per-peer searches need to know of all the IKE SAs, indexed so
//! that one handshake does not walk every SA (issue 16: on a hub every branch is the same
//! configured peer, so "the SAs of this peer" are all of them). The engine refreshes a slot's
//! entry whenever anything touched the slot (`Engine::rearm`) and drops it when the slot is
//! freed (`Engine::reap`), so the indices hold exactly what the SAs hold outside a handler;
//! inside one, the SA being handled is left out of every answer (it is the "me" of the checks).
//!
//! - `by_address`: slots by (configured peer, remote address): the candidates of
//!   `Branch::same` without an identity, of `first_contact` and of `waiting_elsewhere`;
//! - `by_identity`: slots by (configured peer, hash of the authenticated identity): the
//!   candidates of `Branch::same` with one and of INITIAL-CONTACT;
//! - `gateways`: established SAs by IPv4 remote address, and `flows`: every installed pair by
//!   the start of its branch side, for the conflicts of a proposed flow (a range query);
//! - `policy_totals` and `established`: counts for the caps.
//!
//! Candidates are always checked against the SA itself, so a hash collision costs a
//! comparison, never a wrong answer.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use hub_limits::{Branch, Holdings, Pairs, Range};
use smallvec::SmallVec;

use crate::config::TrafficSelector;
use crate::sa::core::{Role, SaCore};
use crate::sa::lifetimes::Rekey;

/// The census's lists, nearly always of one branch's slot: inline, not a heap block each.
type List<V> = SmallVec<[V; 1]>;

/// What one slot contributes to the indices (kept to take it out again).
#[derive(Clone, PartialEq, Eq)]
struct Entry {
    peer: usize,
    remote: IpAddr,
    established: bool,
    identity: Option<u64>,
    /// (policy, branch side as u32 start..=end, replaced) per installed pair.
    pairs: List<(usize, u32, u32, bool)>,
}

/// The indices over all the engine's IKE SAs (see the module documentation).
#[derive(Default)]
pub(crate) struct Census {
    entries: Vec<Option<Box<Entry>>>,
    by_address: HashMap<(usize, IpAddr), List<usize>>,
    by_identity: HashMap<(usize, u64), List<usize>>,
    gateways: BTreeMap<u32, List<usize>>,
    flows: BTreeMap<u32, List<(usize, u32)>>,
    /// The widest branch side ever indexed (end − start): a range query starts that far back.
    widest: u32,
    policy_totals: HashMap<usize, (usize, usize)>,
    established: HashMap<usize, usize>,
}

/// A hash of the identity an SA authenticated (its key, as INITIAL-CONTACT compares it).
pub(crate) fn identity_hash(sa: &SaCore) -> Option<u64> {
    let id = sa.remote_identity.as_ref()?;
    let mut hasher = DefaultHasher::new();
    (&id.kind, &id.value).hash(&mut hasher);
    Some(hasher.finish())
}

/// What `sa` contributes, if anything. A responder SA whose peer has not authenticated yet
/// (half-open) has no pairs, is no branch's established SA and holds no acquire: no check or
/// search can find it, so it is not indexed and costs the census one pointer (a flood of MM1s
/// makes many).
fn entry(sa: &SaCore) -> Option<Box<Entry>> {
    if sa.established_at.is_none() && sa.role == Role::Responder && sa.pending.is_empty() {
        return None;
    }
    let pairs = sa.lifetimes.pairs.iter().map(|p| {
        let (start, end) = p.selector.remote.bounds();
        (p.policy, u32::from(start), u32::from(end), p.rekey == Rekey::Replaced)
    });
    Some(Box::new(Entry {
        peer: sa.peer,
        remote: sa.remote.ip(),
        established: sa.established_at.is_some(),
        identity: identity_hash(sa),
        pairs: pairs.collect(),
    }))
}

fn unlist<V: PartialEq>(list: Option<&mut List<V>>, value: &V) -> bool {
    let Some(list) = list else { return false };
    if let Some(i) = list.iter().position(|v| v == value) {
        list.swap_remove(i);
    }
    list.is_empty()
}

impl Census {
    /// Brings the entry of `slot` up to date with `sa` (None: the slot is free).
    pub(crate) fn refresh(&mut self, slot: usize, sa: Option<&SaCore>) {
        let new = sa.and_then(entry);
        if self.entries.len() <= slot {
            self.entries.resize(slot + 1, None);
        }
        if self.entries[slot] == new {
            return;
        }
        if let Some(old) = self.entries[slot].take() {
            self.remove(slot, &old);
        }
        if let Some(new) = new {
            self.add(slot, &new);
            self.entries[slot] = Some(new);
        }
    }

    fn add(&mut self, slot: usize, e: &Entry) {
        self.by_address.entry((e.peer, e.remote)).or_default().push(slot);
        if let Some(id) = e.identity {
            self.by_identity.entry((e.peer, id)).or_default().push(slot);
        }
        if e.established {
            *self.established.entry(e.peer).or_default() += 1;
            if let IpAddr::V4(v4) = e.remote {
                self.gateways.entry(u32::from(v4)).or_default().push(slot);
            }
        }
        for &(policy, start, end, replaced) in &e.pairs {
            let totals = self.policy_totals.entry(policy).or_default();
            totals.0 += 1;
            totals.1 += usize::from(!replaced);
            self.flows.entry(start).or_default().push((slot, end));
            self.widest = self.widest.max(end - start);
        }
    }

    fn remove(&mut self, slot: usize, e: &Entry) {
        let key = (e.peer, e.remote);
        if unlist(self.by_address.get_mut(&key), &slot) {
            self.by_address.remove(&key);
        }
        if let Some(id) = e.identity {
            if unlist(self.by_identity.get_mut(&(e.peer, id)), &slot) {
                self.by_identity.remove(&(e.peer, id));
            }
        }
        if e.established {
            if let Some(n) = self.established.get_mut(&e.peer) {
                *n -= 1;
            }
            if let IpAddr::V4(v4) = e.remote {
                if unlist(self.gateways.get_mut(&u32::from(v4)), &slot) {
                    self.gateways.remove(&u32::from(v4));
                }
            }
        }
        for &(policy, start, end, replaced) in &e.pairs {
            if let Some(totals) = self.policy_totals.get_mut(&policy) {
                totals.0 -= 1;
                totals.1 -= usize::from(!replaced);
            }
            if unlist(self.flows.get_mut(&start), &(slot, end)) {
                self.flows.remove(&start);
            }
        }
    }

    /// The slots with (configured peer, remote address).
    pub(crate) fn at_address(&self, peer: usize, remote: IpAddr) -> &[usize] {
        self.by_address.get(&(peer, remote)).map_or(&[], List::as_slice)
    }

    /// The slots whose authenticated identity hashes to `id`, with configured peer `peer`.
    pub(crate) fn with_identity(&self, peer: usize, id: u64) -> &[usize] {
        self.by_identity.get(&(peer, id)).map_or(&[], List::as_slice)
    }

    /// What `slot` itself contributes, taken out of the totals while it is being handled.
    fn own(&self, slot: usize) -> Option<&Entry> {
        self.entries.get(slot).and_then(Option::as_deref)
    }

    /// The slots that may matter to `me` ([`Holdings::each_near`]), ascending, without `skip`.
    fn near(&self, skip: usize, me: &Branch<'_>, me_id: Option<u64>, remote: Option<Range>) -> Vec<usize> {
        let mut near: Vec<usize> = self.at_address(me.peer, me.remote).to_vec();
        if let Some(id) = me_id {
            near.extend_from_slice(self.with_identity(me.peer, id));
        }
        if let Some((start, end)) = remote {
            let (start, end) = (u32::from(start), u32::from(end));
            near.extend(self.gateways.range(start..=end).flat_map(|(_, slots)| slots.iter().copied()));
            let from = start.saturating_sub(self.widest);
            let overlapping =
                self.flows.range(from..=end).flat_map(|(_, v)| v.iter()).filter(|(_, e)| *e >= start);
            near.extend(overlapping.map(|(slot, _)| *slot));
        }
        near.sort_unstable();
        near.dedup();
        near.retain(|&s| s != skip);
        near
    }
}

/// An IKE SA's peer as the checks see it.
pub(crate) fn branch(sa: &SaCore) -> Branch<'_> {
    let identity = sa.remote_identity.as_ref().map(|id| (id.kind.as_str(), id.value.as_str()));
    Branch { peer: sa.peer, established: sa.established_at.is_some(), identity, remote: sa.remote.ip() }
}

/// An IKE SA's installed pairs as the checks see them.
pub(crate) fn pairs(sa: &SaCore) -> impl Iterator<Item = (usize, &TrafficSelector, bool)> {
    sa.lifetimes.pairs.iter().map(|p| (p.policy, &p.selector, p.rekey == Rekey::Replaced))
}

/// The IKE SAs other than the one in `slot` (`T` is the engine's SA), lent to its handler:
/// the slots before and after it and the census over all of them.
pub(crate) struct Others<'s, T> {
    pub(crate) earlier: &'s [Option<T>],
    pub(crate) later: &'s [Option<T>],
    pub(crate) census: &'s Census,
}

impl<T: std::ops::Deref<Target = SaCore>> Others<'_, Box<T>> {
    fn slot(&self) -> usize {
        self.earlier.len()
    }

    fn get(&self, slot: usize) -> Option<&SaCore> {
        let sa = match slot.checked_sub(self.slot() + 1) {
            Some(i) => self.later.get(i)?,
            None => self.earlier.get(slot)?,
        };
        sa.as_deref().map(|sa| &**sa)
    }
}

impl<T: std::ops::Deref<Target = SaCore>> Holdings<TrafficSelector> for Others<'_, Box<T>> {
    fn each(&self, f: &mut dyn FnMut(&Branch<'_>, Pairs<'_, '_, TrafficSelector>)) {
        for sa in self.earlier.iter().chain(self.later).flatten() {
            f(&branch(sa), &mut pairs(sa));
        }
    }

    fn policy_totals(&self, policy: usize) -> (usize, usize) {
        let (mut pairs, mut flows) = self.census.policy_totals.get(&policy).copied().unwrap_or_default();
        for &(p, _, _, replaced) in self.census.own(self.slot()).map_or(&[][..], |e| &e.pairs) {
            if p == policy {
                pairs -= 1;
                flows -= usize::from(!replaced);
            }
        }
        (pairs, flows)
    }

    fn established(&self, peer: usize) -> usize {
        let all = self.census.established.get(&peer).copied().unwrap_or_default();
        let own = self.census.own(self.slot()).is_some_and(|e| e.established && e.peer == peer);
        all - usize::from(own)
    }

    fn each_near(
        &self,
        me: &Branch<'_>,
        remote: Option<Range>,
        f: &mut dyn FnMut(&Branch<'_>, Pairs<'_, '_, TrafficSelector>),
    ) {
        let me_id = me.identity.map(|(kind, value)| {
            let mut hasher = DefaultHasher::new();
            (kind, value).hash(&mut hasher);
            hasher.finish()
        });
        for slot in self.census.near(self.slot(), me, me_id, remote) {
            if let Some(sa) = self.get(slot) {
                f(&branch(sa), &mut pairs(sa));
            }
        }
    }
}
