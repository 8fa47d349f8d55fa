//! Engine events, as the data plane must follow them.

use ike::{Engine, Event, Failure};

use super::Bridge;

impl Bridge {
    /// Applies what `event` means for the data plane: a negotiated pair is installed (and
    /// the packets that waited for it sent); a pair the peer deleted, that expired or whose
    /// IKE SA was cleared is removed with its template flow; a failed negotiation drops the
    /// packets queued for its policies so the next packet raises a fresh acquire, unless
    /// only unauthenticated messages caused it ([`abandons_queue`]).
    pub fn apply(&mut self, event: &Event, engine: &Engine) {
        match event {
            Event::IpsecSaInstalled(pair) => self.install(pair, engine, false),
            Event::IpsecSaInbound(_) => {} // by `before_sends`
            Event::Failed(failure) if abandons_queue(failure) => self.abandon(engine, failure.remote.ip()),
            Event::Failed(_) => {}
            Event::IpsecSaDeleted { connection, spis } => self.remove_outbound(*connection, spis),
            Event::IpsecSaExpired { inbound_spi, .. } => self.remove_inbound(*inbound_spi),
            Event::SasCleared { connection, .. } => self.remove_connection(*connection),
            Event::IkeSaDeleted { connection, .. } | Event::IkeSaExpired { connection, .. } => {
                self.remove_held(*connection);
            }
            Event::IkeSaEstablished { .. } | Event::PeerMoved { .. } => {}
        }
    }
}

impl Bridge {
    /// What must reach the data plane before the engine's datagrams leave: the inbound half
    /// of a pair the peer may seal on as soon as it reads them, its outbound half held. As
    /// quick-mode responder that is the pair QM2 announces; as initiator the pair QM3
    /// confirms, on which the responder seals as soon as QM3 arrives (a packet there before
    /// the pair would meet an unknown SPI). `apply` releases the outbound half after the
    /// sends, so that QM3 still leaves before the packets that waited for the pair.
    pub fn before_sends(&mut self, event: &Event, engine: &Engine) {
        match event {
            Event::IpsecSaInbound(pair) => self.install(pair, engine, true),
            Event::IpsecSaInstalled(pair) if !self.held.contains(&pair.inbound.spi().0) => {
                self.install(pair, engine, true);
            }
            _ => {}
        }
    }
}

/// Whether a failure drops the packets queued for its peer. A failure caused only by
/// unauthenticated messages ([`Failure::unauthenticated`]: a refused MM1 or AM1, a
/// responder's phase 1 that never authenticated its peer) does not: anyone can send those
/// with the peer's address, and the packets wait for whichever tunnel comes up, within the
/// queue's own bound. A failure of our own negotiation does, so that the next packet raises
/// a fresh acquire.
pub fn abandons_queue(failure: &Failure) -> bool {
    !failure.unauthenticated
}

#[cfg(test)]
mod tests {
    use super::*;
    use ike::{Exchange, FailureReason, PolicyFailure, TimeoutFailure};
    use std::time::Duration;

    fn failure(reason: FailureReason, unauthenticated: bool) -> Failure {
        Failure {
            peer: Some("fw_b".into()),
            remote: "192.0.2.2:500".parse().expect("address"),
            exchange: Exchange::MainMode,
            state: "waiting for MM1",
            reason,
            unauthenticated,
        }
    }

    /// Before the fix every failure, a spoofed MM1's refusal included, dropped the queue of
    /// the peer whose address it carried.
    #[test]
    fn only_failures_of_authenticated_or_own_negotiations_drop_the_queue() {
        let oversized = PolicyFailure::SaPayloadTooLarge { size: 20_000, limit: 16_384 };
        let refused = failure(FailureReason::Policy(oversized), true);
        assert!(!abandons_queue(&refused));
        let timeout = TimeoutFailure::NoAnswer { retransmissions: 5, waited: Duration::from_secs(62) };
        assert!(abandons_queue(&failure(FailureReason::Timeout(timeout), false)));
    }
}
