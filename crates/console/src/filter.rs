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

    /// The display's text through the filter.
    pub(crate) fn apply(&self, text: &str) -> String {
        let lines = text.lines();
        let kept: Vec<&str> = match self {
            Filter::Include(r) => lines.filter(|l| r.is_match(l)).collect(),
            Filter::Exclude(r) => lines.filter(|l| !r.is_match(l)).collect(),
            Filter::Begin(r) => lines.skip_while(|l| !r.is_match(l)).collect(),
            Filter::Count => return control::pager::count_line(text.lines().count()),
        };
        let mut out = kept.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        out
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

    #[test]
    fn bad_filters_point_at_the_word() {
        assert_eq!(Filter::parse("grep x", 30).unwrap_err().offset, 30);
        assert_eq!(Filter::parse("include", 30).unwrap_err().kind, ErrorKind::Incomplete);
        let e = Filter::parse("include (", 30).unwrap_err();
        assert_eq!((e.offset, e.kind), (38, ErrorKind::WrongParameter));
        assert_eq!(Filter::parse("count x", 30).unwrap_err().kind, ErrorKind::TooManyParameters);
    }
}
