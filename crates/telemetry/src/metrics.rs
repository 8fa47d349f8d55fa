//! The Prometheus endpoint of `keysteward run --metrics ADDR:PORT`.
//!
//! A scrape asks the daemon's engine loop for the JSON of four displays (`display ike sa`,
//! `display ike statistics`, `display ipsec sa brief`, `display ipsec statistics`: the
//! facts an operator reads in the console, see [`Display`]) and renders them as the series
//! below in the Prometheus text format. Labels are bounded: a state, a reason or a direction
//! from a fixed list, or the name of a configured policy template; per-peer and per-SA detail
//! stays in the displays. Counters never go backwards: should a count the displays show ever
//! fall (nothing resets them today), what it fell from is kept and added ([`Exporter`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A display a scrape asks the daemon for, as JSON (`--json` of the console command).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// `display ike sa`.
    IkeSa,
    /// `display ike statistics`.
    IkeStatistics,
    /// `display ipsec sa brief`.
    IpsecSaBrief,
    /// `display ipsec statistics`.
    IpsecStatistics,
}

/// The JSON of the four displays at one moment.
#[derive(Clone, Debug, Default)]
pub struct Displays {
    /// `display ike sa --json`.
    pub ike_sa: Value,
    /// `display ike statistics --json`.
    pub ike_statistics: Value,
    /// `display ipsec sa brief --json`.
    pub ipsec_sa_brief: Value,
    /// `display ipsec statistics --json`.
    pub ipsec_statistics: Value,
}

/// Renders scrapes, remembering what each counter showed so that none goes backwards.
#[derive(Debug, Default)]
pub struct Exporter {
    /// Per series: the last count the displays showed, and what earlier falls took away.
    counters: Mutex<HashMap<String, (u64, u64)>>,
}

/// One scrape being rendered.
struct Page<'a> {
    registry: Registry,
    counters: &'a mut HashMap<String, (u64, u64)>,
}

type Labels = Vec<(String, String)>;

fn labels(label: &str, value: &str) -> Labels {
    if label.is_empty() {
        Vec::new()
    } else {
        vec![(label.to_owned(), value.to_owned())]
    }
}

impl Page<'_> {
    /// Counter `keysteward_NAME_total`, one series per `(label value, count)`.
    fn counter(&mut self, name: &str, help: &str, label: &str, values: &[(&str, u64)]) {
        let family = Family::<Labels, Counter>::default();
        for &(value, count) in values {
            let labels = labels(label, value);
            let (last, offset) = self.counters.entry(format!("{name}{labels:?}")).or_insert((0, 0));
            if count < *last {
                *offset += *last;
            }
            *last = count;
            family.get_or_create(&labels).inc_by(count + *offset);
        }
        self.registry.register(name, help, family);
    }

    /// Gauge `keysteward_NAME`, one series per `(label value, value)`.
    fn gauge(&mut self, name: &str, help: &str, label: &str, values: &[(&str, u64)]) {
        let family = Family::<Labels, Gauge>::default();
        for &(value, v) in values {
            family.get_or_create(&labels(label, value)).set(i64::try_from(v).unwrap_or(i64::MAX));
        }
        self.registry.register(name, help, family);
    }
}

fn count(json: &Value, key: &str) -> u64 {
    json[key].as_u64().unwrap_or(0)
}

impl Exporter {
    /// The page of one scrape, in the Prometheus text format (version 0.0.4).
    pub fn render(&self, d: &Displays) -> String {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let mut page = Page { registry: Registry::with_prefix("keysteward"), counters: &mut counters };
        ike(&mut page, d);
        esp(&mut page, d);
        templates(&mut page, &d.ipsec_statistics);
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &page.registry);
        text
    }
}

