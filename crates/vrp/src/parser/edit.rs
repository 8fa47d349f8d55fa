//! One command line applied to a configuration in its view, as the device's console does:
//! the daemon's running configuration changes one line at a time (`keysteward shell`).
//!
//! A view is named by the canonical command that opens it (`ike peer b`, `acl number 3001`,
//! `ipsec policy policy1 1 isakmp`), outermost first; an empty list is the system view. The
//! line is read as a command of the innermost view and, when that fails, as a system-view
//! command, exactly as [`crate::parse`] reads a file, so a line means the same typed at the
//! console as written in a file. Nothing changes unless the whole line (and every view
//! line) is accepted.

use super::{dispatch, Next, View};
use crate::cursor::{Cursor, SyntaxError};
use crate::lexer::{lex, LexedLine, Token};
use crate::model::Config;

/// What an accepted line did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The object whose view the line is in or opened, by its key (`ike peer b`, `acl 3001`,
    /// `ipsec policy policy1 1`, `interface GigabitEthernet0/0/2`); empty for the system view.
    pub object: String,
    /// True when the line opened a view (the console enters it).
    pub opened_view: bool,
    /// The parser's warnings for the line (ignored commands, aliases), one line each.
    pub warnings: Vec<String>,
}

/// Applies `line` in the view that `views` open, to a copy of `config` that replaces it only
/// when every line is accepted. The error is the parser's message (it never quotes a key).
pub fn apply(config: &mut Config, views: &[String], line: &str) -> Result<Applied, String> {
    let mut scratch = config.clone();
    let view = enter(&mut scratch, views)?;
    let tokens = tokens(line)?;
    if tokens.is_empty() {
        return Ok(Applied { object: view.key(), opened_view: false, warnings: Vec::new() });
    }
    if view == View::Ignored {
        // The lines of a view keysteward ignores (`firewall zone …`) were warned about when it
        // was opened.
        return Ok(Applied { object: String::new(), opened_view: false, warnings: Vec::new() });
    }
    let (effect, ran_in) = run(&mut scratch, &view, &tokens).map_err(|e| e.message)?;
    let (object, opened_view) = match effect.next {
        Next::Enter(entered) => (entered.key(), true),
        Next::Stay => (ran_in.key(), false),
        Next::System => (String::new(), false),
    };
    *config = scratch;
    let warnings = effect.notes.into_iter().map(|n| n.message).collect();
    Ok(Applied { object, opened_view, warnings })
}

/// The key of the object whose view `views` open (`ike peer b`), empty for the system view.
pub fn object_of(config: &Config, views: &[String]) -> Result<String, String> {
    enter(&mut config.clone(), views).map(|view| view.key())
}

/// The configuration of the innermost view of `views` alone (the globals of the system view
/// when `views` is empty), for `display this`; the error when a view line is not one.
pub fn view_only(config: &Config, views: &[String]) -> Result<Config, String> {
    let mut scratch = config.clone();
    let view = enter(&mut scratch, views)?;
    let mut only = Config::default();
    match view {
        View::System | View::Broken | View::Ignored => {
            only = config.clone();
            only.ike_proposals.clear();
            only.ike_peers.clear();
            only.acls.clear();
            only.ipsec_proposals.clear();
            only.policy_templates.clear();
            only.ipsec_policies.clear();
            only.interfaces.clear();
            only.ike_user_tables.clear();
        }
        View::UserTable(n) => only.ike_user_tables.extend(config.ike_user_tables.get_key_value(&n).map(c)),
        View::TableUser(n, id) => {
            if let Some(user) = config.ike_user_tables.get(&n).and_then(|t| t.users.get(&id)) {
                only.ike_user_tables.entry(n).or_default().users.insert(id, user.clone());
            }
        }
        View::IkeProposal(n) => only.ike_proposals.extend(config.ike_proposals.get_key_value(&n).map(c)),
        View::IkePeer(name) => only.ike_peers.extend(config.ike_peers.get_key_value(&name).map(c)),
        View::Acl(n) => only.acls.extend(config.acls.get_key_value(&n).map(c)),
        View::IpsecProposal(name) => {
            only.ipsec_proposals.extend(config.ipsec_proposals.get_key_value(&name).map(c));
        }
        View::Policy(name, seq) => {
            if let Some(entry) = config.ipsec_policies.get(&name).and_then(|e| e.get(&seq)) {
                only.ipsec_policies.entry(name).or_default().insert(seq, entry.clone());
            }
        }
        View::Template(name, seq) => {
            if let Some(entry) = config.policy_templates.get(&name).and_then(|e| e.get(&seq)) {
                only.policy_templates.entry(name).or_default().insert(seq, entry.clone());
            }
        }
        View::Interface(name) => only.interfaces.extend(config.interfaces.get_key_value(&name).map(c)),
    }
    Ok(only)
}

