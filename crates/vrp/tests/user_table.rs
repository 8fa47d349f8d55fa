//! `ike user-table` (per-site keys for a template's peer) and `ipsec sha2 compatible enable`:
//! parsed, validated, rendered with the keys masked, and read back.

use std::path::Path;

use vrp::model::UserId;
use vrp::{check, load_file, render, DiagnosticKind, KeyDisplay, Severity};

const HEAD: &str = "ike proposal 10\n";

fn errors(text: &str) -> Vec<(DiagnosticKind, String)> {
    check("t.cfg", text, None)
        .diagnostics
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.kind, d.message))
        .collect()
}

#[test]
fn the_hub_example_has_two_sites_with_their_own_keys() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hub-site-keys/hub.cfg");
    let checked = load_file(&path, None).unwrap();
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    let config = checked.config.unwrap();
    assert_eq!(config.ike_peers["branches"].user_table, Some(1));
    let users = &config.ike_user_tables[&1].users;
    assert_eq!(users.len(), 2);
    assert_eq!(users[&1].id, Some(UserId::Ip("192.0.2.11".parse().unwrap())));
    assert_eq!(users[&2].pre_shared_key.as_ref().map(|k| k.expose()), Some("branch-two-example-key"));

    // Rendered for a person: no key appears; for the file: the same configuration back.
    let masked = render(&config, KeyDisplay::Masked);
    assert!(!masked.contains("example-key"), "{masked}");
    assert!(masked.contains(
        "ike user-table 1\n user id 1\n  id-type ip 192.0.2.11\n  pre-shared-key cipher %^%#********%^%#\n"
    ));
    assert!(
        masked.contains("ike peer branches\n ike-proposal 10\n undo version 2\n user-table 1\n"),
        "{masked}"
    );
    let clear = render(&config, KeyDisplay::Clear);
    assert_eq!(vrp::parse("again.cfg", &clear).unwrap().config, config);
}

#[test]
fn users_follow_each_other_and_take_every_identity_type() {
    let text = format!(
        "{HEAD}ike user-table 7\n user id 1\n  id-type fqdn branch1.example.net\n  pre-shared-key k-one-0123456789\n \
         user id 2\n  id-type user-fqdn ops@branch2.example.net\n  pre-shared-key \"with blanks 0123456789\"\n \
         user id 3\n  id-type ip 198.51.100.3\n  pre-shared-key k-three-0123456789\n  undo pre-shared-key\n  \
         pre-shared-key k-three-again-0123\nike peer b\n user-table 7\n"
    );
    let parsed = vrp::parse("t.cfg", &text).unwrap();
    let users = &parsed.config.ike_user_tables[&7].users;
    assert_eq!(users[&1].id, Some(UserId::Fqdn("branch1.example.net".into())));
    assert_eq!(users[&2].id, Some(UserId::UserFqdn("ops@branch2.example.net".into())));
    assert_eq!(users[&2].pre_shared_key.as_ref().map(|k| k.expose()), Some("with blanks 0123456789"));
    assert_eq!(users[&3].pre_shared_key.as_ref().map(|k| k.expose()), Some("k-three-again-0123"));
    // `undo user id` and `undo ike user-table` remove them.
    let removed = format!("{text}ike user-table 7\n undo user id 2\n");
    assert!(!vrp::parse("t.cfg", &removed).unwrap().config.ike_user_tables[&7].users.contains_key(&2));
    let gone = format!("{text}undo ike user-table 7\n");
    assert!(vrp::parse("t.cfg", &gone).unwrap().config.ike_user_tables.is_empty());
}

