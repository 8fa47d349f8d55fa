//! The `ike proposal N` view (reference `vrp-cli.md` §2.2) and the `ike peer NAME` view
//! (§2.3), with their `undo` forms and the aliases of §6.

use super::system::{proposal_number, ID_LEN};
use super::{leave, Effect};
use crate::algorithm::{
    AuthenticationMethod, DhGroup, DpdMessageOrder, DpdType, EspCipher, ExchangeMode, HashAlgorithm, IdType,
    Phase1Cipher,
};
use crate::cursor::{invalid, Cursor, Result, SyntaxError};
use crate::diagnostic::DiagnosticKind;
use crate::model::{CertificateSend, Config, IkePeer, IkeProposal, PeerCertificate, PeerDpd};
use crate::secret::{PreSharedKey, MAX_KEY_LEN};

const PROPOSAL_COMMANDS: &[&str] = &[
    "encryption-algorithm",
    "authentication-algorithm",
    "authentication-method",
    "dh",
    "sa",
    "integrity-algorithm",
    "prf",
    "undo",
    "quit",
    "return",
];

pub(super) fn proposal_command(config: &mut Config, number: u32, c: &mut Cursor<'_>) -> Result<Effect> {
    let keyword = c.keyword("an ike-proposal command", PROPOSAL_COMMANDS)?;
    if let Some(done) = leave(keyword, c) {
        return done;
    }
    let proposal = config.ike_proposals.entry(number).or_default();
    match keyword {
        "encryption-algorithm" => {
            let v = encryption(
                c,
                |e| e.vrp_keyword().and_then(Phase1Cipher::from_vrp_keyword),
                "a CBC cipher (AES-GCM is for ESP only)",
            )?;
            c.end()?;
            proposal.encryption = v;
            Ok(Effect::stay("encryption-algorithm"))
        }
        "authentication-algorithm" => {
            let (v, _) = c.value::<HashAlgorithm>()?;
            c.end()?;
            proposal.authentication = v;
            Ok(Effect::stay("authentication-algorithm"))
        }
        "authentication-method" => {
            let (v, _) = c.value::<AuthenticationMethod>()?;
            c.end()?;
            proposal.method = v;
            Ok(Effect::stay("authentication-method"))
        }
        "dh" => {
            let (v, _) = c.value::<DhGroup>()?;
            c.end()?;
            proposal.dh = v;
            Ok(Effect::stay("dh"))
        }
        "sa" => {
            c.keyword("`duration`", &["duration"])?;
            let n = c.number("IKE SA lifetime (seconds)", 60, 604_800)? as u32;
            c.end()?;
            proposal.sa_duration = n;
            Ok(Effect::stay("sa duration"))
        }
        "integrity-algorithm" | "prf" => {
            let column = c.column();
            while c.raw("").is_ok() {}
            Ok(Effect::stay("").with_note(
                column,
                DiagnosticKind::Ignored,
                format!("`{keyword}` applies to IKEv2 only; ignored"),
            ))
        }
        _ => {
            let which = c.keyword(
                "a setting to undo",
                &["encryption-algorithm", "authentication-algorithm", "authentication-method", "dh", "sa"],
            )?;
            if which == "sa" {
                c.keyword("`duration`", &["duration"])?;
            }
            c.end()?;
            let d = IkeProposal::default();
            match which {
                "encryption-algorithm" => proposal.encryption = d.encryption,
                "authentication-algorithm" => proposal.authentication = d.authentication,
                "authentication-method" => proposal.method = d.method,
                "dh" => proposal.dh = d.dh,
                _ => proposal.sa_duration = d.sa_duration,
            }
            Ok(Effect::stay("undo"))
        }
    }
}

/// An encryption keyword, including the two-token aliases `aes 128` and `aes-cbc 256` (§6).
/// The keywords are the ESP ciphers'; `cipher` reads one as the cipher the place takes (the
/// IKE cipher of the same keyword in an IKE proposal, where the others, AES-GCM, are
/// refused with `refused`: IKEv1 phase 1 has no AEAD transform).
pub(crate) fn encryption<T>(
    c: &mut Cursor<'_>,
    cipher: impl Fn(EspCipher) -> Option<T>,
    refused: &str,
) -> Result<T> {
    let (v, matched) = c.value_map::<EspCipher, T>(&cipher, refused)?;
    if matched == "aes" || matched == "aes-cbc" {
        if let Some(token) = c.peek() {
            if token.before_comment().unwrap_or(&token.text).parse::<u16>().is_ok() {
                let (token, text) = c.value_token("key length")?;
                let aes = match text {
                    "128" => cipher(EspCipher::AesCbc128),
                    "192" => cipher(EspCipher::AesCbc192),
                    "256" => cipher(EspCipher::AesCbc256),
                    _ => None,
                };
                return aes.ok_or_else(|| invalid(token, "AES key length", "128, 192 or 256"));
            }
        }
    }
    Ok(v)
}

