//! The Prometheus endpoint and the JSON log of running daemons (root only; CI runs as root),
//! in the reference topology of netns_reference_ping.rs with the unchanged examples:
//! FW_A serves `--metrics 127.0.0.1:9464` in its namespace, FW_B logs `--log-format json`.
//! A ping brings the tunnel up; a scrape shows what an operator checks first (one IKE SA
//! established, one IPsec SA pair, ESP packets both ways) and passes `promtool check metrics`
//! (Debian package prometheus, which scripts/test installs); after `reset ike sa` and `reset
//! ipsec sa` the counters have not gone backwards. Every series the Grafana dashboard
//! (contrib/grafana/keysteward.json) queries is on the page. Every line FW_B logged is a JSON object,
//! and the established IKE SA's line carries the peer and conn_id fields.
//!
//! The second test runs the certificates example with the endpoint set in the file: the
//! engine's counts (handshakes by exchange and result, SAs by state, bytes), the certificates'
//! notAfter, `reset ike|ipsec statistics`, `debugging ike`, and a reload moving the endpoint.

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

    // Every series the Grafana dashboard of contrib/ queries is on the page, but for the
    // certificates' (this gateway has none: the other test, with certificates, checks them).
    dashboard_series_on(&page, &["keysteward_certificate_expiry_remaining_seconds"]);

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

