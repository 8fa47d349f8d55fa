//! The `display` outputs, in the layouts of the reference (`vrp-cli.md` §5): text for
//! operators, JSON with the same facts for scripts.
//!
//! Every display is a typed view (its serde form is the `--json` output) and a pure renderer
//! of it, so that tests build any state and compare the text with the reference's layout.
//! `display ike sa` and `display ipsec sa brief` are here; the others are in the submodules.
//! The views that read the daemon's live state (`live`, `summary`) stay in the gateway, which
//! re-exports this crate as its `display` module.

pub mod ike;
pub mod ipsec;
pub mod page;
pub mod routing;
pub mod session;

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

/// `display ike sa`, USG-V3 layout (the article's): phase-2 lines first, newest first
/// ([`ike_sa_key`]'s order; the caller sorts).
pub fn ike_sa_text(rows: &[IkeSaRow]) -> String {
    let mut out = ike_sa_header(rows.len());
    for row in rows {
        ike_sa_line(&mut out, row);
    }
    out
}

/// The header of `display ike sa`, with its total.
pub fn ike_sa_header(total: usize) -> String {
    let rule = "-".repeat(69);
    let mut out = format!("current ike sa number: {total}\n{rule}\n");
    let _ = writeln!(out, "{:<11}{:<24}{:<14}{:<6}vpn", "conn-id", "peer", "flag", "phase");
    let _ = writeln!(out, "{rule}");
    out
}

/// One line of `display ike sa`.
pub fn ike_sa_line(out: &mut String, row: &IkeSaRow) {
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

/// The order of `display ike sa`'s lines, and its pages' cursor: the phase-2 lines first,
/// newest (highest conn-id) first, then the phase-1 SAs by conn-id.
pub fn ike_sa_key(row: &IkeSaRow) -> (u8, u64) {
    if row.phase == "v1:2" {
        (0, u64::MAX - row.conn_id)
    } else {
        (1, row.conn_id)
    }
}

/// One unidirectional SA line of `display ipsec sa brief`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpsecSaRow {
    /// Source gateway address.
    pub src: String,
    /// Destination gateway address.
    pub dst: String,
    /// SPI (printed in decimal, as the device does).
    pub spi: u32,
    /// `ESP` or `AH` (an AH+ESP pair shows both).
    pub protocol: &'static str,
    /// `E:<enc>;A:<auth>;`, or `A:<auth>;` for AH.
    pub algorithm: String,
}

/// The `Algorithm` column: `E:DES;A:HMAC-MD5-96;` (vrp-cli.md §5.6).
pub fn algorithm_column(encryption: crypto::EspCipher, integrity: Option<crypto::Integrity>) -> String {
    let mut out = format!("E:{};", encryption.row().display);
    if let Some(i) = integrity {
        out.push_str(&ah_algorithm_column(i));
    }
    out
}

/// The `Algorithm` column of an AH SA, and the integrity part of an ESP one: `A:HMAC-MD5-96;`.
pub fn ah_algorithm_column(integrity: crypto::Integrity) -> String {
    format!("A:{};", integrity.row().sa_display)
}

/// `display ipsec sa brief`, USG-V3 layout (the article's).
pub fn ipsec_sa_brief_text(rows: &[IpsecSaRow], tunnels: usize) -> String {
    let mut out = ipsec_sa_brief_header(rows.len(), tunnels);
    for row in rows {
        ipsec_sa_brief_line(&mut out, row);
    }
    out
}

/// The header of `display ipsec sa brief`, with its totals.
pub fn ipsec_sa_brief_header(sas: usize, tunnels: usize) -> String {
    let rule = "-".repeat(69);
    let mut out = format!("current ipsec sa number: {sas}\ncurrent ipsec tunnel number: {tunnels}\n{rule}\n");
    let _ =
        writeln!(out, "{:<16}{:<16}{:<11}{:<10}Algorithm", "Src Address", "Dst Address", "SPI", "Protocol");
    let _ = writeln!(out, "{rule}");
    out
}

/// One line of `display ipsec sa brief`.
pub fn ipsec_sa_brief_line(out: &mut String, row: &IpsecSaRow) {
    let _ =
        writeln!(out, "{:<16}{:<16}{:<11}{:<10}{}", row.src, row.dst, row.spi, row.protocol, row.algorithm);
}

/// The reference's FW_A configuration (`examples/fw_a.cfg`), loaded the way `run` loads it:
/// the configuration displays' tests render it and compare with the reference's layouts, so
/// they share one loader rather than each reading the file its own way.
#[cfg(test)]
fn reference_config() -> vrp::Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fw_a.cfg");
    vrp::load_file(&path, None).unwrap().config.unwrap()
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

    /// The article's `display ipsec sa brief` on FW_A (vrp-cli.md §5.6), column for column.
    #[test]
    fn ipsec_sa_brief_matches_the_article_layout() {
        let algorithm = algorithm_column(crypto::EspCipher::Des, Some(crypto::Integrity::HmacMd5_96));
        assert_eq!(algorithm, "E:DES;A:HMAC-MD5-96;");
        let rows = vec![
            IpsecSaRow {
                src: "1.1.1.1".into(),
                dst: "2.2.3.2".into(),
                spi: 3391020441,
                protocol: "ESP",
                algorithm: algorithm.clone(),
            },
            IpsecSaRow {
                src: "2.2.3.2".into(),
                dst: "1.1.1.1".into(),
                spi: 2516384012,
                protocol: "ESP",
                algorithm,
            },
        ];
        let expected = "current ipsec sa number: 2
current ipsec tunnel number: 1
---------------------------------------------------------------------
Src Address     Dst Address     SPI        Protocol  Algorithm
---------------------------------------------------------------------
1.1.1.1         2.2.3.2         3391020441 ESP       E:DES;A:HMAC-MD5-96;
2.2.3.2         1.1.1.1         2516384012 ESP       E:DES;A:HMAC-MD5-96;
";
        assert_eq!(ipsec_sa_brief_text(&rows, 1), expected);
    }
}
