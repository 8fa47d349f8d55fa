//! The Prometheus endpoint of `keysteward run --metrics ADDR:PORT` (or `metrics address` in
//! the configuration).
//!
//! A scrape asks the daemon's engine loop for its counters (the control request `counters`:
//! the JSON of `display ike statistics` and `display ipsec statistics` without any `reset …
//! statistics` baseline, and the days until each configured certificate and CRL runs out),
//! which the engine and the data plane keep as they go: no per-SA row is built, so a scrape
//! costs the same on a hub with 10,000 SAs as on a branch. Labels are bounded: a state, an
//! exchange, a reason or a direction from a fixed list, or a name from the configuration
//! (a policy template, a certificate file and its peer); per-SA detail stays in the displays.
//! Counters never go backwards: should a count ever fall (a restart of the data plane), what
//! it fell from is kept and added ([`Exporter`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;
use statistics::count;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Renders scrapes, remembering what each counter showed so that none goes backwards.
#[derive(Debug, Default)]
pub struct Exporter {
    /// Per series: the last count the daemon showed, and what earlier falls took away.
    counters: Mutex<HashMap<String, (u64, u64)>>,
}

/// One scrape being rendered.
struct Page<'a> {
    registry: Registry,
    counters: &'a mut HashMap<String, (u64, u64)>,
}

type Labels = Vec<(String, String)>;

/// Labels from `(name, value)` pairs.
fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

impl Page<'_> {
    /// Counter `keysteward_NAME_total`, one series per `(labels, count)`.
    fn counter(&mut self, name: &str, help: &str, values: Vec<(Labels, u64)>) {
        let family = Family::<Labels, Counter>::default();
        for (labels, count) in values {
            let (last, offset) = self.counters.entry(format!("{name}{labels:?}")).or_insert((0, 0));
            if count < *last {
                *offset += *last;
            }
            *last = count;
            family.get_or_create(&labels).inc_by(count + *offset);
        }
        self.registry.register(name, help, family);
    }

    /// Counter with one label `label`, one series per `(value, count)`; no label when `label` is "".
    fn counter1(&mut self, name: &str, help: &str, label: &str, values: &[(&str, u64)]) {
        let values = values.iter().map(|&(v, n)| (one(label, v), n)).collect();
        self.counter(name, help, values);
    }

    /// Gauge `keysteward_NAME`, one series per `(labels, value)`.
    fn gauge(&mut self, name: &str, help: &str, values: Vec<(Labels, i64)>) {
        let family = Family::<Labels, Gauge>::default();
        for (labels, v) in values {
            family.get_or_create(&labels).set(v);
        }
        self.registry.register(name, help, family);
    }

    /// Gauge with one label (none when `label` is "").
    fn gauge1(&mut self, name: &str, help: &str, label: &str, values: &[(&str, u64)]) {
        let values =
            values.iter().map(|&(v, n)| (one(label, v), i64::try_from(n).unwrap_or(i64::MAX))).collect();
        self.gauge(name, help, values);
    }
}

fn one(label: &str, value: &str) -> Labels {
    if label.is_empty() {
        Vec::new()
    } else {
        labels(&[(label, value)])
    }
}

impl Exporter {
    /// The page of one scrape of `counters` (the daemon's answer to the `counters`
    /// request), in the Prometheus text format (version 0.0.4).
    pub fn render(&self, counters: &Value) -> String {
        let mut seen = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let mut page = Page { registry: Registry::with_prefix("keysteward"), counters: &mut seen };
        sas(&mut page, &counters["ike"]);
        exchanges(&mut page, &counters["ike"]);
        ike(&mut page, &counters["ike"], &counters["ipsec"]);
        esp(&mut page, &counters["ipsec"]);
        templates(&mut page, &counters["ipsec"]);
        certificates(&mut page, &counters["certificates"]);
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &page.registry);
        text
    }
}

