//! Test helpers: a tiny reader for `vectors/*.vectors.txt` (format in `vectors/README.md`) and
//! an Ethernet → IPv4 → UDP extractor for the ISAKMP messages in `vectors/*.pcap`.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `vectors/` at the repository root.
pub(crate) fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors")
}

/// The scenario names (`NAME` of `NAME.pcap` / `NAME.vectors.txt`), sorted.
pub(crate) fn scenarios() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(vectors_dir())
        .expect("vectors/ directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".pcap").map(str::to_owned))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no captures in vectors/");
    names
}

/// One `[section]` of a vectors file: raw string values by key.
#[derive(Debug, Default)]
pub(crate) struct Section(HashMap<String, String>);

impl Section {
    /// A hex byte string.
    pub(crate) fn bytes(&self, key: &str) -> Vec<u8> {
        assert!(!key.ends_with("_text") && !key.ends_with("_num"), "{key} is not a byte string");
        hex::decode(self.raw(key)).unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    /// A `_num` value.
    pub(crate) fn num(&self, key: &str) -> u64 {
        assert!(key.ends_with("_num"), "{key} is not a number");
        self.raw(key).parse().unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    /// A `_text` value.
    pub(crate) fn text(&self, key: &str) -> &str {
        self.raw(key)
    }

    /// Whether the key is present.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    fn raw(&self, key: &str) -> &str {
        self.0.get(key).unwrap_or_else(|| panic!("missing key {key}"))
    }
}

/// A parsed vectors file.
#[derive(Debug, Default)]
pub(crate) struct Vectors(HashMap<String, Section>);

impl Vectors {
    /// Reads `vectors/NAME.vectors.txt`.
    pub(crate) fn load(name: &str) -> Vectors {
        let text = std::fs::read_to_string(vectors_dir().join(format!("{name}.vectors.txt"))).unwrap();
        let mut vectors = Vectors::default();
        let mut current: Option<String> = None;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = Some(section.to_owned());
                vectors.0.entry(section.to_owned()).or_default();
                continue;
            }
            let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("bad line {line:?}"));
            let section = current.as_ref().expect("key outside a section");
            let previous =
                vectors.0.get_mut(section).unwrap().0.insert(key.trim().to_owned(), value.trim().to_owned());
            assert!(previous.is_none(), "duplicate key {key} in [{section}]");
        }
        vectors
    }

    /// One section.
    pub(crate) fn section(&self, name: &str) -> &Section {
        self.0.get(name).unwrap_or_else(|| panic!("missing section [{name}]"))
    }
}

/// One ISAKMP message found in a capture.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    /// Frame number, from 1 as tshark counts.
    pub(crate) frame: usize,
    /// UDP destination port.
    pub(crate) dst_port: u16,
    /// UDP source port.
    pub(crate) src_port: u16,
    /// The ISAKMP message (non-ESP marker removed on port 4500).
    pub(crate) message: Vec<u8>,
}

/// Every ISAKMP message in `vectors/NAME.pcap`: UDP 500, and UDP 4500 with the 4-byte zero
/// non-ESP marker. ESP-in-UDP (non-zero first 4 bytes) and NAT keepalives (one 0xff byte) are
/// skipped.
pub(crate) fn isakmp_messages(name: &str) -> Vec<Captured> {
    let file = std::fs::File::open(vectors_dir().join(format!("{name}.pcap"))).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(file).unwrap();
    let mut out = Vec::new();
    let mut frame = 0;
    while let Some(packet) = reader.next_packet() {
        frame += 1;
        let packet = packet.unwrap();
        let data = &packet.data[..];
        // Ethernet II, IPv4 only.
        if data.len() < 14 || data[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &data[14..];
        assert_eq!(ip[0] >> 4, 4, "frame {frame}: not IPv4");
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if ip[9] != 17 {
            continue;
        }
        let udp = &ip[ihl..total];
        let src_port = u16::from_be_bytes([udp[0], udp[1]]);
        let dst_port = u16::from_be_bytes([udp[2], udp[3]]);
        let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
        let payload = &udp[8..udp_len];
        let message = match (src_port, dst_port) {
            (500, _) | (_, 500) => payload,
            (4500, _) | (_, 4500) => {
                if payload == [0xff] {
                    continue; // NAT-T keepalive
                }
                match payload.strip_prefix(&[0, 0, 0, 0]) {
                    Some(message) => message,
                    None => continue, // ESP
                }
            }
            _ => continue,
        };
        out.push(Captured { frame, dst_port, src_port, message: message.to_vec() });
    }
    out
}
