//! The `---- More ----` pager of the displays on a terminal, as VRP's: a screen of lines,
//! then `  ---- More ----`; space shows the next screen, Enter the next line, `q` (or
//! Ctrl-C) stops. Text arrives page by page from the daemon ([`crate::pages`]), so a
//! stopped display asks for no more pages. Off a terminal every line is written at once.

use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::Path;

use crate::client::{call, pages, ClientError};
use crate::{page, Request, Response, DEFAULT_PAGE_ROWS};

/// The prompt between two screens, as VRP prints it.
pub const MORE: &str = "  ---- More ----";

/// What the operator typed at the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Space: the next screen.
    Screen,
    /// Enter: the next line.
    Line,
    /// `q`, Ctrl-C, end of input: stop.
    Quit,
}

impl Key {
    /// The key a byte read from the terminal means; `None` for keys that do nothing.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            b' ' => Some(Self::Screen),
            b'\r' | b'\n' => Some(Self::Line),
            b'q' | b'Q' | 0x03 | 0x04 | 0x1a => Some(Self::Quit),
            _ => None,
        }
    }
}

/// A pager writing to `out`, asking `keys` at each prompt, `height` lines a screen.
pub struct Pager<W, K> {
    out: W,
    keys: K,
    /// Lines a screen holds before the prompt (`None`: no prompt, every line at once).
    height: Option<usize>,
    /// Lines allowed before the next prompt.
    left: usize,
    stopped: bool,
}

impl<W: Write, K: FnMut() -> io::Result<Key>> Pager<W, K> {
    /// A pager that prompts every `height` lines (`None`: never).
    pub fn new(out: W, keys: K, height: Option<usize>) -> Self {
        let height = height.map(|h| h.max(2) - 1);
        Self { out, keys, left: height.unwrap_or(0), height, stopped: false }
    }

    /// Writes `text` (whole lines), prompting between screens; `false` once the operator
    /// stopped (the rest is not written and no more should be fetched).
    pub fn write(&mut self, text: &str) -> io::Result<bool> {
        for line in text.split_inclusive('\n') {
            if self.stopped {
                break;
            }
            if let Some(height) = self.height {
                if self.left == 0 {
                    write!(self.out, "{MORE}")?;
                    self.out.flush()?;
                    let key = (self.keys)()?;
                    // The prompt is erased, as VRP does, so that the lines read on.
                    write!(self.out, "\r{}\r", " ".repeat(MORE.len()))?;
                    match key {
                        Key::Screen => self.left = height,
                        Key::Line => self.left = 1,
                        Key::Quit => {
                            self.stopped = true;
                            break;
                        }
                    }
                }
                self.left -= 1;
            }
            self.out.write_all(line.as_bytes())?;
        }
        self.out.flush()?;
        Ok(!self.stopped)
    }
}

/// The terminal of standard input in VRP's key-at-a-time mode (no echo, no line editing)
/// while it lives; restored when dropped.
pub struct RawInput {
    saved: rustix::termios::Termios,
}

