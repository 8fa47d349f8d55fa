//! The data plane's counters, for `display ipsec statistics`.

use super::outcome::DropReason;
use crate::sa::OpenError;

/// Inbound drops by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InboundDrops {
    /// No SA for the SPI (or shorter than an ESP header).
    pub unknown_spi: u64,
    /// Too short or misaligned for the SA.
    pub malformed: u64,
    /// Duplicate, too old or sequence number 0.
    pub replayed: u64,
    /// ICV or AEAD tag mismatch.
    pub authentication: u64,
    /// Bad padding or pad length.
    pub trailer: u64,
    /// Dummy packets (next header 59).
    pub dummy: u64,
    /// Unexpected next header or broken inner header.
    pub inner: u64,
    /// SA past its hard lifetime.
    pub expired: u64,
    /// Outside the SA's selector.
    pub policy_mismatch: u64,
    /// Other (buffer, cipher failures).
    pub other: u64,
}

impl InboundDrops {
    pub(super) fn count(&mut self, reason: &DropReason) {
        let counter = match reason {
            DropReason::Truncated | DropReason::UnknownSpi(_) => &mut self.unknown_spi,
            DropReason::PolicyMismatch { .. } | DropReason::ProtectionMismatch { .. } => {
                &mut self.policy_mismatch
            }
            DropReason::Open(error) => match error {
                OpenError::Malformed(_) | OpenError::MalformedAh(_) | OpenError::WrongSpi { .. } => {
                    &mut self.malformed
                }
                OpenError::Replay(_) => &mut self.replayed,
                OpenError::AuthenticationFailed => &mut self.authentication,
                OpenError::Trailer(_) => &mut self.trailer,
                OpenError::Dummy => &mut self.dummy,
                OpenError::UnexpectedNextHeader(_) | OpenError::InnerMalformed(_) => &mut self.inner,
                OpenError::Expired => &mut self.expired,
                OpenError::BufferTooSmall { .. } | OpenError::Crypto(_) => &mut self.other,
            },
        };
        *counter += 1;
    }
}

/// Counters for `display ipsec statistics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Statistics {
    /// Packets sealed.
    pub sealed: u64,
    /// Packets opened and delivered.
    pub opened: u64,
    /// Bytes of the inner packets sealed, and of those opened and delivered.
    pub sealed_bytes: u64,
    /// See `sealed_bytes`.
    pub opened_bytes: u64,
    /// Packets passed in clear.
    pub bypassed: u64,
    /// Packets queued waiting for an SA.
    pub queued: u64,
    /// Queued packets dropped because their queue was full or abandoned, or released
    /// packets and fragments whose SA went away before `poll_queued`.
    pub queue_dropped: u64,
    /// Acquires raised.
    pub acquires: u64,
    /// Packets fragmented before encryption to fit the path MTU.
    pub fragmented: u64,
    /// Packets too big for the path with DF set (answered with ICMP or dropped).
    pub too_big: u64,
    /// Outbound packets dropped: malformed.
    pub outbound_malformed: u64,
    /// Outbound packets dropped: a discard rule.
    pub outbound_policy_discards: u64,
    /// Outbound packets dropped: the SA refused (exhausted, expired, buffer).
    pub outbound_seal_errors: u64,
    /// Inbound drops by reason.
    pub inbound: InboundDrops,
    /// Clear packets from outside refused because policy wants them protected (or dropped).
    pub inbound_clear_refused: u64,
}

impl Statistics {
    /// These (a sealing side's) counters with the inbound ones of `open` (an opening side's).
    pub fn with_inbound(&self, open: &Statistics) -> Statistics {
        Statistics {
            opened: open.opened,
            opened_bytes: open.opened_bytes,
            inbound: open.inbound,
            inbound_clear_refused: self.inbound_clear_refused + open.inbound_clear_refused,
            ..*self
        }
    }
}