/// The SAs by state, as the engine counts them.
fn sas(page: &mut Page<'_>, s: &Value) {
    let ike = &s["ike_sas"];
    page.gauge1(
        "ike_sas",
        "Phase-1 (IKE) SAs by state: established (RD in display ike sa) or negotiating",
        "state",
        &[("established", count(ike, "established")), ("negotiating", count(ike, "negotiating"))],
    );
    let pairs = &s["ipsec_sa_pairs"];
    let by_state = [
        ("ready", count(pairs, "ready")),
        ("rekeying", count(pairs, "rekeying")),
        ("replaced", count(pairs, "replaced")),
    ];
    page.gauge1(
        "ipsec_sa_pairs",
        "IPsec SA pairs installed (current ipsec tunnel number in display ipsec sa brief)",
        "",
        &[("", by_state.iter().map(|(_, n)| n).sum())],
    );
    page.gauge1(
        "ipsec_sa_pairs_by_state",
        "IPsec SA pairs by state: ready, rekeying (past the soft lifetime), replaced (by a newer pair)",
        "state",
        &by_state,
    );
}

/// Handshakes by exchange and result, rekeys, DPD.
fn exchanges(page: &mut Page<'_>, s: &Value) {
    let mut started = Vec::new();
    let mut results = Vec::new();
    for exchange in ["main", "aggressive", "quick", "informational"] {
        let e = &s["exchanges"][exchange];
        if exchange != "informational" {
            started.push((labels(&[("exchange", exchange)]), count(e, "started")));
            let established = count(e, "established");
            results.push((labels(&[("exchange", exchange), ("result", "established")]), established));
        }
        for reason in ike::REASONS {
            let failed = count(&e["failed"], reason);
            results.push((labels(&[("exchange", exchange), ("result", reason)]), failed));
        }
    }
    page.counter(
        "ike_exchanges_started",
        "IKE exchanges started: initiated, or a first message answered",
        started,
    );
    page.counter(
        "ike_exchanges",
        "IKE exchanges ended, by exchange and result: established (phase 1 up, quick mode's SA pair \
         installed) or the reason it failed",
        results,
    );
    page.counter1(
        "ike_refused",
        "First messages refused by our policy or limits (unknown peer, aggressive mode not allowed, rate limit, caps)",
        "",
        &[("", count(s, "refused"))],
    );
    page.counter1(
        "rekeys",
        "SAs we renewed before they expired: ike (a new phase 1), ipsec (a new quick mode)",
        "sa",
        &[("ike", count(s, "ike_rekeys")), ("ipsec", count(s, "ipsec_rekeys"))],
    );
    page.counter1("dpd_probes", "DPD R-U-THERE messages sent", "", &[("", count(s, "dpd_sent"))]);
    page.counter1(
        "dpd_timeouts",
        "Peers declared dead by DPD (their IKE and IPsec SAs cleared)",
        "",
        &[("", count(s, "dpd_timeouts"))],
    );
}

fn ike(page: &mut Page<'_>, s: &Value, r: &Value) {
    page.gauge1(
        "ike_half_open",
        "Responder IKE SAs not yet authenticated (display ike statistics)",
        "",
        &[("", count(s, "half_open"))],
    );
    page.gauge1(
        "ike_half_open_bytes",
        "Memory the half-open IKE SAs hold",
        "",
        &[("", count(s, "half_open_bytes"))],
    );
    page.gauge1(
        "ike_half_open_budget_bytes",
        "Memory budget of the half-open IKE SAs",
        "",
        &[("", count(s, "half_open_budget"))],
    );
    page.counter1(
        "ike_half_open_evicted",
        "Half-open IKE SAs evicted, oldest first, to admit newer ones (a flood of first messages)",
        "",
        &[("", count(s, "half_open_evicted"))],
    );
    page.counter1(
        "ike_messages_dropped",
        "IKE datagrams dropped or refused, by reason",
        "reason",
        &[
            ("malformed", count(s, "malformed")),
            ("no_sa", count(s, "unknown_sa")),
            ("unauthenticated", count(s, "unauthenticated_dropped")),
            ("replay", count(s, "replays_dropped")),
            ("aggressive_mode_rate_limit", count(s, "aggressive_mode_rate_limited")),
            ("oversized_sa_payload", count(s, "oversized_sa_payloads")),
            ("fragment_discarded", count(s, "fragments_discarded")),
        ],
    );
    page.counter1(
        "ike_message_ids_forgotten",
        "Message IDs an IKE SA forgot after remembering its maximum (4,096 per kind)",
        "",
        &[("", count(s, "message_ids_forgotten"))],
    );
    page.counter1(
        "ike_notifications_sent",
        "INVALID-SPI and INVALID-COOKIE sent in answer to unknown SPIs and cookies",
        "type",
        &[("INVALID-SPI", count(r, "invalid_spi_sent")), ("INVALID-COOKIE", count(r, "invalid_cookie_sent"))],
    );
    page.counter1(
        "ike_recoveries_started",
        "IKE SAs started because a configured peer used an SA we do not have (after a restart)",
        "",
        &[("", count(r, "recoveries_started"))],
    );
    page.counter1(
        "ike_answers_rate_limited",
        "Answers to unknown SPIs or cookies held back by the rate limits",
        "",
        &[("", count(r, "answers_rate_limited"))],
    );
}

