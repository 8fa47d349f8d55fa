//! One console session, without I/O: the views, the prompt, and what each typed line does.
//! The terminal and scripts drive it alike.

use control::{Request, Response};
use vrp::console::{self as language, ErrorKind, Help, LineError, NextWords, Reading};

use crate::filter::Filter;
use crate::user::{self, Action, CONFIG_VIEWS, USER_VIEW};

/// The system's name until the daemon says otherwise (VRP's own default is the model name).
pub const DEFAULT_SYSNAME: &str = "keysteward";

/// VRP's question before `save`.
pub const SAVE_QUESTION: &str =
    "The current configuration will be written to the device. Are you sure to continue?[Y/N]:";

/// The daemon, as the session sees it: one request, one answer.
pub trait Daemon {
    /// Sends `request`; `Err` when the daemon cannot be reached (the message says why).
    fn call(&mut self, request: &Request) -> Result<Response, String>;
}

/// The control socket of a running daemon.
pub struct Socket(pub std::path::PathBuf);

impl Daemon for Socket {
    fn call(&mut self, request: &Request) -> Result<Response, String> {
        control::call(&self.0, request).map_err(|e| e.to_string())
    }
}

/// Where a display's text goes as it arrives, page by page: the terminal's
/// `---- More ----`, a script's standard output, or a string.
pub trait Output {
    /// Writes `text` (whole lines, but for a display's last line); `false` once the reader
    /// has stopped (`q` at `---- More ----`): the rest of the display is then not asked for.
    fn show(&mut self, text: &str) -> bool;
}

impl Output for String {
    fn show(&mut self, text: &str) -> bool {
        self.push_str(text);
        true
    }
}

/// Where the session is: the user view, or the system view and the views nested in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// `<sysname>`.
    User,
    /// `[sysname]` and the views inside it (their canonical opening lines).
    System(Vec<String>),
}

/// What a typed line did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to print.
    Done,
    /// Text to print (a display, the daemon's notes, `?`'s list).
    Text(String),
    /// The line is not understood here: the caret goes under `offset` (characters into the
    /// line), then `message`, then `detail` when there is one.
    Caret {
        /// Where.
        offset: usize,
        /// VRP's error line.
        message: &'static str,
        /// More, when it helps (an unsupported keyword's reason).
        detail: Option<String>,
    },
    /// The daemon refused or could not be reached.
    Error(String),
    /// `save` waits for the operator's answer to [`SAVE_QUESTION`] ([`Session::confirm_save`]).
    ConfirmSave,
    /// The session ends (`quit` in the user view).
    Exit,
    /// A display (or a command's answer) went to the output given to [`Session::line_to`].
    Shown,
}

/// A console session.
pub struct Session<D> {
    daemon: D,
    sysname: String,
    place: Place,
    /// `screen-length N temporary`: `Some(N)`; `None`: the terminal's height.
    screen_length: Option<u16>,
}

impl<D: Daemon> Session<D> {
    /// A session in the user view; asks the daemon for the sysname. `Err` when the daemon
    /// cannot be reached.
    pub fn new(daemon: D) -> Result<Self, String> {
        let mut session =
            Self { daemon, sysname: DEFAULT_SYSNAME.to_string(), place: Place::User, screen_length: None };
        session.learn_sysname()?;
        Ok(session)
    }

    /// Where the session is.
    pub fn place(&self) -> &Place {
        &self.place
    }

    /// The prompt: `<FW_A>`, `[FW_A]`, `[FW_A-ike-peer-b]`.
    pub fn prompt(&self) -> String {
        match &self.place {
            Place::User => format!("<{}>", self.sysname),
            Place::System(views) => language::prompt(&self.sysname, views),
        }
    }

