//! The Prometheus endpoint and the JSON log of running daemons (root only; CI runs as root),
//! in the reference topology of netns_reference_ping.rs with the unchanged examples:
//! FW_A serves `--metrics 127.0.0.1:9464` in its namespace, FW_B logs `--log-format json`.
//! A ping brings the tunnel up; a scrape shows what an operator checks first (one IKE SA
//! established, one IPsec SA pair, ESP packets both ways) and passes `promtool check metrics`
//! (Debian package prometheus, which scripts/test installs); after `reset ike sa` and `reset
//! ipsec sa` the counters have not gone backwards. Every series the Grafana dashboard
//! (contrib/grafana/keysteward.json) queries is on the page. Every line FW_B logged is a JSON object,
//! and the established IKE SA's line carries the peer and conn_id fields.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{
    in_ns, keysteward, output_text, ping, reference_topology, skip_unless_root, spawn_keysteward,
    wait_for_socket, wait_until, Cleanup,
};

const METRICS: &str = "127.0.0.1:9464";

/// `curl` in namespace `ns`: (HTTP status, body).
fn http(ns: &str, extra: &[&str], path: &str) -> (String, String) {
    let url = format!("http://{METRICS}{path}");
    let mut args = vec!["curl", "-sS", "-o", "-", "-w", "\n%{http_code}"];
    args.extend(extra);
    args.push(&url);
    let out = in_ns(ns, &args);
    assert!(out.status.success(), "curl {url}: {}", output_text(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.to_owned(), body.to_owned())
}

/// The value of the series `series` (name and labels as on the page).
fn value(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in\n{page}"))
        .parse()
        .unwrap()
}

#[test]
fn netns_metrics_scraped_from_a_running_tunnel() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}mt", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-metrics-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let net = reference_topology(&mut cleanup, &tag);
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let logs = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let (control_a, control_b) = (dir.join("a.sock"), dir.join("b.sock"));
    for (ns, name, control, public, extra) in [
        (&net.fw_b, "b", &control_b, &net.public_b, ["--log-format", "json"]),
        (&net.fw_a, "a", &control_a, &net.public_a, ["--metrics", METRICS]),
    ] {
        let config = dir.join(format!("fw_{name}.cfg"));
        std::fs::copy(examples.join(format!("fw_{name}.cfg")), &config).unwrap();
        let map = format!("GigabitEthernet0/0/2={public}");
        let mut args = vec!["--interface-map", &map];
        args.extend(extra);
        spawn_keysteward(&mut cleanup, ns, &config, control, &dir.join(format!("{name}.log")), &args);
        let log = format!("{name}.log");
        assert!(wait_for_socket(control, Duration::from_secs(10)), "{ns} did not start:\n{}", logs(&log));
    }

    let (replies, ping_text) = ping(&net.pc_a, 5, "0.2", "2", "10.2.2.2");
    assert!(replies >= 4, "{replies} of 5\n{ping_text}\nFW_A:\n{}\nFW_B:\n{}", logs("a.log"), logs("b.log"));

    let (status, page) = http(&net.fw_a, &[], "/metrics");
    assert_eq!(status, "200", "{page}");
    assert_eq!(value(&page, "keysteward_ike_sas{state=\"established\"}"), 1.0, "{page}");
    assert_eq!(value(&page, "keysteward_ipsec_sa_pairs"), 1.0, "{page}");
    let sealed = value(&page, "keysteward_esp_packets_total{direction=\"out\"}");
    let opened = value(&page, "keysteward_esp_packets_total{direction=\"in\"}");
    assert!(sealed >= replies as f64 && opened >= replies as f64, "{page}");
    assert_eq!(value(&page, "keysteward_esp_packets_dropped_total{reason=\"integrity\"}"), 0.0);
    // The send drops of main's never-block work are on the page too (none on an idle link).
    assert_eq!(value(&page, "keysteward_send_buffer_full_drops_total{protocol=\"esp\"}"), 0.0, "{page}");

    // promtool: the page is valid exposition format and follows Prometheus' naming rules.
    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut promtool = promtool.expect("promtool runs (Debian package prometheus; scripts/test installs it)");
    use std::io::Write;
    promtool.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(out.status.success() && out.stdout.is_empty(), "promtool: {}\n{page}", output_text(&out));

    // Every series the Grafana dashboard of contrib/ queries is on the page.
    let dashboard = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contrib/grafana/keysteward.json");
    let dashboard: serde_json::Value = serde_json::from_slice(&std::fs::read(dashboard).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let exprs: Vec<&str> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    for expr in exprs {
        let start = expr.find("keysteward_").unwrap_or_else(|| panic!("no series in {expr}"));
        let name: String =
            expr[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let on_page =
            page.lines().any(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")));
        assert!(on_page, "the dashboard queries {name}, which the page does not have:\n{page}");
    }

    // Anything but GET /metrics: 404 or 405, and the endpoint keeps serving.
    assert_eq!(http(&net.fw_a, &[], "/").0, "404");
    assert_eq!(http(&net.fw_a, &["-X", "POST"], "/metrics").0, "405");

    // Resets delete SAs; the exported counters do not go backwards.
    keysteward(&net.fw_a, &["reset", "ipsec", "sa"], &control_a);
    keysteward(&net.fw_a, &["reset", "ike", "sa"], &control_a);
    let gone = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        value(&http(&net.fw_a, &[], "/metrics").1, "keysteward_ipsec_sa_pairs") == 0.0
    });
    let after = http(&net.fw_a, &[], "/metrics").1;
    assert!(gone, "{after}");
    assert!(value(&after, "keysteward_esp_packets_total{direction=\"out\"}") >= sealed, "{after}");
    assert!(value(&after, "keysteward_esp_packets_total{direction=\"in\"}") >= opened, "{after}");

    // FW_B's log: JSON lines, the established IKE SA with its fields.
    let b = logs("b.log");
    let lines: Vec<serde_json::Value> = b
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{b}")))
        .collect();
    let established = lines
        .iter()
        .find(|l| l["message"].as_str().is_some_and(|m| m.contains("established as responder")))
        .unwrap_or_else(|| panic!("no established line in\n{b}"));
    assert_eq!(established["level"], "INFO");
    assert_eq!(established["peer"], "a", "{established}");
    assert!(established["conn_id"].as_str().is_some_and(|c| c.parse::<u64>().is_ok()), "{established}");
}
