//! `display ipsec sa` (detailed), `display ipsec proposal [name N | brief]` and `display
//! ipsec policy [name N]` (reference `vrp-cli.md` §5.7, §5.9; the policy display is
//! reconstructed, see [`ipsec_policy_text`]).
//!
//! As in `display::ike`, each display is a typed view (the `--json` form) and a pure
//! renderer; the builders from the VRP configuration live here, the SA view is assembled by
//! the daemon from the engine and the data plane.

use std::fmt::Write as _;

use serde::Serialize;
use vrp::algorithm::{EncapsulationMode, Integrity, Transform, TriggerMode};
use vrp::model::{PolicyEntry, TunnelLocal};

/// One direction of one protocol of an IPsec SA pair: the `[Outbound ESP SAs]` and
/// `[Inbound ESP SAs]` blocks of §5.7.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SaDirection {
    /// `ESP` or `AH`.
    pub protocol: &'static str,
    /// The SPI.
    pub spi: u32,
    /// `ESP-ENCRYPT-AES-256 ESP-AUTH-SHA2-256-128` and the like.
    pub proposal: String,
    /// Kilobytes left before the traffic lifetime (`None`: no traffic lifetime).
    pub remaining_kilobytes: Option<u64>,
    /// Seconds left before the hard lifetime.
    pub remaining_seconds: u64,
    /// Max sent (outbound) or received (inbound) sequence number.
    pub sequence: u64,
    /// ESP in UDP (NAT traversal).
    pub udp_encapsulated: bool,
    /// Packets sealed (outbound) or opened (inbound) by the data plane.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Inbound only: the anti-replay window size.
    pub anti_replay_window: Option<u32>,
}

/// One IPsec SA pair in `display ipsec sa` (§5.7, USG-V5 layout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpsecSaDetail {
    /// The interface the policy is applied to.
    pub interface: String,
    /// The policy name.
    pub policy: String,
    /// The policy entry's sequence number.
    pub sequence: u32,
    /// The entry's ACL number.
    pub acl: Option<u16>,
    /// The ACL rule whose flow this pair protects.
    pub acl_rule: Option<u32>,
    /// `ISAKMP`.
    pub mode: &'static str,
    /// The pair's conn-id, as `display ike sa` shows its `v1:2` line.
    pub connection_id: u64,
    /// `Tunnel` or `Transport`.
    pub encapsulation: &'static str,
    /// Seconds since the pair was installed.
    pub holding_seconds: u64,
    /// Our `ip:port`.
    pub tunnel_local: String,
    /// The peer's `ip:port`.
    pub tunnel_remote: String,
    /// `net/mask proto/ports` of our side.
    pub flow_source: String,
    /// `net/mask proto/ports` of the peer's side.
    pub flow_destination: String,
    /// Outbound SAs (AH first, then ESP).
    pub outbound: Vec<SaDirection>,
    /// Inbound SAs (AH first, then ESP).
    pub inbound: Vec<SaDirection>,
}

/// `0d 0h 2m 10s`.
pub fn holding_time(seconds: u64) -> String {
    format!("{}d {}h {}m {}s", seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60)
}

/// The `Flow source` / `Flow destination` form: `net/mask proto/ports` (§5.7:
/// `0/0-65535` is any protocol, any port; a range of addresses prints `first-last`).
pub fn flow_text(addresses: &::ike::Addresses, protocol: u8, port: Option<u16>) -> String {
    let net = match addresses {
        ::ike::Addresses::Subnet(s) => format!("{}/{}", s.address, s.mask),
        ::ike::Addresses::Range { start, end } => format!("{start}-{end}"),
    };
    match port {
        Some(p) => format!("{net} {protocol}/{p}"),
        None => format!("{net} {protocol}/0-65535"),
    }
}