    /// The sysname from the running configuration (its first `sysname` line), or the default.
    fn learn_sysname(&mut self) -> Result<(), String> {
        let text = match self.daemon.call(&Request::DisplayCurrentConfiguration)? {
            Response::Ok { text, .. } => text,
            // A daemon without the console's requests still shows its configuration.
            Response::Error(_) => match self.daemon.call(&Request::ShowConfig)? {
                Response::Ok { text, .. } => text,
                Response::Error(e) => return Err(e),
            },
        };
        self.sysname = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("sysname "))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| DEFAULT_SYSNAME.to_string());
        Ok(())
    }

    /// Ctrl-Z: back to the user view.
    pub fn ctrl_z(&mut self) {
        self.place = Place::User;
    }

    /// The lines a screen holds before `---- More ----` as `screen-length N temporary` set
    /// them (0: no paging); `None` (the default, and after `undo screen-length temporary`):
    /// the terminal's height.
    pub fn screen_length(&self) -> Option<u16> {
        self.screen_length
    }

    /// Runs one typed line; a display's text comes in [`Outcome::Text`]. A line ending in
    /// `?` lists what may come next instead.
    pub fn line(&mut self, line: &str) -> Outcome {
        let mut text = String::new();
        match self.line_to(line, &mut text) {
            Outcome::Shown => Outcome::Text(text),
            other => other,
        }
    }

    /// Runs one typed line, writing a display to `out` as its pages arrive (filtered
    /// first), and asking for no more pages once `out` has stopped; [`Outcome::Shown`] then.
    pub fn line_to(&mut self, line: &str, out: &mut dyn Output) -> Outcome {
        if let Some(before) = line.strip_suffix('?') {
            return Outcome::Text(format_help(&self.next_words(before)));
        }
        let (command, filter) = match split_filter(line) {
            Ok(split) => split,
            Err(e) => return caret(e),
        };
        let words = words(command);
        let Some((first_offset, first)) = words.first() else { return Outcome::Done };
        let views = match &self.place {
            Place::User => return self.console(USER_VIEW, &words, line_end(command), filter, out),
            Place::System(views) => views.clone(),
        };
        // A console word (`display`, `save`) when it abbreviates one and no word of the
        // language; the language's own ambiguities are the parser's to report (it reads the
        // view's commands before the system view's).
        let console_words = user::first_words(CONFIG_VIEWS);
        let language_words = first_keywords(&views);
        let lower = first.to_ascii_lowercase();
        let console = console_words.iter().filter(|w| w.starts_with(&lower)).count();
        let language = language_words.iter().filter(|w| w.starts_with(&lower)).count();
        let exact_language = language_words.contains(&lower);
        match (console, language) {
            (1, 0) if !exact_language => self.console(CONFIG_VIEWS, &words, line_end(command), filter, out),
            (1.., 1..) if !exact_language && !console_words.contains(&lower.as_str()) => {
                caret(LineError { offset: *first_offset, kind: ErrorKind::Ambiguous, detail: String::new() })
            }
            (1.., _) if console_words.contains(&lower.as_str()) => {
                self.console(CONFIG_VIEWS, &words, line_end(command), filter, out)
            }
            _ if filter.is_some() => caret(LineError {
                offset: command.len() + 1,
                kind: ErrorKind::Unrecognized,
                detail: String::new(),
            }),
            _ => self.configure(&views, command),
        }
    }

    /// A console command (`display …`, `save`, `system-view`, …).
    fn console(
        &mut self,
        nodes: &'static [user::Node],
        words: &[(usize, String)],
        end: usize,
        filter: Option<Filter>,
        out: &mut dyn Output,
    ) -> Outcome {
        let action = match user::read(nodes, words, end) {
            Ok(action) => action,
            Err(e) => return caret(e),
        };
        let displays = matches!(action, Action::Ask(_) | Action::DisplayThis);
        if filter.is_some() && !displays {
            return Outcome::Error("Error: Only a display can be filtered.".into());
        }
        match action {
            Action::Quit => match &mut self.place {
                Place::User => Outcome::Exit,
                Place::System(views) => {
                    if views.pop().is_none() {
                        self.place = Place::User;
                    }
                    Outcome::Done
                }
            },
            Action::Return => {
                self.place = Place::User;
                Outcome::Done
            }
            Action::SystemView => {
                self.place = Place::System(Vec::new());
                Outcome::Done
            }
            Action::Save => Outcome::ConfirmSave,
            Action::ScreenLength(lines) => {
                self.screen_length = lines;
                Outcome::Done
            }
            Action::DisplayThis => {
                let views = match &self.place {
                    Place::User => Vec::new(),
                    Place::System(views) => views.clone(),
                };
                self.show(&Request::DisplayThis { views }, filter.as_ref(), out)
            }
            Action::Ask(request) => self.show(&request, filter.as_ref(), out),
        }
    }

    /// The answer to [`SAVE_QUESTION`]: `y`/`Y` saves, anything else does not.
    pub fn confirm_save(&mut self, answer: &str) -> Outcome {
        if answer.trim().eq_ignore_ascii_case("y") {
            self.ask(&Request::Save)
        } else {
            Outcome::Done
        }
    }

    /// A change (`Configure`, `Save`): its answer, whole.
    fn ask(&mut self, request: &Request) -> Outcome {
        match self.daemon.call(request) {
            Ok(Response::Ok { text, .. }) => Outcome::Text(text),
            Ok(Response::Error(e)) => Outcome::Error(vrp_error(e)),
            Err(e) => Outcome::Error(format!("Error: {e}")),
        }
    }

    /// A display (or another user-view command's answer) through `filter` to `out`, as its
    /// pages arrive.
    fn show(&mut self, request: &Request, filter: Option<&Filter>, out: &mut dyn Output) -> Outcome {
        let mut sift = filter.map(Filter::sift);
        let mut write = |text: &str| match &mut sift {
            Some(sift) => {
                let kept = sift.feed(text);
                kept.is_empty() || out.show(&kept)
            }
            None => out.show(text),
        };
        let read = if control::page::streams(request) {
            self.pages(request, &mut write)
        } else {
            match self.daemon.call(request) {
                Ok(Response::Ok { text, .. }) => Ok(write(&text)),
                Ok(Response::Error(e)) => Err(vrp_error(e)),
                Err(e) => Err(format!("Error: {e}")),
            }
        };
        match read {
            Ok(going) => {
                let rest = sift.as_mut().map(|s| s.finish()).unwrap_or_default();
                if going && !rest.is_empty() {
                    out.show(&rest);
                }
                Outcome::Shown
            }
            Err(e) => Outcome::Error(e),
        }
    }

    /// A display that grows with the SAs (`display ike sa` on a hub), read page by page so
    /// that the daemon never builds one unbounded answer, each page written as it comes;
    /// once `write` says the reader stopped, no further page is asked for. `Ok(false)` when
    /// stopped. A daemon older than pages answers the page request with an error: the
    /// display is then asked for whole, as before.
    fn pages(&mut self, display: &Request, write: &mut dyn FnMut(&str) -> bool) -> Result<bool, String> {
        let mut after = None;
        let mut first = true;
        loop {
            let request = control::page::request(display, after.take(), control::DEFAULT_PAGE_ROWS);
            let whole = |e: &str| first && e.starts_with("unreadable request");
            let page = match self.daemon.call(&request).map_err(|e| format!("Error: {e}"))? {
                Response::Ok { ref json, .. } if json.get("page").is_none() && first => None,
                Response::Error(e) if whole(&e) => None,
                Response::Error(e) => return Err(vrp_error(e)),
                response => Some(control::Page::from_response(response).map_err(vrp_error)?),
            };
            let Some(page) = page else {
                return match self.daemon.call(display).map_err(|e| format!("Error: {e}"))? {
                    Response::Ok { text, .. } => Ok(write(&text)),
                    Response::Error(e) => Err(vrp_error(e)),
                };
            };
            first = false;
            if !write(&page.text) {
                return Ok(false);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(true),
            }
        }
    }

    /// A line of the configuration language: applied to the running configuration, then
    /// the views follow it.
    fn configure(&mut self, views: &[String], line: &str) -> Outcome {
        let command = match language::read(views, line) {
            Reading::Empty => return Outcome::Done,
            Reading::Error(e) => return caret(e),
            Reading::Command(command) => command,
        };
        if command.leaves {
            // `quit` leaves one view, `return` all of them; neither changes the configuration.
            return self.console(USER_VIEW, &[(0, command.line.clone())], 0, None, &mut String::new());
        }
        let request = Request::Configure { views: command.views.clone(), line: command.line.clone() };
        let outcome = self.ask(&request);
        if let Outcome::Text(_) = outcome {
            self.place = Place::System(command.after);
            if command.line.starts_with("sysname ") || command.line.starts_with("undo sysname") {
                let _ = self.learn_sysname();
            }
        }
        outcome
    }

    /// What may follow `before` (the text before `?`).
    pub fn next_words(&self, before: &str) -> NextWords {
        next_words(&self.place, before)
    }

    /// Tab: the keywords that complete the last word of `before`.
    pub fn completions(&self, before: &str) -> Vec<String> {
        completions(&self.place, before)
    }
}

