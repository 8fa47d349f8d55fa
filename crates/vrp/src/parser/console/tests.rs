use super::*;
use crate::grammar::grammar;

#[test]
fn every_keyword_has_a_description() {
    let grammar = grammar();
    let missing: BTreeSet<&str> = grammar
        .views
        .iter()
        .flat_map(|v| v.keywords.iter().copied())
        .filter(|k| describe(k).is_empty())
        .collect();
    assert!(
        missing.is_empty(),
        "no description for:\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}

fn views(list: &[&str]) -> Vec<String> {
    list.iter().map(|v| (*v).to_string()).collect()
}

fn command(views: &[String], line: &str) -> Command {
    match read(views, line) {
        Reading::Command(c) => c,
        other => panic!("{line}: {other:?}"),
    }
}

fn error(views: &[String], line: &str) -> LineError {
    match read(views, line) {
        Reading::Error(e) => e,
        other => panic!("{line}: {other:?}"),
    }
}

#[test]
fn abbreviations_expand_to_the_keywords_and_values_keep_their_text() {
    let c = command(&[], "ike pe b");
    assert_eq!((c.line.as_str(), c.views.len()), ("ike peer b", 0));
    assert_eq!(c.after, views(&["ike peer b"]));
    let peer = views(&["ike peer b"]);
    let c = command(&peer, "pre Admin@123");
    assert_eq!(c.line, "pre-shared-key Admin@123");
    assert_eq!(c.masked, "pre-shared-key ******");
    assert!(c.secret);
    assert_eq!((c.views.clone(), c.after.clone()), (peer.clone(), peer.clone()));
    let c = command(&peer, "PRE-SHARED-KEY SIMPLE \"a b\"");
    assert_eq!(c.line, "pre-shared-key simple \"a b\"");
    let c = command(&peer, "ike-pro 10");
    assert_eq!(c.line, "ike-proposal 10");
    assert!(!c.secret);
    let c = command(&views(&["ipsec proposal a"]), "esp enc aes-256");
    assert_eq!(c.line, "esp encryption-algorithm aes-256");
    let c = command(&[], "ipsec policy policy1 1 isa");
    assert_eq!(error(&[], "ipsec pol policy1 1 isa").kind, ErrorKind::Ambiguous);
    assert_eq!(c.line, "ipsec policy policy1 1 isakmp");
    let c = command(&[], "acl num 3001");
    assert_eq!(c.after, views(&["acl number 3001"]));
    let c = command(
        &views(&["acl number 3001"]),
        "rule 5 per ip source 10.1.1.0 0.0.0.255 destination 10.1.2.0 0.0.0.255",
    );
    assert_eq!(c.line, "rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.1.2.0 0.0.0.255");
    let c = command(&views(&["ipsec policy policy1 1 isakmp"]), "undo pf");
    assert_eq!(c.line, "undo pfs");
}

#[test]
fn a_system_command_in_a_view_runs_in_the_system_view_and_leaves_it() {
    let peer = views(&["ike peer b"]);
    let c = command(&peer, "ike prop 10");
    assert_eq!((c.views, c.after), (Vec::new(), views(&["ike proposal 10"])));
    let c = command(&peer, "sysname FW_A");
    assert_eq!((c.line.as_str(), c.views, c.after), ("sysname FW_A", Vec::new(), Vec::new()));
    let c = command(&peer, "quit");
    assert!(c.leaves);
    assert!(!command(&peer, "dpd type periodic").leaves);
}

#[test]
fn prompts_are_huaweis() {
    let cases = [
        ("ike proposal 10", "[FW_A-ike-proposal-10]"),
        ("ike peer b", "[FW_A-ike-peer-b]"),
        ("acl number 3001", "[FW_A-acl-adv-3001]"),
        ("ipsec proposal a", "[FW_A-ipsec-proposal-a]"),
        ("ipsec policy policy1 1 isakmp", "[FW_A-ipsec-policy-isakmp-policy1-1]"),
        ("ipsec policy-template temp1 10", "[FW_A-ipsec-policy-templet-temp1-10]"),
        ("interface GigabitEthernet0/0/2", "[FW_A-GigabitEthernet0/0/2]"),
    ];
    for (opening, expected) in cases {
        assert_eq!(prompt("FW_A", &views(&[opening])), expected);
    }
    assert_eq!(prompt("FW_A", &[]), "[FW_A]");
    assert_eq!(prompt_suffix("sysname x"), None);
}

#[test]
fn errors_point_at_the_first_word_not_understood() {
    let e = error(&[], "ike peeer b");
    assert_eq!((e.offset, e.kind), (4, ErrorKind::Unrecognized));
    let e = error(&[], "ike proposal");
    assert_eq!((e.offset, e.kind), (13, ErrorKind::Incomplete));
    let e = error(&views(&["ike peer b"]), "re 1.2.3.4");
    assert_eq!((e.offset, e.kind), (0, ErrorKind::Ambiguous));
    let e = error(&[], "ike proposal 5000");
    assert_eq!((e.offset, e.kind), (13, ErrorKind::WrongParameter));
    let e = error(&views(&["ipsec policy policy1 1 isakmp"]), "pfs dh-group14 x");
    assert_eq!((e.offset, e.kind), (15, ErrorKind::TooManyParameters));
    assert_eq!(ErrorKind::Unrecognized.message(), "Error: Unrecognized command found at '^' position.");
    assert_eq!(read(&[], "  "), Reading::Empty);
}

#[test]
fn question_mark_lists_the_next_words_from_the_parser() {
    let next = next_words(&[], "ike ");
    let words: Vec<&str> = next.words.iter().map(|h| h.word.as_str()).collect();
    assert!(words.contains(&"proposal") && words.contains(&"peer"), "{words:?}");
    assert!(!next.can_end);
    let proposal = next.words.iter().find(|h| h.word == "proposal").unwrap();
    assert_eq!(proposal.description, "Specify a proposal");
    let next = next_words(&[], "ike proposal ");
    assert_eq!(next.words[0].word, "INTEGER<1-1024>");
    assert!(!next.words[0].keyword);
    assert!(next_words(&[], "ike proposal 10 ").can_end);
    let partial: Vec<String> = next_words(&[], "ike p").words.into_iter().map(|h| h.word).collect();
    assert_eq!(partial, ["proposal", "peer"]);
    let groups = next_words(&views(&["ike proposal 10"]), "dh ");
    assert!(groups.words.iter().any(|h| h.word == "group14" && h.description == "DH group"), "{groups:?}");
    // In a view, the system commands are listed once the view has none for the line.
    let sys: Vec<String> =
        next_words(&views(&["ike peer b"]), "ipsec pro").words.into_iter().map(|h| h.word).collect();
    assert_eq!(sys, ["proposal"]);
}

#[test]
fn tab_completes_a_word_it_abbreviates() {
    assert_eq!(completions(&[], "sys"), ["sysname"]);
    assert_eq!(completions(&views(&["ike peer b"]), "exch"), ["exchange-mode"]);
    assert!(completions(&[], "ike ").is_empty());
    assert_eq!(expand("dis", &["display", "debugging"]), Ok("display"));
    assert_eq!(expand("d", &["display", "debugging"]), Err(vec!["display", "debugging"]));
}

#[test]
fn an_annotation_as_the_article_writes_it_is_left_out() {
    let peer = views(&["ike peer b"]);
    assert_eq!(command(&peer, "exchange-mode main//main mode (default)").line, "exchange-mode main");
    assert_eq!(command(&peer, "exc main //main mode").line, "exchange-mode main");
    assert_eq!(command(&[], "ike proposal 10//the first").line, "ike proposal 10");
    // In a key, a glued `//` is part of the key.
    assert_eq!(command(&peer, "pre-shared-key ab//cd").line, "pre-shared-key ab//cd");
}
