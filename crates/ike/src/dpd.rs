//! Dead peer detection (RFC 3706).
//!
//! Both sides announce DPD with a Vendor ID (§4; see [`crate::vendor`]). We always answer an
//! R-U-THERE with an R-U-THERE-ACK carrying the same sequence number (§5.1); we ask only when
//! `dpd` is configured for the peer *and* the peer announced DPD, and only when the tunnel has
//! been idle (§5.3): nothing authenticated came from the peer and the data plane reported no
//! inbound traffic ([`crate::Engine::handle_traffic`]) for `idle_time`. Both notifications
//! travel in encrypted informational exchanges with HASH(1) (§5.2), protocol ISAKMP, SPI =
//! CKY-I | CKY-R, and a 4-byte sequence number as data; the first sequence number is random
//! and each R-U-THERE, a retransmission included, takes the next one (§5.5), so a late ACK of
//! an earlier one still counts. After `retry_limit` further R-U-THEREs without any ACK, each
//! `retransmit_interval` apart, the peer is dead: the engine clears the IKE SA and tells the
//! data plane to drop its IPsec SAs ([`crate::Event::SasCleared`]).

use std::time::Instant;

use isakmp::Notification;

use crate::event::ClearReason;

/// DPD state of one IKE SA.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DpdState {
    /// The last time the peer showed it is alive (authenticated message or inbound traffic).
    last_heard: Instant,
    /// The sequence number of our next R-U-THERE.
    next_sequence: u32,
    /// R-U-THEREs in flight without an ACK.
    probing: Option<Probing>,
}

#[derive(Debug, Clone, Copy)]
struct Probing {
    /// Sequence number of the first unanswered R-U-THERE.
    first_sequence: u32,
    /// How many were sent.
    sent: u32,
    /// When to send the next one, or give up.
    next_at: Instant,
}

/// What the DPD timer decided.
pub(crate) enum DpdTimeout {
    Nothing,
    /// Send an R-U-THERE with this sequence number.
    Probe(u32),
    /// No ACK to any probe: the peer is dead.
    Dead(ClearReason),
}

impl DpdState {
    /// Fresh state; `first_sequence` should be random (RFC 3706 §5.5).
    pub(crate) fn new(now: Instant, first_sequence: u32) -> Self {
        Self { last_heard: now, next_sequence: first_sequence, probing: None }
    }

    /// The peer is alive: an authenticated message or traffic arrived.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
        self.probing = None;
    }

    /// An authenticated R-U-THERE-ACK: it ends the probing if it answers one of our probes.
    pub(crate) fn acknowledged(&mut self, notification: &Notification<'_>) {
        let (Some(probing), Some(sequence)) = (self.probing, notification.dpd_sequence()) else { return };
        // Wrapping distance: the sequence space may wrap (RFC 3706 §5.5).
        if sequence.wrapping_sub(probing.first_sequence) < probing.sent {
            self.probing = None;
        }
    }

    /// When the DPD timer is next due, if DPD runs on this SA.
    pub(crate) fn deadline(&self, config: Option<&crate::config::DpdConfig>) -> Option<Instant> {
        let config = config?;
        Some(match self.probing {
            Some(p) => p.next_at,
            None => self.last_heard + config.idle_time,
        })
    }

    /// Runs the timer.
    pub(crate) fn on_timeout(&mut self, now: Instant, config: &crate::config::DpdConfig) -> DpdTimeout {
        match &mut self.probing {
            None if now >= self.last_heard + config.idle_time => {
                let sequence = self.take_sequence();
                self.probing = Some(Probing {
                    first_sequence: sequence,
                    sent: 1,
                    next_at: now + config.retransmit_interval,
                });
                DpdTimeout::Probe(sequence)
            }
            Some(p) if now >= p.next_at => {
                if p.sent > config.retry_limit {
                    let unanswered = p.sent;
                    self.probing = None;
                    return DpdTimeout::Dead(ClearReason::PeerDead {
                        unanswered,
                        silent_for: now.saturating_duration_since(self.last_heard),
                    });
                }
                p.sent += 1;
                p.next_at = now + config.retransmit_interval;
                let sequence = self.take_sequence();
                DpdTimeout::Probe(sequence)
            }
            _ => DpdTimeout::Nothing,
        }
    }

    fn take_sequence(&mut self) -> u32 {
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        sequence
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::DpdConfig;
    use isakmp::{Doi, NotifyType, ProtocolId};

    fn ack(sequence: u32) -> Vec<u8> {
        sequence.to_be_bytes().to_vec()
    }

    #[test]
    fn probes_when_idle_then_declares_dead() {
        let now = crate::tests::util::epoch();
        let config = DpdConfig {
            idle_time: Duration::from_secs(10),
            retransmit_interval: Duration::from_secs(5),
            retry_limit: 2,
        };
        let mut dpd = DpdState::new(now, u32::MAX);
        assert!(matches!(dpd.on_timeout(now + Duration::from_secs(9), &config), DpdTimeout::Nothing));
        let t = now + Duration::from_secs(10);
        assert!(matches!(dpd.on_timeout(t, &config), DpdTimeout::Probe(u32::MAX)));
        assert!(matches!(dpd.on_timeout(t + Duration::from_secs(5), &config), DpdTimeout::Probe(0)));
        assert!(matches!(dpd.on_timeout(t + Duration::from_secs(10), &config), DpdTimeout::Probe(1)));
        // A late ACK of the first probe (before the wrap) still counts.
        let data = ack(u32::MAX);
        let n = Notification {
            doi: Doi::Ipsec,
            protocol: ProtocolId::Isakmp,
            spi: &[],
            notify_type: NotifyType::DpdRUThereAck,
            data: &data,
        };
        let mut answered = dpd;
        answered.acknowledged(&n);
        assert!(answered.probing.is_none());
        let stale = ack(7);
        dpd.acknowledged(&Notification { data: &stale, ..n.clone() });
        assert!(dpd.probing.is_some(), "an ACK of no probe of ours is ignored");
        match dpd.on_timeout(t + Duration::from_secs(15), &config) {
            DpdTimeout::Dead(ClearReason::PeerDead { unanswered, silent_for }) => {
                assert_eq!(unanswered, 3);
                assert_eq!(silent_for, Duration::from_secs(25));
            }
            _ => panic!("peer should be dead"),
        }
    }
}
