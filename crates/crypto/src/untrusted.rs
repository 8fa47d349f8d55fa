//! Text made from bytes a peer chose (ID payload names, certificate names): the one place
//! such bytes become text for logs, displays and error messages.

/// At most this many characters of a peer's text are kept; a longer text ends in `…`.
pub const MAX_CHARS: usize = 255;

/// `bytes` as printable text: UTF-8 is kept (invalid sequences become U+FFFD), control
/// characters and invisible line or direction changers are escaped (`\x0a`, `\u{202e}`), a
/// backslash is doubled, and the text is cut after [`MAX_CHARS`] characters with `…`. A peer
/// can thus neither break a log line or a display into lines of its own making nor grow it
/// without bound; the escaping is unambiguous, so distinct names stay distinct.
pub fn printable(bytes: &[u8]) -> String {
    printable_str(&String::from_utf8_lossy(bytes))
}

/// [`printable`] for text already decoded (e.g. a DN a parser rendered).
pub fn printable_str(text: &str) -> String {
    printable_within(text, MAX_CHARS)
}

/// [`printable_str`] cut after `max_chars` characters instead of [`MAX_CHARS`] (a one-line
/// summary that shows several names).
pub fn printable_within(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars + 8));
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_control() && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            // Line and paragraph separators and the bidirectional controls (RFC 9839 would
            // call them problematic): shown, never obeyed.
            '\u{2028}'
            | '\u{2029}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_printable_text_and_utf8() {
        assert_eq!(printable(b"fw-b.example.com"), "fw-b.example.com");
        assert_eq!(printable_str("CN=Zürich Büro"), "CN=Zürich Büro");
    }

    #[test]
    fn escapes_controls_newlines_and_backslash() {
        let text = printable(b"b.example\n2026-12-07T08:00:00Z INFO fake line\x1b[2J\\\x7f");
        assert_eq!(text, "b.example\\x0a2026-12-07T08:00:00Z INFO fake line\\x1b[2J\\\\\\x7f");
        assert!(!text.chars().any(char::is_control));
        assert_eq!(printable_str("a\u{202e}b\u{2028}c\u{85}"), "a\\u{202e}b\\u{2028}c\\x85");
        assert_eq!(printable(b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn bounds_length_with_an_ellipsis() {
        let long = "x".repeat(MAX_CHARS + 100);
        let text = printable(long.as_bytes());
        assert_eq!(text.chars().count(), MAX_CHARS + 1);
        assert!(text.ends_with("x…"));
        assert_eq!(printable("x".repeat(MAX_CHARS).as_bytes()), "x".repeat(MAX_CHARS));
    }
}