fn c<K: Clone, V: Clone>((k, v): (&K, &V)) -> (K, V) {
    (k.clone(), v.clone())
}

/// `line` with what follows a `pre-shared-key` keyword (or an abbreviation of it that
/// opens the line) replaced by the masked form, for logs; `cipher`/`simple` are kept.
pub fn masked(line: &str) -> String {
    let Ok(tokens) = tokens(line) else { return "(a line that does not tokenise)".into() };
    let mut out: Vec<String> = Vec::new();
    let mut secret = false;
    for (i, token) in tokens.iter().enumerate() {
        let word = token.text.to_ascii_lowercase();
        if secret {
            if !matches!(word.as_str(), "cipher" | "simple") || i + 1 == tokens.len() {
                out.push(crate::render::MASKED_KEY.to_owned());
                break;
            }
        } else if !token.quoted && "pre-shared-key".starts_with(&word) && (i == 0 || word.len() >= 3) {
            secret = true;
        }
        if token.quoted {
            out.push(format!("\"{}\"", token.text));
        } else {
            out.push(token.text.clone());
        }
    }
    out.join(" ")
}

/// The tokens of one line (none for a blank or `#` line).
fn tokens(line: &str) -> Result<Vec<Token>, String> {
    if line.contains(['\n', '\r']) {
        return Err("one command line at a time: the line holds a line break".into());
    }
    match lex(line).into_iter().next() {
        None | Some(Ok(LexedLine::Separator)) => Ok(Vec::new()),
        Some(Ok(LexedLine::Command(l))) => Ok(l.tokens),
        Some(Err(e)) => Err(e.message),
    }
}

/// Runs the view lines from the system view inwards; each must open a view.
fn enter(config: &mut Config, views: &[String]) -> Result<View, String> {
    let mut view = View::System;
    for line in views {
        let tokens = tokens(line)?;
        let (effect, _) = run(config, &view, &tokens).map_err(|e| format!("view `{line}`: {}", e.message))?;
        match effect.next {
            Next::Enter(entered) => view = entered,
            _ => return Err(format!("`{line}` does not open a view")),
        }
    }
    Ok(view)
}

