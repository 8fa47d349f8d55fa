//! The console on a terminal: prompts, line editing and history (rustyline), `?` at any
//! point of a line lists what may come next and gives the line back, Tab completes a
//! keyword, Ctrl-Z returns to the user view, Ctrl-C drops the line, Ctrl-D ends the session.
//!
//! Output longer than a screen stops at `  ---- More ----` as on VRP (control's
//! [`Pager`], the one `keysteward display` uses): space shows the next screen, Enter the
//! next line, `q` or Ctrl-C stops, and the rest of the display is not asked of the daemon. A
//! screen is the terminal's height (24 lines when it does not say), or what `screen-length
//! N temporary` set (0: no paging) until `undo screen-length temporary`.
//!
//! History is kept in `$XDG_STATE_HOME/keysteward/shell_history` (else
//! `~/.local/state/keysteward/shell_history`), mode 0600, the last [`HISTORY_SIZE`] lines; a
//! line that holds a pre-shared key is never written there.

use std::borrow::Cow;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use control::pager::{terminal_height, Key, Pager, RawInput};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Context, Editor, Event, EventContext, EventHandler,
    Helper, KeyEvent, RepeatCount,
};
use vrp::console::{read, Reading};

use crate::session::{
    completions, format_help, next_words, Daemon, Outcome, Output, Place, Session, SAVE_QUESTION,
};

/// A screen's lines when the terminal does not say, as VRP's default.
pub const DEFAULT_SCREEN_LENGTH: usize = 24;

/// The terminal for one command's output: through `---- More ----` unless paging is off.
struct Screen {
    pager: Pager<io::Stdout, Box<dyn FnMut() -> io::Result<Key>>>,
    /// What was written last ended a line (or nothing was written).
    ended: bool,
}

impl Screen {
    /// A screen of `screen_length` lines ([`Session::screen_length`]). Keys are read one at
    /// a time without echo while the output lasts, so that Ctrl-C stops the display rather
    /// than the shell.
    fn new(screen_length: Option<u16>) -> Self {
        let height = match screen_length {
            None => Some(terminal_height().unwrap_or(DEFAULT_SCREEN_LENGTH)),
            Some(0) => None,
            Some(lines) => Some(usize::from(lines)),
        };
        let mut raw = height.and_then(|_| RawInput::new());
        let height = height.filter(|_| raw.is_some());
        let keys: Box<dyn FnMut() -> io::Result<Key>> =
            Box::new(move || raw.as_mut().map_or(Ok(Key::Quit), RawInput::key));
        Self { pager: Pager::new(io::stdout(), keys, height), ended: true }
    }

    /// Writes `text` through the pager, then a line feed if it lacks one.
    fn page(mut self, text: &str) {
        if self.show(text) && !self.ended {
            print("\n");
        }
    }
}

impl Output for Screen {
    fn show(&mut self, text: &str) -> bool {
        if text.is_empty() {
            return true;
        }
        self.ended = text.ends_with('\n');
        self.pager.write(text).unwrap_or(false)
    }
}

/// How many lines the history keeps.
pub const HISTORY_SIZE: usize = 1000;

/// Where the history is kept, when there is a home or a state directory.
pub fn history_path() -> Option<PathBuf> {
    let state =
        std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()).map(PathBuf::from).or_else(|| {
            std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".local/state"))
        })?;
    Some(state.join("keysteward").join("shell_history"))
}

/// The editor's view of the session: where it is, for Tab.
struct Shell {
    place: Place,
}

impl Completer for Shell {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let words = completions(&self.place, before);
        let unique = words.len() == 1;
        let pairs = words
            .into_iter()
            .map(|w| Pair { display: w.clone(), replacement: if unique { format!("{w} ") } else { w } })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for Shell {
    type Hint = String;
}

impl Highlighter for Shell {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(&'s self, prompt: &'p str, _default: bool) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for Shell {}

impl Helper for Shell {}

/// `?`: keeps the text before and after the cursor and ends the line, so that the loop
/// lists the next words and gives the line back.
struct Question(Arc<Mutex<Option<(String, String)>>>);

impl ConditionalEventHandler for Question {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext<'_>) -> Option<Cmd> {
        let (before, after) = ctx.line().split_at(ctx.pos());
        if let Ok(mut pending) = self.0.lock() {
            *pending = Some((before.to_string(), after.to_string()));
        }
        Some(Cmd::AcceptLine)
    }
}

/// Ctrl-Z: ends the line and says so.
struct CtrlZ(Arc<AtomicBool>);

impl ConditionalEventHandler for CtrlZ {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, _: &EventContext<'_>) -> Option<Cmd> {
        self.0.store(true, Ordering::SeqCst);
        Some(Cmd::AcceptLine)
    }
}

/// Opens (creating them private) the history file and its directory.
fn prepare_history(path: &PathBuf) -> bool {
    if let Some(dir) = path.parent() {
        if std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).is_err() {
            return false;
        }
    }
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).is_ok()
}

