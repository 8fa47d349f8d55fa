//! Retransmission and duplicate detection of one exchange: the phase-1 flight of an IKE SA
//! and the flight of each quick mode.

use std::time::{Duration, Instant};

use crate::config::Config;

/// The retransmission and duplicate-detection state of one exchange (phase 1 or one quick
/// mode): the last message we sent, when to send it again, and the digest of the last message
/// we accepted, so that a repeat of it is answered from memory.
#[derive(Debug)]
pub(crate) struct Flight {
    last_sent: Option<Vec<u8>>,
    last_received: Option<[u8; 32]>,
    retransmit_at: Option<Instant>,
    retransmissions: u32,
    duplicate_replies: u32,
    /// Whether repeats are answered only [`MAX_DUPLICATE_REPLIES`] times (see
    /// [`Flight::answer_every_repeat`]).
    bounded_repeats: bool,
    started: Instant,
}

/// A responder answers repeats of one request at most this many times (no amplification).
const MAX_DUPLICATE_REPLIES: u32 = 3;

/// What a heap block of `len` bytes costs with the allocator's bookkeeping (about 16 bytes).
pub(crate) fn heap_bytes(len: usize) -> usize {
    len + 16 * usize::from(len > 0)
}

/// What a retransmission timer decided.
pub(crate) enum FlightTimeout {
    /// Nothing due.
    Nothing,
    /// Send this again.
    Resend(Vec<u8>),
    /// Every retransmission is spent.
    GiveUp { retransmissions: u32, waited: Duration },
}

impl Flight {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            last_sent: None,
            last_received: None,
            retransmit_at: None,
            retransmissions: 0,
            duplicate_replies: 0,
            bounded_repeats: true,
            started: now,
        }
    }

    /// Records a message we send. A request (`expect_reply`) is retransmitted until answered.
    pub(crate) fn sent(&mut self, bytes: &[u8], expect_reply: bool, now: Instant, config: &Config) {
        self.last_sent = Some(bytes.to_vec());
        self.retransmissions = 0;
        self.duplicate_replies = 0;
        self.retransmit_at = expect_reply.then(|| now + config.limits.retransmit_initial);
    }

    /// Records an accepted message (by digest), which also answers our outstanding request.
    pub(crate) fn received(&mut self, digest: [u8; 32]) {
        self.last_received = Some(digest);
        self.retransmit_at = None;
    }

    /// If `digest` is the message accepted last, the stored reply to send again (at most a few
    /// times); `Some(None)` when it is a repeat that gets no answer.
    pub(crate) fn repeat(&mut self, digest: &[u8; 32]) -> Option<Option<Vec<u8>>> {
        if self.last_received.as_ref() != Some(digest) {
            return None;
        }
        if self.bounded_repeats && self.duplicate_replies >= MAX_DUPLICATE_REPLIES {
            return Some(None);
        }
        self.duplicate_replies += 1;
        Some(self.last_sent.clone())
    }

    /// The heap bytes held (the message kept for retransmission and repeats).
    pub(crate) fn held_bytes(&self) -> usize {
        self.last_sent.as_ref().map_or(0, |bytes| heap_bytes(bytes.capacity()))
    }

    /// The last message we sent, for a state that decides itself when to send it again.
    pub(crate) fn last_sent(&self) -> Option<&[u8]> {
        self.last_sent.as_deref()
    }

    /// Records the last message of an exchange, which needs no answer (AM3): repeats of it
    /// are then dropped instead of drawing our previous message again.
    pub(crate) fn finished(&mut self, digest: [u8; 32]) {
        self.received(digest);
        self.last_sent = None;
    }

    /// Answers every repeat of the last accepted message, for an initiator's last message (AM3,
    /// QM3). The bound exists so an unauthenticated first message cannot draw replies without
    /// end; here the repeated message was authenticated when first accepted, the reply goes to
    /// the peer's fixed address (a replay reflects one datagram for one, no amplification),
    /// and the peer retransmits until it gets our answer: with a bound, a lossy path can
    /// leave the peer without it while we already use the SA.
    pub(crate) fn answer_every_repeat(&mut self) {
        self.bounded_repeats = false;
    }

    /// Lets the copy of our last message go once repeats of the peer's are no longer
    /// answered (an established IKE SA past its phase-1 repeat window).
    pub(crate) fn forget_sent(&mut self) {
        self.last_sent = None;
    }

    /// Stops retransmitting (the exchange is over on our side).
    pub(crate) fn settle(&mut self) {
        self.retransmit_at = None;
    }

    pub(crate) fn retransmit_at(&self) -> Option<Instant> {
        self.retransmit_at
    }

    /// Runs the retransmission timer: exponential back-off, then give up.
    pub(crate) fn on_timeout(&mut self, now: Instant, config: &Config) -> FlightTimeout {
        let Some(at) = self.retransmit_at else { return FlightTimeout::Nothing };
        if now < at {
            return FlightTimeout::Nothing;
        }
        if self.retransmissions >= config.limits.retransmit_count {
            self.retransmit_at = None;
            return FlightTimeout::GiveUp {
                retransmissions: self.retransmissions,
                waited: now.saturating_duration_since(self.started),
            };
        }
        self.retransmissions += 1;
        let backoff = config.limits.retransmit_initial * 2u32.saturating_pow(self.retransmissions);
        self.retransmit_at = Some(now + backoff);
        match &self.last_sent {
            Some(bytes) => FlightTimeout::Resend(bytes.clone()),
            None => FlightTimeout::Nothing,
        }
    }
}
