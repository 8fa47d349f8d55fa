//! The language's knowledge an interactive console needs (`keysteward shell`, reference
//! `vrp-cli.md` §1): reading a typed line in the current views the way the device does,
//! expanding each keyword's abbreviation to the keyword, knowing which line opens which view
//! and the view's prompt, listing the words that may come next (`?`), completing a word
//! (Tab), and saying where a line stops making sense (the caret of VRP's errors).
//!
//! Everything comes from the parser itself, as [`crate::grammar`] does: a line is run through
//! the parser with a cursor that records which keyword each token was read as, and what the
//! parser asked for where the tokens ran out. Only the one-line descriptions `?` prints are
//! written here ([`describe`]), and a test holds them to the grammar's keywords.
//!
//! The views are named by the canonical line that opened them (`ike peer b`,
//! `ipsec policy policy1 1 isakmp`), the system view by an empty list; that is also how the
//! console names them to the daemon.

use std::collections::BTreeSet;

use super::{dispatch, Next, View};
use crate::cursor::{match_prefix, Cursor, Offer, SyntaxError};
use crate::diagnostic::DiagnosticKind;
use crate::lexer::{lex, LexedLine, Token};
use crate::model::Config;

/// A typed line read in its views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reading {
    /// Nothing to run (a blank line, a `#` comment).
    Empty,
    /// A command of the configuration language.
    Command(Command),
    /// The line is not a command here.
    Error(LineError),
}

/// A command read from a typed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The line with every keyword written in full and in lower case; values as typed
    /// (a value that was quoted is quoted again).
    pub line: String,
    /// The same with every secret replaced by `******`, for a history or a log.
    pub masked: String,
    /// True when the line holds a secret (a pre-shared key).
    pub secret: bool,
    /// The views the command runs in: the current ones, or none (the system view) when the
    /// line is a system-view command typed in another view, which leaves that view as on the
    /// device.
    pub views: Vec<String>,
    /// The views after the command: `views` plus this line when it opens a view.
    pub after: Vec<String>,
    /// The command leaves its view (`quit`, `return`).
    pub leaves: bool,
}

/// Why a typed line is not a command, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// Character offset in the typed line of the first word that is not understood (or of
    /// the end of the line when a word is missing): where VRP puts its `^`.
    pub offset: usize,
    /// What kind of error.
    pub kind: ErrorKind,
    /// The parser's explanation (names the keywords expected; never a secret).
    pub detail: String,
}

/// The kinds of VRP's line errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A word that is no command or keyword here.
    Unrecognized,
    /// The line ends where a word is needed.
    Incomplete,
    /// An abbreviation of more than one keyword.
    Ambiguous,
    /// A value of the wrong form, or a keyword keysteward does not support.
    WrongParameter,
    /// Words after the end of a command.
    TooManyParameters,
}

impl ErrorKind {
    /// The error line VRP prints under the caret.
    pub fn message(self) -> &'static str {
        match self {
            ErrorKind::Unrecognized => "Error: Unrecognized command found at '^' position.",
            ErrorKind::Incomplete => "Error: Incomplete command found at '^' position.",
            ErrorKind::Ambiguous => "Error: Ambiguous command found at '^' position.",
            ErrorKind::WrongParameter => "Error: Wrong parameter found at '^' position.",
            ErrorKind::TooManyParameters => "Error: Too many parameters found at '^' position.",
        }
    }
}

/// One word that may come next, for `?`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Help {
    /// A keyword, or the form of an argument (`INTEGER<1-1024>`, `STRING<1-15>`, `X.X.X.X`).
    pub word: String,
    /// One line saying what it is.
    pub description: String,
    /// True for a keyword (Tab completes it), false for an argument.
    pub keyword: bool,
}

/// What may follow a partly typed line (`?`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NextWords {
    /// The words, in the parser's order, each once.
    pub words: Vec<Help>,
    /// True when the line is a complete command already (VRP lists `<cr>`).
    pub can_end: bool,
}

/// How `keyword` reads among `candidates` by VRP's rules: the keyword it abbreviates, or
/// every keyword it could abbreviate (none when it abbreviates none).
pub fn expand<'k>(typed: &str, candidates: &[&'k str]) -> Result<&'k str, Vec<&'k str>> {
    match_prefix(typed, candidates)
}

