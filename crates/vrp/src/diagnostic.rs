//! Errors and warnings about a configuration file, each tied to `file:line:column`.
//!
//! One type serves the lexer, the parser and the validator, so that `keysteward check`
//! prints every finding in one format: `file:line:column: error: message` (the format of
//! compilers, which editors already know how to jump to).

use std::fmt;

/// How serious a finding is: an error makes the file unusable, a warning does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The configuration is loaded, but something in it is weak or surprising.
    Warning,
    /// The configuration cannot be loaded.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// What kind of finding a diagnostic is, so that tests and tools can match on the class
/// instead of on message text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiagnosticKind {
    /// A line could not be split into tokens (an unterminated quote).
    Lexical,
    /// A keyword that the current view does not know.
    UnknownKeyword,
    /// An abbreviation that is a prefix of several keywords.
    AmbiguousKeyword,
    /// The line ended where an argument was required.
    MissingArgument,
    /// An argument is out of range or malformed (a number, an address, a name).
    InvalidValue,
    /// Tokens left over after a complete command.
    TrailingToken,
    /// Valid VRP that keysteward does not implement (IKEv2, AH, SM4, …).
    Unsupported,
    /// A reference to an object that is not defined (proposal, peer, ACL, template, policy).
    MissingReference,
    /// A sequence or rule number used twice in one group.
    DuplicateSequence,
    /// Two policy entries that can protect the same traffic on one interface, or one policy
    /// group bound twice.
    OverlappingPolicy,
    /// An object lacks a setting it cannot work without (a policy without an ACL, a peer
    /// without a key).
    Incomplete,
    /// A weak algorithm (DES, 3DES, MD5, MODP groups 1, 2, 5).
    WeakAlgorithm,
    /// Aggressive mode with pre-shared keys: the key can be attacked offline.
    AggressiveModePsk,
    /// A pre-shared key shorter than 16 characters.
    ShortPreSharedKey,
    /// A peer left with IKEv2 enabled: keysteward speaks IKEv1 only.
    IkeVersion,
    /// An interface or tunnel address that the host does not have.
    AddressNotOnHost,
    /// A command that is accepted and ignored, or an alias that was normalised.
    Ignored,
}

/// One finding, with the place in the file it is about.
///
/// `line` and `column` are 1-based; a finding about the whole file (or a configuration
/// that did not come from a file) has line 0 and prints only the file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name, as the caller gave it.
    pub file: String,
    /// 1-based line, or 0 when unknown.
    pub line: u32,
    /// 1-based column (in characters), or 0 when unknown.
    pub column: u32,
    /// Error or warning.
    pub severity: Severity,
    /// The class of the finding.
    pub kind: DiagnosticKind,
    /// Human-readable text naming the token, what was expected, and a suggestion.
    pub message: String,
}

impl Diagnostic {
    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}: {}", self.file, self.severity, self.message)
        } else {
            write!(f, "{}:{}:{}: {}: {}", self.file, self.line, self.column, self.severity, self.message)
        }
    }
}

/// A place in a configuration file, recorded by the parser for the validator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Location {
    /// 1-based line.
    pub line: u32,
    /// 1-based column of the first token of the command.
    pub column: u32,
}

/// A list of diagnostics, returned when a file cannot be loaded.
///
/// It implements `std::error::Error` so that a caller can propagate it with `?`; its
/// `Display` prints one diagnostic per line.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", display_lines(.0))]
pub struct Diagnostics(pub Vec<Diagnostic>);

fn display_lines(list: &[Diagnostic]) -> String {
    list.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

impl Diagnostics {
    /// True when at least one diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_location() {
        let mut d = Diagnostic {
            file: "fw.cfg".into(),
            line: 3,
            column: 2,
            severity: Severity::Error,
            kind: DiagnosticKind::UnknownKeyword,
            message: "unknown keyword `x`".into(),
        };
        assert_eq!(d.to_string(), "fw.cfg:3:2: error: unknown keyword `x`");
        d.line = 0;
        d.severity = Severity::Warning;
        assert_eq!(d.to_string(), "fw.cfg: warning: unknown keyword `x`");
    }
}
