//! Packets that wait (RFC 4301 §5.1, "no SA: ... invoke IKE"): one acquire queue per SPD rule
//! until an SA for it is installed, then a ready list of the packets released from it and of
//! the fragments of too-big packets, until `poll_queued` seals them. Queueing is the slow
//! path: it copies, and allocates only until its pool of spare buffers is warm. Every method
//! that drops packets returns how many, for the caller's counters.

use std::collections::{HashMap, VecDeque};

use crate::mtu;
use spd::PolicyIndex;
use spd::{Flow, Selector};

/// A packet waiting for `poll_queued`: released from an acquire queue (`sa: None`, looked
/// up again), or a fragment bound to the SA of its original packet (`policy`, serial);
/// `whole`: a reassembled datagram, sealed whole (`DataPlane::seal_whole`).
pub(super) struct Released {
    pub(super) packet: Vec<u8>,
    pub(super) sa: Option<(PolicyIndex, u64)>,
    pub(super) whole: bool,
}

struct AcquireQueue {
    policy: PolicyIndex,
    packets: VecDeque<(Vec<u8>, bool)>,
}

pub(super) struct Queues {
    /// Packets kept per acquire queue, oldest dropped first.
    queue_len: usize,
    /// Spare buffers kept for reuse.
    spare_buffers: usize,
    /// Acquire queues by SPD rule index (`None`: the default action).
    acquire: HashMap<Option<usize>, AcquireQueue>,
    /// Released packets waiting for `poll_queued`.
    ready: VecDeque<Released>,
    spare: Vec<Vec<u8>>,
}

impl Queues {
    pub(super) fn new(queue_len: usize, spare_buffers: usize) -> Self {
        Self {
            queue_len: queue_len.max(1),
            spare_buffers,
            acquire: HashMap::new(),
            ready: VecDeque::new(),
            spare: Vec::new(),
        }
    }

    /// Queues a copy of `packet` (`whole`: see [`Released`]) for `rule`. Returns whether it opened the rule's queue (so an
    /// acquire is due) and whether the oldest packet was dropped to make room.
    pub(super) fn enqueue(
        &mut self,
        policy: PolicyIndex,
        rule: Option<usize>,
        packet: &[u8],
        whole: bool,
    ) -> (bool, bool) {
        let mut buffer = self.spare.pop().unwrap_or_default();
        buffer.extend_from_slice(packet);
        let opened = !self.acquire.contains_key(&rule);
        let queue = self.acquire.entry(rule).or_insert(AcquireQueue { policy, packets: VecDeque::new() });
        let oldest = if queue.packets.len() >= self.queue_len { queue.packets.pop_front() } else { None };
        queue.packets.push_back((buffer, whole));
        let dropped = oldest.is_some();
        if let Some((oldest, _)) = oldest {
            self.recycle(oldest);
        }
        (opened, dropped)
    }

    /// Moves queued packets of `policy` that `selector` covers to the ready list. Returns the
    /// flow of the first packet left in each queue it did not empty: the pair covers less
    /// than its rule (the peer narrowed it), and those packets need an acquire of their own.
    pub(super) fn release(&mut self, policy: PolicyIndex, selector: &Selector) -> Vec<Flow> {
        let mut left = Vec::new();
        for rule in self.rules_of(policy) {
            let Some(queue) = self.acquire.get_mut(&rule) else { continue };
            let (covered, kept): (VecDeque<_>, VecDeque<_>) =
                std::mem::take(&mut queue.packets).into_iter().partition(|(packet, _)| {
                    Flow::parse_ipv4(packet).is_ok_and(|(flow, ..)| selector.matches_outbound(&flow))
                });
            queue.packets = kept;
            if queue.packets.is_empty() {
                self.acquire.remove(&rule);
            } else if !covered.is_empty() {
                left.extend(queue.packets.front().and_then(|p| Flow::parse_ipv4(&p.0).ok()).map(|(f, ..)| f));
            }
            self.ready.extend(covered.into_iter().map(|(packet, whole)| Released {
                packet,
                sa: None,
                whole,
            }));
        }
        left
    }