/// The line editor: bounded history, list completion, `?` and Ctrl-Z bound to handlers that
/// report through `question` and `ctrl_z`.
fn editor(
    place: Place,
    question: &Arc<Mutex<Option<(String, String)>>>,
    ctrl_z: &Arc<AtomicBool>,
) -> rustyline::Result<Editor<Shell, DefaultHistory>> {
    let config = Config::builder()
        .max_history_size(HISTORY_SIZE)?
        .history_ignore_dups(true)?
        .auto_add_history(false)
        .completion_type(CompletionType::List)
        .build();
    let mut editor = Editor::with_config(config)?;
    editor.set_helper(Some(Shell { place }));
    editor
        .bind_sequence(KeyEvent::from('?'), EventHandler::Conditional(Box::new(Question(question.clone()))));
    editor.bind_sequence(KeyEvent::ctrl('Z'), EventHandler::Conditional(Box::new(CtrlZ(ctrl_z.clone()))));
    Ok(editor)
}

/// Runs the interactive session until `quit` in the user view or the end of input.
pub fn run<D: Daemon>(mut session: Session<D>) -> ExitCode {
    let question = Arc::new(Mutex::new(None));
    let ctrl_z = Arc::new(AtomicBool::new(false));
    let mut editor = match editor(session.place().clone(), &question, &ctrl_z) {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("keysteward shell: {e}");
            return ExitCode::FAILURE;
        }
    };
    let history = history_path().filter(prepare_history);
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let mut initial: Option<(String, String)> = None;
    loop {
        if let Some(helper) = editor.helper_mut() {
            helper.place = session.place().clone();
        }
        let prompt = session.prompt();
        let typed = match initial.take() {
            Some((before, after)) => editor.readline_with_initial(&prompt, (&before, &after)),
            None => editor.readline(&prompt),
        };
        let line = match typed {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(_) => break,
        };
        if ctrl_z.swap(false, Ordering::SeqCst) {
            session.ctrl_z();
            continue;
        }
        if let Some((before, after)) = question.lock().ok().and_then(|mut q| q.take()) {
            Screen::new(session.screen_length()).page(&format_help(&next_words(session.place(), &before)));
            initial = Some((before, after));
            continue;
        }
        if !line.trim().is_empty() && keeps(session.place(), &line) {
            let _ = editor.add_history_entry(line.as_str());
            if let Some(path) = &history {
                let _ = editor.append_history(path);
            }
        }
        let mut outcome = {
            let mut screen = Screen::new(session.screen_length());
            match session.line_to(&line, &mut screen) {
                Outcome::Text(text) => {
                    screen.page(&text);
                    Outcome::Done
                }
                Outcome::Shown if !screen.ended => {
                    drop(screen);
                    print("\n");
                    Outcome::Done
                }
                other => other,
            }
        };
        if outcome == Outcome::ConfirmSave {
            outcome = match editor.readline(SAVE_QUESTION) {
                Ok(answer) => session.confirm_save(&answer),
                Err(_) => Outcome::Done,
            };
        }
        if outcome == Outcome::Exit {
            break;
        }
        show(outcome, &prompt);
    }
    ExitCode::SUCCESS
}

/// Prints what a line did; a caret goes under the line as typed after `prompt`.
fn show(outcome: Outcome, prompt: &str) {
    match outcome {
        Outcome::Done | Outcome::ConfirmSave | Outcome::Exit | Outcome::Shown => {}
        Outcome::Text(text) | Outcome::Error(text) => print(&text),
        Outcome::Caret { offset, message, detail } => {
            let mut text = format!("{}^\n{message}\n", " ".repeat(prompt.chars().count() + offset));
            if let Some(detail) = detail {
                text.push_str(&detail);
                text.push('\n');
            }
            print(&text);
        }
    }
}

/// True unless `line` holds a secret (a pre-shared key), which stays out of the history: a
/// command with a key, or a line in error with a word that could abbreviate
/// `pre-shared-key` (a key typed with a mistake is still a key).
fn keeps(place: &Place, line: &str) -> bool {
    let Place::System(views) = place else { return true };
    match read(views, line) {
        Reading::Command(c) => !c.secret,
        Reading::Empty => true,
        Reading::Error(_) => !line
            .split_whitespace()
            .any(|w| w.len() >= 3 && "pre-shared-key".starts_with(&w.to_ascii_lowercase())),
    }
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.is_empty() && !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_out_of_the_history() {
        let peer = Place::System(vec!["ike peer b".into()]);
        assert!(keeps(&peer, "remote-address 1.2.3.4"));
        assert!(!keeps(&peer, "pre Admin@123"));
        assert!(!keeps(&peer, "pre-shared-key simple \"a b\""));
        // In error (two words where one key goes): still a key.
        assert!(!keeps(&peer, "pre-shared-key Admin 123"));
        assert!(!keeps(&peer, "PRE-SH Admin 123"));
        assert!(keeps(&peer, "remote-adress 1.2.3.4"));
        assert!(keeps(&Place::User, "display ike sa"));
    }
}