/// One line in `view`, falling back to the system view as the file parser does; returns the
/// effect and the view it ran in. The error is the attempt that read further.
fn run(config: &mut Config, view: &View, tokens: &[Token]) -> Result<(super::Effect, View), SyntaxError> {
    let attempt = |config: &mut Config, view: &View| {
        let mut scratch = config.clone();
        let mut cursor = Cursor::new(tokens);
        match dispatch(&mut scratch, view, &mut cursor) {
            Ok(effect) => {
                *config = scratch;
                Ok(effect)
            }
            Err(e) => Err((e, cursor.position())),
        }
    };
    if *view == View::System {
        return attempt(config, view).map(|e| (e, View::System)).map_err(|(e, _)| e);
    }
    match attempt(config, view) {
        Ok(effect) => Ok((effect, view.clone())),
        Err((in_view, read_in_view)) => match attempt(config, &View::System) {
            Ok(effect) => Ok((effect, View::System)),
            Err((in_system, read)) if read > read_in_view => Err(in_system),
            Err(_) => Err(in_view),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{render, KeyDisplay};

    fn views(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn lines_in_views_build_the_same_configuration_as_the_file() {
        let file = "ike proposal 10\n dh group14\nike peer b\n ike-proposal 10\n undo version 2\n \
                    pre-shared-key \"a key\"\n remote-address 192.0.2.2\nacl number 3001\n \
                    rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255\n";
        let parsed = crate::parse("f", file).unwrap().config;
        let mut config = Config::default();
        let steps: &[(&[&str], &str)] = &[
            (&[], "ike proposal 10"),
            (&["ike proposal 10"], "dh group14"),
            (&["ike proposal 10"], "ike peer b"),
            (&["ike peer b"], "ike-proposal 10"),
            (&["ike peer b"], "undo version 2"),
            (&["ike peer b"], "pre-shared-key \"a key\""),
            (&["ike peer b"], "remote-address 192.0.2.2"),
            (&[], "acl number 3001"),
            (
                &["acl number 3001"],
                "rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255",
            ),
        ];
        for (v, line) in steps {
            apply(&mut config, &views(v), line).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
        assert_eq!(config, parsed);
    }

    #[test]
    fn a_view_line_opens_its_object_and_a_refused_line_changes_nothing() {
        let mut config = Config::default();
        let applied = apply(&mut config, &[], "ike peer b").unwrap();
        assert_eq!((applied.object.as_str(), applied.opened_view), ("ike peer b", true));
        let before = config.clone();
        let e = apply(&mut config, &views(&["ike peer b"]), "remote-address 300.1.1.1").unwrap_err();
        assert!(e.contains("300.1.1.1"), "{e}");
        assert_eq!(config, before);
        let e = apply(&mut config, &views(&["sysname x"]), "dh group14").unwrap_err();
        assert_eq!(e, "`sysname x` does not open a view");
        assert_eq!(config, before);
        // A system command typed inside a view, as on the device.
        let applied = apply(&mut config, &views(&["ike peer b"]), "acl number 3001").unwrap();
        assert_eq!((applied.object.as_str(), applied.opened_view), ("acl 3001", true));
        let applied = apply(&mut config, &views(&["ike peer b"]), "undo ike peer b").unwrap();
        assert!(applied.object.is_empty());
        assert!(config.ike_peers.is_empty());
    }

    /// A view keysteward ignores (`firewall zone …`) is entered with its warning, and its lines
    /// are accepted and change nothing.
    #[test]
    fn an_ignored_view_takes_its_lines_without_change() {
        let mut config = Config::default();
        let applied = apply(&mut config, &[], "firewall zone trust").unwrap();
        assert!(applied.warnings[0].contains("accepted and ignored"), "{applied:?}");
        let applied = apply(&mut config, &views(&["firewall zone trust"]), "add interface x").unwrap();
        assert!(applied.warnings.is_empty() && applied.object.is_empty());
        assert_eq!(config, Config::default());
    }

    #[test]
    fn view_only_keeps_one_object_or_the_globals() {
        let text = "sysname FW_A\nike peer b\n remote-address 192.0.2.2\nike peer c\n \
                    remote-address 192.0.2.3\nipsec policy p 1 isakmp\n ike-peer b\n\
                    ipsec policy p 2 isakmp\n ike-peer c\n";
        let config = crate::parse("f", text).unwrap().config;
        let only = view_only(&config, &views(&["ipsec policy p 2 isakmp"])).unwrap();
        assert_eq!(render(&only, KeyDisplay::Masked), "#\nipsec policy p 2 isakmp\n ike-peer c\n#\nreturn\n");
        let globals = view_only(&config, &[]).unwrap();
        assert_eq!(render(&globals, KeyDisplay::Masked), "#\nsysname FW_A\n#\nreturn\n");
    }

    #[test]
    fn masked_lines_hide_keys_only() {
        assert_eq!(masked("pre-shared-key Admin@123"), "pre-shared-key %^%#********%^%#");
        assert_eq!(masked("pre-sh cipher x"), "pre-sh cipher %^%#********%^%#");
        assert_eq!(masked("p \"a b\""), "p %^%#********%^%#");
        assert_eq!(masked("pre-shared-key cipher"), "pre-shared-key %^%#********%^%#");
        assert_eq!(masked("ipsec policy p 1 isakmp"), "ipsec policy p 1 isakmp");
        assert_eq!(masked("undo pre-shared-key"), "undo pre-shared-key");
    }
}
