//! Reads the tokens of one command line: keywords with VRP's matching rules and typed
//! arguments, with errors that say what was found, what was expected, and what was meant.
//!
//! Matching follows reference `vrp-cli.md` §1: keywords are case-insensitive and may be
//! abbreviated to any unique prefix among the keywords valid at that position; an exact
//! match wins over a longer keyword it is a prefix of (`remote-id` vs `remote-id-type`).
//!
//! A word read as a keyword, a number or an address that has `//` glued to its end
//! (`main//main mode (default)`, the articles' annotations) is read up to the `//`, and the
//! rest of the line is a comment ([`crate::lexer::Token::before_comment`]). Free values (keys,
//! names, IDs, read by [`Cursor::name`] and [`Cursor::raw`]) are kept whole.

use std::net::Ipv4Addr;

use crate::algorithm::Value;
use crate::diagnostic::DiagnosticKind;
use crate::lexer::Token;

/// A syntax error on one line; the parser adds the file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) column: u32,
    pub(crate) kind: DiagnosticKind,
    pub(crate) message: String,
}

pub(crate) type Result<T> = std::result::Result<T, SyntaxError>;

/// What a line could go on with where its tokens ran out: recorded only by a cursor made with
/// [`Cursor::exploring`], for the grammar listing ([`crate::grammar`]). Every keyword the
/// parser accepts is read through [`Cursor::keyword`], [`Cursor::optional_keyword`] or
/// [`Cursor::value`] (or announced with [`Cursor::offer_keywords`] where the parser decides
/// by looking ahead), so the listing is the parser's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Keywords of the command.
    Keywords(&'static [&'static str]),
    /// The keywords of a keyword-valued setting ([`Value`]): its family and every spelling.
    Values(&'static str, Vec<&'static str>),
    /// An argument: a sample text that reads as one, and its form and meaning for `?`
    /// (`INTEGER<1-1024>`, `proposal number`).
    Argument(String, String, String),
}

