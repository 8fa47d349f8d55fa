//! The console without a terminal: `keysteward shell -c LINE …` and lines on standard input,
//! for scripts and tests.
//!
//! What a script wants: only what the commands print on standard output (no prompts, no
//! echo of the lines), errors on standard error naming the line and column (VRP's message
//! with `column N` for the caret; the line is not copied, it may hold a key), and an exit
//! status. The
//! first line that fails stops the script with status 1 (the lines after it usually depend
//! on it, a view that did not open); a line ending in `?` prints the help list; `save`
//! takes its answer (`y` or `n`) from the next line, as the device would over a terminal.

use std::io::Write;
use std::process::ExitCode;

use crate::session::{Daemon, Outcome, Output, Session};

/// A script's standard output: every page of a display as it comes, without prompts (a
/// script never pages); a reader that went away (`| head`) stops the display.
struct Plain<'a, W> {
    out: &'a mut W,
    /// What was written last ended a line (or nothing was written).
    ended: bool,
}

impl<W: Write> Output for Plain<'_, W> {
    fn show(&mut self, text: &str) -> bool {
        if text.is_empty() {
            return true;
        }
        self.ended = text.ends_with('\n');
        self.out.write_all(text.as_bytes()).is_ok()
    }
}

/// Runs `lines` in `session`, printing results to `out` and errors to `err`.
pub fn run<D: Daemon>(
    mut session: Session<D>,
    lines: impl Iterator<Item = String>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> ExitCode {
    let mut lines = lines.enumerate();
    while let Some((index, line)) = lines.next() {
        let number = index + 1;
        let mut plain = Plain { out: &mut *out, ended: true };
        let mut outcome = session.line_to(&line, &mut plain);
        if outcome == Outcome::Shown && !plain.ended {
            let _ = out.write_all(b"\n");
        }
        if outcome == Outcome::ConfirmSave {
            outcome = match lines.next() {
                Some((_, answer)) => session.confirm_save(&answer),
                None => Outcome::Error("Error: save waits for its answer (y or n) on the next line".into()),
            };
        }
        let failed = match outcome {
            Outcome::Done | Outcome::ConfirmSave | Outcome::Shown => false,
            Outcome::Exit => return ExitCode::SUCCESS,
            Outcome::Text(text) => {
                let _ = out.write_all(text.as_bytes());
                if !text.is_empty() && !text.ends_with('\n') {
                    let _ = out.write_all(b"\n");
                }
                false
            }
            Outcome::Caret { offset, message, detail } => {
                // The line itself is not copied: it may hold a key, and standard error may
                // go to a log.
                let message = message.replace("'^' position", &format!("column {}", offset + 1));
                let _ = writeln!(err, "line {number}: {message}");
                if let Some(detail) = detail {
                    let _ = writeln!(err, "{detail}");
                }
                true
            }
            Outcome::Error(message) => {
                let _ = writeln!(err, "line {number}: {message}");
                true
            }
        };
        if failed {
            let _ = out.flush();
            return ExitCode::FAILURE;
        }
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}
