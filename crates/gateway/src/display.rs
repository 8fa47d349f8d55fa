//! The `display` outputs, in the layouts of the reference (`vrp-cli.md` §5): text for
//! operators, JSON with the same facts for scripts.

use std::fmt::Write as _;

use serde::Serialize;

/// One line of `display ike sa`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IkeSaRow {
    /// `conn-id`.
    pub conn_id: u64,
    /// Peer address (`ip`, or `ip:port` after NAT traversal).
    pub peer: String,
    /// Flags: RD (ready), ST (we initiated), NEG (negotiating).
    pub flags: Vec<&'static str>,
    /// `v1:1` for the ISAKMP SA, `v1:2` for an IPsec SA pair.
    pub phase: &'static str,
    /// Routing instance; always `public`.
    pub vpn: &'static str,
}

/// `display ike sa`, USG-V3 layout (the article's): phase-2 lines first, newest first.
pub fn ike_sa_text(rows: &[IkeSaRow]) -> String {
    let rule = "-".repeat(69);
    let mut out = format!("current ike sa number: {}\n{rule}\n", rows.len());
    let _ = writeln!(out, "{:<11}{:<24}{:<14}{:<6}vpn", "conn-id", "peer", "flag", "phase");
    let _ = writeln!(out, "{rule}");
    for row in rows {
        let _ = writeln!(
            out,
            "{:<11}{:<24}{:<14}{:<6}{}",
            row.conn_id,
            row.peer,
            row.flags.join("|"),
            row.phase,
            row.vpn
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The article's output for FW_A (vrp-cli.md §5.1), column for column.
    #[test]
    fn ike_sa_matches_the_article_layout() {
        let rows = vec![
            IkeSaRow {
                conn_id: 40130,
                peer: "2.2.3.2".into(),
                flags: vec!["RD", "ST"],
                phase: "v1:2",
                vpn: "public",
            },
            IkeSaRow {
                conn_id: 40122,
                peer: "2.2.3.2".into(),
                flags: vec!["RD", "ST"],
                phase: "v1:1",
                vpn: "public",
            },
        ];
        let expected = "current ike sa number: 2
---------------------------------------------------------------------
conn-id    peer                    flag          phase vpn
---------------------------------------------------------------------
40130      2.2.3.2                 RD|ST         v1:2  public
40122      2.2.3.2                 RD|ST         v1:1  public
";
        assert_eq!(ike_sa_text(&rows), expected);
    }
}
