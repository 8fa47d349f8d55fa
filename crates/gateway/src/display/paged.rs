//! The daemon's answer to [`Request::Page`]: one page of a display ([`vrp_display::page`]),
//! so that the answer never grows past a page on a hub with 10,000s of SAs. `display ike sa
//! [verbose]` and `display ipsec sa brief` read their page from the cursor on, in the
//! engine's index by conn-id and the records in conn-id order: a page costs its own rows
//! plus O(log N). `display ipsec sa` (ordered by interface and policy) and the session table
//! (sessions aggregated over SAs) still take one pass over the SAs keeping one page's rows;
//! a `display ipsec sa` page reads the data plane's counters of its own pairs only.
//! The displays that do not grow with the SAs (configurations, proposals, statistics) are
//! rendered whole and cut into pages of lines.

use serde_json::json;

use super::live::{self, Live};
use super::page::{self, PageText};
use super::summary;
use crate::control::{Page, Request, Response, MAX_PAGE_ROWS};
use crate::records::Records;

/// The page of `display` after `after`, of at most `rows` rows ([`MAX_PAGE_ROWS`]); `None`
/// when `display` is not one of the SA displays, which the daemon then renders whole and
/// hands to [`lines`].
pub fn sa_page(
    live: &Live<'_>,
    records: &Records,
    display: &Request,
    after: Option<&str>,
    rows: u32,
) -> Option<Response> {
    let size = rows.clamp(1, MAX_PAGE_ROWS) as usize;
    let page = match display {
        // These three walk only their page, from the cursor in ordered indexes (the first
        // page of `ipsec sa brief` counts the pairs for its header without building them).
        Request::DisplayIkeSa => page::cursor(after).map(|after| {
            let total = records.installed_len() + live.engine.ike_sa_count();
            let rows = summary::ike_sa_rows(live.engine, records, after);
            page::ike_sa_from(rows, total, after.is_none(), size)
        }),
        Request::DisplayIpsecSaBrief => page::cursor(after).map(|after| {
            let totals =
                after.is_none().then(|| live.engine.ipsec_sa_lines()).map(|(pairs, sas)| (sas, pairs));
            page::ipsec_sa_brief_from(
                summary::ipsec_sa_brief_pairs(live.engine, live.now, after),
                totals,
                size,
            )
        }),
        Request::DisplayIkeSaVerbose { remote, conn_id } => page::cursor(after).map(|after: Option<u64>| {
            let sas = live.engine.ike_sas_after(after.map(ike::ConnectionId));
            page::ike_sa_verbose_from(
                sas.filter(|sa| remote.is_none_or(|r| sa.remote.ip() == r))
                    .filter(|sa| conn_id.is_none_or(|c| sa.connection.0 == c)),
                |sa| sa.connection.0,
                |sa| live::ike_sa_detail(&sa, live.engine.config(), live.now),
                after.is_none(),
                size,
            )
        }),
        Request::DisplayIpsecSa { remote } => page::ipsec_sa(
            live::ipsec_sa_pairs(live, *remote),
            |p| live::ipsec_sa_key(live, p),
            |p| live::ipsec_sa_view(live, p),
            after,
            size,
        ),
        Request::DisplayFirewallSessionTable { verbose } => {
            page::sessions(live::session_rows(live), *verbose, after, size)
        }
        _ => return None,
    };
    Some(answer(page))
}

/// A page of lines of `whole`, the unpaged answer of a display that does not grow with the
/// SAs: its JSON is `{"lines": [...]}`; an error stays the error.
pub fn lines(whole: Response, after: Option<&str>, rows: u32) -> Response {
    let text = match whole {
        Response::Ok { text, .. } => text,
        error @ Response::Error(_) => return error,
    };
    let size = rows.clamp(1, MAX_PAGE_ROWS) as usize;
    answer(page::lines(&text, after, size).map(|(text, next)| {
        let lines: Vec<&str> = text.lines().collect();
        let json = json!({ "lines": lines });
        PageText { text, json, next }
    }))
}

/// Whether `display` may be paged: a read-only request, not itself a page.
pub fn pageable(display: &Request) -> bool {
    !display.changes_state() && !matches!(display, Request::Page { .. })
}

fn answer(page: Result<PageText, String>) -> Response {
    match page {
        Ok(PageText { text, json, next }) => Page { text, json, next }.into_response(),
        Err(e) => Response::Error(e),
    }
}
