//! Parses VRP configuration text into a [`Config`] (reference `vrp-cli.md` §1–§2).
//!
//! The parser keeps the current view, as the device's CLI does. A line is first read as a
//! command of the current view; when that fails it is read as a system-view command, which
//! leaves the current view (the device does the same, so a saved file needs neither `quit`
//! nor `#` between blocks). When both fail, the error that got further into the line is
//! reported. Command handlers change the configuration only after the whole line has been
//! read, so a failed attempt leaves nothing behind.
//!
//! After an error on a line that would have opened a view, the lines that belong to that
//! view would all fail as well; those follow-on errors are suppressed until a line parses.
//! The USG's firewall views (`firewall zone …`, `security-policy`), which a file copied from
//! a device contains, are accepted with a warning and their indented lines skipped (§6).

mod acl;
pub mod console;
pub mod edit;
pub mod grammar;
mod help;
mod ike;
mod interface;
mod ipsec;
mod system;
#[cfg(test)]
mod tests;
mod user_table;

use std::collections::BTreeMap;

use crate::cursor::{Cursor, SyntaxError};
use crate::diagnostic::{Diagnostic, DiagnosticKind, Diagnostics, Location, Severity};
use crate::lexer::{lex, LexedLine, Line};
use crate::model::Config;

/// A view of the CLI: where a command line is interpreted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum View {
    System,
    IkeProposal(u32),
    IkePeer(String),
    Acl(u16),
    IpsecProposal(String),
    Policy(String, u32),
    Template(String, u32),
    Interface(String),
    /// `ike user-table N`.
    UserTable(u32),
    /// `user id M` of `ike user-table N`.
    TableUser(u32, u32),
    /// The view a failed view-opening line would have entered.
    Broken,
    /// A view keysteward accepts and ignores (`firewall zone …`, `security-policy`): its
    /// indented lines are skipped.
    Ignored,
}

impl View {
    /// The key under which the source map records the line that opened this view.
    pub(crate) fn key(&self) -> String {
        match self {
            View::System | View::Broken | View::Ignored => String::new(),
            View::IkeProposal(n) => format!("ike proposal {n}"),
            View::IkePeer(name) => format!("ike peer {name}"),
            View::Acl(n) => format!("acl {n}"),
            View::IpsecProposal(name) => format!("ipsec proposal {name}"),
            View::Policy(name, seq) => format!("ipsec policy {name} {seq}"),
            View::Template(name, seq) => format!("ipsec policy-template {name} {seq}"),
            View::Interface(name) => format!("interface {name}"),
            View::UserTable(n) => format!("ike user-table {n}"),
            View::TableUser(n, user) => format!("ike user-table {n} user id {user}"),
        }
    }
}

/// Where each object and setting was written, so that the validator's findings point at
/// the right line.
///
/// Keys are the view key (`ike peer b`, `ipsec policy policy1 1`, `acl 3001`) for the line
/// that opened a view, and `view/setting` (`ike peer b/ike-proposal`) for a command in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceMap {
    entries: BTreeMap<String, Location>,
}

impl SourceMap {
    /// The location recorded under `key`.
    pub fn get(&self, key: &str) -> Option<Location> {
        self.entries.get(key).copied()
    }

    /// Where `ike peer PEER` named `FILE` with `certificate SETTING FILE` (`local-filename`,
    /// `local-key-filename`, `ca-filename`, `crl-filename`): the gateway reports a file it
    /// cannot load at that line.
    pub fn certificate_file(&self, peer: &str, setting: &str, file: &str) -> Option<Location> {
        self.get(&format!("ike peer {peer}/certificate {setting} {file}"))
    }

    pub(crate) fn record(&mut self, key: String, location: Location) {
        self.entries.entry(key).or_insert(location);
    }
}

/// A successfully parsed file: the configuration, where things were written, and the
/// warnings the parser itself produced (ignored commands, aliases).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The configuration.
    pub config: Config,
    /// Locations for the validator.
    pub source_map: SourceMap,
    /// Parser warnings.
    pub warnings: Vec<Diagnostic>,
}

/// What a command does to the view, besides changing the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Stay in the current view.
    Stay,
    /// Enter a view.
    Enter(View),
    /// Go back to the system view (`quit`, `return`, or a one-line system command).
    System,
}

/// A warning a command raises when it succeeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Note {
    pub(crate) column: u32,
    pub(crate) kind: DiagnosticKind,
    pub(crate) message: String,
}

/// The result of a command that parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Effect {
    pub(crate) next: Next,
    /// The setting name for the source map (`""` for view-opening and system commands).
    pub(crate) key: String,
    pub(crate) notes: Vec<Note>,
}

impl Effect {
    pub(crate) fn stay(key: impl Into<String>) -> Self {
        Self { next: Next::Stay, key: key.into(), notes: Vec::new() }
    }

    pub(crate) fn enter(view: View) -> Self {
        Self { next: Next::Enter(view), key: String::new(), notes: Vec::new() }
    }

    pub(crate) fn system() -> Self {
        Self { next: Next::System, key: String::new(), notes: Vec::new() }
    }

