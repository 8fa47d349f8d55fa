//! Issue 15, "nothing silently ignored": every keyword the parser accepts either takes effect
//! or `keysteward check` says it has no effect here.
//!
//! The grammar comes from the parser itself (`vrp::grammar::grammar()`, what `?` would list
//! in each view). [`ROWS`] classifies it: each row is a command line written in a view, in a
//! configuration where it can matter, and what it does there:
//!
//! - [`Class::Engine`]: the IKE engine's configuration (or the refusal `check` and `run` give)
//!   changes with the line (warnings or errors it causes about other objects included);
//! - [`Class::Daemon`]: the line changes the configuration the daemon itself reads (routes,
//!   fail-closed routes, negotiation at start-up, a warning), named in the row;
//! - [`Class::Warned`]: the line brings an "ignored / no effect" warning from `check`;
//! - [`Class::Refused`]: the line brings an error from `check`;
//! - [`Class::View`]: it only moves between views.
//!
//! Every keyword of every view must appear in a row of that view: a keyword added to the
//! parser without a row fails [`every_keyword_is_classified`], which is the point. A row
//! whose line does not do what its class says fails [`every_row_does_what_it_says`].

use keysteward::engine_config::engine_config;
use vrp::{check, DiagnosticKind, Severity};

/// What a line does (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Engine,
    Daemon(&'static str),
    Warned,
    Refused,
    View,
}
use Class::*;

/// The configuration every row is added to: a peer with a policy on an interface, and a
/// template bound after it.
const BASE: &str = "\
ike proposal 10
 encryption-algorithm aes-128
 dh group19
ike peer b
 ike-proposal 10
 undo version 2
 remote-address 192.0.2.2
 pre-shared-key 0123456789abcdef
ike peer any
 ike-proposal 10
 undo version 2
 pre-shared-key 0123456789abcdef
acl number 3001
 rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255
acl number 3002
 rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.3.0.0 0.0.255.255
ipsec proposal a
ipsec policy p 1 isakmp
 security acl 3001
 proposal a
 ike-peer b
ipsec policy-template t 1
 security acl 3002
 proposal a
 ike-peer any
ipsec policy p 10 isakmp template t
interface out0
 ip address 192.0.2.1 255.255.255.0
 ipsec policy p
";

/// A peer `c` policy `p 1` could use, and the policy's view.
const PEER_C_POLICY: &str = "ike peer c\n ike-proposal 10\n undo version 2\n remote-address 192.0.2.3\n \
                             pre-shared-key 0123456789abcdef\nipsec policy p 1 isakmp\n";

/// The template's peer `any` taking its keys from `ike user-table 1` (not written yet).
const TABLE_PEER: &str = "ike peer any\n undo pre-shared-key\n user-table 1\n";
/// The same with the table: one site, 192.0.2.9; its view is left open.
const TABLE: &str = "ike peer any\n undo pre-shared-key\n user-table 1\nike user-table 1\n user id 1\n  \
                     id-type ip 192.0.2.9\n  pre-shared-key 0123456789abcdef\n";
/// [`TABLE`], back in the table's view.
const IN_TABLE: &str = "ike peer any\n undo pre-shared-key\n user-table 1\nike user-table 1\n user id 1\n  \
                        id-type ip 192.0.2.9\n  pre-shared-key 0123456789abcdef\nike user-table 1\n";

