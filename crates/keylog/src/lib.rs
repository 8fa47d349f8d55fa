//! `keysteward run --key-log FILE`: the session keys of every IKE SA and IPsec SA, written as
//! Wireshark decryption records, for debugging a tunnel from a capture of the public link.
//!
//! Anyone who can read the file can decrypt every IKE message and ESP packet of the SAs in
//! it, so the key log is off unless asked for, the daemon warns when it starts with one, and
//! the file is private:
//!
//! * it is created with mode 0600, and opened append-only, never truncated: records of
//!   earlier runs stay, a record is added with one `write` on an `O_APPEND` descriptor;
//! * an existing file is used only if it is a regular file (no symbolic link is followed,
//!   `O_NOFOLLOW`), owned by the daemon's user and without any group or other permission
//!   bit. Otherwise the daemon refuses to start instead of fixing the mode: a file someone
//!   else could already read, or that someone else owns, may have been prepared to catch the
//!   keys, and a `chmod` would not take back what was already copied. The operator decides
//!   (`chmod 600`, or a new file);
//! * record text is built in zeroized buffers and never passes through `tracing`; errors name
//!   the file and the SA, never a key.
//!
//! One record per line, each exactly a `tshark -o` argument, so the file holds both tables
//! without ambiguity and each line can be passed on as it is:
//!
//! ```text
//! uat:ikev1_decryption_table:8446a468a0b11533,6ef226382925ce4787200282c2eb37d2
//! uat:esp_sa:"IPv4","192.0.2.1","192.0.2.2","0xb49cb233","AES-CBC [RFC3602]","0x06b1…","HMAC-SHA-256-128 [RFC4868]","0xbe3e…"
//! ```
//!
//! ```sh
//! mapfile -t records < keys.log; options=(); for r in "${records[@]}"; do options+=(-o "$r"); done
//! tshark -r capture.pcap -o esp.enable_encryption_decode:TRUE "${options[@]}"
//! ```
//!
//! Without the `uat:TABLE:` prefix a line is a line of Wireshark's UAT file of that name
//! (`sed -n 's/^uat:esp_sa://p' keys.log >> ~/.config/wireshark/esp_sa`). IKEv1 records are
//! the initiator cookie and Ka (Wireshark derives the phase-1 IVs from the KE payloads it
//! saw); ESP records are one per direction with the outer addresses, which with UDP
//! encapsulation (RFC 3948) are still those of the outer IP header.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crypto::{EspCipher, Integrity};
use ike::{Event, IpsecSaPair, Phase1KeyLog};
use zeroize::Zeroizing;

/// The warning the daemon logs when it starts with a key log, naming the file.
pub fn warning(path: &Path) -> String {
    format!(
        "key log enabled: {} holds the session keys of every IKE and IPsec SA from now on; \
         anyone who can read it can decrypt the tunnels' traffic. Use it for debugging only, \
         and delete it afterwards",
        path.display()
    )
}