    pub(crate) fn with_note(mut self, column: u32, kind: DiagnosticKind, message: impl Into<String>) -> Self {
        self.notes.push(Note { column, kind, message: message.into() });
        self
    }
}

/// Parses `text`, naming `file` in diagnostics. Fails with every syntax error found (and
/// the warnings seen so far) when there is at least one.
pub fn parse(file: &str, text: &str) -> Result<Parsed, Diagnostics> {
    let mut parser = Parser {
        file,
        config: Config::default(),
        source_map: SourceMap::default(),
        diagnostics: Vec::new(),
        view: View::System,
    };
    for lexed in lex(text) {
        match lexed {
            Ok(LexedLine::Separator) => {}
            Ok(LexedLine::Command(line)) => parser.line(&line),
            Err(e) => {
                parser.push(e.line, e.column, Severity::Error, e.kind, e.message);
                parser.view = View::Broken;
            }
        }
    }
    if parser.diagnostics.iter().any(Diagnostic::is_error) {
        return Err(Diagnostics(parser.diagnostics));
    }
    Ok(Parsed { config: parser.config, source_map: parser.source_map, warnings: parser.diagnostics })
}

struct Parser<'f> {
    file: &'f str,
    config: Config,
    source_map: SourceMap,
    diagnostics: Vec<Diagnostic>,
    view: View,
}

impl Parser<'_> {
    fn push(&mut self, line: u32, column: u32, severity: Severity, kind: DiagnosticKind, message: String) {
        self.diagnostics.push(Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            severity,
            kind,
            message,
        });
    }

    fn line(&mut self, line: &Line) {
        if self.view == View::Ignored && line.indented {
            return;
        }
        let view = self.view.clone();
        // A failed attempt reports its error and how many tokens it had read.
        let attempt = |config: &mut Config, view: &View| {
            let mut cursor = Cursor::new(&line.tokens);
            dispatch(config, view, &mut cursor).map_err(|e| (e, cursor.position()))
        };
        // On failure: the error, and whether it came from the current (non-system) view. The
        // attempt that read more tokens explains the line better; on a tie the current view's.
        let result = match view {
            View::System | View::Broken | View::Ignored => attempt(&mut self.config, &View::System)
                .map(|e| (e, View::System))
                .map_err(|(e, _)| (e, false)),
            _ => match attempt(&mut self.config, &view) {
                Ok(effect) => Ok((effect, view.clone())),
                Err((in_view, read_in_view)) => match attempt(&mut self.config, &View::System) {
                    Ok(effect) => Ok((effect, View::System)),
                    Err((in_system, read_in_system)) if read_in_system > read_in_view => {
                        Err((in_system, false))
                    }
                    Err(_) => Err((in_view, true)),
                },
            },
        };
        let location = Location { line: line.number, column: line.tokens.first().map_or(1, |t| t.column) };
        match result {
            Ok((effect, ran_in)) => {
                for note in effect.notes {
                    self.push(line.number, note.column, Severity::Warning, note.kind, note.message);
                }
                match effect.next {
                    Next::Enter(entered) => {
                        self.source_map.record(entered.key(), location);
                        self.view = entered;
                    }
                    Next::Stay => {
                        self.source_map.record(format!("{}/{}", ran_in.key(), effect.key), location);
                        self.view = ran_in;
                    }
                    Next::System => {
                        // A one-line system command with a key is located for the validator.
                        if !effect.key.is_empty() {
                            self.source_map.record(format!("/{}", effect.key), location);
                        }
                        self.view = View::System;
                    }
                }
            }
            Err((SyntaxError { column, kind, message }, in_view)) => {
                // A line inside a view whose opening line failed: its error is a consequence.
                if view == View::Broken && line.indented {
                    return;
                }
                let message = if in_view { format!("{message} (in view `{}`)", view.key()) } else { message };
                self.push(line.number, column, Severity::Error, kind, message);
                if !line.indented {
                    self.view = View::Broken;
                }
            }
        }
    }
}

/// Runs one command line in `view`.
fn dispatch(config: &mut Config, view: &View, c: &mut Cursor<'_>) -> crate::cursor::Result<Effect> {
    match view {
        View::System | View::Broken | View::Ignored => system::command(config, c),
        View::IkeProposal(n) => ike::proposal_command(config, *n, c),
        View::IkePeer(name) => ike::peer_command(config, name, c),
        View::Acl(n) => acl::command(config, *n, c),
        View::IpsecProposal(name) => ipsec::proposal_command(config, name, c),
        View::Policy(name, seq) => ipsec::policy_command(config, name, *seq, false, c),
        View::Template(name, seq) => ipsec::policy_command(config, name, *seq, true, c),
        View::Interface(name) => interface::command(config, name, c),
        View::UserTable(n) => user_table::table_command(config, *n, c),
        View::TableUser(n, user) => user_table::user_command(config, *n, *user, c),
    }
}

/// `quit` and `return`, valid in every view. Returns `None` when `keyword` is neither.
pub(crate) fn leave(keyword: &str, c: &Cursor<'_>) -> Option<crate::cursor::Result<Effect>> {
    match keyword {
        "quit" | "return" => Some(c.end().map(|()| Effect::system())),
        _ => None,
    }
}