/// `ESP-ENCRYPT-… ESP-AUTH-…` of §5.7 (attested: `ESP-ENCRYPT-3DES-192`, `-AES-128`,
/// `-AES-256`, `ESP-AUTH-SHA1`, `ESP-AUTH-SHA2-256-128`; the rest follow the pattern).
pub fn esp_proposal_text(encryption: crypto::EspCipher, integrity: Option<crypto::Integrity>) -> String {
    use crypto::EspCipher as E;
    let e = match encryption {
        E::Null => "ESP-ENCRYPT-NULL",
        E::Des => "ESP-ENCRYPT-DES",
        E::TripleDes => "ESP-ENCRYPT-3DES-192",
        E::AesCbc128 => "ESP-ENCRYPT-AES-128",
        E::AesCbc192 => "ESP-ENCRYPT-AES-192",
        E::AesCbc256 => "ESP-ENCRYPT-AES-256",
        E::AesGcm128 => "ESP-ENCRYPT-AES-GCM-128",
        E::AesGcm256 => "ESP-ENCRYPT-AES-GCM-256",
    };
    match integrity {
        Some(i) => format!("{e} ESP-AUTH-{}", integrity_token(i)),
        None => e.to_owned(),
    }
}

/// `AH-AUTH-…` for an AH SA, in the pattern of the ESP names.
pub fn ah_proposal_text(integrity: crypto::Integrity) -> String {
    format!("AH-AUTH-{}", integrity_token(integrity))
}

fn integrity_token(integrity: crypto::Integrity) -> &'static str {
    use crypto::Integrity as I;
    match integrity {
        I::HmacMd5_96 => "MD5",
        I::HmacSha1_96 => "SHA1",
        I::HmacSha256_128 => "SHA2-256-128",
        I::HmacSha256_96 => "SHA2-256-96",
        I::HmacSha384_192 => "SHA2-384-192",
        I::HmacSha512_256 => "SHA2-512-256",
    }
}

fn direction_text(out: &mut String, sa: &SaDirection, outbound: bool) {
    let way = if outbound { "Outbound" } else { "Inbound" };
    let _ = writeln!(out, "\n    [{way} {} SAs]", sa.protocol);
    let _ = writeln!(out, "      SPI: {} (0x{:08x})", sa.spi, sa.spi);
    let _ = writeln!(out, "      Proposal: {}", sa.proposal);
    let kilobytes = sa.remaining_kilobytes.map_or_else(|| "-".to_owned(), |k| k.to_string());
    let _ = writeln!(
        out,
        "      SA remaining key duration (kilobytes/sec): {kilobytes}/{}",
        sa.remaining_seconds
    );
    let _ = writeln!(
        out,
        "      Max {} sequence-number: {}",
        if outbound { "sent" } else { "received" },
        sa.sequence
    );
    let _ = writeln!(
        out,
        "      UDP encapsulation used for NAT traversal: {}",
        if sa.udp_encapsulated { "Y" } else { "N" }
    );
    let _ = writeln!(
        out,
        "      SA {} packets (number/bytes): {}/{}",
        if outbound { "encrypted" } else { "decrypted" },
        sa.packets,
        sa.bytes
    );
    if let Some(window) = sa.anti_replay_window {
        let _ = writeln!(out, "      Anti-replay : Enable");
        let _ = writeln!(out, "      Anti-replay window size: {window}");
    }
}

/// `display ipsec sa`: pairs grouped by interface, then by policy entry (in the order given;
/// the daemon sorts them), in the USG-V5 layout of §5.7.
pub fn ipsec_sa_text(pairs: &[IpsecSaDetail]) -> String {
    let mut out = String::from(IPSEC_SA_HEADER);
    ipsec_sa_pairs(&mut out, None, pairs);
    out
}

/// The first line of `display ipsec sa`.
pub const IPSEC_SA_HEADER: &str = "ipsec sa information:\n";

/// The order of `display ipsec sa`'s pairs, and its pages' cursor: interface, policy,
/// sequence, conn-id, inbound SPI.
pub type IpsecSaKey = (String, String, u32, u64, u32);