/// (view, what comes before the line, the line, its class). The line is written in `view`,
/// which the context leaves open; it may go on with the settings its object needs to be
/// complete (only its first line's view counts for the classification).
const ROWS: &[(&str, &str, &str, Class)] = &[
    // The system view.
    ("system", "ike peer b\n local-id-type fqdn\n", "sysname fwa", Engine),
    ("system", "ike peer b\n local-id-type fqdn\nsysname fwa\n", "undo sysname", Engine),
    ("system", "ike peer b\n local-id-type fqdn\n", "ike local-name fwa", Engine),
    ("system", "ike peer b\n local-id-type fqdn\nike local-name fwa\n", "undo ike local-name", Engine),
    ("system", "", "ike dpd type periodic", Engine),
    ("system", "ike dpd type periodic\n", "ike dpd idle-time 20", Engine),
    ("system", "", "ike dpd idle-time 20", Warned),
    ("system", "ike dpd type periodic\n", "ike dpd retransmit-interval 5", Engine),
    ("system", "ike dpd type periodic\n", "ike dpd retry-limit 4", Engine),
    ("system", "ike dpd type periodic\n", "undo ike dpd type", Engine),
    ("system", "", "ike fragmentation max-size 1400", Engine),
    ("system", "", "undo ike fragmentation", Engine),
    ("system", "ike peer b\n undo ike-proposal\n", "ike proposal 20", Engine),
    ("system", "ike peer b\n undo ike-proposal\nike peer any\n undo ike-proposal\n", "undo ike proposal 10", Engine),
    ("system", "", "ike peer c\n undo version 2\n pre-shared-key 0123456789abcdef", Warned),
    ("system", "", "undo ike peer b", Engine),
    ("system", "ike peer b\n version 2\n", "ike peer b v1", Daemon("check's warning while IKEv2 is enabled")),
    ("system", "", "ike peer c v2", Refused),
    ("system", "", "acl number 3003", Warned),
    ("system", "", "undo acl 3001", Engine),
    ("system", "", "ipsec proposal z", Warned),
    ("system", "", "undo ipsec proposal a", Engine),
    ("system", "", "ipsec policy q 1 isakmp\n security acl 3001\n proposal a\n ike-peer b", Warned),
    ("system", "", "ipsec policy q 10 isakmp template t", Warned),
    ("system", "", "ipsec policy p 2 manual", Refused),
    ("system", "", "undo ipsec policy p 1", Engine),
    ("system", "", "ipsec policy-template u 1\n proposal a\n ike-peer any", Warned),
    ("system", "", "undo ipsec policy-template t", Engine),
    ("system", "", "ipsec sa global-duration time-based 7200", Engine),
    ("system", "", "ipsec sa global-duration traffic-based 0", Engine),
    ("system", "ipsec sa global-duration time-based 7200\n", "undo ipsec sa global-duration time-based", Engine),
    ("system", "", "ipsec fail-closed keep", Daemon("the fail-closed routes kept at an orderly stop")),
    ("system", "ipsec fail-closed keep\n", "undo ipsec fail-closed keep", Daemon("the fail-closed routes")),
    (
        "system",
        "",
        "metrics server ip-address 127.0.0.1 port 9464",
        Daemon("the Prometheus endpoint the daemon serves, moved by a reload"),
    ),
    ("system", "metrics server ip-address 127.0.0.1 port 9464\n", "undo metrics server", Daemon("the endpoint closed")),
    ("system", "", "undo ipsec sha2 compatible enable", Engine),
    ("system", "undo ipsec sha2 compatible enable\n", "ipsec sha2 compatible enable", Engine),
    ("system", TABLE_PEER, "ike user-table 1\n user id 1\n  id-type ip 192.0.2.9\n  pre-shared-key 0123456789abcdef", Engine),
    ("system", TABLE, "undo ike user-table 1", Engine),
    ("system", "", "interface out1", Warned),
    ("system", "", "undo interface out0", Engine),
    (
        "system",
        "",
        "ip route-static 198.51.100.0 255.255.255.0 192.0.2.2 preference 10",
        Daemon("installed as a route of protocol 245, shown by display ip routing-table"),
    ),
    ("system", "", "ip route-static 10.2.2.0 24 192.0.2.2", Warned),
    (
        "system",
        "ip route-static 198.51.100.0 24 192.0.2.2\n",
        "undo ip route-static 198.51.100.0 24 192.0.2.2",
        Daemon("the route removed"),
    ),
    ("system", "", "firewall zone trust", Warned),
    ("system", "", "security-policy", Warned),
    ("system", "ike peer b\n", "quit", View),
    ("system", "ike peer b\n", "return", View),
    // The ike proposal view.
    ("ike proposal", "ike proposal 10\n", " encryption-algorithm aes-256", Engine),
    ("ike proposal", "ike proposal 10\n", " authentication-algorithm sha1", Engine),
    ("ike proposal", "ike proposal 10\n", " authentication-method rsa-signature", Engine),
    ("ike proposal", "ike proposal 10\n", " dh group14", Engine),
    ("ike proposal", "ike proposal 10\n", " sa duration 3600", Engine),
    ("ike proposal", "ike proposal 10\n", " integrity-algorithm hmac-sha2-256", Warned),
    ("ike proposal", "ike proposal 10\n", " prf hmac-sha2-256", Warned),
    ("ike proposal", "ike proposal 10\n", " undo dh", Engine),
    ("ike proposal", "ike proposal 10\n sa duration 3600\n", " undo sa duration", Engine),
    ("ike proposal", "ike proposal 10\n", " quit", View),
    ("ike proposal", "ike proposal 10\n", " return", View),
    // The ike peer view.
    ("ike peer", "ike proposal 20\nike peer b\n", " ike-proposal 20", Engine),
    ("ike peer", "ike peer b\n", " version 2", Daemon("check's warning while IKEv2 is enabled")),
    ("ike peer", "ike peer b\n", " undo version 1", Refused),
    ("ike peer", "ike peer b\n", " exchange-mode aggressive", Engine),
    ("ike peer", "ike peer b\n", " pre-shared-key cipher 0123456789abcdeX", Engine),
    ("ike peer", "ike peer b\n", " pre-shared-key simple 0123456789abcdeY", Engine),
    ("ike peer", "ike peer b\n", " remote-address 192.0.2.3", Engine),
    ("ike peer", "ike peer b\n", " remote-address authentication-address 10.9.9.9", Engine),
    ("ike peer", "ike peer b\n", " remote-id fwb", Engine),
    ("ike peer", "ike peer b\n", " remote-name fwb", Engine),
    ("ike peer", "ike peer b\n remote-id 192.0.2.2\n", " remote-id-type ip", Engine),
    ("ike peer", "ike peer b\n local-id fwa\n", " local-id-type fqdn", Engine),
    ("ike peer", "ike peer b\n", " local-id 192.0.2.1", Engine),
    ("ike peer", "ike peer b\n", " local-address 192.0.2.11", Engine),
    ("ike peer", "ike peer b\n", " undo nat traversal", Engine),
    ("ike peer", "ike peer b\n undo nat traversal\n", " nat traversal", Engine),
    ("ike peer", "ike peer b\n", " nat traversal force-encapsulation", Engine),
    ("ike peer", "ike peer b\n nat traversal force-encapsulation\n", " undo nat traversal force-encapsulation", Engine),
    ("ike peer", "ike peer b\n", " dpd type periodic", Engine),
    ("ike peer", "ike peer b\n dpd type periodic\n", " dpd idle-time 20", Engine),
    ("ike peer", "ike peer b\n", " dpd retry-limit 2", Warned),
    ("ike peer", "ike peer b\n dpd type periodic\n", " dpd retransmit-interval 5", Engine),
    ("ike peer", "ike peer b\n dpd type periodic\n", " dpd retry-limit 2", Engine),
    ("ike peer", "ike peer b\n dpd type periodic\n", " dpd msg seq-notify-hash", Engine),
    ("ike peer", "ike peer b\n", " certificate local-filename a.crt", Warned),
    ("ike peer", "ike peer b\n", " certificate local-key-filename a.key", Warned),
    ("ike peer", "ike peer b\n", " certificate ca-filename ca.crt", Warned),
    ("ike peer", "ike peer b\n", " certificate crl-filename ca.crl", Warned),
    ("ike peer", "ike peer b\n", " certificate send when-asked", Warned),
    ("ike peer", "ike peer b\n certificate send when-asked\n", " certificate send always", Daemon("back to the default")),
    ("ike peer", "ike peer b\n", " certificate remote-filename b.crt", Refused),
    ("ike peer", "ike proposal 20\nike peer b\n", " undo ike-proposal", Engine),
    ("ike peer", "ike peer b\n", " undo pre-shared-key", Engine),
    ("ike peer", "ike peer b\n local-address 192.0.2.11\n", " undo local-address", Engine),
    ("ike peer", "ike peer b\n", " quit", View),
    ("ike peer", "ike peer b\n", " return", View),
    // The acl view.
    ("acl", "acl 3001\n", " rule 10 permit ip source 10.1.3.0 0.0.0.255 destination 10.2.3.0 0.0.0.255", Engine),
    (
        "acl",
        "acl 3001\n",
        " rule 1 deny ip source 10.1.1.7 0 destination any",
        Daemon("a Bypass rule of the SPD: that traffic leaves in clear"),
    ),
    (
        "acl",
        "acl 3001\n",
        " rule 10 permit udp source any destination 10.2.3.0 0.0.0.255 source-port gt 1000 destination-port range 1 2",
        Engine,
    ),
    ("acl", "acl 3001\n", " rule 10 permit tcp destination 10.2.3.0 0.0.0.255 destination-port eq 80 source-port lt 1024", Engine),
    ("acl", "acl 3001\n", " rule 10 permit icmp destination 10.2.3.0 0.0.0.255", Engine),
    ("acl", "acl 3001\n", " rule 10 permit icmp destination 10.2.3.0 0.0.0.255 icmp-type echo", Refused),
    ("acl", "acl 3001\n", " rule 10 permit gre destination 10.2.3.0 0.0.0.255", Engine),
    ("acl", "acl 3001\n rule 10 permit gre destination 10.2.3.0 0.0.0.255\n", " undo rule 10", Engine),
    ("acl", "acl 3001\n", " quit", View),
    ("acl", "acl 3001\n", " return", View),
    // The ipsec proposal view.
    ("ipsec proposal", "ipsec proposal a\n", " transform ah-esp", Engine),
    ("ipsec proposal", "ipsec proposal a\n", " encapsulation-mode transport", Engine),
    ("ipsec proposal", "ipsec proposal a\n", " esp encryption-algorithm aes-128", Engine),
    ("ipsec proposal", "ipsec proposal a\n", " esp authentication-algorithm sha1", Engine),
    ("ipsec proposal", "ipsec proposal a\n transform ah\n", " ah authentication-algorithm sha1", Engine),
    ("ipsec proposal", "ipsec proposal a\n", " ah authentication-algorithm sha1", Warned),
    ("ipsec proposal", "ipsec proposal a\n transform ah\n", " esp encryption-algorithm aes-128", Warned),
    ("ipsec proposal", "ipsec proposal a\n transform ah\n", " undo transform", Engine),
    ("ipsec proposal", "ipsec proposal a\n", " quit", View),
    ("ipsec proposal", "ipsec proposal a\n", " return", View),
    // The ipsec policy view.
    ("ipsec policy", "ipsec policy p 1 isakmp\n", " security acl 3002", Engine),
    ("ipsec policy", "ipsec proposal z\nipsec policy p 1 isakmp\n", " proposal a z", Engine),
    ("ipsec policy", PEER_C_POLICY, " ike-peer c", Engine),
    ("ipsec policy", "ipsec policy p 1 isakmp\n", " pfs dh-group14", Engine),
    ("ipsec policy", "ipsec policy p 1 isakmp\n pfs dh-group14\n", " undo pfs", Engine),
    ("ipsec policy", "ipsec policy p 1 isakmp\n", " sa duration time-based 1800", Engine),
    ("ipsec policy", "ipsec policy p 1 isakmp\n", " sa duration traffic-based 0", Engine),
    ("ipsec policy", "ipsec policy p 1 isakmp\n", " sa trigger-mode auto", Daemon("negotiated at start-up and reload")),
    ("ipsec policy", "ipsec policy p 1 isakmp\n", " sa max flow 10", Refused),
    ("ipsec policy", "ipsec policy p 1 isakmp\n", " tunnel local 192.0.2.11", Engine),
    (
        "ipsec policy",
        "ike peer b\n local-address 192.0.2.13\nipsec policy p 1 isakmp\n",
        " tunnel local applied-interface",
        Engine,
    ),
    ("ipsec policy", "ipsec policy p 1 isakmp\n", " local-address 192.0.2.12", Engine),
    ("ipsec policy", "ipsec policy p 1 isakmp\n local-address 192.0.2.12\n", " undo local-address", Engine),
    ("ipsec policy", "ipsec policy p 1 isakmp\n", " route inject dynamic", Warned),
    ("ipsec policy", "ipsec policy p 1 isakmp\n", " quit", View),
    ("ipsec policy", "ipsec policy p 1 isakmp\n", " return", View),
    // The ipsec policy-template view.
    ("ipsec policy-template", "ipsec policy-template t 1\n", " security acl 3001", Engine),
    ("ipsec policy-template", "ipsec proposal z\nipsec policy-template t 1\n", " proposal a z", Engine),
    ("ipsec policy-template", "ike peer c\n pre-shared-key 0123456789abcdef\nipsec policy-template t 1\n", " ike-peer c", Engine),
    ("ipsec policy-template", "ipsec policy-template t 1\n", " pfs dh-group14", Engine),
    ("ipsec policy-template", "ipsec policy-template t 1\n", " sa duration time-based 1800", Engine),
    ("ipsec policy-template", "ipsec policy-template t 1\n", " sa duration traffic-based 0", Engine),
    ("ipsec policy-template", "ipsec policy-template t 1\n", " sa max ike-sa 300", Engine),
    ("ipsec policy-template", "ipsec policy-template t 1\n", " sa max ipsec-sa 300", Engine),
    ("ipsec policy-template", "ipsec policy-template t 1\n", " sa max per-peer flow 3", Engine),
    ("ipsec policy-template", "ipsec policy-template t 1\n sa max flow 3\n", " undo sa max flow", Engine),
    ("ipsec policy-template", "ipsec policy-template t 1\n", " sa trigger-mode auto", Refused),
    ("ipsec policy-template", "ipsec policy-template t 1\n", " tunnel local 192.0.2.11", Engine),
    (
        "ipsec policy-template",
        "ike peer any\n local-address 192.0.2.13\nipsec policy-template t 1\n",
        " tunnel local applied-interface",
        Engine,
    ),
    ("ipsec policy-template", "ipsec policy-template t 1\n", " local-address 192.0.2.12", Engine),
    ("ipsec policy-template", "ipsec policy-template t 1\n", " route inject dynamic", Warned),
    ("ipsec policy-template", "ipsec policy-template t 1\n", " quit", View),
    ("ipsec policy-template", "ipsec policy-template t 1\n", " return", View),
    // The interface view.
    ("interface", "interface out0\n", " ip address 192.0.2.5 24", Engine),
    ("interface", "interface out0\n", " undo ip address", Engine),
    ("interface", "interface out0\n", " ipsec policy p auto-neg", Daemon("negotiated at start-up and reload")),
    ("interface", "interface out0\n", " undo ipsec policy", Engine),
    ("interface", "interface out0\n", " shutdown", Warned),
    ("interface", "interface out0\n", " undo shutdown", Warned),
    // The ike user-table view and its user view (per-site keys).
    ("ike user-table", IN_TABLE, " user id 2\n  id-type ip 192.0.2.10\n  pre-shared-key 0123456789abcdef", Engine),
    ("ike user-table", IN_TABLE, " undo user id 1", Engine),
    ("ike user-table", IN_TABLE, " quit", View),
    ("ike user-table", IN_TABLE, " return", View),
    ("ike user-table user", TABLE, "  id-type ip 192.0.2.11", Engine),
    ("ike user-table user", TABLE, "  id-type fqdn branch.example.net", Engine),
    ("ike user-table user", TABLE, "  id-type user-fqdn ops@branch.example.net", Engine),
    ("ike user-table user", TABLE, "  pre-shared-key cipher 0123456789abcdefX", Engine),
    ("ike user-table user", TABLE, "  pre-shared-key simple 0123456789abcdefY", Engine),
    ("ike user-table user", TABLE, "  undo pre-shared-key", Engine),
    ("ike user-table user", TABLE, "  user id 2\n  id-type ip 192.0.2.12\n  pre-shared-key 0123456789abcdef", Engine),
    ("ike user-table user", TABLE, "  quit", View),
    ("ike user-table user", TABLE, "  return", View),
    ("ike peer", "ike user-table 1\n user id 1\n  id-type ip 192.0.2.9\n  pre-shared-key 0123456789abcdef\nike peer any\n undo pre-shared-key\n", " user-table 1", Engine),
    ("interface", "interface out0\n", " quit", View),
    ("interface", "interface out0\n", " return", View),
];