    fn rules_of(&self, policy: PolicyIndex) -> Vec<Option<usize>> {
        self.acquire.iter().filter(|(_, q)| q.policy == policy).map(|(rule, _)| *rule).collect()
    }

    /// Drops the queues of `policy`.
    pub(super) fn abandon(&mut self, policy: PolicyIndex) -> usize {
        self.rules_of(policy).into_iter().map(|rule| self.drop_queue(rule)).sum()
    }

    /// Drops every acquire queue (the SPD was replaced, so rule indices changed).
    pub(super) fn clear(&mut self) -> usize {
        let rules: Vec<Option<usize>> = self.acquire.keys().copied().collect();
        rules.into_iter().map(|rule| self.drop_queue(rule)).sum()
    }

    /// Follows the removal of SPD rule `index`: its queue is dropped and the queues of the
    /// rules after it follow their rules' new indices.
    pub(super) fn rule_removed(&mut self, index: usize) -> usize {
        let dropped = self.drop_queue(Some(index));
        let mut moved: Vec<usize> = self.acquire.keys().filter_map(|k| k.filter(|&i| i > index)).collect();
        moved.sort_unstable();
        for old in moved {
            if let Some(queue) = self.acquire.remove(&Some(old)) {
                self.acquire.insert(Some(old - 1), queue);
            }
        }
        dropped
    }

    fn drop_queue(&mut self, rule: Option<usize>) -> usize {
        let Some(queue) = self.acquire.remove(&rule) else { return 0 };
        let dropped = queue.packets.len();
        for (packet, _) in queue.packets {
            self.recycle(packet);
        }
        dropped
    }

    /// Follows renumbered policy entries: fragments bound to a removed policy are dropped.
    pub(super) fn renumber(&mut self, renumber: &impl Fn(PolicyIndex) -> Option<PolicyIndex>) -> usize {
        let mut dropped = 0;
        for mut released in std::mem::take(&mut self.ready) {
            if let Some((policy, serial)) = released.sa {
                let Some(new) = renumber(policy) else {
                    dropped += 1;
                    self.recycle(released.packet);
                    continue;
                };
                released.sa = Some((new, serial));
            }
            self.ready.push_back(released);
        }
        dropped
    }

    /// Splits `packet` (see [`mtu::fragment`]) into fragments of at most `max_len` bytes bound
    /// to the SA `(policy, serial)`; returns the first, the others wait in the ready list.
    /// `None` when the packet cannot be split that small.
    pub(super) fn fragment(
        &mut self,
        packet: &[u8],
        header_len: usize,
        max_len: usize,
        sa: (PolicyIndex, u64),
    ) -> Option<Vec<u8>> {
        let mut fragments = Vec::new();
        let spare = &mut self.spare;
        let split = mtu::fragment(packet, header_len, max_len, |fragment| {
            let mut buffer = spare.pop().unwrap_or_default();
            buffer.extend_from_slice(fragment);
            fragments.push(buffer);
        });
        let mut fragments = fragments.into_iter();
        let (true, Some(first)) = (split, fragments.next()) else { return None };
        self.ready.extend(fragments.map(|packet| Released { packet, sa: Some(sa), whole: false }));
        Some(first)
    }

    pub(super) fn pop_ready(&mut self) -> Option<Released> {
        self.ready.pop_front()
    }

    pub(super) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    pub(super) fn next_ready_len(&self) -> Option<usize> {
        self.ready.front().map(|released| released.packet.len())
    }

    /// Keeps `packet`'s buffer for reuse, up to the pool's size.
    pub(super) fn recycle(&mut self, mut packet: Vec<u8>) {
        if self.spare.len() < self.spare_buffers {
            packet.clear();
            self.spare.push(packet);
        }
    }

    /// Packets waiting in acquire queues, and the number of queues.
    pub(super) fn queued(&self) -> (usize, usize) {
        (self.acquire.values().map(|q| q.packets.len()).sum(), self.acquire.len())
    }
}