/// The key of one pair in [`IpsecSaKey`]'s order.
pub fn ipsec_sa_key(pair: &IpsecSaDetail) -> IpsecSaKey {
    let inbound = pair.inbound.iter().find(|d| d.protocol == "ESP").or(pair.inbound.first());
    (
        pair.interface.clone(),
        pair.policy.clone(),
        pair.sequence,
        pair.connection_id,
        inbound.map_or(0, |d| d.spi),
    )
}

/// The blocks of `pairs` (sorted in [`IpsecSaKey`]'s order), after a pair of interface and
/// policy entry `after` (`None`: the display's first pair), whose headings are not repeated.
pub fn ipsec_sa_pairs(out: &mut String, after: Option<(&str, &str, u32)>, pairs: &[IpsecSaDetail]) {
    let mut interface: Option<&str> = after.map(|a| a.0);
    let mut entry: Option<(&str, u32)> = after.map(|a| (a.1, a.2));
    for pair in pairs {
        if interface != Some(pair.interface.as_str()) {
            let line = format!("Interface: {}", pair.interface);
            let rule = "=".repeat(line.len());
            let _ = write!(out, "\n{rule}\n{line}\n{rule}\n");
            interface = Some(&pair.interface);
            entry = None;
        }
        if entry != Some((pair.policy.as_str(), pair.sequence)) {
            let rule = "  -----------------------------";
            let _ = writeln!(out, "\n{rule}");
            let _ = writeln!(out, "  IPSec policy name: \"{}\"", pair.policy);
            let _ = writeln!(out, "  Sequence number  : {}", pair.sequence);
            let _ =
                writeln!(out, "  Acl group        : {}", pair.acl.map(|a| a.to_string()).unwrap_or_default());
            let _ = writeln!(
                out,
                "  Acl rule         : {}",
                pair.acl_rule.map(|r| r.to_string()).unwrap_or_default()
            );
            let _ = writeln!(out, "  Mode             : {}", pair.mode);
            let _ = writeln!(out, "{rule}");
            entry = Some((&pair.policy, pair.sequence));
        } else {
            out.push('\n');
        }
        let _ = writeln!(out, "    Connection ID     : {}", pair.connection_id);
        let _ = writeln!(out, "    Encapsulation mode: {}", pair.encapsulation);
        let _ = writeln!(out, "    Holding time      : {}", holding_time(pair.holding_seconds));
        let _ = writeln!(out, "    Tunnel local      : {}", pair.tunnel_local);
        let _ = writeln!(out, "    Tunnel remote     : {}", pair.tunnel_remote);
        let _ = writeln!(out, "    Flow source       : {}", pair.flow_source);
        let _ = writeln!(out, "    Flow destination  : {}", pair.flow_destination);
        for sa in &pair.outbound {
            direction_text(out, sa, true);
        }
        for sa in &pair.inbound {
            direction_text(out, sa, false);
        }
    }
}

/// One configured `ipsec proposal` (§5.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpsecProposalView {
    /// The proposal's name.
    pub name: String,
    /// `Tunnel`, `Transport` or `Auto`.
    pub encapsulation: &'static str,
    /// `esp-new`, `ah-new` or `ah-esp-new`.
    pub transform: &'static str,
    /// ESP authentication (`MD5-HMAC-96`, `SHA2-HMAC-256`, …), if ESP authenticates.
    pub esp_authentication: Option<&'static str>,
    /// ESP encryption (`DES`, `AES-256`, …), if ESP is used and encrypts.
    pub esp_encryption: Option<&'static str>,
    /// AH authentication, with AH.
    pub ah_authentication: Option<&'static str>,
}

/// `display ipsec proposal`'s name of an integrity algorithm (§5.9 `MD5-HMAC-96`).
fn hmac_name(integrity: Integrity) -> &'static str {
    integrity.row().proposal_display
}