/// A position in the tokens of one line.
pub(crate) struct Cursor<'a> {
    tokens: &'a [Token],
    pos: usize,
    /// Column just past the last token, for "missing argument" errors.
    end_column: u32,
    /// `Some` when exploring the grammar: what was asked for at the end of the tokens.
    offers: Option<Vec<Offer>>,
    /// Each token read as a keyword: its index and the keyword it stands for (the console
    /// expands abbreviations with it).
    matched: Vec<(usize, &'static str)>,
    /// The indexes of the tokens read as secrets (pre-shared keys).
    secrets: Vec<usize>,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(tokens: &'a [Token]) -> Self {
        let end_column = tokens
            .last()
            .map(|t| {
                t.column + u32::try_from(t.text.chars().count()).unwrap_or(0) + if t.quoted { 2 } else { 0 }
            })
            .unwrap_or(1);
        Self { tokens, pos: 0, end_column, offers: None, matched: Vec::new(), secrets: Vec::new() }
    }

    /// A cursor that records what the parser asks for once the tokens run out.
    pub(crate) fn exploring(tokens: &'a [Token]) -> Self {
        Self { offers: Some(Vec::new()), ..Self::new(tokens) }
    }

    /// What was asked for at the end of the tokens (empty unless [`Cursor::exploring`]).
    pub(crate) fn take_offers(&mut self) -> Vec<Offer> {
        self.offers.take().unwrap_or_default()
    }

    /// The tokens read as keywords: index and canonical keyword (or alias), in reading order.
    pub(crate) fn matched(&self) -> &[(usize, &'static str)] {
        &self.matched
    }

    /// The indexes of the tokens read as secrets.
    pub(crate) fn secrets(&self) -> &[usize] {
        &self.secrets
    }

    fn offer(&mut self, offer: impl FnOnce() -> Offer) {
        if self.at_end() {
            if let Some(offers) = &mut self.offers {
                offers.push(offer());
            }
        }
    }

    /// Says that `candidates` may come next, where the parser looks ahead instead of reading a
    /// keyword (for the grammar listing; reads nothing).
    pub(crate) fn offer_keywords(&mut self, candidates: &'static [&'static str]) {
        self.offer(|| Offer::Keywords(candidates));
    }

    /// True when every token has been read; `candidates` are what could have come next.
    pub(crate) fn at_end_or(&mut self, candidates: &'static [&'static str]) -> bool {
        self.offer_keywords(candidates);
        self.at_end()
    }

    /// The column of the next token (or the end of the line).
    pub(crate) fn column(&self) -> u32 {
        self.tokens.get(self.pos).map_or(self.end_column, |t| t.column)
    }

    /// The next token without consuming it.
    pub(crate) fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.pos)
    }

    /// How many tokens have been read.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// How many tokens are left.
    pub(crate) fn remaining(&self) -> usize {
        self.tokens.len().saturating_sub(self.pos)
    }

    /// True when every token has been read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    fn next(&mut self, what: &str) -> Result<&'a Token> {
        match self.tokens.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t)
            }
            None => Err(SyntaxError {
                column: self.end_column,
                kind: DiagnosticKind::MissingArgument,
                message: format!("unexpected end of line: expected {what}"),
            }),
        }
    }

    /// Reads one of `candidates`, matched case-insensitively and by unique prefix.
    pub(crate) fn keyword(
        &mut self,
        what: &str,
        candidates: &'static [&'static str],
    ) -> Result<&'static str> {
        self.offer_keywords(candidates);
        let token = self.next(&expected_list(what, candidates))?;
        match self.match_read(token, candidates) {
            Match::One(k) if !token.quoted => {
                self.matched.push((self.pos - 1, k));
                Ok(k)
            }
            Match::Ambiguous(list) if !token.quoted => Err(SyntaxError {
                column: token.column,
                kind: DiagnosticKind::AmbiguousKeyword,
                message: format!(
                    "ambiguous keyword `{}`: could be {}",
                    token.text,
                    list.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                ),
            }),
            _ => Err(unknown(token, what, candidates)),
        }
    }

    /// Reads one of `candidates` if the next token is one; otherwise reads nothing.
    pub(crate) fn optional_keyword(&mut self, candidates: &'static [&'static str]) -> Option<&'static str> {
        self.offer_keywords(candidates);
        let token = self.peek()?;
        let glued = matches!(match_keyword(&token.text, candidates), Match::None);
        let text = if glued { token.before_comment()? } else { &token.text };
        match match_keyword(text, candidates) {
            Match::One(k) if !token.quoted => {
                self.matched.push((self.pos, k));
                self.pos += 1;
                if glued {
                    self.comment_after(token, text);
                }
                Some(k)
            }
            _ => None,
        }
    }

    /// Matches the token just read against `candidates`; when only the text before a glued
    /// `//` matches, the rest of the line becomes a comment.
    fn match_read(&mut self, token: &'a Token, candidates: &[&'static str]) -> Match {
        let full = match_keyword(&token.text, candidates);
        if !matches!(full, Match::None) {
            return full;
        }
        let Some(text) = token.before_comment() else { return full };
        let matched = match_keyword(text, candidates);
        if matches!(matched, Match::One(_)) {
            self.comment_after(token, text);
        }
        matched
    }

    /// Ends the line after `token` (the one just read), of which only `text` counts: the rest
    /// of the line is an annotation.
    fn comment_after(&mut self, token: &Token, text: &str) {
        self.tokens = &self.tokens[..self.pos];
        self.end_column = token.column + u32::try_from(text.chars().count()).unwrap_or(0);
    }

    /// Reads a token that holds a typed value (a number, an address, a mask): such a value
    /// cannot contain `//`, so a glued `//` starts a comment. Returns the token and its text.
    pub(crate) fn value_token(&mut self, what: &str) -> Result<(&'a Token, &'a str)> {
        let token = self.next(what)?;
        match token.before_comment() {
            Some(text) => {
                self.comment_after(token, text);
                Ok((token, text))
            }
            None => Ok((token, token.text.as_str())),
        }
    }

    /// Reads a keyword-valued setting, accepting its aliases and refusing its unsupported
    /// keywords. Returns the value and the keyword as matched (canonical or alias).
    pub(crate) fn value<T: Value>(&mut self) -> Result<(T, &'static str)> {
        self.value_where(|_| true, "")
    }

    /// Like [`Cursor::value`], for a place that takes only the values `allowed` accepts: the
    /// others are not listed as expected, and naming one is an error giving `refused`.
    pub(crate) fn value_where<T: Value>(
        &mut self,
        allowed: impl Fn(T) -> bool,
        refused: &str,
    ) -> Result<(T, &'static str)> {
        self.value_map(|v: T| allowed(v).then_some(v), refused)
    }

    /// Like [`Cursor::value_where`], reading a `T` keyword as the `U` that `map` gives for it:
    /// the values `map` has none for are refused with `refused`. This is how one family's
    /// keywords read as another's (an IKE cipher is the ESP cipher of the same keyword).
    pub(crate) fn value_map<T: Value, U>(
        &mut self,
        map: impl Fn(T) -> Option<U>,
        refused: &str,
    ) -> Result<(U, &'static str)> {
        let all = T::all();
        let aliases = T::aliases();
        let mut table: Vec<&'static str> = all.iter().map(|v| v.keyword()).collect();
        table.extend(aliases.iter().map(|(k, _)| *k));
        table.extend(T::UNSUPPORTED.iter().map(|(k, _)| *k));
        self.offer(|| Offer::Values(T::WHAT, table.clone()));
        let column = self.column();
        let canonical: Vec<&'static str> =
            all.iter().filter(|v| map(**v).is_some()).map(|v| v.keyword()).collect();
        let token = self.next(&expected_list(T::WHAT, &canonical))?;
        let matched = match self.match_read(token, &table) {
            Match::One(k) if !token.quoted => k,
            _ => return Err(unknown(token, T::WHAT, &canonical)),
        };
        self.matched.push((self.pos - 1, matched));
        let found = all
            .iter()
            .find(|v| v.keyword() == matched)
            .copied()
            .or_else(|| aliases.iter().find(|(k, _)| *k == matched).map(|(_, v)| *v));
        if let Some(v) = found {
            return match map(v) {
                Some(mapped) => Ok((mapped, matched)),
                None => Err(invalid(token, T::WHAT, refused)),
            };
        }
        let reason = T::UNSUPPORTED.iter().find(|(k, _)| *k == matched).map_or("not supported", |(_, r)| r);
        Err(SyntaxError {
            column,
            kind: DiagnosticKind::Unsupported,
            message: format!("unsupported {} `{}`: {reason}", T::WHAT, token.text),
        })
    }

    /// Reads a decimal number in `min..=max`.
    pub(crate) fn number(&mut self, what: &str, min: u64, max: u64) -> Result<u64> {
        self.offer(|| Offer::Argument(min.to_string(), format!("INTEGER<{min}-{max}>"), what.to_string()));
        let (token, text) = self.value_token(&format!("{what} ({min}-{max})"))?;
        match text.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) && !token.quoted => Ok(n),
            _ => Err(invalid(token, what, &format!("a number {min}-{max}"))),
        }
    }

    /// Reads a dotted-quad IPv4 address.
    pub(crate) fn ipv4(&mut self, what: &str) -> Result<Ipv4Addr> {
        self.offer(|| Offer::Argument("0.0.0.0".into(), "X.X.X.X".into(), what.to_string()));
        let (token, text) = self.value_token(&format!("{what} (an IPv4 address)"))?;
        text.parse().map_err(|_| invalid(token, what, "an IPv4 address"))
    }

    /// True when the next token parses as an IPv4 address.
    pub(crate) fn peek_is_ipv4(&self) -> bool {
        self.peek().is_some_and(|t| t.before_comment().unwrap_or(&t.text).parse::<Ipv4Addr>().is_ok())
    }

    /// Reads a name of 1..=`max_len` characters (names are case-sensitive, §1).
    pub(crate) fn name(&mut self, what: &str, max_len: usize) -> Result<String> {
        self.offer(|| Offer::Argument("x".into(), format!("STRING<1-{max_len}>"), what.to_string()));
        let token = self.next(&format!("{what} (1-{max_len} characters)"))?;
        check_name(token, what, &token.text, max_len)?;
        Ok(token.text.clone())
    }

    /// Says that an argument may come next (for the grammar listing), where the parser reads
    /// it with [`Cursor::value_token`]; `sample` reads as one, `form` and `what` describe it
    /// for `?` (`X.X.X.X`, `mask or prefix length`).
    pub(crate) fn offer_argument(&mut self, sample: &str, form: &str, what: &str) {
        self.offer(|| Offer::Argument(sample.into(), form.into(), what.into()));
    }

    /// How many tokens the line has for the parser: fewer than were lexed when a glued `//`
    /// made the rest of the line a comment.
    pub(crate) fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// True when a `//` note follows the line's last word ([`Token::note_after`]).
    pub(crate) fn note_follows(&self) -> bool {
        self.tokens.last().is_some_and(|t| t.note_after)
    }

    /// Reads any token as-is (a key, which may be quoted).
    pub(crate) fn raw(&mut self, what: &str) -> Result<&'a Token> {
        // "0" reads as a key, an ID, a prefix length and a wildcard mask alike.
        self.offer(|| Offer::Argument("0".into(), "STRING".into(), what.to_string()));
        self.next(what)
    }

    /// Like [`Cursor::raw`] for a secret (a pre-shared key): the console keeps such a line out
    /// of its history file.
    pub(crate) fn secret(&mut self, what: &str) -> Result<&'a Token> {
        let token = self.raw(what)?;
        self.secrets.push(self.pos - 1);
        Ok(token)
    }

    /// Like [`Cursor::end`] on a line that holds a secret: the error names the column and what
    /// is wrong, never the leftover text (it is most likely the rest of the key).
    pub(crate) fn end_of_secret(&self, what: &str, hint: &str) -> Result<()> {
        match self.tokens.get(self.pos) {
            None => Ok(()),
            Some(t) => Err(SyntaxError {
                column: t.column,
                kind: DiagnosticKind::TrailingToken,
                message: format!(
                    "{} more word(s) after {what}, not shown as they may be a key: expected end of line; {hint}",
                    self.remaining()
                ),
            }),
        }
    }

    /// Fails unless every token has been read.
    pub(crate) fn end(&self) -> Result<()> {
        match self.tokens.get(self.pos) {
            None => Ok(()),
            Some(t) => Err(SyntaxError {
                column: t.column,
                kind: DiagnosticKind::TrailingToken,
                message: format!("unexpected `{}`: expected end of line", t.text),
            }),
        }
    }
}

