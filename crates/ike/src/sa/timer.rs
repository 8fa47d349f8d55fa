//! The timers of one IKE SA, by name, the way quinn-proto's `connection/timer.rs` names a
//! connection's: one [`Timer`] per deadline, and the SA's next wakeup is the earliest of them
//! (`IkeSa::next_deadline` in `ike_sa.rs`, above this module).
//!
//! The SA's own deadlines (the phase-1 exchange deadline, the hard lifetime) live in a
//! [`TimerTable`]; the others belong to the state that moves them, read under their name:
//! the retransmission of the phase-1 flight, DPD, NAT-T keepalives, fragment reassembly, the
//! quick modes under way and the lifetimes of the IPsec SAs.

use std::time::Instant;

/// One deadline of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Phase 1 must be complete by then (`limits.exchange_timeout` from its start).
    Phase1Deadline,
    /// The established IKE SA's hard lifetime: the engine hands its IPsec SAs on and deletes
    /// it.
    HardLifetime,
    /// Send the last phase-1 message again (exponential back-off).
    Retransmit,
    /// Dead peer detection: probe an idle peer, or declare it dead (RFC 3706).
    Dpd,
    /// NAT-T keepalive from the side behind a NAT (RFC 3948 §2.3).
    Keepalive,
    /// Give up reassembling a fragmented message.
    Fragments,
    /// A quick mode's retransmission or deadline.
    QuickMode,
    /// An IPsec SA's soft or hard lifetime, or the IKE SA's renewal.
    Lifetimes,
}

impl Timer {
    /// The timers a [`TimerTable`] stores.
    const STORED: [Self; 2] = [Self::Phase1Deadline, Self::HardLifetime];
}

/// The deadlines an IKE SA arms itself, one slot per stored [`Timer`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TimerTable {
    data: [Option<Instant>; Timer::STORED.len()],
}

impl TimerTable {
    fn index(timer: Timer) -> usize {
        Timer::STORED.iter().position(|t| *t == timer).expect("only stored timers are armed")
    }

    /// Arms `timer` for `at`, replacing an earlier setting.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.data[Self::index(timer)] = Some(at);
    }

    /// When `timer` fires, if armed.
    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.data[Self::index(timer)]
    }

    /// Disarms `timer`.
    pub(crate) fn stop(&mut self, timer: Timer) {
        self.data[Self::index(timer)] = None;
    }

    /// True when `timer` is armed and due at `now`.
    pub(crate) fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn armed_timers_fire_at_their_time_and_stop() {
        let now = crate::tests::util::epoch();
        let mut table = TimerTable::default();
        assert_eq!(table.get(Timer::Phase1Deadline), None);
        table.set(Timer::Phase1Deadline, now + Duration::from_secs(30));
        table.set(Timer::HardLifetime, now + Duration::from_secs(60));
        assert!(!table.is_due(Timer::Phase1Deadline, now));
        assert!(table.is_due(Timer::Phase1Deadline, now + Duration::from_secs(30)));
        table.stop(Timer::Phase1Deadline);
        assert!(!table.is_due(Timer::Phase1Deadline, now + Duration::from_secs(90)));
        assert_eq!(table.get(Timer::HardLifetime), Some(now + Duration::from_secs(60)));
    }
}
