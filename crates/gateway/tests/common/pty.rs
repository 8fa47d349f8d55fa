//! `keysteward shell` on a pseudo-terminal (rexpect), for the console's tests: started, its
//! prompts waited for, lines typed.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use rexpect::session::PtySession;

/// `keysteward shell --control CONTROL`, its history under `state` (`XDG_STATE_HOME`).
pub(crate) fn shell_command(control: &Path, state: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keysteward"));
    command.arg("shell").arg("--control").arg(control).env("XDG_STATE_HOME", state).env("TERM", "xterm");
    command
}

/// Starts `command` on a pseudo-terminal (every wait bounded at 30 s) and waits for its
/// first prompt `first`.
pub(crate) fn spawn(command: Command, first: &str) -> PtySession {
    let options = rexpect::reader::Options::new().timeout_ms(Some(30_000)).strip_ansi_escape_codes(false);
    let mut p = rexpect::session::spawn_with_options(command, options).unwrap();
    p.exp_string(first).unwrap();
    p
}

/// Waits for the prompt of a new line, and so for the shell to be ready for the next keys.
/// The line editor redraws the line being typed after `\r` and a clear-to-end-of-line
/// (`ESC [ K`); a new prompt comes after the line feed that ended the previous line or
/// output, then terminal modes (`ESC [ ? … h`), the `\r` and the clear. Returns what came
/// before it (the command's output, with its escape sequences).
pub(crate) fn prompt(p: &mut PtySession, prompt: &str) -> String {
    let pattern = format!(r"\n(\x1b\[[?0-9;]*[a-zA-Z]|\r)*\x1b\[K{}", regex::escape(prompt));
    p.exp_regex(&pattern).unwrap_or_else(|e| panic!("waiting for {prompt}: {e}")).0
}

/// Types `line` and Enter, then waits for `next` (the prompt the line leads to); returns the
/// output in between.
pub(crate) fn type_line(p: &mut PtySession, line: &str, next: &str) -> String {
    p.send_line(line).unwrap();
    prompt(p, next)
}
