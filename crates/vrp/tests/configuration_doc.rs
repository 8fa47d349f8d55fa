//! `docs/configuration.md` names every keyword of the language: each keyword of a view's
//! commands in that view's section, each keyword of a value (algorithm, group, mode) somewhere
//! in the document. The keywords come from the parser itself (`vrp::grammar::grammar()`), so
//! a keyword added to the parser fails this test until the reference documents it.

use std::path::Path;

use vrp::grammar::{grammar, Grammar};

fn reference() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// True when `word` appears in `text` with no keyword character (letter, digit, `-`, `_`)
/// right before or after it: `sha` is not named by `sha1`, nor `ip` by `ipsec`.
fn names(text: &str, word: &str) -> bool {
    let keyword_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(keyword_char) && !after.is_some_and(keyword_char)
    })
}

/// The section of `doc` whose `## ` heading names `` `view` ``, up to the next `## ` heading.
fn section<'d>(doc: &'d str, view: &str) -> Option<&'d str> {
    let heading = format!("`{view}`");
    let start = doc
        .match_indices("\n## ")
        .map(|(at, _)| at + 1)
        .find(|&at| doc[at..].lines().next().is_some_and(|line| line.contains(&heading)))?;
    let end = doc[start + 3..].find("\n## ").map_or(doc.len(), |at| start + 3 + at);
    Some(&doc[start..end])
}

/// Every keyword the document does not name where it should, as `view: keyword` lines.
fn missing(doc: &str, grammar: &Grammar) -> Vec<String> {
    let mut missing = Vec::new();
    for view in &grammar.views {
        match section(doc, view.view) {
            None => missing.push(format!("no `## …`{}`…` section", view.view)),
            Some(text) => missing.extend(
                view.keywords.iter().filter(|k| !names(text, k)).map(|k| format!("{}: {k}", view.view)),
            ),
        }
    }
    for (what, keywords) in &grammar.values {
        missing.extend(keywords.iter().filter(|k| !names(doc, k)).map(|k| format!("{what}: {k}")));
    }
    missing
}

#[test]
fn the_reference_names_every_keyword_of_the_parser() {
    let missing = missing(&reference(), &grammar());
    assert!(missing.is_empty(), "docs/configuration.md does not name:\n{}", missing.join("\n"));
}

#[test]
fn the_grammar_has_every_view_and_value_family() {
    let grammar = grammar();
    let views: Vec<&str> = grammar.views.iter().map(|v| v.view).collect();
    assert_eq!(
        views,
        [
            "system",
            "ike proposal",
            "ike peer",
            "ike user-table",
            "acl",
            "ipsec proposal",
            "ipsec policy",
            "ipsec policy-template",
            "interface",
            "ike user-table user"
        ]
    );
    let peer = &grammar.views[2].keywords;
    for k in ["pre-shared-key", "simple", "when-asked", "seq-hash-notify", "traversal"] {
        assert!(peer.contains(k) || grammar.values.values().any(|v| v.contains(k)), "{k}");
    }
    assert!(grammar.views[4].keywords.contains("destination-port"), "rule conditions after the protocol");
    assert!(grammar.views[0].keywords.contains("number"), "`acl number`");
    assert!(grammar.values["DH group"].contains("group31"));
    assert!(grammar.values["encryption algorithm"].contains("aes-cbc"), "aliases");
}

/// The check fails when a keyword is named only outside its view's section, or nowhere.
#[test]
fn a_keyword_the_reference_leaves_out_is_reported() {
    let doc = reference();
    let grammar = grammar();
    let system = section(&doc, "system").unwrap();
    let without = doc.replace(system, &system.replace("sysname", "host name"));
    assert_eq!(missing(&without, &grammar), ["system: sysname"]);
    let without = doc.replace("seq-notify-hash", "the other order");
    assert_eq!(missing(&without, &grammar), ["DPD message order: seq-notify-hash"]);
    assert!(!names("sha1 and sha2-256", "sha"));
    assert!(!names("ipsec", "ip"));
    assert!(names("`ip` or `ipsec`", "ip"));
}
