//! `| include REGEX`, `| exclude REGEX`, `| begin REGEX` and `| count` after a display, as
//! on VRP: the console filters the display's text; the daemon never sees the filter.

use regex::Regex;
use vrp::console::{expand, ErrorKind, LineError};

/// The filters with their descriptions, for `?`.
pub(crate) const KEYWORDS: &[(&str, &str)] = &[
    ("begin", "Match the first line and show it and every line after it"),
    ("count", "Count the lines of the output"),
    ("exclude", "Show the lines that do not match"),
    ("include", "Show the lines that match"),
];

/// A display's filter.
#[derive(Clone, Debug)]
pub(crate) enum Filter {
    Include(Regex),
    Exclude(Regex),
    Begin(Regex),
    Count,
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Filter::Include(a), Filter::Include(b))
            | (Filter::Exclude(a), Filter::Exclude(b))
            | (Filter::Begin(a), Filter::Begin(b)) => a.as_str() == b.as_str(),
            (Filter::Count, Filter::Count) => true,
            _ => false,
        }
    }
}

impl Filter {
    /// Reads the text after `| ` (`include  ^ike peer`); `offset` is where it starts in the
    /// typed line, for the caret. The expression is the rest of the line after one blank.
    pub(crate) fn parse(text: &str, offset: usize) -> Result<Filter, LineError> {
        let error = |offset, kind| LineError { offset, kind, detail: String::new() };
        let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        if word.is_empty() {
            return Err(error(offset, ErrorKind::Incomplete));
        }
        let keywords: Vec<&str> = KEYWORDS.iter().map(|(k, _)| *k).collect();
        let keyword = expand(word, &keywords).map_err(|list| {
            error(offset, if list.len() > 1 { ErrorKind::Ambiguous } else { ErrorKind::Unrecognized })
        })?;
        let rest_offset = offset + word.chars().count() + 1;
        if keyword == "count" {
            return match rest.trim() {
                "" => Ok(Filter::Count),
                _ => Err(error(rest_offset, ErrorKind::TooManyParameters)),
            };
        }
        if rest.trim().is_empty() {
            return Err(error(rest_offset, ErrorKind::Incomplete));
        }
        let regex = Regex::new(rest.trim()).map_err(|_| error(rest_offset, ErrorKind::WrongParameter))?;
        Ok(match keyword {
            "include" => Filter::Include(regex),
            "exclude" => Filter::Exclude(regex),
            _ => Filter::Begin(regex),
        })
    }

    /// The display's text through the filter, whole.
    #[cfg(test)]
    pub(crate) fn apply(&self, text: &str) -> String {
        let mut sift = self.sift();
        let mut out = sift.feed(text);
        out.push_str(&sift.finish());
        out
    }

    /// The filter for a display read page by page ([`Sift`]).
    pub(crate) fn sift(&self) -> Sift<'_> {
        Sift { filter: self, begun: false, lines: 0, partial: String::new() }
    }
}

/// A filter applied to a display as its pages arrive, line by line, so that a filtered
/// display is paged (and stopped) like any other: filter first, then page. `| count` gives
/// nothing until [`Sift::finish`].
pub(crate) struct Sift<'a> {
    filter: &'a Filter,
    /// `| begin` has matched.
    begun: bool,
    /// Lines seen (for `| count`).
    lines: usize,
    /// The end of the text so far when it is not a whole line.
    partial: String,
}

impl Sift<'_> {
    /// The lines of `text` (a page) the filter keeps, each ending in a line feed.
    pub(crate) fn feed(&mut self, text: &str) -> String {
        let mut out = String::new();
        let text = std::mem::take(&mut self.partial) + text;
        for piece in text.split_inclusive('\n') {
            match piece.strip_suffix('\n') {
                Some(line) => self.line(line, &mut out),
                None => self.partial = piece.to_owned(),
            }
        }
        out
    }

    /// What is left at the end of the display: its last line when it had no line feed,
    /// `Total lines: N.` for `| count`.
    pub(crate) fn finish(&mut self) -> String {
        let mut out = String::new();
        let partial = std::mem::take(&mut self.partial);
        if !partial.is_empty() {
            self.line(&partial, &mut out);
        }
        if *self.filter == Filter::Count {
            out = control::pager::count_line(self.lines);
        }
        out
    }

    fn line(&mut self, line: &str, out: &mut String) {
        // As `str::lines`: a carriage return before the line feed is not the line's.
        let line = line.strip_suffix('\r').unwrap_or(line);
        self.lines += 1;
        let keep = match self.filter {
            Filter::Include(r) => r.is_match(line),
            Filter::Exclude(r) => !r.is_match(line),
            Filter::Begin(r) => {
                self.begun |= r.is_match(line);
                self.begun
            }
            Filter::Count => false,
        };
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str =
        "#\nsysname FW_A\n#\nike peer b\n pre-shared-key %^%#x%^%#\n remote-address 1.2.3.4\n#\nreturn\n";

    #[test]
    fn include_exclude_begin_and_count() {
        let f = Filter::parse("inc remote", 0).unwrap();
        assert_eq!(f.apply(TEXT), " remote-address 1.2.3.4\n");
        let f = Filter::parse("e #", 0).unwrap();
        assert!(!f.apply(TEXT).contains('#'));
        let f = Filter::parse("begin ^ike peer", 0).unwrap();
        assert!(f.apply(TEXT).starts_with("ike peer b\n pre-shared-key"));
        assert_eq!(Filter::parse("count", 0).unwrap().apply(TEXT), "Total lines: 8.\n");
        assert_eq!(Filter::parse("include x", 0).unwrap().apply(TEXT), " pre-shared-key %^%#x%^%#\n");
    }

    /// Page by page (cut anywhere, even inside a line) the same as the whole text at once.
    #[test]
    fn pages_filter_as_the_whole_text() {
        let text = format!("{TEXT}{TEXT}no line feed at the end");
        for filter in ["inc remote", "exc #", "begin ^ike peer", "count", "include end$"] {
            let filter = Filter::parse(filter, 0).unwrap();
            let whole = filter.apply(&text);
            for cut in 0..text.len() {
                let mut sift = filter.sift();
                let mut out = sift.feed(&text[..cut]);
                out.push_str(&sift.feed(&text[cut..]));
                out.push_str(&sift.finish());
                assert_eq!(out, whole, "{filter:?} cut at {cut}");
            }
        }
        assert_eq!(Filter::parse("count", 0).unwrap().apply("a\r\n\nb"), "Total lines: 3.\n");
        assert_eq!(Filter::parse("inc a", 0).unwrap().apply("a\r\nb\n"), "a\n");
    }

    #[test]
    fn bad_filters_point_at_the_word() {
        assert_eq!(Filter::parse("grep x", 30).unwrap_err().offset, 30);
        assert_eq!(Filter::parse("include", 30).unwrap_err().kind, ErrorKind::Incomplete);
        let e = Filter::parse("include (", 30).unwrap_err();
        assert_eq!((e.offset, e.kind), (38, ErrorKind::WrongParameter));
        assert_eq!(Filter::parse("count x", 30).unwrap_err().kind, ErrorKind::TooManyParameters);
    }
}
