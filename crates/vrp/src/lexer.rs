//! Splits a VRP configuration into lines of tokens (reference `vrp-cli.md` §1).
//!
//! The language is line oriented: tokens are separated by blanks, a double-quoted token may
//! hold blanks (VRP allows that for pre-shared keys, §2.3), a line whose first token is `#`
//! separates blocks, and indentation carries no meaning (the parser decides the view from
//! the commands themselves, as the device does).
//!
//! `//` starts an annotation, as in the configurations Huawei's articles print
//! (`undo version 2 //IKEv1`): a word that begins with `//` ends the line here. A `//` glued
//! to the end of a word (`exchange-mode main//main mode (default)`) is left to the parser,
//! which alone knows whether the word is a keyword, a number or an address (then the note
//! starts at the `//`, see [`Token::before_comment`]) or a free value such as a key, a name
//! or a DN, which is kept whole, so that a pre-shared key may contain `//`.

use crate::diagnostic::DiagnosticKind;

/// One word of a line, with the 1-based column where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    /// The text, without the quotes when the token was quoted.
    pub(crate) text: String,
    /// 1-based column, counted in characters.
    pub(crate) column: u32,
    /// True when the token was written between double quotes.
    pub(crate) quoted: bool,
}

impl Token {
    /// The text before a `//` glued to the word (`main` of `main//main`), when the word is
    /// unquoted and has one after its first character: read as a keyword, a number or an
    /// address, which cannot contain `//`, the rest of the line is an annotation.
    pub(crate) fn before_comment(&self) -> Option<&str> {
        if self.quoted {
            return None;
        }
        match self.text.find("//") {
            Some(i) if i > 0 => Some(&self.text[..i]),
            _ => None,
        }
    }
}

/// A non-empty line that is not a separator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    /// 1-based line number.
    pub(crate) number: u32,
    /// The tokens, at least one.
    pub(crate) tokens: Vec<Token>,
    /// True when the line starts with a blank (a command inside a view in a saved file).
    pub(crate) indented: bool,
}

/// A line that could not be tokenised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LexError {
    pub(crate) line: u32,
    pub(crate) column: u32,
    pub(crate) kind: DiagnosticKind,
    pub(crate) message: String,
}

/// What the lexer found on one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LexedLine {
    /// A command line.
    Command(Line),
    /// A `#` separator line (it ends nothing by itself, it is only a visual break).
    Separator,
}

/// Tokenises the whole text; blank lines are dropped, separators kept.
pub(crate) fn lex(text: &str) -> Vec<Result<LexedLine, LexError>> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        match lex_line(number, raw) {
            Ok(Some(line)) => out.push(Ok(line)),
            Ok(None) => {}
            Err(e) => out.push(Err(e)),
        }
    }
    out
}

fn lex_line(number: u32, raw: &str) -> Result<Option<LexedLine>, LexError> {
    let chars: Vec<char> = raw.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let column = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if c == '"' {
            let start = i + 1;
            let Some(len) = chars[start..].iter().position(|&c| c == '"') else {
                return Err(LexError {
                    line: number,
                    column,
                    kind: DiagnosticKind::Lexical,
                    message: "unterminated quoted string: expected a closing `\"`".into(),
                });
            };
            tokens.push(Token { text: chars[start..start + len].iter().collect(), column, quoted: true });
            i = start + len + 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            // An annotation after a blank: the rest of the line.
            break;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() {
                i += 1;
            }
            tokens.push(Token { text: chars[start..i].iter().collect(), column, quoted: false });
        }
    }
    match tokens.first() {
        None => Ok(None),
        Some(first) if !first.quoted && first.text.starts_with('#') => Ok(Some(LexedLine::Separator)),
        Some(_) => {
            let indented = chars.first().is_some_and(|c| c.is_whitespace());
            Ok(Some(LexedLine::Command(Line { number, tokens, indented })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(text: &str) -> Line {
        match lex(text).remove(0) {
            Ok(LexedLine::Command(line)) => line,
            other => panic!("not a command: {other:?}"),
        }
    }

    #[test]
    fn splits_on_blanks_with_columns() {
        let line = command(" pre-shared-key  tiandihui2");
        assert!(line.indented);
        assert_eq!(line.tokens.len(), 2);
        assert_eq!(line.tokens[0].column, 2);
        assert_eq!(line.tokens[1].text, "tiandihui2");
        assert_eq!(line.tokens[1].column, 18);
    }

    #[test]
    fn quoted_token_keeps_blanks() {
        let line = command("pre-shared-key \"a key with blanks\" x");
        assert_eq!(line.tokens[1].text, "a key with blanks");
        assert!(line.tokens[1].quoted);
        assert_eq!(line.tokens[2].column, 36);
    }

    #[test]
    fn separators_and_blank_lines() {
        let lexed = lex("#\n\n   \n# comment\nsysname a\n");
        assert_eq!(lexed.len(), 3);
        assert_eq!(lexed[0], Ok(LexedLine::Separator));
        assert_eq!(lexed[1], Ok(LexedLine::Separator));
        match &lexed[2] {
            Ok(LexedLine::Command(l)) => assert_eq!(l.number, 5),
            other => panic!("{other:?}"),
        }
    }

    /// `//` after a blank ends the line; glued to a word it stays in the word (the parser
    /// decides); a line holding only a note is no line at all.
    #[test]
    fn annotations() {
        let line = command("undo version 2 //IKEv1");
        assert_eq!(line.tokens.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(), ["undo", "version", "2"]);
        let line = command(" exchange-mode main//main mode (default)");
        assert_eq!(line.tokens[1].text, "main//main");
        assert_eq!(line.tokens[1].before_comment(), Some("main"));
        assert_eq!(line.tokens.len(), 4, "the words after a glued note are the parser's to drop");
        let line = command("pre-shared-key \"a//b\" //note");
        assert_eq!((line.tokens.len(), line.tokens[1].before_comment()), (2, None));
        assert_eq!(command("x //a").tokens.len(), 1);
        assert!(lex("  // only a note\n//another\n").is_empty());
        assert_eq!(command("key //").tokens.len(), 1);
        assert_eq!(command("a/b/c").tokens[0].before_comment(), None);
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let lexed = lex("x\npre-shared-key \"abc");
        let err = lexed[1].clone().unwrap_err();
        assert_eq!((err.line, err.column, err.kind), (2, 16, DiagnosticKind::Lexical));
    }
}
