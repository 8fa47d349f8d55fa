//! The daemon's log line for each engine event, in the operator's words: one line per phase 1
//! and per IPsec SA pair established naming the peer, the ends of SAs and why, and failures
//! through the rate limits of [`crate::refusals`].

use std::fmt;
use std::time::Instant;

use ike::{Engine, Event};
use tracing::{info, warn};

use crate::refusals::{RefusalLog, Verdict};

/// The log line of an engine event; failures through the rate limits of `refusals`.
pub fn log_event(event: &Event, engine: &Engine, refusals: &mut RefusalLog) {
    match event {
        Event::IkeSaEstablished { connection, peer, remote, suite, initiator, .. } => {
            info!(
                conn_id = %connection, peer = %peer,
                "IKE SA {connection} with {peer} ({}) established as {}: {}",
                remote.ip(),
                if *initiator { "initiator" } else { "responder" },
                ike::SuiteName(suite)
            );
            // Signature authentication: which certificate the peer proved it holds.
            let certificate = engine.ike_sa(*connection).and_then(|v| v.peer_certificate);
            if let Some(c) = certificate {
                info!(
                    "IKE SA {connection} with {peer}: peer certificate subject '{}', issuer '{}', serial {}",
                    c.subject, c.issuer, c.serial
                );
            }
        }
        Event::IpsecSaInstalled(pair) => info!(
            "IPsec SA pair for {} with {} ({}) up: {}, inbound SPI {:08x}, outbound SPI {:08x}",
            pair.policy,
            pair.peer,
            pair.remote.ip(),
            pair.suite,
            pair.inbound.spi().0,
            pair.outbound.spi().0
        ),
        Event::Failed(f) => match refusals.check(f, Instant::now()) {
            // The fields journald and --log-format json carry; the message says it all as text.
            Verdict::Log { suppressed } => warn!(
                peer = f.peer.as_deref(), exchange = %f.exchange, reason = %f.reason,
                "{f}{}", if suppressed > 0 { format!(" ({suppressed} more suppressed)") } else { String::new() }
            ),
            Verdict::Suppress => {}
        },
        Event::IkeSaDeleted { connection, peer } => {
            info!("IKE SA {connection} with {peer} deleted by the peer")
        }
        Event::IpsecSaDeleted { connection, spis } => {
            info!("peer deleted IPsec SAs {} on IKE SA {connection}", SpiList(spis));
        }
        Event::IpsecSaExpired { connection, peer, policy, inbound_spi, outbound_spi, reason } => info!(
            "IPsec SA pair for {policy} with {peer} ended ({}) on IKE SA {connection}: \
             inbound SPI {inbound_spi:08x}, outbound SPI {outbound_spi:08x}",
            ipsec_sa_end(*reason)
        ),
        Event::IkeSaExpired { connection, peer, remote, reason } => info!(
            "IKE SA {connection} with {peer} ({}) ended ({}); Delete sent",
            remote.ip(),
            ike_sa_end(*reason)
        ),
        Event::SasCleared { connection, peer, remote, reason } => {
            warn!("IKE SA {connection} with {peer} ({}) and its IPsec SAs cleared: {reason}", remote.ip());
        }
        // Logged once, whole, when QM3 confirms it.
        Event::IpsecSaInbound(_) => {}
        Event::PeerMoved { connection, local, remote } => {
            info!("IKE SA {connection}: peer now at {remote} (from {local})");
        }
    }
}

/// SPIs as the log prints them: eight hex digits each, comma-separated.
struct SpiList<'a>(&'a [u32]);

impl fmt::Display for SpiList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, spi) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{spi:08x}")?;
        }
        Ok(())
    }
}

/// Why our side ended an IPsec SA pair, in the operator's words.
fn ipsec_sa_end(reason: ike::IpsecSaEnd) -> &'static str {
    match reason {
        ike::IpsecSaEnd::Lifetime => "lifetime in seconds reached",
        ike::IpsecSaEnd::Traffic => "traffic lifetime in kilobytes used up",
        ike::IpsecSaEnd::SequenceNumbers => "sequence numbers used up",
        ike::IpsecSaEnd::Reset => "reset by the operator",
        ike::IpsecSaEnd::IkeSaGone => "its IKE SA is gone",
        ike::IpsecSaEnd::Reconfigured => "its policy changed in a reload",
        ike::IpsecSaEnd::Unconfirmed => "the peer never confirmed it with QM3",
    }
}

/// Why our side ended an IKE SA, in the operator's words.
fn ike_sa_end(reason: ike::IkeSaEnd) -> &'static str {
    match reason {
        ike::IkeSaEnd::Lifetime => "lifetime reached",
        ike::IkeSaEnd::Reset => "reset by the operator",
        ike::IkeSaEnd::Reconfigured => "its peer changed in a reload",
        ike::IkeSaEnd::LimitReached => "a cap of its policy template (sa max) was reached",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SPIs of a Delete print as hex words, not as a Rust list.
    #[test]
    fn spi_lists_print_for_an_operator() {
        assert_eq!(SpiList(&[0x1234, 0xdead_beef]).to_string(), "00001234, deadbeef");
        assert_eq!(SpiList(&[]).to_string(), "");
    }
}
