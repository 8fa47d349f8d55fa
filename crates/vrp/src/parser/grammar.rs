//! The grammar as the parser itself reads it: every view, every keyword each view's commands
//! take, and every keyword of the keyword-valued settings (algorithms, groups, modes).
//!
//! Nothing here is a hand-kept list. [`grammar`] asks the parser, the way an operator asks
//! the device's CLI with `?`: it runs the parser on a line cut short and records what the
//! parser asked for where the tokens ran out (a keyword, a value, an argument), then goes on
//! with each of those, and enters each view a command opens. A keyword added to the parser
//! is listed here without any other change, which is what lets a test hold the configuration
//! reference (`docs/configuration.md`) to the grammar.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{dispatch, Next, View};
use crate::cursor::{Cursor, Offer};
use crate::lexer::Token;
use crate::model::Config;

/// The longest line explored: longer than any command (an ACL rule with every condition has
/// 17 words), short enough to stop the commands that take any number of words.
const MAX_WORDS: usize = 20;

/// Every view of the language with its keywords, and every value family with its keywords.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grammar {
    /// The views, the system view first, then in the order they were found.
    pub views: Vec<ViewKeywords>,
    /// The keyword-valued settings, by what they are ("encryption algorithm", "DH group"):
    /// canonical keywords, input aliases and the VRP keywords keysteward refuses.
    pub values: BTreeMap<&'static str, BTreeSet<&'static str>>,
}

/// The keywords of one view's commands (including `undo`, `quit` and `return`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewKeywords {
    /// The view, as its opening command starts: `system`, `ike proposal`, `ike peer`, `acl`,
    /// `ipsec proposal`, `ipsec policy`, `ipsec policy-template`, `interface`, `ike user-table`,
    /// `ike user-table user`.
    pub view: &'static str,
    /// Every keyword a command of the view may contain, values excluded.
    pub keywords: BTreeSet<&'static str>,
}

impl View {
    /// The name of the view's kind, or `None` for the parser's internal states.
    fn kind(&self) -> Option<&'static str> {
        Some(match self {
            View::System => "system",
            View::IkeProposal(_) => "ike proposal",
            View::IkePeer(_) => "ike peer",
            View::Acl(_) => "acl",
            View::IpsecProposal(_) => "ipsec proposal",
            View::Policy(..) => "ipsec policy",
            View::Template(..) => "ipsec policy-template",
            View::Interface(_) => "interface",
            View::UserTable(_) => "ike user-table",
            View::TableUser(..) => "ike user-table user",
            View::Broken | View::Ignored => return None,
        })
    }
}

/// Explores the parser's grammar (see the module documentation).
pub fn grammar() -> Grammar {
    let mut grammar = Grammar { views: Vec::new(), values: BTreeMap::new() };
    let mut queue = VecDeque::from([View::System]);
    while let Some(view) = queue.pop_front() {
        let Some(kind) = view.kind() else { continue };
        if grammar.views.iter().any(|v| v.view == kind) {
            continue;
        }
        let mut walk =
            Walk { view: &view, keywords: BTreeSet::new(), values: &mut grammar.values, entered: Vec::new() };
        walk.line(&mut Vec::new());
        queue.extend(walk.entered);
        grammar.views.push(ViewKeywords { view: kind, keywords: walk.keywords });
    }
    grammar
}

/// The exploration of one view.
struct Walk<'g> {
    view: &'g View,
    keywords: BTreeSet<&'static str>,
    values: &'g mut BTreeMap<&'static str, BTreeSet<&'static str>>,
    /// Views the view's commands open.
    entered: Vec<View>,
}

impl Walk<'_> {
    /// Parses `words` as a line of the view and goes on with everything the parser asked for
    /// after the last word.
    fn line(&mut self, words: &mut Vec<String>) {
        let tokens: Vec<Token> = words
            .iter()
            .enumerate()
            .map(|(i, text)| Token {
                text: text.clone(),
                column: u32::try_from(i + 1).unwrap_or(0),
                quoted: false,
                note_after: false,
            })
            .collect();
        let mut cursor = Cursor::exploring(&tokens);
        if let Ok(effect) = dispatch(&mut Config::default(), self.view, &mut cursor) {
            if let Next::Enter(view) = effect.next {
                self.entered.push(view);
            }
        }
        if words.len() >= MAX_WORDS {
            return;
        }
        for offer in cursor.take_offers() {
            let next: Vec<String> = match offer {
                Offer::Keywords(list) => {
                    self.keywords.extend(list);
                    list.iter().map(|k| (*k).to_string()).collect()
                }
                Offer::Values(what, list) => {
                    self.values.entry(what).or_default().extend(list.iter().copied());
                    list.iter().map(|k| (*k).to_string()).collect()
                }
                Offer::Argument(sample, ..) => vec![sample],
            };
            for word in next {
                words.push(word);
                self.line(words);
                words.pop();
            }
        }
    }
}