fn ike(page: &mut Page<'_>, d: &Displays) {
    let phase1 = d.ike_sa["sas"].as_array().into_iter().flatten().filter(|sa| sa["phase"] == "v1:1");
    let (mut ready, mut negotiating) = (0, 0);
    for sa in phase1 {
        if sa["flags"].as_array().is_some_and(|f| f.iter().any(|x| x == "RD")) {
            ready += 1;
        } else {
            negotiating += 1;
        }
    }
    page.gauge(
        "ike_sas",
        "Phase-1 (IKE) SAs by state: established (RD in display ike sa) or negotiating",
        "state",
        &[("established", ready), ("negotiating", negotiating)],
    );
    let s = &d.ike_statistics;
    page.gauge(
        "ike_half_open",
        "Responder IKE SAs not yet authenticated (display ike statistics)",
        "",
        &[("", count(s, "half_open"))],
    );
    page.gauge(
        "ike_half_open_bytes",
        "Memory the half-open IKE SAs hold",
        "",
        &[("", count(s, "half_open_bytes"))],
    );
    page.gauge(
        "ike_half_open_budget_bytes",
        "Memory budget of the half-open IKE SAs",
        "",
        &[("", count(s, "half_open_budget"))],
    );
    page.counter(
        "ike_half_open_evicted",
        "Half-open IKE SAs evicted, oldest first, to admit newer ones (a flood of first messages)",
        "",
        &[("", count(s, "half_open_evicted"))],
    );
    page.counter(
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
    page.counter(
        "ike_message_ids_forgotten",
        "Message IDs an IKE SA forgot after remembering its maximum (4,096 per kind)",
        "",
        &[("", count(s, "message_ids_forgotten"))],
    );
    let r = &d.ipsec_statistics;
    page.counter(
        "ike_notifications_sent",
        "INVALID-SPI and INVALID-COOKIE sent in answer to unknown SPIs and cookies",
        "type",
        &[("INVALID-SPI", count(r, "invalid_spi_sent")), ("INVALID-COOKIE", count(r, "invalid_cookie_sent"))],
    );
    page.counter(
        "ike_recoveries_started",
        "IKE SAs started because a configured peer used an SA we do not have (after a restart)",
        "",
        &[("", count(r, "recoveries_started"))],
    );
    page.counter(
        "ike_answers_rate_limited",
        "Answers to unknown SPIs or cookies held back by the rate limits",
        "",
        &[("", count(r, "answers_rate_limited"))],
    );
}

fn esp(page: &mut Page<'_>, d: &Displays) {
    page.gauge(
        "ipsec_sa_pairs",
        "IPsec SA pairs installed (current ipsec tunnel number in display ipsec sa brief)",
        "",
        &[("", count(&d.ipsec_sa_brief, "tunnels"))],
    );
    let s = &d.ipsec_statistics;
    page.counter(
        "esp_packets",
        "Packets through the IPsec SAs: out = sealed, in = opened and authenticated",
        "direction",
        &[("out", count(s, "sealed")), ("in", count(s, "opened"))],
    );
    page.counter(
        "esp_packets_dropped",
        "Packets dropped by the data plane, by reason: replay, integrity (failed authentication), \
         no_sa (unknown SPI), queue (over the queue while an SA is negotiated), policy (clear \
         packets from the TUN that policy lets pass: the kernel's to forward)",
        "reason",
        &[
            ("replay", count(s, "inbound_replayed")),
            ("integrity", count(s, "inbound_authentication")),
            ("no_sa", count(s, "inbound_unknown_spi")),
            ("queue", count(s, "queue_dropped")),
            ("policy", count(s, "bypass_dropped")),
        ],
    );
    page.counter(
        "send_buffer_full_drops",
        "Datagrams dropped because a socket's send buffer was full (the daemon never waits on a send)",
        "protocol",
        &[("esp", count(s, "esp_send_buffer_full")), ("ike", count(s, "ike_send_buffer_full"))],
    );
    page.counter(
        "acquires",
        "Negotiations the data plane asked for (acquires)",
        "",
        &[("", count(s, "acquires"))],
    );
    page.counter(
        "packets_queued",
        "Packets queued while their SA was negotiated",
        "",
        &[("", count(s, "queued"))],
    );
    page.counter(
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
        page.gauge(name, help, "policy", &values);
    }
}

/// At most this many scrapes are answered at once; more connections are closed unanswered.
const CONNECTIONS: usize = 8;

/// The longest request head read.
const MAX_REQUEST: usize = 8192;

/// Serves `GET /metrics` (and `HEAD`) on `listener` until the runtime ends, asking the daemon
/// for each display with `ask` (`None`: the daemon did not answer: 503). Every response
/// closes its connection; a client that sends no complete request within 10 s is dropped.
pub async fn serve<A, F>(listener: tokio::net::TcpListener, ask: A)
where
    A: Fn(Display) -> F + Send + Sync + 'static,
    F: Future<Output = Option<Value>> + Send,
{
    let ask = Arc::new(ask);
    let exporter = Arc::new(Exporter::default());
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
    A: Fn(Display) -> F,
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
        (b"GET" | b"HEAD", b"/metrics") => match scrape(ask).await {
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

async fn scrape<A, F>(ask: &A) -> Option<Displays>
where
    A: Fn(Display) -> F,
    F: Future<Output = Option<Value>>,
{
    Some(Displays {
        ike_sa: ask(Display::IkeSa).await?,
        ike_statistics: ask(Display::IkeStatistics).await?,
        ipsec_sa_brief: ask(Display::IpsecSaBrief).await?,
        ipsec_statistics: ask(Display::IpsecStatistics).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_with_sealed(exporter: &Exporter, sealed: u64) -> String {
        let d = Displays { ipsec_statistics: serde_json::json!({ "sealed": sealed }), ..Displays::default() };
        exporter.render(&d)
    }

    /// Should a count the displays show fall (a restart of the data plane, a future `reset
    /// … statistics`), the exported counter still does not go backwards.
    #[test]
    fn counters_never_go_backwards() {
        let exporter = Exporter::default();
        let series = "keysteward_esp_packets_total{direction=\"out\"} ";
        let values: Vec<String> = [5, 7, 2, 3, 1]
            .iter()
            .map(|&n| {
                let page = page_with_sealed(&exporter, n);
                page.lines().find_map(|l| l.strip_prefix(series)).unwrap().to_owned()
            })
            .collect();
        assert_eq!(values, ["5", "7", "9", "10", "11"]);
    }

    /// The SAs by state as `display ike sa` shows them: RD is established; phase-2 lines are
    /// not IKE SAs.
    #[test]
    fn ike_sas_by_state() {
        let d = Displays {
            ike_sa: serde_json::json!({ "sas": [
                { "phase": "v1:2", "flags": ["RD", "ST"] },
                { "phase": "v1:1", "flags": ["RD", "ST"] },
                { "phase": "v1:1", "flags": [] },
                { "phase": "v1:1", "flags": ["RD"] },
            ]}),
            ..Displays::default()
        };
        let page = Exporter::default().render(&d);
        assert!(page.contains("\nkeysteward_ike_sas{state=\"established\"} 2\n"), "{page}");
        assert!(page.contains("\nkeysteward_ike_sas{state=\"negotiating\"} 1\n"), "{page}");
    }
}
