//! `keysteward shell`: an interactive VRP console against the running daemon, over the
//! control socket (issue 15).
//!
//! The console keeps the views and the prompt (`<FW_A>`, `system-view` → `[FW_A]`,
//! `[FW_A-ike-peer-b]`), reads every line the way the device does — each keyword by its
//! shortest unique prefix, `?` for the next words, Tab to complete, VRP's caret errors —
//! and sends the daemon one canonical command at a time (`control::Request::Configure`),
//! which applies it to the running configuration. The language's knowledge (what a line
//! means, which view it opens, what may come next) is the vrp crate's [`vrp::console`];
//! this crate is the session ([`session`]), the terminal ([`terminal`], line editing and
//! history with rustyline) and scripts ([`script`], `-c` and standard input).

pub mod filter;
pub mod script;
pub mod session;
pub mod terminal;
mod user;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

pub use session::{Daemon, Outcome, Place, Session, Socket};

/// What `keysteward shell` was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The daemon's control socket.
    pub control: PathBuf,
    /// `-c LINE`, in order: run these lines instead of reading the terminal or standard input.
    pub commands: Vec<String>,
}

/// Runs the console: the `-c` lines, else the terminal when standard input is one, else
/// the lines of standard input.
pub fn run(options: Options) -> ExitCode {
    let session = match Session::new(Socket(options.control)) {
        Ok(session) => session,
        Err(e) => {
            eprintln!("keysteward shell: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !options.commands.is_empty() {
        return script::run(
            session,
            options.commands.into_iter(),
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        );
    }
    if std::io::stdin().is_terminal() {
        return terminal::run(session);
    }
    let lines = std::io::stdin().lines().map_while(Result::ok);
    script::run(session, lines, &mut std::io::stdout(), &mut std::io::stderr())
}
