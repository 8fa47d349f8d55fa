//! Pages of the displays that grow with the SAs: a page is the rows after a cursor in the
//! display's stable order, chosen from the live rows with a heap of one page's size, so
//! that answering a page costs one pass over the SAs and memory for one page's rows, never
//! a copy of the whole display. The cursor is the last row's key (JSON text), so the
//! daemon keeps nothing between pages and a page stays right when SAs come and go between
//! two requests (rows before the cursor are not repeated, none after it is skipped).
//!
//! The first page starts with the display's header and totals; the pages' texts
//! concatenated are the unpaged display's text (the renderers are shared).

use std::collections::BinaryHeap;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The rows of one page, with the totals of the whole display.
#[derive(Debug)]
pub struct Selected<K, T> {
    /// The page's rows, in key order.
    pub rows: Vec<(K, T)>,
    /// How many rows the display has in all.
    pub total: usize,
    /// The sum of `weight` over every row (e.g. SAs of the IPsec SA pairs).
    pub total_weight: usize,
    /// Whether rows follow this page.
    pub more: bool,
}

impl<K: Serialize, T> Selected<K, T> {
    /// The cursor of the next page: the last row's key, or `None` on the last page.
    pub fn next(&self) -> Option<String> {
        if !self.more {
            return None;
        }
        self.rows.last().and_then(|(key, _)| serde_json::to_string(key).ok())
    }
}

/// The cursor `after` as the display's key; `None` for the first page.
pub fn cursor<K: DeserializeOwned>(after: Option<&str>) -> Result<Option<K>, String> {
    after
        .map(|text| {
            serde_json::from_str(text).map_err(|_| format!("Error: not a cursor of this display: {text}"))
        })
        .transpose()
}

/// A row in the heap, ordered by its key alone.
struct Entry<K, T>(K, T);

impl<K: Ord, T> PartialEq for Entry<K, T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<K: Ord, T> Eq for Entry<K, T> {}
impl<K: Ord, T> PartialOrd for Entry<K, T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord, T> Ord for Entry<K, T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

/// The `rows` items of smallest key above `after` (every item when `after` is `None`),
/// from one pass over `items` keeping at most `rows + 1` of them. Keys are unique within a
/// display. `weight` counts what the header totals besides the rows.
pub fn select<K: Ord, T>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> K,
    weight: impl Fn(&T) -> usize,
    after: Option<&K>,
    rows: usize,
) -> Selected<K, T> {
    let rows = rows.max(1);
    // A max-heap of the smallest keys seen: its top is the largest kept, dropped when a
    // smaller one arrives and the heap holds one more than a page (the one more says
    // whether rows follow).
    let mut heap: BinaryHeap<Entry<K, T>> = BinaryHeap::with_capacity(rows + 1);
    let (mut total, mut total_weight) = (0, 0);
    for item in items {
        total += 1;
        total_weight += weight(&item);
        let k = key(&item);
        if after.is_some_and(|a| k <= *a) {
            continue;
        }
        if heap.len() <= rows {
            heap.push(Entry(k, item));
        } else if heap.peek().is_some_and(|top| k < top.0) {
            heap.pop();
            heap.push(Entry(k, item));
        }
    }
    let more = heap.len() > rows;
    if more {
        heap.pop();
    }
    let rows = heap.into_sorted_vec().into_iter().map(|Entry(k, t)| (k, t)).collect();
    Selected { rows, total, total_weight, more }
}

/// The first `size` of `ordered` — rows already in the display's order, from the first
/// after the cursor (an ordered index ranged from it) — and whether rows follow. Reads at
/// most `size + 1` rows: a page costs its own rows, whatever the number of SAs.
pub fn take<T>(ordered: impl IntoIterator<Item = T>, size: usize) -> (Vec<T>, bool) {
    let size = size.max(1);
    let mut rows: Vec<T> = ordered.into_iter().take(size + 1).collect();
    let more = rows.len() > size;
    rows.truncate(size);
    (rows, more)
}