fn esp(page: &mut Page<'_>, s: &Value) {
    page.counter1(
        "esp_packets",
        "Packets through the IPsec SAs: out = sealed, in = opened and authenticated",
        "direction",
        &[("out", count(s, "sealed")), ("in", count(s, "opened"))],
    );
    page.counter1(
        "esp_bytes",
        "Bytes of the inner packets through the IPsec SAs: out = sealed, in = opened",
        "direction",
        &[("out", count(s, "sealed_bytes")), ("in", count(s, "opened_bytes"))],
    );
    let dropped = &s["dropped"];
    let mut reasons: Vec<(&str, u64)> =
        statistics::ipsec::DROP_REASONS.iter().map(|r| (*r, count(dropped, r))).collect();
    reasons.push(("bypass", count(s, "bypass_dropped")));
    page.counter1(
        "esp_packets_dropped",
        "Packets dropped by the data plane, by reason: replay, integrity (failed authentication), \
         no_sa (unknown SPI), policy (outside the SA's selectors, a discard rule, clear packets policy \
         wants protected), mtu (too big for the path with DF set), queue (over the queue while an SA \
         is negotiated), malformed, expired (SA past its hard lifetime), other, bypass (clear packets \
         from the TUN that policy lets pass: the kernel's to forward)",
        "reason",
        &reasons,
    );
    page.counter1(
        "send_buffer_full_drops",
        "Datagrams dropped because a socket's send buffer was full (the daemon never waits on a send)",
        "protocol",
        &[("esp", count(s, "esp_send_buffer_full")), ("ike", count(s, "ike_send_buffer_full"))],
    );
    page.counter1(
        "acquires",
        "Negotiations the data plane asked for (acquires)",
        "",
        &[("", count(s, "acquires"))],
    );
    page.counter1(
        "packets_queued",
        "Packets queued while their SA was negotiated",
        "",
        &[("", count(s, "queued"))],
    );
    page.counter1(
        "esp_unknown_spi_reported",
        "ESP or AH packets from configured peers on SPIs we do not have, reported to IKE",
        "",
        &[("", count(s, "unknown_spi_reported"))],
    );
}

/// A hub's policy templates (a label per configured template: bounded by the configuration).
fn templates(page: &mut Page<'_>, s: &Value) {
    let templates: Vec<&Value> = s["templates"].as_array().into_iter().flatten().collect();
    let names: Vec<String> =
        templates.iter().map(|t| t["policy"].as_str().unwrap_or("").to_owned()).collect();
    for (name, key, help) in [
        ("template_peers", "peers", "Branches of a policy template"),
        ("template_ike_sas", "ike_sas", "IKE SAs of a policy template's branches"),
        ("template_ipsec_sa_pairs", "ipsec_sas", "IPsec SA pairs of a policy template's branches"),
        ("template_flows", "flows", "Flows of a policy template's branches"),
    ] {
        let values: Vec<(&str, u64)> =
            names.iter().zip(&templates).map(|(n, t)| (n.as_str(), count(t, key))).collect();
        page.gauge1(name, help, "policy", &values);
    }
}