/// The prompt suffix of the view a canonical opening line enters (`ike-peer-b`,
/// `ipsec-policy-isakmp-policy1-1`, `acl-adv-3001`, `GigabitEthernet0/0/2`), `None` when
/// the line opens no view.
pub fn prompt_suffix(opening: &str) -> Option<String> {
    let view = enter(&[], opening)?;
    Some(match view {
        View::IkeProposal(n) => format!("ike-proposal-{n}"),
        View::IkePeer(name) => format!("ike-peer-{name}"),
        View::Acl(n) => format!("acl-adv-{n}"),
        View::IpsecProposal(name) => format!("ipsec-proposal-{name}"),
        View::Policy(name, seq) => format!("ipsec-policy-isakmp-{name}-{seq}"),
        // Huawei's own spelling.
        View::Template(name, seq) => format!("ipsec-policy-templet-{name}-{seq}"),
        View::Interface(name) => name,
        View::UserTable(n) => format!("ike-user-table-{n}"),
        View::TableUser(n, user) => format!("ike-user-table-{n}-user-{user}"),
        View::System | View::Broken | View::Ignored => return None,
    })
}

/// The prompt of the system view (`views` empty: `[FW_A]`) or of the innermost view
/// (`[FW_A-ike-peer-b]`).
pub fn prompt(sysname: &str, views: &[String]) -> String {
    match views.last().and_then(|v| prompt_suffix(v)) {
        Some(suffix) => format!("[{sysname}-{suffix}]"),
        None => format!("[{sysname}]"),
    }
}

/// The view `opening` enters when typed in `views`, if it opens one.
fn enter(views: &[String], opening: &str) -> Option<View> {
    let view = innermost(views)?;
    let tokens = tokens(opening).ok()?;
    let mut cursor = Cursor::new(&tokens);
    match dispatch(&mut Config::default(), &view, &mut cursor).ok()?.next {
        Next::Enter(view) => Some(view),
        _ => None,
    }
}

/// The innermost view of `views` (the system view for none), `None` when one of them does
/// not open a view.
fn innermost(views: &[String]) -> Option<View> {
    let mut view = View::System;
    for (depth, opening) in views.iter().enumerate() {
        view = enter(&views[..depth], opening)?;
    }
    Some(view)
}

/// The tokens of one typed line (empty for a blank line or a `#` comment).
fn tokens(line: &str) -> Result<Vec<Token>, LineError> {
    match lex(line).into_iter().next() {
        None | Some(Ok(LexedLine::Separator)) => Ok(Vec::new()),
        Some(Ok(LexedLine::Command(line))) => Ok(line.tokens),
        Some(Err(e)) => Err(LineError {
            offset: e.column.saturating_sub(1) as usize,
            kind: ErrorKind::WrongParameter,
            detail: e.message,
        }),
    }
}

