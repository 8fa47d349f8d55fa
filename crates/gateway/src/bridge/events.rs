//! Engine events, as the data plane must follow them.

use ike::{Engine, Event};

use super::Bridge;

impl Bridge {
    /// Applies what `event` means for the data plane: a negotiated pair is installed (and
    /// the packets that waited for it sent); a pair the peer deleted, that expired or whose
    /// IKE SA was cleared is removed with its template flow; a failed negotiation drops the
    /// packets queued for its policies so the next packet raises a fresh acquire.
    pub fn apply(&mut self, event: &Event, engine: &Engine) {
        match event {
            Event::IpsecSaInstalled(pair) => self.install(pair, engine),
            Event::Failed(failure) => self.abandon(engine, failure.remote.ip()),
            Event::IpsecSaDeleted { connection, spis } => self.remove_outbound(*connection, spis),
            Event::IpsecSaExpired { inbound_spi, .. } => self.remove_inbound(*inbound_spi),
            Event::SasCleared { connection, .. } => self.remove_connection(*connection),
            Event::IkeSaEstablished { .. }
            | Event::IkeSaDeleted { .. }
            | Event::IkeSaExpired { .. }
            | Event::PeerMoved { .. } => {}
        }
    }
}