/// The cursor after `last` when rows follow.
fn next_cursor<K: Serialize>(more: bool, last: Option<K>) -> Option<String> {
    last.filter(|_| more).and_then(|key| serde_json::to_string(&key).ok())
}

/// A page of `display ike sa` from `rows`, its lines in [`crate::ike_sa_key`]'s order from
/// the first after the cursor ([`take`]); `total` (the display's lines) heads the first page
/// (`first`: no cursor).
pub fn ike_sa_from(
    rows: impl IntoIterator<Item = crate::IkeSaRow>,
    total: usize,
    first: bool,
    size: usize,
) -> PageText {
    let (rows, more) = take(rows, size);
    let mut text = if first { crate::ike_sa_header(total) } else { String::new() };
    for row in &rows {
        crate::ike_sa_line(&mut text, row);
    }
    let next = next_cursor(more, rows.last().map(crate::ike_sa_key));
    PageText { text, json: serde_json::json!({ "sas": rows }), next }
}

/// A page of `display ipsec sa brief` from `pairs`, in [`PairKey`] order from the first after
/// the cursor ([`take`]); the first page's header counts `totals` (SAs, i.e. lines, and
/// pairs), which the other pages do without.
pub fn ipsec_sa_brief_from(
    pairs: impl IntoIterator<Item = (PairKey, Vec<crate::IpsecSaRow>)>,
    totals: Option<(usize, usize)>,
    size: usize,
) -> PageText {
    let (pairs, more) = take(pairs, size);
    let next = next_cursor(more, pairs.last().map(|p| p.0));
    let mut text =
        totals.map_or_else(String::new, |(sas, tunnels)| crate::ipsec_sa_brief_header(sas, tunnels));
    for row in pairs.iter().flat_map(|p| &p.1) {
        crate::ipsec_sa_brief_line(&mut text, row);
    }
    let sas: Vec<_> = pairs.into_iter().flat_map(|p| p.1).collect();
    let json = match totals {
        Some((_, tunnels)) => serde_json::json!({ "sas": sas, "tunnels": tunnels }),
        None => serde_json::json!({ "sas": sas }),
    };
    PageText { text, json, next }
}

/// A page of `display ike sa verbose` from `sas`, by conn-id from the first after the
/// cursor ([`take`]); `detail` builds the view of the page's SAs only.
pub fn ike_sa_verbose_from<V>(
    sas: impl IntoIterator<Item = V>,
    key: impl Fn(&V) -> u64,
    detail: impl Fn(V) -> crate::ike::IkeSaDetail,
    first: bool,
    size: usize,
) -> PageText {
    let (sas, more) = take(sas, size);
    let next = next_cursor(more, sas.last().map(&key));
    let details: Vec<_> = sas.into_iter().map(detail).collect();
    let mut text = String::new();
    for sa in &details {
        crate::ike::ike_sa_verbose_block(&mut text, sa);
    }
    if first && details.is_empty() {
        text.push_str("current ike sa number: 0\n");
    }
    PageText { text, json: serde_json::json!({ "sas": details }), next }
}

/// One page of a text display that does not grow with the SAs (a configuration, the
/// proposals): `rows` lines after the `after`th, and the cursor of the next page (the
/// number of lines given so far).
pub fn lines(text: &str, after: Option<&str>, rows: usize) -> Result<(String, Option<String>), String> {
    let skip: usize = cursor(after)?.unwrap_or(0);
    let mut page = String::new();
    let mut taken = 0;
    let mut rest = text.split_inclusive('\n').skip(skip);
    for line in rest.by_ref().take(rows.max(1)) {
        page.push_str(line);
        taken += 1;
    }
    let next = rest.next().map(|_| (skip + taken).to_string());
    Ok((page, next))
}

/// One page, rendered: the daemon wraps it in its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct PageText {
    /// The page's text (the header with the totals on the first page).
    pub text: String,
    /// The page's facts, in the unpaged display's JSON shape.
    pub json: serde_json::Value,
    /// The next page's cursor; `None` on the last.
    pub next: Option<String>,
}

