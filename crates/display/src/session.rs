//! `display firewall session table [verbose]` (reference `vrp-cli.md` §5.12): the sessions
//! through and to the gateway that keysteward itself carries. They are the IKE exchanges
//! with each peer (UDP 500, or 4500 after a NAT-T float) and the ESP flows of the installed
//! IPsec SAs (raw ESP, or UDP 4500 when encapsulated), with the data plane's packet and byte
//! counters, and the protected inner flows the data plane carried through them (crate
//! `inner_flows`: `icmp`, `tcp`, `udp`, … with their packets and bytes both ways). Clear
//! traffic is forwarded by the kernel and never seen by the daemon, so it has no session here.

use std::fmt::Write as _;

use serde::Serialize;

/// Packets and bytes of one direction of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Traffic {
    /// Packets.
    pub packets: u64,
    /// Bytes (as the data plane counts them: the protected inner packets).
    pub bytes: u64,
}

/// One session of `display firewall session table`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRow {
    /// `udp` or `esp` (IKE and ESP), or an inner flow's protocol (`icmp`, `tcp`, `udp`, …).
    pub protocol: &'static str,
    /// The routing instance: `public`.
    pub vpn: &'static str,
    /// The side that opened the session, `ip:port` (ESP has port 0).
    pub source: String,
    /// The other side, `ip:port`.
    pub destination: String,
    /// Source to destination, when counted (the data plane counts ESP and inner flows; IKE is
    /// not counted).
    pub forward: Option<Traffic>,
    /// Destination to source, when counted.
    pub reverse: Option<Traffic>,
}

/// `display firewall session table`, USG layout (§5.12); `verbose` adds the counters of each
/// counted session on the line below it, as `<--packets:N bytes:N   -->packets:N bytes:N`
/// (the USG verbose form's counter line).
pub fn session_table_text(sessions: &[SessionRow], verbose: bool) -> String {
    let mut out = session_table_header(sessions.len());
    session_lines(&mut out, sessions, verbose);
    out
}

/// The first line of `display firewall session table`, with its total.
pub fn session_table_header(total: usize) -> String {
    format!(" Current Total Sessions : {total}\n")
}

/// The lines of `sessions` (and their counters when `verbose`).
pub fn session_lines(out: &mut String, sessions: &[SessionRow], verbose: bool) {
    for s in sessions {
        let _ =
            writeln!(out, "  {}  VPN:{} --> {} {}-->{}", s.protocol, s.vpn, s.vpn, s.source, s.destination);
        if let (true, Some(forward), Some(reverse)) = (verbose, s.forward, s.reverse) {
            let _ = writeln!(
                out,
                "  <--packets:{} bytes:{}   -->packets:{} bytes:{}",
                reverse.packets, reverse.bytes, forward.packets, forward.bytes
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<SessionRow> {
        vec![
            SessionRow {
                protocol: "esp",
                vpn: "public",
                source: "1.1.1.1:0".into(),
                destination: "2.2.3.2:0".into(),
                forward: Some(Traffic { packets: 4, bytes: 336 }),
                reverse: Some(Traffic { packets: 3, bytes: 252 }),
            },
            SessionRow {
                protocol: "udp",
                vpn: "public",
                source: "2.2.3.2:500".into(),
                destination: "1.1.1.1:500".into(),
                forward: None,
                reverse: None,
            },
        ]
    }

    /// The article's lines (§5.12), column for column.
    #[test]
    fn session_table_matches_the_article_layout() {
        let expected = " Current Total Sessions : 2
  esp  VPN:public --> public 1.1.1.1:0-->2.2.3.2:0
  udp  VPN:public --> public 2.2.3.2:500-->1.1.1.1:500
";
        assert_eq!(session_table_text(&rows(), false), expected);
    }

    #[test]
    fn verbose_session_table_shows_the_counters() {
        let expected = " Current Total Sessions : 2
  esp  VPN:public --> public 1.1.1.1:0-->2.2.3.2:0
  <--packets:3 bytes:252   -->packets:4 bytes:336
  udp  VPN:public --> public 2.2.3.2:500-->1.1.1.1:500
";
        assert_eq!(session_table_text(&rows(), true), expected);
        assert_eq!(session_table_text(&[], true), " Current Total Sessions : 0\n");
    }
}