#[test]
fn validation_names_what_a_table_or_its_peer_lacks() {
    let missing = errors(&format!("{HEAD}ike peer b\n user-table 3\n"));
    assert!(
        missing.iter().any(|(k, m)| *k == DiagnosticKind::MissingReference && m.contains("ike user-table 3")),
        "{missing:?}"
    );
    let incomplete = errors(&format!(
        "{HEAD}ike user-table 1\n user id 4\n  id-type ip 192.0.2.4\nike peer b\n user-table 1\n"
    ));
    assert!(
        incomplete
            .iter()
            .any(|(k, m)| *k == DiagnosticKind::Incomplete && m.contains("user id 4 has no pre-shared-key")),
        "{incomplete:?}"
    );
    let twice = errors(&format!(
        "{HEAD}ike user-table 1\n user id 1\n  id-type fqdn a.example\n  pre-shared-key k-0123456789abcdef\n \
         user id 2\n  id-type fqdn A.Example\n  pre-shared-key k-0123456789abcdefg\nike peer b\n user-table 1\n"
    ));
    assert!(
        twice.iter().any(|(_, m)| m.contains("id-type fqdn A.Example is already another user")),
        "{twice:?}"
    );
    let both = errors(&format!(
        "{HEAD}ike user-table 1\n user id 1\n  id-type ip 192.0.2.4\n  pre-shared-key k-0123456789abcdef\n\
         ike peer b\n user-table 1\n pre-shared-key other-0123456789abc\n remote-address 192.0.2.4\n"
    ));
    assert!(both.iter().any(|(_, m)| m.contains("both pre-shared-key and user-table")), "{both:?}");
    assert!(both.iter().any(|(_, m)| m.contains("has a remote-address and a user-table")), "{both:?}");
    // With a table, the peer's own key is not required.
    let fine = errors(&format!(
        "{HEAD}ike user-table 1\n user id 1\n  id-type ip 192.0.2.4\n  pre-shared-key k-0123456789abcdef\n\
         ike peer b\n user-table 1\n"
    ));
    assert!(fine.is_empty(), "{fine:?}");
}

#[test]
fn sha2_compatible_selects_the_truncation_and_renders_back() {
    let legacy = vrp::parse("t.cfg", "undo ipsec sha2 compatible enable\n").unwrap();
    assert!(legacy.config.ipsec_sha2_truncate_96);
    assert!(legacy.warnings.is_empty(), "the command takes effect now: {:?}", legacy.warnings);
    assert!(render(&legacy.config, KeyDisplay::Masked).contains("undo ipsec sha2 compatible enable\n"));
    let back =
        vrp::parse("t.cfg", "undo ipsec sha2 compatible enable\nipsec sha2 compatible enable\n").unwrap();
    assert!(!back.config.ipsec_sha2_truncate_96, "RFC 4868's 128 bits again");
    assert!(back.warnings.is_empty(), "{:?}", back.warnings);
    assert!(!render(&back.config, KeyDisplay::Masked).contains("sha2"));
}

/// The console (issue 15's running configuration): a table typed row by row is inert until a
/// row is complete, and so is the peer that uses it; neither blocks the rest.
#[test]
fn an_incomplete_table_and_its_peer_wait_inert() {
    let text =
        format!("{HEAD}ike user-table 1\n user id 1\n  id-type ip 192.0.2.4\nike peer b\n user-table 1\n");
    let config = vrp::parse("t.cfg", &text).unwrap().config;
    let (effective, inert) = vrp::inert::split(&config);
    let objects: Vec<&str> = inert.iter().map(|i| i.object.as_str()).collect();
    assert_eq!(objects, ["ike user-table 1 user id 1", "ike user-table 1", "ike peer b"], "{inert:?}");
    assert!(effective.ike_user_tables.is_empty() && effective.ike_peers.is_empty());
    let complete = format!("{text}ike user-table 1\n user id 1\n  pre-shared-key k-0123456789abcdef\n");
    let (effective, inert) = vrp::inert::split(&vrp::parse("t.cfg", &complete).unwrap().config);
    assert!(inert.is_empty(), "{inert:?}");
    assert_eq!(effective.ike_peers["b"].user_table, Some(1));
}