/// A page of `display ike sa`, in [`crate::ike_sa_key`]'s order.
pub fn ike_sa(
    rows: impl IntoIterator<Item = crate::IkeSaRow>,
    after: Option<&str>,
    size: usize,
) -> Result<PageText, String> {
    let after = cursor(after)?;
    let page = select(rows, crate::ike_sa_key, |_| 1, after.as_ref(), size);
    let mut text = if after.is_none() { crate::ike_sa_header(page.total) } else { String::new() };
    for (_, row) in &page.rows {
        crate::ike_sa_line(&mut text, row);
    }
    let next = page.next();
    let sas: Vec<_> = page.rows.into_iter().map(|(_, row)| row).collect();
    Ok(PageText { text, json: serde_json::json!({ "sas": sas }), next })
}

/// The key of an IPsec SA pair in `display ipsec sa brief`: conn-id, inbound SPI.
pub type PairKey = (u64, u32);

/// A page of `display ipsec sa brief`: `pairs` are each pair's key and its lines; a page
/// holds `size` pairs. The first page's header counts every SA and pair.
pub fn ipsec_sa_brief(
    pairs: impl IntoIterator<Item = (PairKey, Vec<crate::IpsecSaRow>)>,
    after: Option<&str>,
    size: usize,
) -> Result<PageText, String> {
    let after = cursor(after)?;
    let page = select(pairs, |p| p.0, |p| p.1.len(), after.as_ref(), size);
    let mut text = if after.is_none() {
        crate::ipsec_sa_brief_header(page.total_weight, page.total)
    } else {
        String::new()
    };
    for (_, (_, rows)) in &page.rows {
        for row in rows {
            crate::ipsec_sa_brief_line(&mut text, row);
        }
    }
    let next = page.next();
    let sas: Vec<_> = page.rows.into_iter().flat_map(|(_, (_, rows))| rows).collect();
    let json = if after.is_none() {
        serde_json::json!({ "sas": sas, "tunnels": page.total })
    } else {
        serde_json::json!({ "sas": sas })
    };
    Ok(PageText { text, json, next })
}

/// A page of `display ike sa verbose`, by conn-id: `key` is a phase-1 SA's conn-id,
/// `detail` builds its block's view (only for the page's SAs).
pub fn ike_sa_verbose<V>(
    sas: impl IntoIterator<Item = V>,
    key: impl Fn(&V) -> u64,
    detail: impl Fn(V) -> crate::ike::IkeSaDetail,
    after: Option<&str>,
    size: usize,
) -> Result<PageText, String> {
    let after = cursor(after)?;
    let page = select(sas, key, |_| 1, after.as_ref(), size);
    let next = page.next();
    let details: Vec<_> = page.rows.into_iter().map(|(_, sa)| detail(sa)).collect();
    let mut text = String::new();
    for sa in &details {
        crate::ike::ike_sa_verbose_block(&mut text, sa);
    }
    if after.is_none() && page.total == 0 {
        text.push_str("current ike sa number: 0\n");
    }
    Ok(PageText { text, json: serde_json::json!({ "sas": details }), next })
}

/// A page of `display ipsec sa`, in [`crate::ipsec::IpsecSaKey`]'s order: `key` is a pair's
/// key, `detail` builds its view (only for the page's pairs). A page after the first does
/// not repeat the interface and policy headings the previous page ended under.
pub fn ipsec_sa<V>(
    pairs: impl IntoIterator<Item = V>,
    key: impl Fn(&V) -> crate::ipsec::IpsecSaKey,
    detail: impl Fn(V) -> crate::ipsec::IpsecSaDetail,
    after: Option<&str>,
    size: usize,
) -> Result<PageText, String> {
    let after: Option<crate::ipsec::IpsecSaKey> = cursor(after)?;
    let page = select(pairs, key, |_| 1, after.as_ref(), size);
    let next = page.next();
    let details: Vec<_> = page.rows.into_iter().map(|(_, pair)| detail(pair)).collect();
    let mut text = if after.is_none() { crate::ipsec::IPSEC_SA_HEADER.to_owned() } else { String::new() };
    let previous = after.as_ref().map(|a| (a.0.as_str(), a.1.as_str(), a.2));
    crate::ipsec::ipsec_sa_pairs(&mut text, previous, &details);
    Ok(PageText { text, json: serde_json::json!({ "sas": details }), next })
}