/// The configured IPsec proposals, in name order.
pub fn ipsec_proposals(config: &vrp::Config) -> Vec<IpsecProposalView> {
    config
        .ipsec_proposals
        .iter()
        .map(|(name, p)| {
            let esp = matches!(p.transform, Transform::Esp | Transform::AhEsp);
            let ah = matches!(p.transform, Transform::Ah | Transform::AhEsp);
            IpsecProposalView {
                name: name.clone(),
                encapsulation: match p.encapsulation {
                    EncapsulationMode::Tunnel => "Tunnel",
                    EncapsulationMode::Transport => "Transport",
                    EncapsulationMode::Auto => "Auto",
                },
                transform: match p.transform {
                    Transform::Esp => "esp-new",
                    Transform::Ah => "ah-new",
                    Transform::AhEsp => "ah-esp-new",
                },
                esp_authentication: p.esp_authentication.filter(|_| esp).map(hmac_name),
                esp_encryption: p.esp_encryption.filter(|_| esp).map(|e| e.row().display),
                ah_authentication: ah.then(|| hmac_name(p.ah_authentication)),
            }
        })
        .collect()
}

/// `display ipsec proposal [name N]`: one block per proposal (§5.9), separated by a blank
/// line.
pub fn ipsec_proposal_text(proposals: &[IpsecProposalView]) -> String {
    let mut blocks = Vec::new();
    for p in proposals {
        let mut b = format!("IPSec proposal name: {}\n", p.name);
        let _ = writeln!(b, " Encapsulation mode: {}", p.encapsulation);
        let _ = writeln!(b, " Transform         : {}", p.transform);
        let mut protocol = |label: &str, items: Vec<String>| {
            for (i, item) in items.iter().enumerate() {
                let head = if i == 0 { format!(" {label:<18}: ") } else { " ".repeat(21) };
                let _ = writeln!(b, "{head}{item}");
            }
        };
        if let Some(a) = p.ah_authentication {
            protocol("AH protocol", vec![format!("Authentication {a}")]);
        }
        let mut esp = Vec::new();
        if let Some(a) = p.esp_authentication {
            esp.push(format!("Authentication {a}"));
        }
        if let Some(e) = p.esp_encryption {
            esp.push(format!("Encryption {e}"));
        }
        if !esp.is_empty() {
            protocol("ESP protocol", esp);
        }
        blocks.push(b);
    }
    blocks.join("\n")
}

/// `display ipsec proposal brief`: one line per proposal. Reconstructed (the reference has
/// no brief layout for IPsec proposals): the count line, rules and left-aligned columns of
/// `display ike peer brief` (§5.10).
pub fn ipsec_proposal_brief_text(proposals: &[IpsecProposalView]) -> String {
    let rule = "-".repeat(69);
    let mut out = format!("Current ipsec proposal number: {}\n{rule}\n", proposals.len());
    let _ = writeln!(out, "{:<17}{:<21}Transform", "Proposal name", "Encapsulation mode");
    let _ = writeln!(out, "{rule}");
    for p in proposals {
        let _ = writeln!(out, "{:<17}{:<21}{}", p.name, p.encapsulation, p.transform);
    }
    out
}

/// One entry of an `ipsec policy` group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpsecPolicyEntryView {
    /// The sequence number.
    pub sequence: u32,
    /// `ISAKMP`, or `Template` for `isakmp template T`.
    pub mode: &'static str,
    /// The template, for a template entry.
    pub template: Option<String>,
    /// `security acl`.
    pub acl: Option<u16>,
    /// `ike-peer`.
    pub ike_peer: Option<String>,
    /// `None` or `DH group N`.
    pub pfs: String,
    /// The `proposal`s, in order.
    pub proposals: Vec<String>,
    /// The IPsec SA lifetime in force (the entry's `sa duration time-based`, else the
    /// global one).
    pub duration_seconds: u32,
    /// The traffic lifetime in force, kilobytes.
    pub duration_kilobytes: u64,
    /// `Automatic` (`sa trigger-mode auto` or `auto-neg` on the interface) or
    /// `Traffic-based`.
    pub trigger_mode: &'static str,
    /// `tunnel local`: an address or `applied-interface`.
    pub tunnel_local: Option<String>,
}

/// One `ipsec policy` group: its entries and the interfaces it is applied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpsecPolicyView {
    /// The policy's name.
    pub name: String,
    /// The interfaces with `ipsec policy NAME`.
    pub interfaces: Vec<String>,
    /// The entries, by sequence number.
    pub entries: Vec<IpsecPolicyEntryView>,
}