const PEER_COMMANDS: &[&str] = &[
    "ike-proposal",
    "version",
    "exchange-mode",
    "pre-shared-key",
    "remote-address",
    "remote-id",
    "remote-id-type",
    "remote-name",
    "local-id-type",
    "local-id",
    "local-address",
    "nat",
    "dpd",
    "certificate",
    "user-table",
    "undo",
    "quit",
    "return",
];

const CERTIFICATE_SETTINGS: &[&str] =
    &["local-filename", "local-key-filename", "ca-filename", "crl-filename", "send", "remote-filename"];

/// Longest certificate file name (VRP8's `certificate local-filename`: 1-127 characters).
const FILENAME_LEN: usize = 127;

const PEER_UNDO: &[&str] = &[
    "ike-proposal",
    "version",
    "exchange-mode",
    "pre-shared-key",
    "remote-address",
    "remote-id",
    "remote-id-type",
    "remote-name",
    "local-id-type",
    "local-id",
    "local-address",
    "nat",
    "dpd",
    "certificate",
    "user-table",
];

const DPD_SETTINGS: &[&str] = &["type", "idle-time", "retransmit-interval", "retry-limit", "msg"];

pub(super) fn peer_command(config: &mut Config, name: &str, c: &mut Cursor<'_>) -> Result<Effect> {
    let keyword = c.keyword("an ike-peer command", PEER_COMMANDS)?;
    if let Some(done) = leave(keyword, c) {
        return done;
    }
    if keyword == "undo" {
        return peer_undo(config, name, c);
    }
    let peer = config.ike_peers.entry(name.to_string()).or_default();
    let key = match keyword {
        "ike-proposal" => {
            let n = proposal_number(c)?;
            c.end()?;
            peer.ike_proposal = Some(n);
            "ike-proposal"
        }
        "version" => {
            let v = version(c)?;
            c.end()?;
            match v {
                1 => peer.versions.v1 = true,
                _ => peer.versions.v2 = true,
            }
            "version"
        }
        "exchange-mode" => {
            let (v, _) = c.value::<ExchangeMode>()?;
            c.end()?;
            peer.exchange_mode = v;
            "exchange-mode"
        }
        "pre-shared-key" => {
            let key = pre_shared_key(c)?;
            peer.pre_shared_key = Some(key);
            "pre-shared-key"
        }
        "user-table" => {
            let n = super::user_table::table_number(c)?;
            c.end()?;
            peer.user_table = Some(n);
            "user-table"
        }
        "remote-address" => {
            let auth = c.optional_keyword(&["authentication-address"]).is_some();
            let address = c.ipv4("remote address")?;
            c.end()?;
            if auth {
                peer.authentication_address = Some(address);
                "remote-address authentication-address"
            } else {
                peer.remote_address = Some(address);
                "remote-address"
            }
        }
        "remote-id" | "remote-name" => {
            let token = c.raw(&format!("remote ID (1-{ID_LEN} characters)"))?;
            // A DN (`"C=CN, O=Example, CN=fw-b"`) may hold blanks when quoted; other IDs may not.
            if token.text.contains('=') {
                let len = token.text.chars().count();
                if len == 0 || len > ID_LEN || token.text.contains('"') {
                    return Err(invalid(token, "remote ID", &format!("1-{ID_LEN} characters without `\"`")));
                }
            } else {
                crate::cursor::check_name(token, "remote ID", &token.text, ID_LEN)?;
            }
            let id = token.text.clone();
            c.end()?;
            peer.remote_id = Some(id);
            "remote-id"
        }
        "remote-id-type" => {
            let (v, _) = c.value::<IdType>()?;
            c.end()?;
            peer.remote_id_type = Some(v);
            "remote-id-type"
        }
        "local-id-type" => {
            let column = c.column();
            let (v, matched) = c.value::<IdType>()?;
            c.end()?;
            if v == IdType::Any {
                return Err(SyntaxError {
                    column,
                    kind: DiagnosticKind::InvalidValue,
                    message: format!(
                        "invalid local ID type `{matched}`: expected ip, fqdn, user-fqdn, dn or key-id"
                    ),
                });
            }
            peer.local_id_type = v;
            "local-id-type"
        }
        "local-id" => {
            let id = c.name("local ID", ID_LEN)?;
            c.end()?;
            peer.local_id = Some(id);
            "local-id"
        }
        "nat" => {
            c.keyword("`traversal`", &["traversal"])?;
            let force = c.optional_keyword(&["force-encapsulation"]).is_some();
            c.end()?;
            peer.nat_traversal = true;
            if force {
                peer.nat_traversal_force = true;
                "nat traversal force-encapsulation"
            } else {
                "nat traversal"
            }
        }
        "local-address" => {
            let address = c.ipv4("local address")?;
            c.end()?;
            peer.local_address = Some(address);
            "local-address"
        }
        "certificate" => return certificate(&mut peer.certificate, c),
        _ => {
            dpd(&mut peer.dpd, c)?;
            "dpd"
        }
    };
    Ok(Effect::stay(key))
}

