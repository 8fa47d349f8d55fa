//! What an IKE SA remembers of the messages it dropped because they could not be
//! authenticated: a datagram that did not decrypt, whose HASH or signature did not verify, or
//! an error notify sent in clear. Anyone who sees the cookies can forge such a message, so it
//! never changes the SA (RFC 2408 §5.1: "the receiving entity MUST NOT act on" an
//! unauthenticated notification beyond logging; RFC 2409 §5: a corrupted message is dropped
//! and the peer's retransmission repairs it). But a real negotiation that fails (the
//! pre-shared keys differ, the peer has no common proposal) fails exactly so, and the operator
//! must learn why: the last such failure is kept and reported when the exchange gives up, or
//! after [`REPEATS_TO_FAIL`] of them in one phase-1 exchange, whichever comes first.

use crate::failure::FailureReason;

/// Unauthenticated failures after which a phase-1 exchange ends with the last one's reason:
/// a peer whose keys really differ (or that really refuses our proposal) repeats itself on
/// every retransmission, while a single corrupted or forged datagram does not. Three lets the
/// interop tests of a wrong key see their reason within seconds rather than after the whole
/// exchange timeout.
pub(crate) const REPEATS_TO_FAIL: u32 = 3;

/// The unauthenticated messages one IKE SA dropped.
#[derive(Debug, Default)]
pub(crate) struct Unauthenticated {
    /// Messages dropped over the SA's life (for the engine's statistics).
    dropped: u64,
    /// Dropped during the phase-1 exchange: compared with [`REPEATS_TO_FAIL`].
    during_phase1: u32,
    /// The last one: the state the exchange was in and why it was dropped.
    last: Option<(&'static str, FailureReason)>,
}

impl Unauthenticated {
    /// Records a dropped message: `state` is where the exchange stood, `reason` why it was
    /// dropped. Returns true when phase 1 should now end with this reason (the
    /// [`REPEATS_TO_FAIL`]th during phase 1).
    pub(crate) fn dropped(&mut self, state: &'static str, reason: FailureReason, phase1: bool) -> bool {
        self.dropped += 1;
        self.last = Some((state, reason));
        if phase1 {
            self.during_phase1 += 1;
        }
        phase1 && self.during_phase1 >= REPEATS_TO_FAIL
    }

    /// Messages dropped over the SA's life.
    pub(crate) fn count(&self) -> u64 {
        self.dropped
    }

    /// The last dropped message's state and reason, taken (reported once).
    pub(crate) fn take_last(&mut self) -> Option<(&'static str, FailureReason)> {
        self.last.take()
    }
}

/// Why a protected phase-1 message (MM5, MM6, AM2, AM3) was not accepted: before its proof
/// (HASH or signature) verified it is anyone's, and is dropped; after, it is the peer's, and
/// ends the exchange.
#[derive(Debug)]
pub(crate) enum Rejected {
    /// It did not decrypt, parse, or verify: dropped, the exchange goes on.
    Unauthenticated(FailureReason),
    /// It is authentic, and refused (the identity is not the configured one, we cannot sign).
    Authenticated(FailureReason),
}

impl From<FailureReason> for Rejected {
    /// Every failure before the proof verified is an unauthenticated one.
    fn from(reason: FailureReason) -> Self {
        Self::Unauthenticated(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::AuthenticationFailure;

    #[test]
    fn phase1_ends_at_the_third_repeat_and_keeps_the_last_reason() {
        let mut record = Unauthenticated::default();
        let keys = || FailureReason::Authentication(AuthenticationFailure::KeysDiffer { message: "MM5" });
        assert!(!record.dropped("waiting for MM5", keys(), true));
        assert!(!record.dropped("waiting for MM5", keys(), true));
        // Dropped messages after phase 1 (quick mode, informational) never end it.
        assert!(!record.dropped("waiting for QM3", keys(), false));
        assert!(record.dropped("waiting for MM5", keys(), true));
        assert_eq!(record.count(), 4);
        let (state, reason) = record.take_last().expect("kept");
        assert_eq!(state, "waiting for MM5");
        assert_eq!(reason.to_string(), "MM5 decrypted to garbage: the pre-shared keys probably differ");
        assert!(record.take_last().is_none(), "reported once");
    }
}