/// The configured IPsec policies, in name order, with the values in force.
pub fn ipsec_policies(config: &vrp::Config) -> Vec<IpsecPolicyView> {
    let global = &config.ipsec_global_duration;
    config
        .ipsec_policies
        .iter()
        .map(|(name, entries)| {
            let interfaces: Vec<String> = config
                .interfaces
                .iter()
                .filter(|(_, i)| i.ipsec_policy.as_deref() == Some(name.as_str()))
                .map(|(n, _)| n.clone())
                .collect();
            let auto_neg = config
                .interfaces
                .values()
                .any(|i| i.auto_negotiate && i.ipsec_policy.as_deref() == Some(name.as_str()));
            let entries = entries
                .iter()
                .map(|(sequence, entry)| match entry {
                    PolicyEntry::Isakmp(s) => IpsecPolicyEntryView {
                        sequence: *sequence,
                        mode: "ISAKMP",
                        template: None,
                        acl: s.acl,
                        ike_peer: s.ike_peer.clone(),
                        pfs: s
                            .pfs
                            .map_or_else(|| "None".to_owned(), |g| format!("DH group {}", g.group().id())),
                        proposals: s.proposals.clone(),
                        duration_seconds: s.sa_seconds.unwrap_or(global.seconds),
                        duration_kilobytes: s.sa_kilobytes.unwrap_or(global.kilobytes),
                        trigger_mode: if auto_neg || s.trigger_mode == Some(TriggerMode::Auto) {
                            "Automatic"
                        } else {
                            "Traffic-based"
                        },
                        tunnel_local: s.tunnel_local.map(|t| match t {
                            TunnelLocal::Address(a) => a.to_string(),
                            TunnelLocal::AppliedInterface => "applied-interface".to_owned(),
                        }),
                    },
                    PolicyEntry::Template(t) => IpsecPolicyEntryView {
                        sequence: *sequence,
                        mode: "Template",
                        template: Some(t.clone()),
                        acl: None,
                        ike_peer: None,
                        pfs: "None".to_owned(),
                        proposals: Vec::new(),
                        duration_seconds: global.seconds,
                        duration_kilobytes: global.kilobytes,
                        trigger_mode: "Traffic-based",
                        tunnel_local: None,
                    },
                })
                .collect();
            IpsecPolicyView { name: name.clone(), interfaces, entries }
        })
        .collect()
}