/// Why the key log was refused or a record not written; each names the file (and the SA),
/// never a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyLogError {
    /// The file could not be opened or created.
    #[error("cannot open key log {}: {source}", path.display())]
    Open {
        /// The key log.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The opened file's metadata could not be read.
    #[error("cannot inspect key log {}: {source}", path.display())]
    Inspect {
        /// The key log.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The path is a directory, device or other non-regular file.
    #[error("refusing key log {}: not a regular file", path.display())]
    NotRegular {
        /// The key log.
        path: PathBuf,
    },
    /// Other users could read or change the file.
    #[error(
        "refusing key log {}: its mode {mode:03o} lets other users read or change it; \
         chmod 600 it or choose a new file",
        path.display()
    )]
    NotPrivate {
        /// The key log.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Our own uid could not be told, so ownership cannot be checked.
    #[error("refusing key log {}: cannot tell our uid from /proc/self: {source}", path.display())]
    UnknownUid {
        /// The key log.
        path: PathBuf,
        /// Why `/proc/self` could not be read.
        source: std::io::Error,
    },
    /// Another user owns the file.
    #[error("refusing key log {}: owned by uid {owner}, not by the daemon's uid {us}", path.display())]
    NotOurs {
        /// The key log.
        path: PathBuf,
        /// The file's owner.
        owner: u32,
        /// The daemon's uid.
        us: u32,
    },
    /// The record of an established IKE SA could not be written.
    #[error("key log {}: IKE SA {connection} not recorded: {source}", path.display())]
    IkeSa {
        /// The key log.
        path: PathBuf,
        /// The IKE SA.
        connection: ike::ConnectionId,
        /// Why the write failed.
        source: std::io::Error,
    },
    /// The records of an installed IPsec SA pair could not be written.
    #[error("key log {}: IPsec SA pair {inbound_spi:08x}/{outbound_spi:08x} not recorded: {source}", path.display())]
    IpsecSa {
        /// The key log.
        path: PathBuf,
        /// Our SPI.
        inbound_spi: u32,
        /// The peer's SPI.
        outbound_spi: u32,
        /// Why the write failed.
        source: std::io::Error,
    },
}

/// An open key log. Records go straight to the file descriptor (no user-space buffer that
/// would keep key text around or lose it on a crash).
#[derive(Debug)]
pub struct KeyLog {
    file: File,
    path: PathBuf,
}

impl KeyLog {
    /// Opens `path` for appending, creating it with mode 0600, and checks that an existing
    /// file is private (see the module documentation for why it refuses rather than fixes).
    pub fn open(path: &Path) -> Result<Self, KeyLogError> {
        let path_buf = || path.to_path_buf();
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|source| KeyLogError::Open { path: path_buf(), source })?;
        let meta = file.metadata().map_err(|source| KeyLogError::Inspect { path: path_buf(), source })?;
        if !meta.file_type().is_file() {
            return Err(KeyLogError::NotRegular { path: path_buf() });
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyLogError::NotPrivate { path: path_buf(), mode });
        }
        let us = effective_uid().map_err(|source| KeyLogError::UnknownUid { path: path_buf(), source })?;
        if meta.uid() != us {
            return Err(KeyLogError::NotOurs { path: path_buf(), owner: meta.uid(), us });
        }
        Ok(Self { file, path: path_buf() })
    }

    /// The file's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the records an engine event carries keys for: an established IKE SA whose
    /// event has a [`Phase1KeyLog`] (only when the engine's key log is on), and an installed
    /// IPsec SA pair. Any other event, or an IKE SA without keys, writes nothing. Errors name
    /// the file and the SA, never a key.
    pub fn record(&mut self, event: &Event) -> Result<(), KeyLogError> {
        match event {
            Event::IkeSaEstablished { connection, key_log: Some(keys), .. } => {
                self.ike_sa_established(keys).map_err(|source| KeyLogError::IkeSa {
                    path: self.path.clone(),
                    connection: *connection,
                    source,
                })
            }
            Event::IpsecSaInstalled(pair) => {
                self.ipsec_sa_installed(pair).map_err(|source| KeyLogError::IpsecSa {
                    path: self.path.clone(),
                    inbound_spi: pair.inbound.spi().0,
                    outbound_spi: pair.outbound.spi().0,
                    source,
                })
            }
            _ => Ok(()),
        }
    }

    /// Appends the record of an established IKE SA.
    pub fn ike_sa_established(&mut self, keys: &Phase1KeyLog) -> std::io::Result<()> {
        self.append(&ikev1_record(&keys.cookie_i, keys.ka.expose()))
    }

    /// Appends the two records (inbound and outbound) of an installed IPsec SA pair. A pair
    /// without ESP (AH alone) writes nothing: AH encrypts nothing to decrypt.
    pub fn ipsec_sa_installed(&mut self, pair: &IpsecSaPair) -> std::io::Result<()> {
        let Some([outbound, inbound]) = esp_sa_records(pair) else { return Ok(()) };
        let mut both = Zeroizing::new(String::with_capacity(outbound.len() + inbound.len()));
        both.push_str(&outbound);
        both.push_str(&inbound);
        self.append(&both)
    }

    /// One `write` per record: with `O_APPEND` the kernel puts it at the end as a whole.
    fn append(&mut self, record: &str) -> std::io::Result<()> {
        self.file.write_all(record.as_bytes())
    }
}