impl RawInput {
    /// Standard input in key-at-a-time mode; `None` when it is not a terminal.
    pub fn new() -> Option<Self> {
        let stdin = io::stdin();
        let saved = rustix::termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        // Without signals too: Ctrl-C is a key that stops the display (the console's shell
        // goes on), not a signal that ends the process.
        raw.local_modes -= rustix::termios::LocalModes::ICANON
            | rustix::termios::LocalModes::ECHO
            | rustix::termios::LocalModes::ISIG;
        raw.special_codes[rustix::termios::SpecialCodeIndex::VMIN] = 1;
        raw.special_codes[rustix::termios::SpecialCodeIndex::VTIME] = 0;
        rustix::termios::tcsetattr(stdin.as_fd(), rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(Self { saved })
    }

    /// The next key that means something (others are ignored); end of input quits. One
    /// byte is read at a time, unbuffered, so that what is typed after the display stays
    /// for the line editor.
    pub fn key(&mut self) -> io::Result<Key> {
        let mut byte = [0u8];
        loop {
            if rustix::io::read(io::stdin(), &mut byte)? == 0 {
                return Ok(Key::Quit);
            }
            if let Some(key) = Key::from_byte(byte[0]) {
                return Ok(key);
            }
        }
    }
}

impl Drop for RawInput {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            io::stdin().as_fd(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// The height of the terminal on standard output, when it is one and says.
pub fn terminal_height() -> Option<usize> {
    let size = rustix::termios::tcgetwinsize(io::stdout().as_fd()).ok()?;
    (size.ws_row > 0).then_some(usize::from(size.ws_row))
}

/// How `keysteward display` prints a display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The device's text: through the pager on a terminal, all of it otherwise.
    Text,
    /// The JSON facts, one object a line (one line per page of the SA displays).
    JsonLines,
    /// Only `Total lines: N.` ([`count_line`]).
    Count,
}

/// Prints `display` from the daemon at `path` on standard output: the SA displays
/// ([`page::streams`]) page by page, fetching the next page only when the pager needs it;
/// the text through `---- More ----` when standard input and output are a terminal.
pub fn show(path: &Path, display: &Request, output: Output) -> Result<(), ClientError> {
    let stdout = io::stdout();
    let interactive = output == Output::Text && stdout.is_terminal() && io::stdin().is_terminal();
    let mut raw = if interactive { RawInput::new() } else { None };
    let height = raw.as_ref().map(|_| terminal_height().unwrap_or(24));
    let keys = || raw.as_mut().map_or(Ok(Key::Quit), RawInput::key);
    let mut pager = Pager::new(stdout.lock(), keys, height);
    let answers: Box<dyn Iterator<Item = Result<(String, serde_json::Value), ClientError>>> =
        if page::streams(display) {
            Box::new(pages(path, display, DEFAULT_PAGE_ROWS).map(|p| p.map(|p| (p.text, p.json))))
        } else {
            Box::new(std::iter::once(call(path, display).and_then(|response| match response {
                Response::Ok { text, json } => Ok((text, json)),
                Response::Error(e) => Err(ClientError::Refused(e)),
            })))
        };
    let mut lines = 0;
    for answer in answers {
        let (text, json) = answer?;
        let written = match output {
            Output::Count => {
                lines += text.lines().count();
                Ok(true)
            }
            Output::JsonLines => pager.write(&format!("{json}\n")),
            Output::Text => pager.write(&text),
        };
        match written {
            Ok(true) => {}
            Ok(false) => break,
            // A reader that went away (`| head`) has what it wanted.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(ClientError::Output(e)),
        }
    }
    if output == Output::Count {
        pager.write(&count_line(lines)).map_err(ClientError::Output)?;
    }
    Ok(())
}

/// VRP's `| count` line: `Total lines: N.`
pub fn count_line(lines: usize) -> String {
    format!("Total lines: {lines}.\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, height: Option<usize>, keys: &[Key]) -> (String, bool, usize) {
        let mut out = Vec::new();
        let mut asked = 0;
        let mut keys = keys.iter().copied();
        let going = {
            let mut pager = Pager::new(
                &mut out,
                || {
                    asked += 1;
                    Ok(keys.next().unwrap_or(Key::Quit))
                },
                height,
            );
            // Two pages from the daemon.
            let half = text.len() / 2;
            let cut = text[..half].rfind('\n').map_or(0, |i| i + 1);
            pager.write(&text[..cut]).unwrap() && pager.write(&text[cut..]).unwrap()
        };
        (String::from_utf8(out).unwrap(), going, asked)
    }

    fn numbered(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    const ERASE: &str = "  ---- More ----\r                \r";

    #[test]
    fn space_shows_a_screen_enter_a_line_q_stops() {
        let text = numbered(20);
        let (out, going, asked) = run(&text, Some(5), &[Key::Screen, Key::Line, Key::Quit]);
        let expected = format!(
            "{}{ERASE}{}{ERASE}{}{ERASE}",
            numbered(4),
            (5..=8).map(|i| format!("line {i}\n")).collect::<String>(),
            "line 9\n"
        );
        assert_eq!(out, expected);
        assert_eq!((going, asked), (false, 3));
    }

    #[test]
    fn off_a_terminal_everything_at_once() {
        let text = numbered(1000);
        assert_eq!(run(&text, None, &[]), (text, true, 0));
        // A display shorter than a screen asks nothing either.
        let short = numbered(3);
        assert_eq!(run(&short, Some(24), &[]), (short, true, 0));
    }

    #[test]
    fn keys_and_count() {
        assert_eq!(Key::from_byte(b' '), Some(Key::Screen));
        assert_eq!(Key::from_byte(b'\r'), Some(Key::Line));
        assert_eq!(Key::from_byte(b'q'), Some(Key::Quit));
        assert_eq!(Key::from_byte(b'x'), None);
        assert_eq!(count_line(42), "Total lines: 42.\n");
    }
}