/// `display ipsec policy [name N]`. Reconstructed: the reference gives no layout for this
/// display. It follows the AR family's one (a `=` rule framing `IPSec policy group: "NAME"`
/// and `Using interface: …`, then one indented `name: value` block per entry), with the
/// field names of §5.7 and of the `ipsec policy` view's commands; the Route inject and QoS
/// lines are left out because keysteward has neither feature. Durations are the values in
/// force (the entry's, else `ipsec sa global-duration`).
pub fn ipsec_policy_text(policies: &[IpsecPolicyView]) -> String {
    let rule = "=".repeat(43);
    let mut blocks = Vec::new();
    for p in policies {
        let mut b = format!("{rule}\nIPSec policy group: \"{}\"\n", p.name);
        let _ = writeln!(b, "{}", format!("Using interface: {}", p.interfaces.join(" ")).trim_end());
        let _ = writeln!(b, "{rule}");
        for e in &p.entries {
            b.push('\n');
            let _ = writeln!(b, "    Sequence number: {}", e.sequence);
            let _ = writeln!(b, "    Mode: {}", e.mode);
            if let Some(t) = &e.template {
                let _ = writeln!(b, "    Policy template: {t}");
                continue;
            }
            let _ =
                writeln!(b, "    Security data flow: {}", e.acl.map(|a| a.to_string()).unwrap_or_default());
            let _ = writeln!(b, "    Peer name: {}", e.ike_peer.as_deref().unwrap_or_default());
            let _ = writeln!(b, "    Perfect forward secrecy: {}", e.pfs);
            let _ = writeln!(b, "    Proposal name: {}", e.proposals.join(" "));
            let _ = writeln!(b, "    IPSec SA local duration(time based): {} seconds", e.duration_seconds);
            let _ =
                writeln!(b, "    IPSec SA local duration(traffic based): {} kilobytes", e.duration_kilobytes);
            let _ = writeln!(b, "    SA trigger mode: {}", e.trigger_mode);
            if let Some(t) = &e.tunnel_local {
                let _ = writeln!(b, "    Tunnel local address: {t}");
            }
        }
        blocks.push(b);
    }
    blocks.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference_config;

    /// §5.7's USG-V5 block, line for line, from a fixed pair (the reference's values).
    #[test]
    fn ipsec_sa_matches_the_reference_layout() {
        let direction = |spi: u32, outbound: bool| SaDirection {
            protocol: "ESP",
            spi,
            proposal: esp_proposal_text(
                crypto::EspCipher::AesCbc256,
                Some(crypto::Integrity::HmacSha256_128),
            ),
            remaining_kilobytes: Some(10_485_760),
            remaining_seconds: 3470,
            sequence: if outbound { 5 } else { 4 },
            udp_encapsulated: false,
            packets: 4,
            bytes: 240,
            anti_replay_window: (!outbound).then_some(1024),
        };
        let subnet = |a: [u8; 4]| ::ike::Addresses::Subnet(ike::Subnet::new(a.into(), 24));
        let pair = IpsecSaDetail {
            interface: "GigabitEthernet1/0/0".into(),
            policy: "policy1".into(),
            sequence: 1,
            acl: Some(3001),
            acl_rule: Some(5),
            mode: "ISAKMP",
            connection_id: 3,
            encapsulation: "Tunnel",
            holding_seconds: 130,
            tunnel_local: "1.1.1.1:500".into(),
            tunnel_remote: "2.2.3.2:500".into(),
            flow_source: flow_text(&subnet([192, 168, 0, 0]), 0, None),
            flow_destination: flow_text(&subnet([172, 16, 2, 0]), 0, None),
            outbound: vec![direction(3391020441, true)],
            inbound: vec![direction(2516384012, false)],
        };
        let expected = r#"ipsec sa information:

===============================
Interface: GigabitEthernet1/0/0
===============================

  -----------------------------
  IPSec policy name: "policy1"
  Sequence number  : 1
  Acl group        : 3001
  Acl rule         : 5
  Mode             : ISAKMP
  -----------------------------
    Connection ID     : 3
    Encapsulation mode: Tunnel
    Holding time      : 0d 0h 2m 10s
    Tunnel local      : 1.1.1.1:500
    Tunnel remote     : 2.2.3.2:500
    Flow source       : 192.168.0.0/255.255.255.0 0/0-65535
    Flow destination  : 172.16.2.0/255.255.255.0 0/0-65535

    [Outbound ESP SAs]
      SPI: 3391020441 (0xca1edd99)
      Proposal: ESP-ENCRYPT-AES-256 ESP-AUTH-SHA2-256-128
      SA remaining key duration (kilobytes/sec): 10485760/3470
      Max sent sequence-number: 5
      UDP encapsulation used for NAT traversal: N
      SA encrypted packets (number/bytes): 4/240

    [Inbound ESP SAs]
      SPI: 2516384012 (0x95fcf90c)
      Proposal: ESP-ENCRYPT-AES-256 ESP-AUTH-SHA2-256-128
      SA remaining key duration (kilobytes/sec): 10485760/3470
      Max received sequence-number: 4
      UDP encapsulation used for NAT traversal: N
      SA decrypted packets (number/bytes): 4/240
      Anti-replay : Enable
      Anti-replay window size: 1024
"#;
        assert_eq!(ipsec_sa_text(std::slice::from_ref(&pair)), expected);
        // A second pair of the same entry goes under the same headers.
        let text = ipsec_sa_text(&[pair.clone(), pair]);
        assert_eq!(text.matches("Interface: ").count(), 1);
        assert_eq!(text.matches("IPSec policy name").count(), 1);
        assert_eq!(text.matches("Connection ID").count(), 2);
        assert_eq!(ipsec_sa_text(&[]), "ipsec sa information:\n");
    }

    #[test]
    fn flows_with_protocols_ports_and_ranges() {
        let range = ::ike::Addresses::range([10, 1, 1, 10].into(), [10, 1, 1, 20].into());
        assert_eq!(flow_text(&range, 17, Some(1701)), "10.1.1.10-10.1.1.20 17/1701");
        assert_eq!(holding_time(90_061), "1d 1h 1m 1s");
    }

    /// §5.9's block for the article's proposal `a` (esp, tunnel, md5, des).
    #[test]
    fn ipsec_proposal_matches_the_reference_layout() {
        let proposals = ipsec_proposals(&reference_config());
        let expected = "IPSec proposal name: a
 Encapsulation mode: Tunnel
 Transform         : esp-new
 ESP protocol      : Authentication MD5-HMAC-96
                     Encryption DES
";
        assert_eq!(ipsec_proposal_text(&proposals), expected);
        let brief = "Current ipsec proposal number: 1
---------------------------------------------------------------------
Proposal name    Encapsulation mode   Transform
---------------------------------------------------------------------
a                Tunnel               esp-new
";
        assert_eq!(ipsec_proposal_brief_text(&proposals), brief);
    }

    #[test]
    fn ipsec_proposal_with_ah_and_defaults() {
        let text = "ipsec proposal x\n transform ah-esp\nipsec proposal y\n";
        let config = vrp::parse("t.cfg", text).unwrap().config;
        let expected = "IPSec proposal name: x
 Encapsulation mode: Tunnel
 Transform         : ah-esp-new
 AH protocol       : Authentication SHA2-HMAC-256
 ESP protocol      : Authentication SHA2-HMAC-256
                     Encryption AES-256

IPSec proposal name: y
 Encapsulation mode: Tunnel
 Transform         : esp-new
 ESP protocol      : Authentication SHA2-HMAC-256
                     Encryption AES-256
";
        assert_eq!(ipsec_proposal_text(&ipsec_proposals(&config)), expected);
    }

    /// FW_A's policy1 with the values in force (the global 3600 s / 1843200 KB).
    #[test]
    fn ipsec_policy_of_the_reference() {
        let expected = r#"===========================================
IPSec policy group: "policy1"
Using interface: GigabitEthernet0/0/2
===========================================

    Sequence number: 1
    Mode: ISAKMP
    Security data flow: 3001
    Peer name: b
    Perfect forward secrecy: None
    Proposal name: a
    IPSec SA local duration(time based): 3600 seconds
    IPSec SA local duration(traffic based): 1843200 kilobytes
    SA trigger mode: Traffic-based
"#;
        assert_eq!(ipsec_policy_text(&ipsec_policies(&reference_config())), expected);
    }

    #[test]
    fn ipsec_policy_with_settings_and_a_template_entry() {
        let text = "ipsec policy-template t 1\n proposal a\nipsec policy p 1 isakmp\n security acl 3000\n \
                    proposal a b\n ike-peer x\n pfs dh-group14\n sa duration time-based 600\n \
                    sa trigger-mode auto\n tunnel local 192.0.2.9\nipsec policy p 2 isakmp template t\n";
        let config = vrp::parse("t.cfg", text).unwrap().config;
        let expected = r#"===========================================
IPSec policy group: "p"
Using interface:
===========================================

    Sequence number: 1
    Mode: ISAKMP
    Security data flow: 3000
    Peer name: x
    Perfect forward secrecy: DH group 14
    Proposal name: a b
    IPSec SA local duration(time based): 600 seconds
    IPSec SA local duration(traffic based): 1843200 kilobytes
    SA trigger mode: Automatic
    Tunnel local address: 192.0.2.9

    Sequence number: 2
    Mode: Template
    Policy template: t
"#;
        assert_eq!(ipsec_policy_text(&ipsec_policies(&config)), expected);
    }
}