fn version(c: &mut Cursor<'_>) -> Result<u8> {
    Ok(c.number("IKE version", 1, 2)? as u8)
}

/// How to write a key that contains blanks, for errors that cannot show the key.
const KEY_WITH_BLANKS: &str = "a key with blanks must be quoted: pre-shared-key simple \"...\"";

/// `pre-shared-key [cipher | simple] KEY` (§2.3, §6 aliases).
pub(super) fn pre_shared_key(c: &mut Cursor<'_>) -> Result<PreSharedKey> {
    // `cipher`/`simple` is a keyword only when a key follows it: a key may itself be `c`.
    c.offer_keywords(&["cipher", "simple"]);
    if c.remaining() >= 2 {
        c.optional_keyword(&["cipher", "simple"]);
    }
    // `pre-shared-key simple //Xy7…`: the key was read as a note; never take `simple` (or
    // nothing) for the key. A file an earlier keysteward saved with such a key unquoted
    // lands here too.
    let keyword = |t: &crate::lexer::Token| {
        !t.quoted && !t.text.is_empty() && ["cipher", "simple"].iter().any(|k| k.starts_with(t.text.as_str()))
    };
    if c.note_follows() && c.peek().is_none_or(|t| c.remaining() == 1 && keyword(t)) {
        return Err(SyntaxError {
            column: c.column(),
            kind: DiagnosticKind::MissingArgument,
            message: "the key is missing: a word starting with `//` is a note; quote a key that starts with \
                      `//`: pre-shared-key simple \"//...\" (a file saved by an earlier keysteward may have \
                      it unquoted)"
                .into(),
        });
    }
    let token = c.secret("the pre-shared key")?;
    c.end_of_secret("the pre-shared key", KEY_WITH_BLANKS)?;
    if token.text.starts_with("%^%#") {
        return Err(SyntaxError {
            column: token.column,
            kind: DiagnosticKind::Unsupported,
            message: "unsupported pre-shared key `%^%#…`: a key encrypted by a Huawei device (or masked by \
                      `show-config`) cannot be decrypted; give the key in clear"
                .into(),
        });
    }
    let len = token.text.chars().count();
    if len == 0 || len > MAX_KEY_LEN || token.text.contains('"') {
        return Err(SyntaxError {
            column: token.column,
            kind: DiagnosticKind::InvalidValue,
            message: format!(
                "invalid pre-shared key ({len} characters): expected 1-{MAX_KEY_LEN} characters without `\"`"
            ),
        });
    }
    Ok(PreSharedKey::new(token.text.clone()))
}

/// `certificate { local-filename | local-key-filename | ca-filename | crl-filename } FILE`
/// and `certificate send { always | when-asked }`. Each file gets its own source-map key, so
/// a file that cannot be read is reported at the line that named it.
fn certificate(cert: &mut PeerCertificate, c: &mut Cursor<'_>) -> Result<Effect> {
    let column = c.column();
    let setting = c.keyword("a certificate setting", CERTIFICATE_SETTINGS)?;
    if setting == "send" {
        let how = c.keyword("`always` or `when-asked`", &["always", "when-asked"])?;
        c.end()?;
        cert.send = if how == "always" { CertificateSend::Always } else { CertificateSend::WhenAsked };
        return Ok(Effect::stay("certificate send"));
    }
    let file = c.name("file name", FILENAME_LEN)?;
    c.end()?;
    match setting {
        "local-filename" => cert.local_filename = Some(file.clone()),
        "local-key-filename" => cert.local_key_filename = Some(file.clone()),
        "ca-filename" => {
            if !cert.ca_filenames.contains(&file) {
                cert.ca_filenames.push(file.clone());
            }
        }
        "crl-filename" => {
            if !cert.crl_filenames.contains(&file) {
                cert.crl_filenames.push(file.clone());
            }
        }
        _ => {
            return Err(SyntaxError {
                column,
                kind: DiagnosticKind::Unsupported,
                message: "unsupported `certificate remote-filename`: keysteward verifies the certificate \
                          the peer sends against `certificate ca-filename`; configure the peer's CA instead"
                    .into(),
            })
        }
    }
    Ok(Effect::stay(certificate_key(setting, &file)))
}