/// What may follow `before` (the text before `?`) in `place`.
pub fn next_words(place: &Place, before: &str) -> NextWords {
    if let Some(at) = before.find(" |") {
        if is_display(&words(&before[..at]).into_iter().map(|(_, w)| w).collect::<Vec<_>>()) {
            return filter_words(before);
        }
    }
    let partial = (!before.is_empty() && !before.ends_with(char::is_whitespace))
        .then(|| before.split_whitespace().last().unwrap_or_default());
    let typed: Vec<String> = words(before).into_iter().map(|(_, w)| w).collect();
    let complete = match partial {
        Some(_) => &typed[..typed.len().saturating_sub(1)],
        None => &typed[..],
    };
    let mut next = match place {
        Place::User => user::next_words(USER_VIEW, complete, partial).unwrap_or_default(),
        Place::System(views) => {
            let mut next = language::next_words(views, before);
            if let Some(console) = user::next_words(CONFIG_VIEWS, complete, partial) {
                next.can_end |= console.can_end;
                next.words.extend(console.words);
            }
            next
        }
    };
    if next.can_end && is_display(&typed) {
        next.words.push(Help { word: "|".into(), description: "Matching output".into(), keyword: true });
    }
    next
}

/// Tab: the keywords that complete the last word of `before` in `place`.
pub fn completions(place: &Place, before: &str) -> Vec<String> {
    if before.is_empty() || before.ends_with(char::is_whitespace) {
        return Vec::new();
    }
    let mut words: Vec<String> = next_words(place, before)
        .words
        .into_iter()
        .filter(|h| h.keyword && h.word != "|")
        .map(|h| h.word)
        .collect();
    words.sort();
    words.dedup();
    words
}