/// One run of the parser over a line in a view.
struct Run {
    result: Result<Next, SyntaxError>,
    /// Tokens read before the end or the error.
    read: usize,
    /// The tokens that count: fewer than lexed when a glued `//` made the rest a comment.
    used: usize,
    matched: Vec<(usize, &'static str)>,
    secrets: Vec<usize>,
    offers: Vec<Offer>,
}

fn run(view: &View, tokens: &[Token]) -> Run {
    let mut cursor = Cursor::exploring(tokens);
    let result = dispatch(&mut Config::default(), view, &mut cursor).map(|effect| effect.next);
    Run {
        result,
        read: cursor.position(),
        used: cursor.token_count(),
        matched: cursor.matched().to_vec(),
        secrets: cursor.secrets().to_vec(),
        offers: cursor.take_offers(),
    }
}

/// Reads `line` typed in `views`, as the device does: as a command of the innermost view,
/// else as a system-view command (which leaves the view); when both fail, the error of the
/// reading that got further (the view's on a tie).
pub fn read(views: &[String], line: &str) -> Reading {
    let tokens = match tokens(line) {
        Ok(tokens) if tokens.is_empty() => return Reading::Empty,
        Ok(tokens) => tokens,
        Err(e) => return Reading::Error(e),
    };
    let Some(view) = innermost(views) else {
        return Reading::Error(LineError {
            offset: 0,
            kind: ErrorKind::Unrecognized,
            detail: format!("not a view: {}", views.join(" / ")),
        });
    };
    let in_view = run(&view, &tokens);
    let (chosen, ran_in) = match (&in_view.result, view == View::System) {
        (Ok(_), _) | (Err(_), true) => (in_view, views.to_vec()),
        (Err(_), false) => {
            let in_system = run(&View::System, &tokens);
            if in_system.result.is_ok() || in_system.read > in_view.read {
                (in_system, Vec::new())
            } else {
                (in_view, views.to_vec())
            }
        }
    };
    match chosen.result {
        Err(e) => Reading::Error(line_error(e, &tokens)),
        Ok(next) => {
            // The words that count (an annotation glued with `//` to the last one is dropped
            // with the rest of the line), each keyword in full.
            let used = &tokens[..chosen.used];
            let cut = chosen.used < tokens.len();
            let text = |mask: bool| {
                let words: Vec<String> = used
                    .iter()
                    .enumerate()
                    .map(|(i, t)| match chosen.matched.iter().find(|(at, _)| *at == i) {
                        Some((_, keyword)) => (*keyword).to_string(),
                        None if mask && chosen.secrets.contains(&i) => "******".to_string(),
                        None if t.quoted => format!("\"{}\"", t.text),
                        None if cut && i + 1 == used.len() => {
                            t.before_comment().unwrap_or(&t.text).to_string()
                        }
                        None => t.text.clone(),
                    })
                    .collect();
                words.join(" ")
            };
            let canonical = text(false);
            let leaves = matches!(chosen.matched.first(), Some((0, "quit" | "return")));
            let after = match next {
                Next::Enter(_) => ran_in.iter().cloned().chain([canonical.clone()]).collect(),
                Next::Stay => ran_in.clone(),
                Next::System => Vec::new(),
            };
            Reading::Command(Command {
                masked: text(true),
                secret: !chosen.secrets.is_empty(),
                line: canonical,
                views: ran_in,
                after,
                leaves,
            })
        }
    }
}

fn line_error(e: SyntaxError, tokens: &[Token]) -> LineError {
    let kind = match e.kind {
        DiagnosticKind::UnknownKeyword => ErrorKind::Unrecognized,
        DiagnosticKind::MissingArgument => ErrorKind::Incomplete,
        DiagnosticKind::AmbiguousKeyword => ErrorKind::Ambiguous,
        DiagnosticKind::TrailingToken => ErrorKind::TooManyParameters,
        _ => ErrorKind::WrongParameter,
    };
    // The end of the line is one blank after the last word, where the next one would go.
    let end = tokens
        .last()
        .map_or(0, |t| t.column as usize - 1 + t.text.chars().count() + 2 * usize::from(t.quoted));
    let offset = if kind == ErrorKind::Incomplete { end + 1 } else { (e.column as usize).saturating_sub(1) };
    LineError { offset, kind, detail: e.message }
}

/// The words that may come after `line` typed in `views` (`?`). When `line` ends inside a
/// word, the keywords that word abbreviates (`dis?` lists `display`).
pub fn next_words(views: &[String], line: &str) -> NextWords {
    let Ok(mut tokens) = tokens(line) else { return NextWords::default() };
    let partial = if line.ends_with(char::is_whitespace) { None } else { tokens.pop() };
    let Some(view) = innermost(views) else { return NextWords::default() };
    let mut runs = vec![run(&view, &tokens)];
    // The system view's commands are read in every view; list them when the view has
    // nothing for this line (a system command being typed in a sub-view).
    if view != View::System && runs[0].offers.is_empty() {
        runs.push(run(&View::System, &tokens));
    }
    let mut next = NextWords { words: Vec::new(), can_end: false };
    let mut seen = BTreeSet::new();
    for run in runs {
        next.can_end |= partial.is_none() && run.result.is_ok();
        for offer in run.offers {
            for help in helps(offer) {
                let fits = match &partial {
                    None => true,
                    Some(p) => help.keyword && help.word.starts_with(&p.text.to_ascii_lowercase()),
                };
                if fits && seen.insert(help.word.clone()) {
                    next.words.push(help);
                }
            }
        }
    }
    next
}

fn helps(offer: Offer) -> Vec<Help> {
    match offer {
        Offer::Keywords(list) => list
            .iter()
            .map(|k| Help { word: (*k).to_string(), description: describe(k).to_string(), keyword: true })
            .collect(),
        Offer::Values(what, list) => list
            .into_iter()
            .map(|k| Help { word: k.to_string(), description: capitalised(what), keyword: true })
            .collect(),
        Offer::Argument(_, form, what) => {
            vec![Help { word: form, description: capitalised(&what), keyword: false }]
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The keywords that complete the last word of `line` typed in `views` (Tab): the keywords
/// it abbreviates; none when the line ends with a blank.
pub fn completions(views: &[String], line: &str) -> Vec<String> {
    if line.is_empty() || line.ends_with(char::is_whitespace) {
        return Vec::new();
    }
    next_words(views, line).words.into_iter().filter(|h| h.keyword).map(|h| h.word).collect()
}

/// The one-line description `?` prints for a keyword of the language.
pub fn describe(keyword: &str) -> &'static str {
    super::help::DESCRIPTIONS.iter().find(|(k, _)| *k == keyword).map_or("", |(_, d)| d)
}

#[cfg(test)]
mod tests;
