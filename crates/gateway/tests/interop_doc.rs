//! `docs/interop.md` holds what the strongSwan interop suite runs: every setting the suite's
//! `swanctl.conf` generator (`common::swanctl_conf`) writes, and, for every algorithm the
//! configuration language names, a table line with its VRP keyword and its strongSwan name
//! (from the algorithm tables, the same names the suite's expectations use). A new setting in
//! the generator or a new algorithm row fails this test until the page shows it.

use std::path::Path;

mod common;
use common::SwanConnection;
use crypto::algorithm::{DH_GROUPS, ESP_CIPHERS, HASH_ALGORITHMS, INTEGRITY_ALGORITHMS, PHASE1_CIPHERS};

fn page() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/interop.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The setting names of a `swanctl.conf` text: `name = value` keys and `name {` sections,
/// without the names the generator chooses for the connection, the child and the secret.
fn settings(conf: &str) -> Vec<String> {
    let mut names: Vec<String> = conf
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            line.split_once(" = ").map(|(k, _)| k).or_else(|| line.strip_suffix(" {"))
        })
        .filter(|name| !["s2s", "net", "ike-s2s"].contains(name))
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every line of `page` that holds `` `a` `` and `` `b` ``.
fn line_with(page: &str, a: &str, b: &str) -> bool {
    page.lines().any(|line| line.contains(&format!("`{a}`")) && line.contains(&format!("`{b}`")))
}

/// The `(VRP keyword, strongSwan name)` pairs the page must show on one line each.
fn algorithm_pairs() -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut add = |vrp: Option<&str>, prefix: &str, strongswan: &str| {
        if let Some(k) = vrp {
            pairs.push((format!("{prefix}{k}"), strongswan.to_owned()));
        }
    };
    for r in PHASE1_CIPHERS.iter() {
        add(r.vrp_keyword, "encryption-algorithm ", r.strongswan);
    }
    for r in HASH_ALGORITHMS.iter() {
        add(r.vrp_keyword, "authentication-algorithm ", r.strongswan);
    }
    for r in DH_GROUPS.iter() {
        add(r.vrp_keyword, "dh ", r.strongswan);
        add(r.vrp_pfs_keyword, "pfs ", r.strongswan);
    }
    for r in ESP_CIPHERS.iter() {
        add(r.vrp_keyword, "esp encryption-algorithm ", r.strongswan);
    }
    for r in INTEGRITY_ALGORITHMS.iter() {
        add(r.vrp_keyword, "esp authentication-algorithm ", r.strongswan);
    }
    pairs
}

fn generated() -> String {
    common::swanctl_conf(&SwanConnection {
        proposals: "aes128-sha256-modp2048",
        aggressive: false,
        ike_extra: "",
        auth: "pubkey",
        certs: Some("fw_b.crt"),
        local_id: "192.0.2.2",
        remote_id: "192.0.2.1",
        secret: Some("key"),
        ts: ("10.2.2.0/24", "10.1.1.0/24"),
        esp_proposals: "aes128-sha256",
        child_extra: "",
    })
}

#[test]
fn the_page_shows_every_setting_the_suite_writes() {
    let page = page();
    let names = settings(&generated());
    assert!(names.len() >= 15, "the generator's settings are found: {names:?}");
    // Named in the text (`` `name ``), or written as in the file (`name = …`, `name {`).
    let shown =
        |n: &String| [format!("`{n}"), format!("{n} ="), format!("{n} {{")].iter().any(|f| page.contains(f));
    let missing: Vec<&String> = names.iter().filter(|n| !shown(n)).collect();
    assert!(missing.is_empty(), "docs/interop.md does not show the swanctl.conf settings {missing:?}");
}

#[test]
fn the_page_names_every_algorithm_at_both_ends() {
    let page = page();
    let pairs = algorithm_pairs();
    assert!(pairs.len() >= 40, "{pairs:?}");
    let missing: Vec<String> = pairs
        .iter()
        .filter(|(v, s)| !line_with(&page, v, s))
        .map(|(v, s)| format!("`{v}` / `{s}`"))
        .collect();
    assert!(missing.is_empty(), "docs/interop.md has no line with:\n{}", missing.join("\n"));
}

/// The checks fail on a page without a setting or an algorithm's name.
#[test]
fn a_missing_setting_or_name_is_found() {
    let page = page().replace("`curve25519`", "`x25519`");
    let pairs = algorithm_pairs();
    assert!(pairs.iter().any(|(v, s)| v == "dh group31" && s == "curve25519" && !line_with(&page, v, s)));
    assert!(
        settings("connections {\n  s2s {\n    start_action = none\n  }\n}\n")
            == ["connections", "start_action"]
    );
}