/// When each configured certificate and CRL file runs out, and the time left (one series per
/// file and peer: bounded by the configuration). In seconds, Prometheus' base unit: a
/// dashboard shows days (`… / 86400`).
fn certificates(page: &mut Page<'_>, list: &Value) {
    let series = |key: &str| -> Vec<(Labels, i64)> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let text = |key: &str| c[key].as_str().unwrap_or_default().to_owned();
                let labels = vec![
                    ("peer".to_owned(), text("peer")),
                    ("file".to_owned(), text("file")),
                    ("kind".to_owned(), text("kind")),
                ];
                (labels, c[key].as_i64().unwrap_or(0))
            })
            .collect()
    };
    page.gauge(
        "certificate_expiry_timestamp_seconds",
        "When a configured file runs out, Unix time: a certificate's notAfter (kind certificate: \
         local-filename, ca-filename; the earliest in the file) or a CRL's nextUpdate (kind crl)",
        series("not_after"),
    );
    page.gauge(
        "certificate_expiry_remaining_seconds",
        "Seconds until a configured certificate (notAfter) or CRL (nextUpdate) file runs out; \
         negative once past (a CRL past its next update is also a warning in the log)",
        series("seconds_left"),
    );
}

/// The endpoint of a running daemon: where it listens, the task that serves it, and the
/// exporter that keeps the counters monotonic across a move to another address.
#[derive(Debug, Default)]
pub struct Endpoint {
    serving: Option<(std::net::SocketAddr, tokio::task::JoinHandle<()>)>,
    exporter: Arc<Exporter>,
}

/// Binds the endpoint's listener (before anything else changes, so that an address in use
/// refuses a start or a reload).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

impl Endpoint {
    /// Where it listens, if it does.
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        self.serving.as_ref().map(|(addr, _)| *addr)
    }

    /// Serves on `listener` (bound to `addr` by [`bind`]) from now on, closing the listener
    /// it served before; `None` closes it.
    pub fn replace<A, F>(&mut self, next: Option<(std::net::SocketAddr, tokio::net::TcpListener)>, ask: A)
    where
        A: Fn() -> F + Send + Sync + 'static,
        F: Future<Output = Option<Value>> + Send + 'static,
    {
        if let Some((_, task)) = self.serving.take() {
            // The accept loop ends and drops the listener: the port is closed.
            task.abort();
        }
        if let Some((addr, listener)) = next {
            self.serving = Some((addr, tokio::spawn(serve(listener, ask, self.exporter.clone()))));
        }
    }
}

/// At most this many scrapes are answered at once; more connections are closed unanswered.
const CONNECTIONS: usize = 8;

/// The longest request head read.
const MAX_REQUEST: usize = 8192;

/// Serves `GET /metrics` (and `HEAD`) on `listener` until the task is aborted or the runtime
/// ends, asking the daemon for its counters with `ask` (`None`: the daemon did not answer:
/// 503). `exporter` outlives a listener moved to another address by a reload. Every
/// response closes its connection; a client that sends no complete request within 10 s is
/// dropped.
pub async fn serve<A, F>(listener: tokio::net::TcpListener, ask: A, exporter: Arc<Exporter>)
where
    A: Fn() -> F + Send + Sync + 'static,
    F: Future<Output = Option<Value>> + Send,
{
    let ask = Arc::new(ask);
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, most likely: let some close rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let (ask, exporter) = (ask.clone(), exporter.clone());
        tokio::spawn(async move {
            let limit = std::time::Duration::from_secs(10);
            let _ = tokio::time::timeout(limit, answer(stream, &*ask, &exporter)).await;
            drop(slot);
        });
    }
}

