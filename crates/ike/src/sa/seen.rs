//! The message IDs an IKE SA has used, against replays: quick modes and informationals carry
//! no sequence number, so a copy of an old authenticated message would otherwise be acted on
//! again (a second IPsec SA pair, a Delete, a DPD answer, a NAT-T move).

use std::collections::VecDeque;

/// The message IDs of one kind of exchange (quick mode or informational) an IKE SA has used,
/// for its whole lifetime up to [`SeenMessageIds::CAP`]: each exchange has a fresh random
/// message ID (RFC 2409 §5.5, §5.7), so a message with a known ID and no exchange to answer
/// it is a replay. Bounded: beyond the cap the oldest ID is forgotten and counted.
///
/// One ring of 4-byte IDs (16 KiB at most) searched linearly: a hash set beside it would
/// more than double the memory of every long-lived SA, and scanning 4,096 words costs less
/// than the decryption and hash that a message with a new ID goes through anyway.
#[derive(Debug, Default)]
pub(crate) struct SeenMessageIds {
    /// The IDs in the order they were recorded, oldest first.
    order: VecDeque<u32>,
    /// IDs forgotten because the cap was reached: a replay of one of them is not recognised.
    pub(crate) forgotten: u64,
    /// Messages dropped because their ID was seen already.
    pub(crate) replays_dropped: u64,
}

impl crate::sa::lazy::Empty for SeenMessageIds {
    const EMPTY: &'static Self = &Self { order: VecDeque::new(), forgotten: 0, replays_dropped: 0 };
}

impl SeenMessageIds {
    /// How many IDs are remembered.
    pub(crate) const CAP: usize = 4096;

    /// True if `message_id` was recorded (and not yet forgotten).
    pub(crate) fn contains(&self, message_id: u32) -> bool {
        self.order.contains(&message_id)
    }

    /// Records `message_id`; false if it was seen already.
    pub(crate) fn first_time(&mut self, message_id: u32) -> bool {
        if self.contains(message_id) {
            return false;
        }
        if self.order.len() == Self::CAP {
            self.order.pop_front();
            self.forgotten += 1;
        }
        self.order.push_back(message_id);
        true
    }

    /// A message with a seen ID was dropped.
    pub(crate) fn dropped_replay(&mut self) {
        self.replays_dropped += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::SeenMessageIds;

    #[test]
    fn replays_are_refused_until_the_cap_forgets_them() {
        let mut seen = SeenMessageIds::default();
        assert!(seen.first_time(7));
        assert!(!seen.first_time(7));
        assert!(seen.contains(7));
        for id in 100..100 + SeenMessageIds::CAP as u32 - 1 {
            assert!(seen.first_time(id));
        }
        assert!(seen.contains(7) && seen.forgotten == 0, "remembered up to the cap");
        assert!(seen.first_time(1));
        assert!(!seen.contains(7), "the oldest is forgotten once over the cap");
        assert_eq!(seen.forgotten, 1);
        assert_eq!(seen.order.len(), SeenMessageIds::CAP);
        assert!(seen.first_time(7));
    }
}
