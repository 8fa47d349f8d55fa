//! After every input the daemon drains the engine: message traces to the log, datagrams to
//! their sockets, and each event to whoever must follow it (the key log, the log, the
//! display records, the data plane through the bridge). Nothing here waits: a datagram
//! whose socket buffer is full is dropped and counted ([`SendDrops`]), never awaited, so one
//! slow or blocked path cannot stall the loop that serves every peer and the control socket.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ike::{Engine, Event};
use tokio::net::UdpSocket;
use tracing::{debug, error, info, warn};

use super::refusal_log::{RefusalLog, Verdict};
use crate::bridge::Bridge;
use crate::data_path::SendDrops;
use crate::os::sockets::send_ike;
use crate::records::Records;
use key_log::KeyLog;

/// What starts the log line of each traced IKE message (see [`ike::MessageTrace`]'s
/// `Display` for the rest); `keysteward demo` looks for it.
pub const MESSAGE_TRACE_PREFIX: &str = "ike message: ";

/// Sends what the engine wants sent and hands on what it reports.
pub(super) fn drain(
    engine: &mut Engine,
    sockets: &HashMap<SocketAddr, Arc<UdpSocket>>,
    records: &mut Records,
    bridge: &mut Bridge,
    mut key_log: Option<&mut KeyLog>,
    refusals: &mut RefusalLog,
) {
    // Before the sends, so that a message is logged as sent before the peer can log it.
    while let Some(trace) = engine.poll_message_trace() {
        debug!("{MESSAGE_TRACE_PREFIX}{trace}");
    }
    let drops: Arc<SendDrops> = bridge.send_drops();
    while let Some(t) = engine.poll_transmit() {
        let Some(socket) = sockets.get(&t.local) else {
            error!("no socket for {}", t.local);
            continue;
        };
        let full = if t.non_esp_marker {
            let mut marked = Vec::with_capacity(4 + t.payload.len());
            marked.extend_from_slice(&[0; 4]);
            marked.extend_from_slice(&t.payload);
            send_ike(socket, &marked, t.remote)
        } else {
            send_ike(socket, &t.payload, t.remote)
        };
        // Counted, not logged: a flood that fills the buffer would fill the log as well.
        drops.ike.fetch_add(u64::from(full), std::sync::atomic::Ordering::Relaxed);
    }
    while let Some(event) = engine.poll_event() {
        if let Some(log) = key_log.as_deref_mut() {
            if let Err(e) = log.record(&event) {
                warn!("{e}");
            }
        }
        log_event(&event, engine, refusals);
        bridge.apply(&event, engine);
        records.observe(&event);
    }
}

/// The log line of an engine event; failures through the rate limits of `refusals`.
fn log_event(event: &Event, engine: &Engine, refusals: &mut RefusalLog) {
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

/// The data-plane thread saw ESP or AH from `from`, a configured peer, on SPI `spi`, which no
/// SA has: the engine answers (INVALID-SPI) or starts a new IKE SA with INITIAL-CONTACT
/// (recovery after a restart, `ike::Engine::handle_unknown_spi`); the log says which.
pub(super) fn unknown_spi(engine: &mut Engine, from: SocketAddr, spi: u32) {
    let before = engine.statistics();
    engine.handle_unknown_spi(std::time::Instant::now(), from, spi);
    let after = engine.statistics();
    let peer =
        engine.config().peers.iter().find(|p| p.remote_address == Some(from.ip())).map(|p| p.name.as_str());
    let peer = peer.unwrap_or("?");
    if after.recoveries_started > before.recoveries_started {
        info!(
            "peer {peer} ({}) sends on SPI {spi:08x}, which we do not have, and we have no IKE SA \
             with it (we restarted?): negotiating a new one with INITIAL-CONTACT",
            from.ip()
        );
    } else if after.invalid_spi_sent > before.invalid_spi_sent {
        debug!("peer {peer} ({}) sends on unknown SPI {spi:08x}: INVALID-SPI sent", from.ip());
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