/// The daemon's effective user: the owner of `/proc/self` (the gateway runs on Linux, and
/// this keeps the crate free of `unsafe` for a `geteuid` call).
fn effective_uid() -> std::io::Result<u32> {
    std::fs::metadata("/proc/self").map(|m| m.uid())
}

/// An `ikev1_decryption_table` record: initiator cookie and Ka in plain hex, unquoted (the
/// table's hex fields reject quoted values), ending in a newline.
pub fn ikev1_record(cookie_i: &[u8; 8], ka: &[u8]) -> Zeroizing<String> {
    let mut line = Zeroizing::new(String::with_capacity(28 + 2 * (cookie_i.len() + ka.len()) + 2));
    line.push_str("uat:ikev1_decryption_table:");
    push_hex(&mut line, cookie_i);
    line.push(',');
    push_hex(&mut line, ka);
    line.push('\n');
    line
}

/// The `esp_sa` records of a pair: outbound (our address to the peer's, the peer's SPI) and
/// inbound (the reverse, our SPI), each with its own keys. `None` for a pair without ESP
/// (AH alone); of an AH+ESP pair these are the ESP SAs.
pub fn esp_sa_records(pair: &IpsecSaPair) -> Option<[Zeroizing<String>; 2]> {
    let (encryption, integrity) = pair.suite.proposal.protocols.esp()?;
    let (local, remote) = (pair.local.ip(), pair.remote.ip());
    let record = |src, dst, keys: &crypto::key_schedule::EspKeys| {
        EspSaRecord {
            src,
            dst,
            spi: keys.spi().0,
            encryption,
            // Wireshark takes an AES-GCM key with its 4-byte salt appended (RFC 4106 §8.1),
            // as the keys are stored; for CBC ciphers there is no salt and this is the key.
            encryption_key: keys.encryption_key_with_salt(),
            integrity,
            integrity_key: keys.integrity_key(),
        }
        .line()
    };
    Some([record(local, remote, &pair.outbound), record(remote, local, &pair.inbound)])
}

/// One one-way ESP SA as the `esp_sa` table describes it.
#[derive(Clone, Copy)]
pub struct EspSaRecord<'k> {
    /// Source address of the outer IP header.
    pub src: IpAddr,
    /// Destination address of the outer IP header.
    pub dst: IpAddr,
    /// The SPI in the ESP header.
    pub spi: u32,
    /// The cipher.
    pub encryption: EspCipher,
    /// The cipher key (with the salt for AES-GCM).
    pub encryption_key: &'k [u8],
    /// The integrity algorithm; `None` with an AEAD cipher.
    pub integrity: Option<Integrity>,
    /// The integrity key (empty without integrity).
    pub integrity_key: &'k [u8],
}

impl EspSaRecord<'_> {
    /// The record: eight quoted fields, keys as `0x` hex (empty for NULL), newline-ended.
    pub fn line(&self) -> Zeroizing<String> {
        let keys = 2 * (self.encryption_key.len() + self.integrity_key.len());
        let mut line = Zeroizing::new(String::with_capacity(160 + keys));
        let protocol = if self.src.is_ipv4() { "IPv4" } else { "IPv6" };
        // Writing to a String cannot fail.
        let _ = write!(
            line,
            "uat:esp_sa:\"{protocol}\",\"{}\",\"{}\",\"0x{:08x}\",\"{}\",\"",
            self.src,
            self.dst,
            self.spi,
            wireshark_encryption(self.encryption)
        );
        push_key(&mut line, self.encryption_key);
        line.push_str("\",\"");
        line.push_str(wireshark_integrity(self.integrity));
        line.push_str("\",\"");
        push_key(&mut line, self.integrity_key);
        line.push_str("\"\n");
        line
    }
}

