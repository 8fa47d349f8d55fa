//! Paged displays: on a hub with 10,000s of SAs, `display ike sa` and the others are read
//! as a sequence of [`Request::Page`] requests, each answered with at most
//! [`MAX_PAGE_ROWS`] rows and the cursor of the next page, so that no answer (and no work
//! the daemon does for one) grows with the number of SAs beyond one page's rows.
//!
//! On the wire a page is an ordinary [`Response::Ok`]: its `text` is the page's part of the
//! display (the first page starts with the header and its totals; the pages' texts
//! concatenated are the whole display), its `json` is `{"page": FACTS, "next": CURSOR}`,
//! where `FACTS` has the unpaged display's JSON shape restricted to the page's rows and
//! `CURSOR` is an opaque string (`null` on the last page).

use serde_json::json;

use crate::{Request, Response};

/// Rows a page holds unless the request says otherwise.
pub const DEFAULT_PAGE_ROWS: u32 = 100;

/// The most rows the daemon puts in one page, whatever the request asks: with the longest
/// row (an `ipsec sa` pair with AH and ESP, about 1.5 KB of text and as much JSON) a page
/// stays far below [`crate::MAX_LINE`].
pub const MAX_PAGE_ROWS: u32 = 200;

/// The default of [`Request::Page`]'s `rows`.
pub fn default_rows() -> u32 {
    DEFAULT_PAGE_ROWS
}

/// One page of a display.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The page's text; the pages' texts concatenated are the whole display.
    pub text: String,
    /// The page's facts, in the unpaged display's JSON shape.
    pub json: serde_json::Value,
    /// The cursor of the next page; `None` on the last.
    pub next: Option<String>,
}

impl Page {
    /// The daemon's answer for this page.
    pub fn into_response(self) -> Response {
        Response::Ok { text: self.text, json: json!({ "page": self.json, "next": self.next }) }
    }

    /// The page an answer to a [`Request::Page`] carries; the daemon's error message
    /// otherwise.
    pub fn from_response(response: Response) -> Result<Self, String> {
        match response {
            Response::Ok { text, mut json } => {
                let next = json.get("next").and_then(|n| n.as_str()).map(str::to_owned);
                let facts = json.get_mut("page").map(serde_json::Value::take);
                let json = facts.ok_or_else(|| "the daemon's answer is not a page".to_owned())?;
                Ok(Self { text, json, next })
            }
            Response::Error(e) => Err(e),
        }
    }
}

/// Whether `display` grows with the SAs, and so is read page by page by the command line
/// (`display ike sa [verbose]`, `display ipsec sa [brief]`, `display firewall session
/// table`). The daemon pages any display (the others by lines), but these alone keep their
/// JSON shape in pages.
pub fn streams(display: &Request) -> bool {
    matches!(
        display,
        Request::DisplayIkeSa
            | Request::DisplayIkeSaVerbose { .. }
            | Request::DisplayIpsecSa { .. }
            | Request::DisplayIpsecSaBrief
            | Request::DisplayFirewallSessionTable { .. }
    )
}

/// The request for the page of `display` after `after`, of `rows` rows.
pub fn request(display: &Request, after: Option<String>, rows: u32) -> Request {
    Request::Page { display: Box::new(display.clone()), after, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_request_on_the_wire() {
        let first = request(&Request::DisplayIkeSa, None, 50);
        let text = serde_json::to_string(&first).unwrap();
        assert_eq!(
            text,
            r#"{"command":"page","display":{"command":"display-ike-sa"},"after":null,"rows":50}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), first);
        let short: Request =
            serde_json::from_str(r#"{"command":"page","display":{"command":"display-ipsec-sa-brief"}}"#)
                .unwrap();
        assert_eq!(
            short,
            Request::Page {
                display: Box::new(Request::DisplayIpsecSaBrief),
                after: None,
                rows: DEFAULT_PAGE_ROWS
            }
        );
        assert!(!short.changes_state());
        assert!(request(&Request::Save, None, 1).changes_state());
    }

    #[test]
    fn a_page_survives_its_response() {
        let page = Page { text: "a\n".into(), json: json!({ "sas": [1] }), next: Some("[1,2]".into()) };
        assert_eq!(Page::from_response(page.clone().into_response()), Ok(page));
        let last = Page { text: String::new(), json: json!({}), next: None };
        assert_eq!(Page::from_response(last.clone().into_response()), Ok(last));
        assert_eq!(Page::from_response(Response::Error("no".into())), Err("no".into()));
    }
}