/// Every series the Grafana dashboard of contrib/ queries is on `page`, but for `absent`.
fn dashboard_series_on(page: &str, absent: &[&str]) {
    let dashboard = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contrib/grafana/keysteward.json");
    let dashboard: serde_json::Value = serde_json::from_slice(&std::fs::read(dashboard).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let exprs: Vec<&str> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() >= 16, "{exprs:?}");
    for expr in exprs {
        let start = expr.find("keysteward_").unwrap_or_else(|| panic!("no series in {expr}"));
        let name: String =
            expr[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let on_page =
            page.lines().any(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")));
        assert!(
            on_page || absent.contains(&name.as_str()),
            "the dashboard queries {name}, which the page does not have:\n{page}"
        );
    }
}

/// `promtool check metrics` on `page`: valid exposition format, Prometheus' naming rules.
fn promtool(page: &str) {
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
}

/// A certificate file's notAfter as `openssl x509 -enddate` prints it, in Unix seconds.
fn not_after(file: &std::path::Path) -> i64 {
    let out = Command::new("openssl").args(["x509", "-noout", "-enddate", "-in"]).arg(file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let date = text.trim().strip_prefix("notAfter=").unwrap_or_else(|| panic!("{text}"));
    let out = Command::new("date").args(["-u", "+%s", "-d", date]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|e| panic!("{date}: {e}"))
}

/// `curl` of `http://ADDR/metrics` in `ns`: the page, or `None` when nothing listens there.
fn scrape(ns: &str, addr: &str) -> Option<String> {
    let url = format!("http://{addr}/metrics");
    let out = in_ns(ns, &["curl", "-sS", "--max-time", "5", "--fail", &url]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// JSON of `keysteward display …  --json` in `ns`.
fn display_json(ns: &str, what: &[&str], control: &std::path::Path) -> serde_json::Value {
    let mut args = vec!["display"];
    args.extend(what);
    args.push("--json");
    let text = common::keysteward_stdout(ns, &args, control);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what:?}: {e}: {text}"))
}

/// The certificates example (RSA signatures, a test PKI valid 40 days) with the endpoint set
/// in FW_A's file (`metrics server …`) and FW_B's `--metrics` winning over its file. After a
/// ping: the handshakes and the SAs by state as the engine counts them, the bytes, and the
/// days left of FW_A's certificate and CA; promtool accepts the page. `display ike|ipsec
/// statistics` show the same; `reset ike|ipsec statistics` zero the displays while the
/// exported counters keep going. `debugging ike` logs the next handshake's messages, `undo
/// debugging ike` stops that. A reload moves the endpoint to a new port, then closes it.
#[test]
fn netns_metrics_from_the_engine_counts_with_resets_debugging_and_reload() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}ms", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-metrics-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/certificates");
    let out = Command::new(example.join("make-pki")).arg(&dir).env("DAYS", "40").output().unwrap();
    assert!(out.status.success(), "make-pki: {}", output_text(&out));
    let net = reference_topology(&mut cleanup, &tag);
    let logs = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let (control_a, control_b) = (dir.join("a.sock"), dir.join("b.sock"));
    let config_a = dir.join("fw_a.cfg");
    let base_a = std::fs::read_to_string(example.join("fw_a.cfg")).unwrap();
    std::fs::write(&config_a, format!("{base_a}metrics server ip-address 127.0.0.1 port 9465\n")).unwrap();
    let config_b = dir.join("fw_b.cfg");
    let base_b = std::fs::read_to_string(example.join("fw_b.cfg")).unwrap();
    std::fs::write(&config_b, format!("{base_b}metrics server ip-address 127.0.0.1 port 9467\n")).unwrap();
    for (ns, name, config, control, public, extra) in [
        (&net.fw_b, "b", &config_b, &control_b, &net.public_b, vec!["--metrics", "127.0.0.1:9466"]),
        (&net.fw_a, "a", &config_a, &control_a, &net.public_a, vec![]),
    ] {
        let map = format!("GigabitEthernet0/0/2={public}");
        let mut args = vec!["--interface-map", map.as_str()];
        args.extend(extra);
        spawn_keysteward(&mut cleanup, ns, config, control, &dir.join(format!("{name}.log")), &args);
        let log = format!("{name}.log");
        assert!(wait_for_socket(control, Duration::from_secs(10)), "{ns} did not start:\n{}", logs(&log));
    }
    // The flag wins on FW_B: its file's port stays closed.
    assert!(scrape(&net.fw_b, "127.0.0.1:9466").is_some(), "{}", logs("b.log"));
    assert!(scrape(&net.fw_b, "127.0.0.1:9467").is_none());
    assert!(
        logs("b.log").contains("--metrics 127.0.0.1:9466 wins over the file's metrics server 127.0.0.1:9467")
    );

    let (replies, text) = ping(&net.pc_a, 5, "0.2", "2", "10.2.2.2");
    assert!(replies >= 4, "{replies} of 5\n{text}\nFW_A:\n{}\nFW_B:\n{}", logs("a.log"), logs("b.log"));
    let page = scrape(&net.fw_a, "127.0.0.1:9465").unwrap_or_else(|| panic!("no page\n{}", logs("a.log")));
    for (series, expected) in [
        ("keysteward_ike_exchanges_started_total{exchange=\"main\"}", 1.0),
        ("keysteward_ike_exchanges_total{exchange=\"main\",result=\"established\"}", 1.0),
        ("keysteward_ike_exchanges_total{exchange=\"quick\",result=\"established\"}", 1.0),
        ("keysteward_ike_exchanges_total{exchange=\"main\",result=\"authentication_failed\"}", 0.0),
        ("keysteward_ike_sas{state=\"established\"}", 1.0),
        ("keysteward_ike_sas{state=\"negotiating\"}", 0.0),
        ("keysteward_ipsec_sa_pairs", 1.0),
        ("keysteward_ipsec_sa_pairs_by_state{state=\"ready\"}", 1.0),
        ("keysteward_esp_packets_dropped_total{reason=\"mtu\"}", 0.0),
        ("keysteward_dpd_timeouts_total", 0.0),
        ("keysteward_rekeys_total{sa=\"ipsec\"}", 0.0),
    ] {
        assert_eq!(value(&page, series), expected, "{series}\n{page}");
    }
    // Pings of 84 bytes (20 + 8 + 56) each way.
    let bytes_out = value(&page, "keysteward_esp_bytes_total{direction=\"out\"}");
    assert!(bytes_out >= 84.0 * replies as f64, "{page}");
    // The certificate's notAfter as openssl reads it, and 40 days minus the seconds since.
    for file in ["fw-a.crt", "ca.pem"] {
        let labels = format!("{{peer=\"b\",file=\"{file}\",kind=\"certificate\"}}");
        let at = value(&page, &format!("keysteward_certificate_expiry_timestamp_seconds{labels}"));
        assert_eq!(at, not_after(&dir.join(file)) as f64, "{file}\n{page}");
        let left = value(&page, &format!("keysteward_certificate_expiry_remaining_seconds{labels}"));
        assert!(left <= 40.0 * 86_400.0 && left > 39.0 * 86_400.0, "{file}: {left}\n{page}");
    }
    promtool(&page);
    dashboard_series_on(&page, &[]);

    // The displays show the same counts; a reset zeroes them, not the exported counters.
    let ike = display_json(&net.fw_a, &["ike", "statistics"], &control_a);
    assert_eq!(ike["exchanges"]["main"]["established"], 1, "{ike}");
    let text = keysteward(&net.fw_a, &["display", "ike", "statistics"], &control_a);
    assert!(text.contains("  main mode                1            1        0\n"), "{text}");
    let ipsec = display_json(&net.fw_a, &["ipsec", "statistics"], &control_a);
    assert!(ipsec["sealed"].as_u64() >= Some(replies as u64), "{ipsec}");
    keysteward(&net.fw_a, &["reset", "ike", "statistics"], &control_a);
    keysteward(&net.fw_a, &["reset", "ipsec", "statistics"], &control_a);
    let ike = display_json(&net.fw_a, &["ike", "statistics"], &control_a);
    assert_eq!(ike["exchanges"]["main"]["established"], 0, "{ike}");
    assert_eq!(ike["ike_sas"]["established"], 1, "a gauge is not reset: {ike}");
    let ipsec = display_json(&net.fw_a, &["ipsec", "statistics"], &control_a);
    assert_eq!(ipsec["sealed"], 0, "{ipsec}");
    let (again, _) = ping(&net.pc_a, 2, "0.2", "2", "10.2.2.2");
    let ipsec = display_json(&net.fw_a, &["ipsec", "statistics"], &control_a);
    assert_eq!(ipsec["sealed"].as_u64(), Some(again as u64), "{ipsec}");
    let after = scrape(&net.fw_a, "127.0.0.1:9465").unwrap();
    let sealed = "keysteward_esp_packets_total{direction=\"out\"}";
    assert!(value(&after, sealed) >= value(&page, sealed) + again as f64, "{after}");
    let established = "keysteward_ike_exchanges_total{exchange=\"main\",result=\"established\"}";
    assert_eq!(value(&after, established), 1.0, "{after}");

    // `debugging ike`: the next handshake's messages are logged; `undo debugging ike` stops it.
    let traces = || logs("a.log").matches("ike message: ").count();
    assert_eq!(traces(), 0, "info level: no message trace");
    let handshake = || {
        keysteward(&net.fw_a, &["reset", "ike", "sa"], &control_a);
        let (replies, text) = ping(&net.pc_a, 5, "0.2", "2", "10.2.2.2");
        assert!(replies >= 3, "{text}\n{}", logs("a.log"));
    };
    let said = keysteward(&net.fw_a, &["debugging", "ike"], &control_a);
    assert!(said.contains("IKE debugging is on"), "{said}");
    handshake();
    let raised = traces();
    assert!(raised >= 6, "MM1…MM6 and the quick mode traced: {raised}\n{}", logs("a.log"));
    keysteward(&net.fw_a, &["undo", "debugging", "ike"], &control_a);
    handshake();
    assert_eq!(traces(), raised, "nothing traced after undo debugging ike");
    let page = scrape(&net.fw_a, "127.0.0.1:9465").unwrap();
    assert_eq!(value(&page, established), 3.0, "three handshakes: {page}");

    // A reload moves the endpoint, then closes it; the counters carry on.
    std::fs::write(&config_a, format!("{base_a}metrics server ip-address 127.0.0.1 port 9468\n")).unwrap();
    let said = keysteward(&net.fw_a, &["reload"], &control_a);
    assert!(said.contains("reloaded"), "{said}");
    assert!(scrape(&net.fw_a, "127.0.0.1:9465").is_none(), "the old port is closed");
    let moved = scrape(&net.fw_a, "127.0.0.1:9468").unwrap_or_else(|| panic!("{}", logs("a.log")));
    assert_eq!(value(&moved, established), 3.0, "{moved}");
    assert!(logs("a.log").contains("metrics moved from 127.0.0.1:9465 to http://127.0.0.1:9468/metrics"));
    std::fs::write(&config_a, &base_a).unwrap();
    keysteward(&net.fw_a, &["reload"], &control_a);
    assert!(scrape(&net.fw_a, "127.0.0.1:9468").is_none(), "closed without metrics server");
}