/// The source-map key of a certificate file command (relative to the peer's view).
fn certificate_key(setting: &str, file: &str) -> String {
    format!("certificate {setting} {file}")
}

fn dpd(dpd: &mut PeerDpd, c: &mut Cursor<'_>) -> Result<()> {
    match c.keyword("a DPD setting", DPD_SETTINGS)? {
        "type" => {
            let (v, _) = c.value::<DpdType>()?;
            c.end()?;
            dpd.dpd_type = Some(v);
        }
        "idle-time" => {
            let n = c.number("idle time (seconds)", 10, 3600)? as u32;
            c.end()?;
            dpd.idle_time = Some(n);
        }
        "retransmit-interval" => {
            let n = c.number("retransmit interval (seconds)", 2, 60)? as u32;
            c.end()?;
            dpd.retransmit_interval = Some(n);
        }
        "retry-limit" => {
            let n = c.number("retry limit", 1, 10)? as u32;
            c.end()?;
            dpd.retry_limit = Some(n);
        }
        _ => {
            let (v, _) = c.value::<DpdMessageOrder>()?;
            c.end()?;
            dpd.message_order = Some(v);
        }
    }
    Ok(())
}

fn peer_undo(config: &mut Config, name: &str, c: &mut Cursor<'_>) -> Result<Effect> {
    let which = c.keyword("a setting to undo", PEER_UNDO)?;
    let peer = config.ike_peers.entry(name.to_string()).or_default();
    let d = IkePeer::default();
    match which {
        "version" => {
            let v = version(c)?;
            c.end()?;
            match v {
                1 => peer.versions.v1 = false,
                _ => peer.versions.v2 = false,
            }
        }
        "remote-address" => {
            let auth = c.optional_keyword(&["authentication-address"]).is_some();
            c.end()?;
            if auth {
                peer.authentication_address = None;
            } else {
                peer.remote_address = None;
            }
        }
        "nat" => {
            c.keyword("`traversal`", &["traversal"])?;
            let force = c.optional_keyword(&["force-encapsulation"]).is_some();
            c.end()?;
            // `undo nat traversal force-encapsulation` stops forcing; `undo nat traversal`
            // turns NAT-T off, forcing with it.
            peer.nat_traversal = force && peer.nat_traversal;
            peer.nat_traversal_force = false;
        }
        "certificate" => {
            let setting = c.keyword("a certificate setting", CERTIFICATE_SETTINGS)?;
            let file = if matches!(setting, "ca-filename" | "crl-filename") {
                c.raw("file name").ok()
            } else {
                None
            };
            c.end()?;
            let d = &mut peer.certificate;
            match (setting, file) {
                ("local-filename", _) => d.local_filename = None,
                ("local-key-filename", _) => d.local_key_filename = None,
                ("ca-filename", Some(f)) => d.ca_filenames.retain(|x| *x != f.text),
                ("ca-filename", None) => d.ca_filenames.clear(),
                ("crl-filename", Some(f)) => d.crl_filenames.retain(|x| *x != f.text),
                ("crl-filename", None) => d.crl_filenames.clear(),
                ("send", _) => d.send = CertificateSend::default(),
                _ => {}
            }
        }
        "dpd" => {
            let setting = c.keyword("a DPD setting", DPD_SETTINGS)?;
            c.end()?;
            match setting {
                "type" => peer.dpd.dpd_type = None,
                "idle-time" => peer.dpd.idle_time = None,
                "retransmit-interval" => peer.dpd.retransmit_interval = None,
                "retry-limit" => peer.dpd.retry_limit = None,
                _ => peer.dpd.message_order = None,
            }
        }
        "pre-shared-key" => {
            c.end_of_secret("`undo pre-shared-key`", "`undo pre-shared-key` takes no key")?;
            peer.pre_shared_key = None;
        }
        other => {
            c.end()?;
            match other {
                "ike-proposal" => peer.ike_proposal = None,
                "exchange-mode" => peer.exchange_mode = d.exchange_mode,
                "remote-id" | "remote-name" => peer.remote_id = None,
                "remote-id-type" => peer.remote_id_type = None,
                "local-id-type" => peer.local_id_type = d.local_id_type,
                "user-table" => peer.user_table = None,
                "local-address" => peer.local_address = None,
                _ => peer.local_id = None,
            }
        }
    }
    Ok(Effect::stay(if which == "version" { "version" } else { "undo" }))
}