fn is_display(words: &[String]) -> bool {
    words.first().is_some_and(|w| language::expand(w, &["display"]).is_ok())
}

/// The words after `| ` (`?` after a pipe).
fn filter_words(before: &str) -> NextWords {
    let after = before.rsplit_once('|').map_or("", |(_, a)| a);
    let typed: Vec<&str> = after.split_whitespace().collect();
    let ends = after.ends_with(char::is_whitespace);
    let help = |word: &str, description: &str, keyword| Help {
        word: word.into(),
        description: description.into(),
        keyword,
    };
    match (typed.as_slice(), ends) {
        ([], _) | ([_], false) => NextWords {
            words: crate::filter::KEYWORDS
                .iter()
                .filter(|(k, _)| typed.first().is_none_or(|p| k.starts_with(&p.to_ascii_lowercase())))
                .map(|(k, d)| help(k, d, true))
                .collect(),
            can_end: false,
        },
        ([count], true) if language::expand(count, &["count"]).is_ok() => {
            NextWords { words: Vec::new(), can_end: true }
        }
        ([_], true) => NextWords { words: vec![help("TEXT", "Regular expression", false)], can_end: false },
        _ => NextWords { words: Vec::new(), can_end: true },
    }
}

/// The first keywords of the language in `views` (and of the system view, whose commands
/// every view reads).
fn first_keywords(views: &[String]) -> Vec<String> {
    let mut words: Vec<String> = language::next_words(views, "").words.into_iter().map(|h| h.word).collect();
    words.extend(language::next_words(&[], "").words.into_iter().map(|h| h.word));
    words.sort();
    words.dedup();
    words
}

/// The words of a console command with their character offsets.
fn words(line: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.chars().chain([' ']).enumerate() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push((s, line.chars().skip(s).take(i - s).collect()));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Where a missing word goes: one blank after the line's last word.
fn line_end(line: &str) -> usize {
    line.trim_end().chars().count() + 1
}

/// Splits `display … | include REGEX` into the command and its filter.
fn split_filter(line: &str) -> Result<(&str, Option<Filter>), LineError> {
    let Some(at) =
        line.find(" | ").or_else(|| line.trim_end().ends_with(" |").then(|| line.trim_end().len() - 2))
    else {
        return Ok((line, None));
    };
    let command = &line[..at];
    if !is_display(&words(command).into_iter().map(|(_, w)| w).collect::<Vec<_>>()) {
        // A `|` in a configuration line is a value (a key may hold one).
        return Ok((line, None));
    }
    let offset = command.chars().count() + 3;
    Filter::parse(line[at + 2..].trim_start(), offset).map(|f| (command, Some(f)))
}

fn caret(e: LineError) -> Outcome {
    let detail = (e.kind == ErrorKind::WrongParameter && e.detail.starts_with("unsupported"))
        .then(|| format!("Info: {}", e.detail));
    Outcome::Caret { offset: e.offset, message: e.kind.message(), detail }
}

/// The daemon's refusal as VRP prints an error.
fn vrp_error(e: String) -> String {
    if e.starts_with("Error") {
        e
    } else {
        format!("Error: {e}")
    }
}

/// `?`'s list: one word a line with its description, then `<cr>` when the line may end.
pub fn format_help(next: &NextWords) -> String {
    let mut words: Vec<&Help> = next.words.iter().collect();
    // Arguments first, then keywords alphabetically, as the device lists them.
    words.sort_by(|a, b| (a.keyword, a.word == "|", &a.word).cmp(&(b.keyword, b.word == "|", &b.word)));
    words.dedup_by(|a, b| a.word == b.word);
    let mut text = String::new();
    for help in words {
        text.push_str(&format!("  {:<24}{}\n", help.word, help.description));
    }
    if next.can_end {
        text.push_str("  <cr>\n");
    }
    if text.is_empty() {
        text.push_str("Error: Unrecognized command found at '^' position.\n");
    }
    text
}

#[cfg(test)]
mod tests;