/// Reads one request head and writes the response.
async fn answer<A, F>(mut stream: tokio::net::TcpStream, ask: &A, exporter: &Exporter) -> std::io::Result<()>
where
    A: Fn() -> F,
    F: Future<Output = Option<Value>>,
{
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_REQUEST {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, body) = match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => match ask().await {
            Some(d) => ("200 OK", exporter.render(&d)),
            None => ("503 Service Unavailable", "the daemon did not answer\n".to_owned()),
        },
        (b"GET" | b"HEAD", _) => ("404 Not Found", "metrics are at /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "GET /metrics\n".to_owned()),
    };
    let content_type = if status.starts_with("200") { prometheus_text::CONTENT_TYPE } else { "text/plain" };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Allow: GET, HEAD\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != b"HEAD" {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page_with_sealed(exporter: &Exporter, sealed: u64) -> String {
        exporter.render(&json!({ "ipsec": { "sealed": sealed } }))
    }

    fn value<'p>(page: &'p str, series: &str) -> &'p str {
        page.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {series} in\n{page}"))
    }

    /// Should a count the daemon shows fall (a restart of the data plane), the exported
    /// counter still does not go backwards.
    #[test]
    fn counters_never_go_backwards() {
        let exporter = Exporter::default();
        let series = "keysteward_esp_packets_total{direction=\"out\"}";
        let values: Vec<String> = [5, 7, 2, 3, 1]
            .iter()
            .map(|&n| value(&page_with_sealed(&exporter, n), series).to_owned())
            .collect();
        assert_eq!(values, ["5", "7", "9", "10", "11"]);
    }

    /// The series of the engine's counts: SAs by state, handshakes by exchange and result,
    /// rekeys, DPD, bytes, drops by reason, and the days left of a certificate.
    #[test]
    fn series_of_the_engine_counts() {
        let mut exchanges = ike::ExchangeCounts {
            started: [2, 0, 3, 0],
            established: [1, 0, 3, 0],
            dpd_sent: 4,
            ipsec_rekeys: 2,
            ..Default::default()
        };
        exchanges.failed[0][1] = 1;
        let sas =
            ike::SaCounts { ike_established: 1, ipsec_ready: 1, ipsec_replaced: 1, ..Default::default() };
        let ike = statistics::ike::json(&Default::default(), &exchanges, &Default::default(), &sas);
        let plane = esp::Statistics { sealed: 3, sealed_bytes: 252, too_big: 1, ..Default::default() };
        let ipsec = statistics::ipsec::json(&plane, &Default::default(), &Default::default(), &exchanges);
        let certificates = json!([{ "peer": "b", "file": "gw.pem", "kind": "certificate",
            "not_after": 1_770_000_000, "seconds_left": 3_456_000 }]);
        let page =
            Exporter::default().render(&json!({ "ike": ike, "ipsec": ipsec, "certificates": certificates }));
        for (series, expected) in [
            ("keysteward_ike_sas{state=\"established\"}", "1"),
            ("keysteward_ipsec_sa_pairs", "2"),
            ("keysteward_ipsec_sa_pairs_by_state{state=\"replaced\"}", "1"),
            ("keysteward_ike_exchanges_started_total{exchange=\"main\"}", "2"),
            ("keysteward_ike_exchanges_total{exchange=\"main\",result=\"established\"}", "1"),
            ("keysteward_ike_exchanges_total{exchange=\"main\",result=\"authentication_failed\"}", "1"),
            ("keysteward_ike_exchanges_total{exchange=\"quick\",result=\"established\"}", "3"),
            ("keysteward_rekeys_total{sa=\"ipsec\"}", "2"),
            ("keysteward_dpd_probes_total", "4"),
            ("keysteward_esp_bytes_total{direction=\"out\"}", "252"),
            ("keysteward_esp_packets_dropped_total{reason=\"mtu\"}", "1"),
            ("keysteward_certificate_expiry_timestamp_seconds{peer=\"b\",file=\"gw.pem\",kind=\"certificate\"}", "1770000000"),
            ("keysteward_certificate_expiry_remaining_seconds{peer=\"b\",file=\"gw.pem\",kind=\"certificate\"}", "3456000"),
        ] {
            assert_eq!(value(&page, series), expected, "{series}\n{page}");
        }
    }
}