/// What `check` and the engine make of `text`: the engine configuration (or why it is
/// refused), for comparison.
fn outcome(text: &str) -> String {
    let checked = check("t.cfg", text, None);
    match &checked.config {
        None => {
            format!("refused: {:?}", checked.diagnostics.iter().filter(|d| d.is_error()).collect::<Vec<_>>())
        }
        // The keys too: their Debug form is redacted.
        Some(config) => match engine_config(config) {
            Ok(engine) => {
                let keys: Vec<&[u8]> = engine
                    .peers
                    .iter()
                    .flat_map(|p| {
                        let sites = p.site_keys.iter().map(|k| k.pre_shared_key.expose());
                        std::iter::once(p.pre_shared_key.expose()).chain(sites)
                    })
                    .collect();
                format!("{engine:?} {keys:?}")
            }
            Err(e) => format!("{e:?}"),
        },
    }
}

#[test]
fn every_keyword_is_classified() {
    let grammar = vrp::grammar::grammar();
    let mut missing = Vec::new();
    for view in &grammar.views {
        let covered: Vec<&str> = ROWS
            .iter()
            .filter(|(v, ..)| *v == view.view)
            .flat_map(|(_, _, line, _)| line.lines().next().unwrap_or_default().split_whitespace())
            .collect();
        for keyword in &view.keywords {
            if !covered.iter().any(|w| w.eq_ignore_ascii_case(keyword)) {
                missing.push(format!("{}: {keyword}", view.view));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keywords the parser accepts that no row classifies (applied or warned): {missing:?}"
    );
    for (view, ..) in ROWS {
        assert!(grammar.views.iter().any(|v| v.view == *view), "no view {view}");
    }
}

#[test]
fn every_row_does_what_it_says() {
    let mut wrong = Vec::new();
    for &(view, context, line, class) in ROWS {
        let before = format!("{BASE}{context}");
        let after = format!("{before}{line}\n");
        let checked = check("t.cfg", &after, None);
        let earlier = check("t.cfg", &before, None);
        // What the line brought: "no effect" warnings and errors `before` did not have.
        let new = |kind: Option<DiagnosticKind>, severity: Severity| {
            let matching = |d: &&vrp::Diagnostic| d.severity == severity && kind.is_none_or(|k| d.kind == k);
            let old: Vec<&String> = earlier.diagnostics.iter().filter(matching).map(|d| &d.message).collect();
            checked.diagnostics.iter().filter(matching).any(|d| !old.contains(&&d.message))
        };
        let warned = new(Some(DiagnosticKind::Ignored), Severity::Warning);
        let refused = new(None, Severity::Error);
        let ok = match class {
            // Consequences elsewhere (an object no longer used, a reference now broken) are
            // fine: the line took effect.
            Engine => outcome(&before) != outcome(&after),
            Daemon(_) => {
                let parsed = |t: &str| vrp::parse("t.cfg", t).map(|p| p.config).ok();
                !warned && !refused && parsed(&before) != parsed(&after)
            }
            Warned => warned,
            Refused => refused,
            View => !warned && !refused && outcome(&before) == outcome(&after),
        };
        if !ok {
            let found: Vec<String> = checked.diagnostics.iter().map(ToString::to_string).collect();
            wrong.push(format!("[{view}] `{}` is not {class:?}; check says {found:?}", line.trim()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
