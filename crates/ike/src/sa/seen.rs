//! The informational message IDs an IKE SA has accepted recently, against replays: an
//! informational carries no sequence, and its effects (DPD, NAT-T moves, Deletes) must not be
//! replayed.

use std::collections::VecDeque;

/// The message IDs of the last authenticated informationals of an IKE SA, to drop replays.
/// Each informational exchange has a fresh random message ID (RFC 2409 §5.7) and is sent once,
/// so a repeat within the window is a copy. Bounded: the oldest ID is forgotten first.
#[derive(Debug, Default)]
pub(crate) struct SeenMessageIds(VecDeque<u32>);

impl SeenMessageIds {
    /// How many IDs are remembered.
    const WINDOW: usize = 64;

    /// Records `message_id`; false if it was seen already.
    pub(crate) fn first_time(&mut self, message_id: u32) -> bool {
        if self.0.contains(&message_id) {
            return false;
        }
        if self.0.len() == Self::WINDOW {
            self.0.pop_front();
        }
        self.0.push_back(message_id);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::SeenMessageIds;

    #[test]
    fn replays_within_the_window_are_refused() {
        let mut seen = SeenMessageIds::default();
        assert!(seen.first_time(7));
        assert!(!seen.first_time(7));
        for id in 100..100 + SeenMessageIds::WINDOW as u32 {
            assert!(seen.first_time(id));
        }
        assert!(seen.first_time(7), "forgotten once out of the window");
    }
}
