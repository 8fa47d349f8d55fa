//! After every input the daemon drains the engine: message traces to the log, datagrams to
//! their sockets, and each event to whoever must follow it (the key log, the log, the
//! display records, the data plane through the bridge). Nothing here waits: a datagram
//! whose socket buffer is full is dropped and counted ([`SendDrops`]), never awaited, so one
//! slow or blocked path cannot stall the loop that serves every peer and the control socket.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;

use ike::{Engine, Event};
use telemetry::events::log_event;
use telemetry::refusals::RefusalLog;
use tracing::{debug, error, info, warn};

use crate::bridge::Bridge;
use crate::data_path::SendDrops;
use crate::os::sockets::send_ike;
use crate::records::Records;
use key_log::KeyLog;

/// What starts the log line of each traced IKE message (see [`ike::MessageTrace`]'s
/// `Display` for the rest); `keysteward demo` looks for it.
pub const MESSAGE_TRACE_PREFIX: &str = "ike message: ";

/// Sends what the engine wants sent and hands on what it reports. The inbound halves of
/// pairs the peer may seal on once it reads our QM2 or QM3 are installed before that
/// message leaves ([`Bridge::before_sends`]); every other event follows the sends, so that,
/// as initiator, QM3 leaves before the packets that waited for the pair.
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
    let events: Vec<Event> = std::iter::from_fn(|| engine.poll_event()).collect();
    for event in &events {
        bridge.before_sends(event, engine);
    }
    send_transmits(engine, sockets, &bridge.send_drops());
    for event in events {
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

/// Sends the engine's datagrams: a run of them from one IPv4 socket in one `sendmmsg`; what
/// that does not take, one by one. A full buffer drops a datagram, counted, not logged (a
/// flood that fills the buffer would fill the log as well); retransmission repairs it.
fn send_transmits(engine: &mut Engine, sockets: &HashMap<SocketAddr, Arc<UdpSocket>>, drops: &SendDrops) {
    let mut transmits: Vec<ike::Transmit> = std::iter::from_fn(|| engine.poll_transmit()).collect();
    for t in transmits.iter_mut().filter(|t| t.non_esp_marker) {
        t.payload.splice(0..0, [0; 4]);
    }
    let mut rest = transmits.as_slice();
    while let Some(first) = rest.first() {
        let len = rest.iter().take(batch_io::BATCH).take_while(|t| t.local == first.local).count();
        let (run, next) = rest.split_at(len);
        rest = next;
        let full = match sockets.get(&first.local) {
            Some(socket) => send_run(socket, run),
            None => {
                error!("no socket for {}", first.local);
                0
            }
        };
        drops.ike.fetch_add(full, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Sends `run` (all from `socket`); how many a full buffer dropped.
fn send_run(socket: &UdpSocket, run: &[ike::Transmit]) -> u64 {
    let v4: Vec<(SocketAddrV4, &[u8])> = run
        .iter()
        .filter_map(|t| match t.remote {
            SocketAddr::V4(to) => Some((to, t.payload.as_slice())),
            SocketAddr::V6(_) => None,
        })
        .collect();
    let sent = if v4.len() == run.len() && run.len() > 1 {
        batch_io::send_each(socket.as_fd(), &v4).unwrap_or(0)
    } else {
        0
    };
    run[sent..].iter().map(|t| u64::from(send_ike(socket, &t.payload, t.remote))).sum()
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