/// Wireshark's name of an ESP cipher in the `esp_sa` table (`esp_encryption_type_vals` in
/// `packet-ipsec.c`); the table matches the name exactly.
pub const fn wireshark_encryption(cipher: EspCipher) -> &'static str {
    cipher.row().wireshark
}

/// Wireshark's name of an ESP integrity algorithm (`esp_authentication_type_vals`); "NULL"
/// for none (AES-GCM carries its own ICV).
pub const fn wireshark_integrity(integrity: Option<Integrity>) -> &'static str {
    match integrity {
        None => "NULL",
        Some(integrity) => integrity.row().wireshark,
    }
}

/// `0x` and the hex of a key; nothing for an empty key (NULL cipher or integrity).
fn push_key(line: &mut String, key: &[u8]) {
    if !key.is_empty() {
        line.push_str("0x");
        push_hex(line, key);
    }
}

/// Lower-case hex into `line`, digit by digit, so that no temporary string holds key text.
fn push_hex(line: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        line.push(char::from(DIGITS[usize::from(b >> 4)]));
        line.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("keysteward-keylog-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn h(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    // Golden lines: the strongSwan capture records that tshark decrypted (strongswan-peer.md),
    // in the exact form `tshark -o` took them.
    #[test]
    fn ikev1_record_golden_line() {
        let cookie = h("8446a468a0b11533").try_into().unwrap();
        let line = ikev1_record(&cookie, &h("6EF226382925CE4787200282C2EB37D2"));
        assert_eq!(
            line.as_str(),
            "uat:ikev1_decryption_table:8446a468a0b11533,6ef226382925ce4787200282c2eb37d2\n"
        );
    }

    #[test]
    fn esp_sa_record_golden_lines() {
        let cbc = EspSaRecord {
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            spi: 0xb49c_b233,
            encryption: EspCipher::AesCbc128,
            encryption_key: &h("06b1000102030405060708090a0b0c0d"),
            integrity: Some(Integrity::HmacSha256_128),
            integrity_key: &h("be3e000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d"),
        };
        assert_eq!(
            cbc.line().as_str(),
            "uat:esp_sa:\"IPv4\",\"192.0.2.1\",\"192.0.2.2\",\"0xb49cb233\",\"AES-CBC [RFC3602]\",\
             \"0x06b1000102030405060708090a0b0c0d\",\"HMAC-SHA-256-128 [RFC4868]\",\
             \"0xbe3e000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d\"\n"
        );
        let gcm = EspSaRecord {
            src: "2001:db8::2".parse().unwrap(),
            dst: "2001:db8::1".parse().unwrap(),
            spi: 0x0000_1234,
            encryption: EspCipher::AesGcm128,
            encryption_key: &h("000102030405060708090a0b0c0d0e0fa0a1a2a3"),
            integrity: None,
            integrity_key: &[],
        };
        assert_eq!(
            gcm.line().as_str(),
            "uat:esp_sa:\"IPv6\",\"2001:db8::2\",\"2001:db8::1\",\"0x00001234\",\
             \"AES-GCM with 16 octet ICV [RFC4106]\",\"0x000102030405060708090a0b0c0d0e0fa0a1a2a3\",\
             \"NULL\",\"\"\n"
        );
        let triple_des = EspSaRecord {
            encryption: EspCipher::TripleDes,
            encryption_key: &[0x11; 24],
            integrity: Some(Integrity::HmacMd5_96),
            integrity_key: &[0x22; 16],
            ..cbc
        };
        assert_eq!(
            triple_des.line().as_str(),
            format!(
                "uat:esp_sa:\"IPv4\",\"192.0.2.1\",\"192.0.2.2\",\"0xb49cb233\",\"TripleDES-CBC [RFC2451]\",\
                 \"0x{}\",\"HMAC-MD5-96 [RFC2403]\",\"0x{}\"\n",
                "11".repeat(24),
                "22".repeat(16)
            )
        );
    }

    #[test]
    fn wireshark_names_for_every_algorithm() {
        assert_eq!(wireshark_encryption(EspCipher::Des), "DES-CBC [RFC2405]");
        assert_eq!(wireshark_encryption(EspCipher::AesCbc256), "AES-CBC [RFC3602]");
        assert_eq!(wireshark_encryption(EspCipher::AesGcm256), "AES-GCM with 16 octet ICV [RFC4106]");
        assert_eq!(wireshark_encryption(EspCipher::Null), "NULL");
        assert_eq!(wireshark_integrity(Some(Integrity::HmacSha1_96)), "HMAC-SHA-1-96 [RFC2404]");
        assert_eq!(wireshark_integrity(Some(Integrity::HmacSha384_192)), "HMAC-SHA-384-192 [RFC4868]");
        assert_eq!(wireshark_integrity(Some(Integrity::HmacSha512_256)), "HMAC-SHA-512-256 [RFC4868]");
    }

    #[test]
    fn open_creates_a_private_file_and_appends() {
        let dir = scratch("create");
        let path = dir.join("keys.log");
        let mut log = KeyLog::open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"", "nothing before an SA is up");
        let keys = Phase1KeyLog { cookie_i: [1; 8], cookie_r: [2; 8], ka: vec![0xab; 16].into() };
        log.ike_sa_established(&keys).unwrap();
        drop(log);
        // A second run appends; it never truncates what the first wrote.
        let mut log = KeyLog::open(&path).unwrap();
        log.ike_sa_established(&keys).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, ikev1_record(&[1; 8], &[0xab; 16]).repeat(2));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn open_refuses_a_file_others_can_read_and_leaves_it_alone() {
        let dir = scratch("mode");
        let path = dir.join("keys.log");
        std::fs::write(&path, b"old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = KeyLog::open(&path).unwrap_err().to_string();
        assert!(e.contains("mode 644") && e.contains("chmod 600"), "{e}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644, "not fixed");
        assert_eq!(std::fs::read(&path).unwrap(), b"old\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(KeyLog::open(&path).is_ok(), "a private existing file is used");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn open_refuses_a_symbolic_link() {
        let dir = scratch("link");
        let target = dir.join("elsewhere");
        std::fs::write(&target, b"").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("keys.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(KeyLog::open(&link).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A pair as the engine reports it, with real KEYMAT-derived keys (AES-128-CBC with
    /// HMAC-SHA2-256), our SPI 0x11111111 and the peer's 0x22222222.
    fn pair() -> IpsecSaPair {
        use crypto::key_schedule::{EspKeyLengths, KeymatInput, Skeyid, Spi};
        use crypto::HashAlgorithm;
        use ike::{
            EncapsulationMode, IpsecProposal, IpsecProtocols, IpsecSuite, PolicyId, Subnet, TrafficSelector,
        };
        let skeyid = Skeyid::for_pre_shared_key(HashAlgorithm::Sha256, b"psk", b"ni", b"nr");
        let d = skeyid.derive_phase1_keys(b"g^xy", &[1; 8], &[2; 8]).skeyid_d;
        let input = KeymatInput { pfs_shared_secret: None, protocol: 3, ni_b: b"NI", nr_b: b"NR" };
        let lengths = EspKeyLengths { encryption_key_len: 16, salt_len: 0, integrity_key_len: 32 };
        let keys = d.ipsec_sa_keys(&input, Spi(0x1111_1111), Spi(0x2222_2222), lengths).unwrap();
        let net = |a: [u8; 4]| Subnet::new(a.into(), 24);
        IpsecSaPair {
            connection: ike::ConnectionId(1),
            peer: "b".into(),
            policy: PolicyId { name: "policy1".into(), sequence: 1 },
            local: "192.0.2.1:4500".parse().unwrap(),
            remote: "192.0.2.2:4500".parse().unwrap(),
            selector: TrafficSelector::between(net([10, 1, 1, 0]), net([10, 2, 2, 0])),
            suite: IpsecSuite {
                proposal: IpsecProposal {
                    protocols: IpsecProtocols::Esp {
                        encryption: EspCipher::AesCbc128,
                        integrity: Some(Integrity::HmacSha256_128),
                    },
                    mode: EncapsulationMode::Tunnel,
                },
                pfs: None,
                lifetime: std::time::Duration::from_secs(3600),
                lifetime_kilobytes: None,
            },
            inbound: keys.inbound,
            outbound: keys.outbound,
            ah: None,
            initiator: true,
            udp_encapsulation: Some(ike::UdpEncapsulation { local_port: 4500, remote_port: 4500 }),
        }
    }

    fn hex(bytes: &[u8]) -> String {
        let mut s = String::new();
        push_hex(&mut s, bytes);
        s
    }

    #[test]
    fn esp_sa_records_of_a_pair_go_one_per_direction_with_outer_addresses() {
        let pair = pair();
        let [outbound, inbound] = esp_sa_records(&pair).expect("an ESP pair");
        let expect = |src: &str, dst: &str, spi: &str, keys: &crypto::key_schedule::EspKeys| {
            format!(
                "uat:esp_sa:\"IPv4\",\"{src}\",\"{dst}\",\"{spi}\",\"AES-CBC [RFC3602]\",\"0x{}\",\
                 \"HMAC-SHA-256-128 [RFC4868]\",\"0x{}\"\n",
                hex(keys.encryption_key()),
                hex(keys.integrity_key())
            )
        };
        // Packets to the peer carry the peer's SPI; packets from it ours. The UDP ports of
        // ESP-in-UDP play no part: Wireshark matches the outer IP addresses.
        assert_eq!(outbound.as_str(), expect("192.0.2.1", "192.0.2.2", "0x22222222", &pair.outbound));
        assert_eq!(inbound.as_str(), expect("192.0.2.2", "192.0.2.1", "0x11111111", &pair.inbound));
    }

    /// AH alone encrypts nothing: no `esp_sa` records.
    #[test]
    fn a_pair_without_esp_has_no_esp_sa_records() {
        let mut pair = pair();
        pair.suite.proposal.protocols = ike::IpsecProtocols::Ah { integrity: Integrity::HmacSha256_128 };
        assert!(esp_sa_records(&pair).is_none());
    }

    fn established(key_log: Option<Phase1KeyLog>) -> Event {
        Event::IkeSaEstablished {
            connection: ike::ConnectionId(1),
            peer: "b".into(),
            remote: "192.0.2.2:500".parse().unwrap(),
            suite: ike::IkeProposal::recommended(),
            initiator: true,
            key_log,
        }
    }

    #[test]
    fn record_writes_what_the_engine_handed_out_and_nothing_else() {
        let dir = scratch("record");
        let path = dir.join("keys.log");
        let mut log = KeyLog::open(&path).unwrap();
        // The engine's key log off: the event has no keys, and nothing is written.
        log.record(&established(None)).unwrap();
        log.record(&Event::IkeSaDeleted { connection: ike::ConnectionId(1), peer: "b".into() }).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        let keys = Phase1KeyLog { cookie_i: [0xc1; 8], cookie_r: [0xc2; 8], ka: vec![0x5a; 16].into() };
        log.record(&established(Some(keys))).unwrap();
        log.record(&Event::IpsecSaInstalled(Box::new(pair()))).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], format!("uat:ikev1_decryption_table:{},{}", "c1".repeat(8), "5a".repeat(16)));
        assert!(lines[1].starts_with("uat:esp_sa:\"IPv4\",\"192.0.2.1\",\"192.0.2.2\",\"0x22222222\""));
        assert!(lines[2].starts_with("uat:esp_sa:\"IPv4\",\"192.0.2.2\",\"192.0.2.1\",\"0x11111111\""));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn warning_names_the_file_and_the_risk() {
        let w = warning(Path::new("/var/tmp/keys.log"));
        assert!(w.starts_with("key log enabled: /var/tmp/keys.log holds the session keys"), "{w}");
    }
}