/// An error for a token that has the wrong form for `what`.
pub(crate) fn invalid(token: &Token, what: &str, expected: &str) -> SyntaxError {
    SyntaxError {
        column: token.column,
        kind: DiagnosticKind::InvalidValue,
        message: format!("invalid {what} `{}`: expected {expected}", token.text),
    }
}

fn expected_list(what: &str, candidates: &[&'static str]) -> String {
    if candidates.len() > 16 {
        return what.to_string();
    }
    let list: Vec<String> = candidates.iter().map(|k| format!("`{k}`")).collect();
    match list.as_slice() {
        [one] => one.clone(),
        _ => format!("{what} ({})", list.join(", ")),
    }
}

fn unknown(token: &Token, what: &str, candidates: &[&'static str]) -> SyntaxError {
    let mut message =
        format!("unknown keyword `{}`: expected {}", token.text, expected_list(what, candidates));
    if let Some(s) = nearest(&token.text, candidates) {
        message.push_str(&format!("; did you mean `{s}`?"));
    }
    SyntaxError { column: token.column, kind: DiagnosticKind::UnknownKeyword, message }
}

enum Match {
    One(&'static str),
    Ambiguous(Vec<&'static str>),
    None,
}

fn match_keyword(text: &str, candidates: &[&'static str]) -> Match {
    match match_prefix(text, candidates) {
        Ok(k) => Match::One(k),
        Err(list) if list.is_empty() => Match::None,
        Err(list) => Match::Ambiguous(list),
    }
}

/// VRP's keyword matching: case-insensitive, an exact keyword first, else the one keyword
/// `text` is a prefix of; otherwise every keyword it is a prefix of (none, or more than one).
pub(crate) fn match_prefix<'k>(
    text: &str,
    candidates: &[&'k str],
) -> std::result::Result<&'k str, Vec<&'k str>> {
    let lower = text.to_ascii_lowercase();
    if let Some(k) = candidates.iter().find(|k| **k == lower) {
        return Ok(k);
    }
    let mut prefixed: Vec<&'k str> = candidates.iter().copied().filter(|k| k.starts_with(&lower)).collect();
    prefixed.dedup();
    match prefixed.len() {
        1 if !lower.is_empty() => Ok(prefixed[0]),
        _ => Err(prefixed),
    }
}

/// The candidate closest to `text` by edit distance, when it is close enough to be a typo
/// (at most a third of the word's length, and at least 1).
pub(crate) fn nearest(text: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    let limit = (lower.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Checks a name of 1..=`max_len` characters without blanks or quotes: names are rendered
/// bare, so a name holding either could not be read back as written (`parse(render(c)) == c`).
pub(crate) fn check_name(token: &Token, what: &str, name: &str, max_len: usize) -> Result<()> {
    let len = name.chars().count();
    if len == 0 || len > max_len {
        return Err(invalid(token, what, &format!("1-{max_len} characters, got {len}")));
    }
    if name.chars().any(|c| c.is_whitespace() || c == '"') {
        return Err(invalid(token, what, "a name without blanks or quotes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::{EspCipher, HashAlgorithm};
    use crate::lexer::{lex, LexedLine};

    fn tokens(text: &str) -> Vec<Token> {
        match lex(text).remove(0) {
            Ok(LexedLine::Command(l)) => l.tokens,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exact_prefix_and_case() {
        let t = tokens("REMOTE-ID remote-id-t rem");
        let mut c = Cursor::new(&t);
        const CANDS: &[&str] = &["remote-id", "remote-id-type", "remote-address"];
        let cands = CANDS;
        assert_eq!(c.keyword("command", cands), Ok("remote-id"));
        assert_eq!(c.keyword("command", cands), Ok("remote-id-type"));
        let err = c.keyword("command", cands).unwrap_err();
        assert_eq!((err.kind, err.column), (DiagnosticKind::AmbiguousKeyword, 23));
    }

    #[test]
    fn unknown_keyword_suggests_nearest() {
        let t = tokens("ike-proposl");
        let err = Cursor::new(&t).keyword("command", &["ike-proposal", "version"]).unwrap_err();
        assert_eq!(err.kind, DiagnosticKind::UnknownKeyword);
        assert!(err.message.contains("did you mean `ike-proposal`?"), "{}", err.message);
        assert!(err.message.contains("`ike-proposl`"), "{}", err.message);
    }

    #[test]
    fn values_aliases_and_unsupported() {
        let t = tokens("sha256 SHA2-5 sm3 xyz");
        let mut c = Cursor::new(&t);
        assert_eq!(c.value::<HashAlgorithm>().unwrap().0, HashAlgorithm::Sha256);
        assert_eq!(c.value::<HashAlgorithm>().unwrap().0, HashAlgorithm::Sha512);
        assert_eq!(c.value::<HashAlgorithm>().unwrap_err().kind, DiagnosticKind::Unsupported);
        assert_eq!(c.value::<HashAlgorithm>().unwrap_err().kind, DiagnosticKind::UnknownKeyword);
        let t = tokens("aes-cbc-256");
        assert_eq!(Cursor::new(&t).value::<EspCipher>().unwrap().0, EspCipher::AesCbc256);
    }

    #[test]
    fn numbers_addresses_and_end() {
        let t = tokens("10 101 1.2.3.4 x");
        let mut c = Cursor::new(&t);
        assert_eq!(c.number("proposal number", 1, 100), Ok(10));
        assert_eq!(c.number("proposal number", 1, 100).unwrap_err().kind, DiagnosticKind::InvalidValue);
        assert_eq!(c.ipv4("address"), Ok(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(c.end().unwrap_err().kind, DiagnosticKind::TrailingToken);
        let _ = c.raw("x");
        let err = c.ipv4("next hop").unwrap_err();
        assert_eq!((err.kind, err.column), (DiagnosticKind::MissingArgument, 17));
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(nearest("verison", &["version", "undo"]), Some("version"));
        assert_eq!(nearest("zzzzzz", &["version", "undo"]), None);
    }
}
