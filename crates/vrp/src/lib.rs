//! The configuration language of keysteward: the Huawei VRP dialect of USG V500 firewalls,
//! as described in the reference `vrp-cli.md` (§1 grammar, §2 commands, §3
//! defaults, §6 dialect and aliases).
//!
//! Operators of this gateway already know VRP, so the gateway reads the same files a USG
//! firewall would: `ike proposal`, `ike peer`, `acl number 3xxx`, `ipsec proposal`,
//! `ipsec policy … isakmp`, `interface`, `ip route-static`. The crate turns that text into a
//! typed [`Config`] (the only way the `ike` and `esp` crates receive their settings), checks
//! it ([`validate()`]), and prints it back in canonical form ([`render()`]).
//!
//! Every finding carries `file:line:column` ([`Diagnostic`]). The crate does no I/O apart
//! from [`load_file`], which reads the one path its caller names.
#![forbid(unsafe_code)]

pub mod algorithm;
mod cursor;
pub mod diagnostic;
pub mod inert;
mod lexer;
pub mod model;
mod parser;
mod protected;
pub mod render;
pub mod secret;
pub mod validate;

use std::net::Ipv4Addr;
use std::path::Path;

pub use algorithm::Value;
pub use diagnostic::{Diagnostic, DiagnosticKind, Diagnostics, Location, Severity};
pub use model::Config;
pub use parser::{console, edit, grammar};
pub use parser::{parse, Parsed, SourceMap};
pub use render::{render, KeyDisplay};
pub use secret::PreSharedKey;
pub use validate::validate;

/// The outcome of checking a configuration: the configuration when it has no error, and
/// every finding (errors and warnings, in file order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// `Some` exactly when no diagnostic is an error.
    pub config: Option<Config>,
    /// Errors and warnings, sorted by line and column.
    pub diagnostics: Vec<Diagnostic>,
    /// Where each setting was written (empty when the file did not parse): the gateway
    /// reports certificate files it cannot load at the line that named them.
    pub source_map: SourceMap,
}

impl Checked {
    /// True when at least one diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses and validates `text`, naming `file` in diagnostics. `host_addresses`, when
/// given, are the addresses the host owns; interface and tunnel addresses outside them are
/// warned about.
pub fn check(file: &str, text: &str, host_addresses: Option<&[Ipv4Addr]>) -> Checked {
    match parse(file, text) {
        Err(Diagnostics(diagnostics)) => {
            Checked { config: None, diagnostics, source_map: SourceMap::default() }
        }
        Ok(parsed) => {
            let mut diagnostics = parsed.warnings;
            diagnostics.extend(validate(file, &parsed.config, Some(&parsed.source_map), host_addresses));
            diagnostics.sort_by_key(|d| (d.line, d.column));
            let config = (!diagnostics.iter().any(Diagnostic::is_error)).then_some(parsed.config);
            Checked { config, diagnostics, source_map: parsed.source_map }
        }
    }
}

/// Reads the file at `path` and [`check`]s it, naming the path as given in diagnostics.
pub fn load_file(path: &Path, host_addresses: Option<&[Ipv4Addr]>) -> std::io::Result<Checked> {
    let text = std::fs::read_to_string(path)?;
    Ok(check(&path.display().to_string(), &text, host_addresses))
}