/// A page of `display firewall session table [verbose]`: the sessions in the order given
/// (the daemon builds them in one pass), by their position.
pub fn sessions(
    rows: Vec<crate::session::SessionRow>,
    verbose: bool,
    after: Option<&str>,
    size: usize,
) -> Result<PageText, String> {
    let after: Option<usize> = cursor(after)?;
    let page = select(rows.into_iter().enumerate(), |(i, _)| *i, |_| 1, after.as_ref(), size);
    let next = page.next();
    let rows: Vec<_> = page.rows.into_iter().map(|(_, (_, row))| row).collect();
    let mut text =
        if after.is_none() { crate::session::session_table_header(page.total) } else { String::new() };
    crate::session::session_lines(&mut text, &rows, verbose);
    Ok(PageText { text, json: serde_json::json!({ "sessions": rows }), next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike::IkeSaDetail;
    use crate::ipsec::{IpsecSaDetail, SaDirection};
    use crate::session::{SessionRow, Traffic};
    use crate::{IkeSaRow, IpsecSaRow};

    /// SAs on the hub of the tests: enough that an unpaged answer would pass 1 MiB.
    const SAS: u64 = 10_500;

    /// The most one page's answer may hold (text and JSON): a quarter of the control
    /// socket's line bound, whatever the number of SAs.
    const PAGE_BOUND: usize = 256 * 1024;

    /// Reads every page of a display as a client does, checking each answer's size;
    /// returns the concatenated text and the number of pages.
    fn read_all(mut page: impl FnMut(Option<&str>) -> PageText) -> (String, usize, Vec<serde_json::Value>) {
        let (mut text, mut after, mut count, mut facts) = (String::new(), None::<String>, 0, Vec::new());
        loop {
            let p = page(after.as_deref());
            let size = p.text.len() + serde_json::to_string(&p.json).unwrap().len();
            assert!(size < PAGE_BOUND, "page {count} holds {size} bytes");
            text.push_str(&p.text);
            facts.push(p.json);
            count += 1;
            match p.next {
                Some(next) => after = Some(next),
                None => return (text, count, facts),
            }
            assert!(count <= SAS as usize, "the pages do not end");
        }
    }

    fn ike_rows() -> Vec<IkeSaRow> {
        // Unsorted on purpose: phase 1 and phase 2 interleaved, conn-ids out of order.
        (0..SAS)
            .map(|i| {
                let conn_id = (i * 7919) % SAS + if i % 3 == 0 { 40_000 } else { 1 };
                IkeSaRow {
                    conn_id,
                    peer: format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                    flags: vec!["RD", "ST"],
                    phase: if i % 3 == 0 { "v1:2" } else { "v1:1" },
                    vpn: "public",
                }
            })
            .collect()
    }

    /// 10,500 lines of `display ike sa`, page by page: every answer bounded, the pages
    /// together the unpaged display, the header's total the whole count.
    #[test]
    fn ike_sa_pages_concatenate_to_the_whole_display() {
        let rows = ike_rows();
        let mut sorted = rows.clone();
        sorted.sort_by_key(crate::ike_sa_key);
        let whole = crate::ike_sa_text(&sorted);
        assert!(whole.len() > PAGE_BOUND, "the test's display must exceed one page's bound");
        let (text, pages, facts) = read_all(|after| ike_sa(rows.clone(), after, 100).unwrap());
        assert_eq!(pages, 105);
        assert!(text.starts_with(&format!("current ike sa number: {SAS}\n")));
        assert_eq!(text, whole);
        let conn_ids: Vec<u64> = facts
            .iter()
            .flat_map(|f| f["sas"].as_array().unwrap().iter().map(|s| s["conn_id"].as_u64().unwrap()))
            .collect();
        assert_eq!(conn_ids, sorted.iter().map(|r| r.conn_id).collect::<Vec<_>>());
        // Newest phase-2 line first.
        assert!(sorted[0].phase == "v1:2" && sorted[0].conn_id > sorted[1].conn_id);
    }

    /// SAs that go between two pages neither repeat a line nor hide one that stayed.
    #[test]
    fn a_page_after_changes_starts_after_the_cursor() {
        let rows = ike_rows();
        let first = ike_sa(rows.clone(), None, 10).unwrap();
        let mut fewer = rows.clone();
        fewer.retain(|r| !first.text.contains(&format!("\n{:<11}", r.conn_id)) || r.phase == "v1:1");
        let second = ike_sa(fewer, first.next.as_deref(), 10).unwrap();
        let mut sorted = rows;
        sorted.sort_by_key(crate::ike_sa_key);
        let mut expected = String::new();
        for row in &sorted[10..20] {
            crate::ike_sa_line(&mut expected, row);
        }
        assert_eq!(second.text, expected);
        assert!(ike_sa(Vec::new(), Some("not a cursor"), 10).is_err());
    }

    #[test]
    fn ipsec_sa_brief_pages_concatenate_to_the_whole_display() {
        let pairs: Vec<(PairKey, Vec<IpsecSaRow>)> = (0..SAS)
            .map(|i| {
                let spi = (i as u32).wrapping_mul(2_654_435_761);
                let row = |src: &str, dst: &str, spi| IpsecSaRow {
                    src: src.into(),
                    dst: dst.into(),
                    spi,
                    protocol: "ESP",
                    algorithm: "E:AES-256;A:HMAC-SHA2-256-128;".into(),
                };
                let peer = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
                ((SAS - i, spi), vec![row("1.1.1.1", &peer, spi ^ 1), row(&peer, "1.1.1.1", spi)])
            })
            .collect();
        let mut sorted = pairs.clone();
        sorted.sort_by_key(|p| p.0);
        let rows: Vec<IpsecSaRow> = sorted.iter().flat_map(|p| p.1.clone()).collect();
        let whole = crate::ipsec_sa_brief_text(&rows, pairs.len());
        assert!(whole.starts_with(&format!(
            "current ipsec sa number: {}\ncurrent ipsec tunnel number: {SAS}\n",
            2 * SAS
        )));
        let (text, pages, facts) = read_all(|after| ipsec_sa_brief(pairs.clone(), after, 200).unwrap());
        assert_eq!((text, pages), (whole, 53));
        assert_eq!(facts[0]["tunnels"], SAS);
    }

    fn detail(conn_id: u64) -> IkeSaDetail {
        IkeSaDetail {
            conn_id,
            version: "v1",
            peer: format!("10.0.{}.{}:500", conn_id >> 8 & 255, conn_id & 255),
            vpn: "public",
            phase: 1,
            flags: vec!["RD"],
            initiator_cookie: crate::ike::cookie_text(conn_id.to_be_bytes()),
            responder_cookie: crate::ike::cookie_text((!conn_id).to_be_bytes()),
            exchange_mode: "Main",
            authentication_method: "PRE-SHARED-KEY",
            authentication_algorithm: "SHA2-256",
            encryption_algorithm: "AES-256",
            dh_group: "MODP-2048",
            life_seconds: 86400,
            remaining_seconds: 86000,
            local_id_type: "IP".into(),
            local_id: "1.1.1.1".into(),
            remote_id_type: "IP".into(),
            remote_id: "10.0.0.1".into(),
            nat_traversal: "Not detected",
            dpd: "Enable",
            peer_certificate: None,
            replays_dropped: 0,
            message_ids_forgotten: 0,
        }
    }

    #[test]
    fn ike_sa_verbose_pages_concatenate_to_the_whole_display() {
        let ids: Vec<u64> = (0..SAS).map(|i| (i * 7919) % SAS + 1).collect();
        let whole = crate::ike::ike_sa_verbose_text(&(1..=SAS).map(detail).collect::<Vec<_>>());
        let (text, pages, _) =
            read_all(|after| ike_sa_verbose(ids.clone(), |c| *c, detail, after, 150).unwrap());
        assert_eq!((text, pages), (whole, 70));
        let empty = ike_sa_verbose(Vec::<u64>::new(), |c| *c, detail, None, 150).unwrap();
        assert_eq!((empty.text.as_str(), empty.next), ("current ike sa number: 0\n", None));
    }

    fn pair(i: u64) -> IpsecSaDetail {
        let direction = |spi: u32, outbound: bool| SaDirection {
            protocol: "ESP",
            spi,
            proposal: "ESP-ENCRYPT-AES-256 ESP-AUTH-SHA2-256-128".into(),
            remaining_kilobytes: None,
            remaining_seconds: 3000,
            sequence: 5,
            udp_encapsulated: false,
            packets: 5,
            bytes: 420,
            anti_replay_window: (!outbound).then_some(1024),
        };
        IpsecSaDetail {
            // Three interfaces, several policy entries each: headings change within pages
            // and across their boundaries.
            interface: format!("GigabitEthernet0/0/{}", i % 3),
            policy: format!("policy{}", i % 5),
            sequence: (i % 7) as u32,
            acl: Some(3001),
            acl_rule: Some(5),
            mode: "ISAKMP",
            connection_id: i,
            encapsulation: "Tunnel",
            holding_seconds: 130,
            tunnel_local: "1.1.1.1".into(),
            tunnel_remote: format!("10.0.{}.{}", i >> 8 & 255, i & 255),
            flow_source: "192.168.0.0/255.255.255.0 0/0-65535".into(),
            flow_destination: "172.16.2.0/255.255.255.0 0/0-65535".into(),
            outbound: vec![direction(i as u32 * 2, true)],
            inbound: vec![direction(i as u32 * 2 + 1, false)],
        }
    }

    #[test]
    fn ipsec_sa_pages_concatenate_to_the_whole_display() {
        let mut sorted: Vec<IpsecSaDetail> = (0..SAS).map(pair).collect();
        sorted.sort_by_key(crate::ipsec::ipsec_sa_key);
        let whole = crate::ipsec::ipsec_sa_text(&sorted);
        let ids: Vec<u64> = (0..SAS).rev().collect();
        let key = |i: &u64| crate::ipsec::ipsec_sa_key(&pair(*i));
        let (text, pages, _) = read_all(|after| ipsec_sa(ids.clone(), key, pair, after, 100).unwrap());
        assert_eq!((text, pages), (whole, 105));
    }

    #[test]
    fn session_pages_concatenate_to_the_whole_display() {
        let rows: Vec<SessionRow> = (0..2 * SAS)
            .map(|i| SessionRow {
                protocol: if i % 2 == 0 { "udp" } else { "esp" },
                vpn: "public",
                source: format!("10.0.{}.{}:500", i >> 8 & 255, i & 255),
                destination: "1.1.1.1:500".into(),
                forward: (i % 2 == 1).then_some(Traffic { packets: i, bytes: 84 * i }),
                reverse: (i % 2 == 1).then_some(Traffic { packets: 1, bytes: 84 }),
            })
            .collect();
        for verbose in [false, true] {
            let whole = crate::session::session_table_text(&rows, verbose);
            let (text, _, _) = read_all(|after| sessions(rows.clone(), verbose, after, 200).unwrap());
            assert_eq!(text, whole);
        }
    }

    /// Pages from an ordered index ranged from the cursor (a `BTreeMap` of 100,000 SAs
    /// here, as the engine's by conn-id): each page reads its own rows and one more, never
    /// the rest — and the pages are those of the unordered path, byte for byte.
    #[test]
    fn a_page_from_its_cursor_reads_its_rows_only() {
        use std::cell::Cell;
        use std::collections::BTreeMap;
        use std::ops::Bound;

        const MANY: u64 = 100_000;
        let rows: BTreeMap<u64, IkeSaRow> = (1..=MANY)
            .map(|conn_id| {
                let peer = format!("10.{}.{}.{}", conn_id >> 16, (conn_id >> 8) & 255, conn_id & 255);
                (conn_id, IkeSaRow { conn_id, peer, flags: vec!["RD"], phase: "v1:1", vpn: "public" })
            })
            .collect();
        let visited = Cell::new(0usize);
        let page = |after: Option<&str>| {
            let cursor: Option<(u8, u64)> = cursor(after).unwrap();
            let start = cursor.map_or(Bound::Unbounded, |(_, c)| Bound::Excluded(c));
            let from = rows.range((start, Bound::Unbounded)).map(|(_, r)| {
                visited.set(visited.get() + 1);
                r.clone()
            });
            ike_sa_from(from, rows.len(), after.is_none(), 200)
        };
        let mut after: Option<String> = None;
        let mut pages = 0;
        let mut text = String::new();
        loop {
            visited.set(0);
            let p = page(after.as_deref());
            assert!(visited.get() <= 201, "page {pages} read {} rows", visited.get());
            text.push_str(&p.text);
            pages += 1;
            match p.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(pages, 500);
        let all: Vec<IkeSaRow> = rows.values().cloned().collect();
        assert_eq!(text, crate::ike_sa_text(&all));
        // The cursors are the unordered path's: a client may mix daemons of either kind.
        let first = page(None);
        let unordered = ike_sa(all.iter().rev().cloned(), None, 200).unwrap();
        assert_eq!(first, unordered);
        let second = ike_sa(all.iter().rev().cloned(), first.next.as_deref(), 200).unwrap();
        assert_eq!(page(first.next.as_deref()), second);
        // The last page says so; a display with nothing after the cursor is empty.
        assert_eq!(take(0..3, 3), (vec![0, 1, 2], false));
        assert_eq!(take(0..4, 3), (vec![0, 1, 2], true));
    }

    #[test]
    fn ordered_pages_of_the_other_displays_match_the_unordered() {
        let pairs: Vec<(PairKey, Vec<IpsecSaRow>)> = (1..=1_000u64)
            .map(|i| {
                let row = |spi| IpsecSaRow {
                    src: "1.1.1.1".into(),
                    dst: format!("10.0.{}.{}", i >> 8, i & 255),
                    spi,
                    protocol: "ESP",
                    algorithm: "E:AES-256;A:HMAC-SHA2-256-128;".into(),
                };
                ((i, i as u32 * 2), vec![row(i as u32 * 2 + 1), row(i as u32 * 2)])
            })
            .collect();
        let mut after: Option<String> = None;
        loop {
            let key: Option<PairKey> = cursor(after.as_deref()).unwrap();
            let from = pairs.iter().filter(|p| key.is_none_or(|k| p.0 > k)).cloned();
            let totals = after.is_none().then_some((2_000, 1_000));
            let ordered = ipsec_sa_brief_from(from, totals, 150);
            assert_eq!(ordered, ipsec_sa_brief(pairs.iter().rev().cloned(), after.as_deref(), 150).unwrap());
            match ordered.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let ids: Vec<u64> = (1..=500).collect();
        let mut after: Option<String> = None;
        loop {
            let key: Option<u64> = cursor(after.as_deref()).unwrap();
            let from = ids.iter().copied().filter(|i| key.is_none_or(|k| *i > k));
            let ordered = ike_sa_verbose_from(from, |c| *c, detail, after.is_none(), 70);
            let unordered = ike_sa_verbose(ids.iter().rev().copied(), |c| *c, detail, after.as_deref(), 70);
            assert_eq!(ordered, unordered.unwrap());
            match ordered.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let empty = ike_sa_verbose_from(Vec::<u64>::new(), |c| *c, detail, true, 70);
        assert_eq!((empty.text.as_str(), empty.next), ("current ike sa number: 0\n", None));
    }

    #[test]
    fn text_pages_by_lines() {
        let config: String =
            (0..5_000).map(|i| format!("ike peer p{i}\n pre-shared-key %^%#********%^%#\n#\n")).collect();
        let mut text = String::new();
        let mut after: Option<String> = None;
        loop {
            let (page, next) = lines(&config, after.as_deref(), 200).unwrap();
            assert!(page.lines().count() <= 200 && page.len() < PAGE_BOUND);
            text.push_str(&page);
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(text, config);
        assert_eq!(lines("", None, 10).unwrap(), (String::new(), None));
    }
}
