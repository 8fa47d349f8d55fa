//! Recomputes strongSwan 5.9.8's IKEv1 key schedule and message crypto with keysteward's
//! code, from the inputs in `vectors/*.vectors.txt` (format: `vectors/README.md`).
//!
//! For every file it derives SKEYID, SKEYID_d/a/e, Ka (Appendix B where needed), the IVs,
//! HASH_I / HASH_R, decrypts the encrypted phase-1 and quick-mode messages with our Ka and IV
//! chains, recomputes HASH(1..3) over the decrypted bytes, derives both SAs' KEYMAT and keys,
//! and checks the first ESP packet of each SA (ICV and decryption) with those keys. Only the
//! inputs are taken from the file; every output is compared, never used.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crypto::key_schedule::{
    AuthHashInput, EspKeyLengths, ExchangeIvTable, IvChain, KeymatInput, MessageId, Phase1IvChain, Skeyid,
    Spi,
};
use crypto::{CbcCipher, HashAlgorithm, HashFunction, Phase1Cipher};

// ---------------------------------------------------------------- the file format

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Text(String),
    Num(u64),
    Bytes(Vec<u8>),
}

/// One `NAME.vectors.txt`: `[section]` headers, `key = value` lines, `#` comment lines.
#[derive(Debug, Clone)]
struct Vectors {
    name: String,
    sections: BTreeMap<String, BTreeMap<String, Value>>,
}

impl Vectors {
    fn parse(name: &str, text: &str) -> Result<Self, String> {
        let mut sections: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        let mut current: Option<String> = None;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let at = || format!("{name}:{}", n + 1);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                sections.entry(section.to_string()).or_default();
                current = Some(section.to_string());
                continue;
            }
            let (key, value) = line.split_once('=').ok_or_else(|| format!("{}: not `key = value`", at()))?;
            let section = current.as_ref().ok_or_else(|| format!("{}: key outside a section", at()))?;
            let (key, value) = (key.trim(), value.trim());
            let value = if key.ends_with("_text") {
                Value::Text(value.to_string())
            } else if key.ends_with("_num") {
                Value::Num(value.parse().map_err(|e| format!("{}: {key}: {e}", at()))?)
            } else {
                Value::Bytes(hex::decode(value).map_err(|e| format!("{}: {key}: {e}", at()))?)
            };
            let entries = sections.entry(section.clone()).or_default();
            if entries.insert(key.to_string(), value).is_some() {
                return Err(format!("{}: duplicate key {key}", at()));
            }
        }
        Ok(Self { name: name.to_string(), sections })
    }

    fn get(&self, section: &str, key: &str) -> Result<&Value, String> {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .ok_or_else(|| format!("{}: [{section}] {key} missing", self.name))
    }

    fn bytes(&self, section: &str, key: &str) -> Result<&[u8], String> {
        match self.get(section, key)? {
            Value::Bytes(b) => Ok(b),
            other => Err(format!("{}: [{section}] {key} is not hex: {other:?}", self.name)),
        }
    }

    fn opt_bytes(&self, section: &str, key: &str) -> Result<Option<&[u8]>, String> {
        match self.sections.get(section).and_then(|s| s.get(key)) {
            None => Ok(None),
            Some(_) => self.bytes(section, key).map(Some),
        }
    }

    fn num(&self, section: &str, key: &str) -> Result<u64, String> {
        match self.get(section, key)? {
            Value::Num(n) => Ok(*n),
            other => Err(format!("{}: [{section}] {key} is not a number: {other:?}", self.name)),
        }
    }

    fn text(&self, section: &str, key: &str) -> Result<&str, String> {
        match self.get(section, key)? {
            Value::Text(t) => Ok(t),
            other => Err(format!("{}: [{section}] {key} is not text: {other:?}", self.name)),
        }
    }

    /// Test hook: replaces a byte-string value.
    fn set_bytes(&mut self, section: &str, key: &str, value: Vec<u8>) {
        self.sections.get_mut(section).unwrap().insert(key.to_string(), Value::Bytes(value));
    }
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors")
}

fn load_all() -> Vec<Vectors> {
    let dir = vectors_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".vectors.txt")))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no *.vectors.txt files in {}", dir.display());
    paths
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().trim_end_matches(".vectors.txt");
            Vectors::parse(name, &std::fs::read_to_string(p).unwrap()).unwrap()
        })
        .collect()
}

fn load(name: &str) -> Vectors {
    load_all().into_iter().find(|v| v.name == name).unwrap_or_else(|| panic!("{name}.vectors.txt missing"))
}

// ---------------------------------------------------------------- bookkeeping

/// Counts the values that matched; the first mismatch ends the file with an error.
struct Checks {
    name: String,
    count: usize,
}

impl Checks {
    fn eq(&mut self, what: &str, expected: &[u8], computed: &[u8]) -> Result<(), String> {
        if expected == computed {
            self.count += 1;
            Ok(())
        } else {
            Err(format!(
                "{}: {what} differs\n  file:     {}\n  computed: {}",
                self.name,
                hex::encode(expected),
                hex::encode(computed)
            ))
        }
    }

    fn num(&mut self, what: &str, expected: u64, computed: u64) -> Result<(), String> {
        self.eq(what, &expected.to_be_bytes(), &computed.to_be_bytes())
    }

    fn ok(&mut self, what: &str, condition: bool) -> Result<(), String> {
        if condition {
            self.count += 1;
            Ok(())
        } else {
            Err(format!("{}: {what} failed", self.name))
        }
    }
}

// ---------------------------------------------------------------- wire helpers (test only)

const ISAKMP_HEADER_LEN: usize = 28;
const PAYLOAD_HASH: u8 = 8;
const PAYLOAD_ID: u8 = 5;
const PAYLOAD_NONCE: u8 = 10;
const PAYLOAD_KE: u8 = 4;

/// The payloads of a decrypted chain as (payload type, body range).
type Payloads = Vec<(u8, Range<usize>)>;

/// The payloads of a decrypted chain, and where the chain ends (the padding follows).
fn payload_chain(first: u8, data: &[u8]) -> Result<(Payloads, usize), String> {
    let (mut out, mut kind, mut at) = (Vec::new(), first, 0usize);
    while kind != 0 {
        let header = data.get(at..at + 4).ok_or("payload header runs past the data")?;
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if len < 4 || at + len > data.len() {
            return Err(format!("bad payload length {len} at {at}"));
        }
        out.push((kind, at + 4..at + len));
        kind = header[0];
        at += len;
    }
    Ok((out, at))
}

fn bodies<'a>(chain: &[(u8, Range<usize>)], data: &'a [u8], kind: u8) -> Vec<&'a [u8]> {
    chain.iter().filter(|(k, _)| *k == kind).map(|(_, r)| &data[r.clone()]).collect()
}

fn hash_algorithm(num: u64) -> Result<HashAlgorithm, String> {
    // RFC 2409 Appendix A hash algorithm values.
    Ok(match num {
        1 => HashAlgorithm::Md5,
        2 => HashAlgorithm::Sha1,
        4 => HashAlgorithm::Sha256,
        5 => HashAlgorithm::Sha384,
        6 => HashAlgorithm::Sha512,
        _ => return Err(format!("hash algorithm {num}")),
    })
}

fn phase1_cipher(encryption_algorithm: u64, key_bits: Option<u64>) -> Result<Phase1Cipher, String> {
    // RFC 2409 Appendix A encryption algorithm values (and the same numbers as ESP transform
    // IDs 2 / 3 / 12 map below).
    Ok(match (encryption_algorithm, key_bits) {
        (1, _) => Phase1Cipher::Des,
        (5, _) => Phase1Cipher::TripleDes,
        (7, Some(128)) => Phase1Cipher::Aes128,
        (7, Some(192)) => Phase1Cipher::Aes192,
        (7, Some(256)) => Phase1Cipher::Aes256,
        other => return Err(format!("phase-1 cipher {other:?}")),
    })
}

fn esp_cipher(transform: u64, key_bits: Option<u64>) -> Result<Phase1Cipher, String> {
    // IPsec DOI ESP transform IDs (RFC 2407 §4.4.4): ESP_DES 2, ESP_3DES 3, ESP_AES 12.
    match transform {
        2 => phase1_cipher(1, None),
        3 => phase1_cipher(5, None),
        12 => phase1_cipher(7, key_bits),
        other => Err(format!("ESP transform {other}")),
    }
}

/// IPsec DOI authentication algorithm (RFC 2407 §4.5) -> (hash, key bytes, ICV bytes).
fn esp_auth(num: u64) -> Result<(HashAlgorithm, usize, usize), String> {
    Ok(match num {
        1 => (HashAlgorithm::Md5, 16, 12),
        2 => (HashAlgorithm::Sha1, 20, 12),
        5 => (HashAlgorithm::Sha256, 32, 16),
        6 => (HashAlgorithm::Sha384, 48, 24),
        7 => (HashAlgorithm::Sha512, 64, 32),
        other => return Err(format!("ESP auth algorithm {other}")),
    })
}

/// Decrypts message `tag` of `section` with `chain`, checks its IV, plaintext, payload length
/// and strongSwan's zero padding, moves the chain on, and returns the plaintext and its chain.
fn decrypt_message<K>(
    v: &Vectors,
    c: &mut Checks,
    section: &str,
    tag: &str,
    chain: &mut IvChain<K>,
    ka: &crypto::key_schedule::Phase1CipherKey,
    expected_message_id: Option<&[u8]>,
) -> Result<(Vec<u8>, Payloads, usize), String> {
    let message = v.bytes(section, &format!("{tag}_message"))?;
    let header = message.get(..ISAKMP_HEADER_LEN).ok_or(format!("{tag}: short message"))?;
    let length = u32::from_be_bytes([header[24], header[25], header[26], header[27]]);
    c.num(&format!("{tag} header length"), u64::from(length), message.len() as u64)?;
    c.ok(&format!("{tag} has the encryption flag"), header[19] & 1 == 1)?;
    if let Some(mid) = expected_message_id {
        c.eq(&format!("{tag} header M-ID"), mid, &header[20..24])?;
    }
    c.eq(&format!("[{section}] {tag}_iv"), v.bytes(section, &format!("{tag}_iv"))?, chain.iv())?;
    let mut body = message[ISAKMP_HEADER_LEN..].to_vec();
    let next = chain.decrypt(ka, &mut body).map_err(|e| format!("{tag}: {e}"))?;
    c.eq(&format!("[{section}] {tag}_plaintext"), v.bytes(section, &format!("{tag}_plaintext"))?, &body)?;
    chain.advance(next);
    let (payloads, end) = payload_chain(header[16], &body)?;
    c.num(
        &format!("[{section}] {tag}_payload_bytes_num"),
        v.num(section, &format!("{tag}_payload_bytes_num"))?,
        end as u64,
    )?;
    let padding = &body[end..];
    c.ok(
        &format!("{tag} padding is 1..block zero bytes"),
        (1..=chain.cipher().block_len()).contains(&padding.len()) && padding.iter().all(|b| *b == 0),
    )?;
    Ok((body, payloads, end))
}

/// The first payload of a quick-mode message must be HASH; returns its body and the bytes
/// after it up to the end of the payload chain (the hashed range, padding excluded).
fn split_hash<'a>(
    tag: &str,
    body: &'a [u8],
    payloads: &[(u8, Range<usize>)],
    end: usize,
) -> Result<(&'a [u8], &'a [u8]), String> {
    match payloads.first() {
        Some((PAYLOAD_HASH, range)) => Ok((&body[range.clone()], &body[range.end..end])),
        _ => Err(format!("{tag}: first payload is not HASH")),
    }
}

// ---------------------------------------------------------------- one file

fn verify_file(v: &Vectors) -> Result<usize, String> {
    let mut c = Checks { name: v.name.clone(), count: 0 };
    let p1 = "phase1";

    // ---- negotiated algorithms
    let hash = hash_algorithm(v.num(p1, "hash_algorithm_num")?)?;
    let key_bits = v.num(p1, "key_length_num").ok();
    let cipher = phase1_cipher(v.num(p1, "encryption_algorithm_num")?, key_bits)?;
    c.num("cipher_key_bytes_num", v.num(p1, "cipher_key_bytes_num")?, cipher.key_len() as u64)?;
    c.num("cipher_block_bytes_num", v.num(p1, "cipher_block_bytes_num")?, cipher.block_len() as u64)?;
    c.num("auth_method_num (PSK)", 1, v.num(p1, "auth_method_num")?)?;
    let aggressive = match v.num(p1, "exchange_type_num")? {
        2 => false,
        4 => true,
        other => return Err(format!("exchange type {other}")),
    };

    // ---- inputs
    let psk = v.bytes(p1, "psk")?;
    c.eq("psk = bytes of psk_text", v.text(p1, "psk_text")?.as_bytes(), psk)?;
    let (ni_b, nr_b, g_xy) = (v.bytes(p1, "ni_b")?, v.bytes(p1, "nr_b")?, v.bytes(p1, "g_xy")?);
    let (g_xi, g_xr) = (v.bytes(p1, "g_xi")?, v.bytes(p1, "g_xr")?);
    let cky_i: [u8; 8] = v.bytes(p1, "cky_i")?.try_into().map_err(|_| "cky_i is not 8 bytes")?;
    let cky_r: [u8; 8] = v.bytes(p1, "cky_r")?.try_into().map_err(|_| "cky_r is not 8 bytes")?;
    let (idii_b, idir_b) = (v.bytes(p1, "idii_b")?, v.bytes(p1, "idir_b")?);

    // ---- phase-1 key schedule
    let skeyid = Skeyid::for_pre_shared_key(hash, psk, ni_b, nr_b);
    c.eq("skeyid", v.bytes(p1, "skeyid")?, skeyid.expose())?;
    let keys = skeyid.derive_phase1_keys(g_xy, &cky_i, &cky_r);
    c.eq("skeyid_d", v.bytes(p1, "skeyid_d")?, keys.skeyid_d.expose())?;
    c.eq("skeyid_a", v.bytes(p1, "skeyid_a")?, keys.skeyid_a.expose())?;
    c.eq("skeyid_e", v.bytes(p1, "skeyid_e")?, keys.skeyid_e.expose())?;
    let ka = keys.skeyid_e.cipher_key(cipher);
    c.eq("ka", v.bytes(p1, "ka")?, ka.expose())?;
    let mut phase1_chain = Phase1IvChain::new(hash, cipher, g_xi, g_xr);
    c.eq("initial_iv", v.bytes(p1, "initial_iv")?, phase1_chain.iv())?;

    let auth = AuthHashInput { g_xi, g_xr, cky_i, cky_r, sai_b: v.bytes(p1, "sai_b")? };
    let hash_i = skeyid.hash_i(&auth, idii_b);
    let hash_r = skeyid.hash_r(&auth, idir_b);
    c.eq("hash_i", v.bytes(p1, "hash_i")?, &hash_i)?;
    c.eq("hash_r", v.bytes(p1, "hash_r")?, &hash_r)?;

    // ---- encrypted phase-1 messages, with our Ka and IV chain
    if aggressive {
        let (body, payloads, _) = decrypt_message(v, &mut c, p1, "am3", &mut phase1_chain, &ka, None)?;
        let received = bodies(&payloads, &body, PAYLOAD_HASH);
        c.ok("AM3 has one HASH payload", received.len() == 1)?;
        c.ok("AM3 HASH_I verifies", skeyid.verify_hash_i(&auth, idii_b, received[0]).is_ok())?;
    } else {
        let (body, payloads, _) = decrypt_message(v, &mut c, p1, "mm5", &mut phase1_chain, &ka, None)?;
        c.eq(
            "MM5 ID body = idii_b",
            idii_b,
            bodies(&payloads, &body, PAYLOAD_ID).first().copied().unwrap_or_default(),
        )?;
        let received = bodies(&payloads, &body, PAYLOAD_HASH);
        c.ok("MM5 has one HASH payload", received.len() == 1)?;
        c.ok("MM5 HASH_I verifies", skeyid.verify_hash_i(&auth, idii_b, received[0]).is_ok())?;

        let (body, payloads, _) = decrypt_message(v, &mut c, p1, "mm6", &mut phase1_chain, &ka, None)?;
        c.eq(
            "MM6 ID body = idir_b",
            idir_b,
            bodies(&payloads, &body, PAYLOAD_ID).first().copied().unwrap_or_default(),
        )?;
        let received = bodies(&payloads, &body, PAYLOAD_HASH);
        c.ok("MM6 has one HASH payload", received.len() == 1)?;
        c.ok("MM6 HASH_R verifies", skeyid.verify_hash_r(&auth, idir_b, received[0]).is_ok())?;
        c.ok("HASH_R does not verify as HASH_I", skeyid.verify_hash_i(&auth, idir_b, received[0]).is_err())?;
    }
    c.eq("phase1_last_block", v.bytes(p1, "phase1_last_block")?, phase1_chain.iv())?;

    // ---- quick mode
    let qm = "quickmode";
    let mid_bytes = v.bytes(qm, "message_id")?;
    let message_id = MessageId::from_bytes(mid_bytes.try_into().map_err(|_| "message_id is not 4 bytes")?);
    let mut table = ExchangeIvTable::default();
    let qm_chain = table.get_or_insert(&phase1_chain, hash, message_id);
    c.eq("qm_iv", v.bytes(qm, "qm_iv")?, qm_chain.iv())?;
    let (qni, qnr) = (v.bytes(qm, "ni_b")?, v.bytes(qm, "nr_b")?);
    let pfs = v.opt_bytes(qm, "g_qm_xy")?;

    let (b1, p1s, e1) = decrypt_message(v, &mut c, qm, "qm1", qm_chain, &ka, Some(mid_bytes))?;
    let (b2, p2s, e2) = decrypt_message(v, &mut c, qm, "qm2", qm_chain, &ka, Some(mid_bytes))?;
    let (b3, p3s, e3) = decrypt_message(v, &mut c, qm, "qm3", qm_chain, &ka, Some(mid_bytes))?;
    c.eq(
        "QM1 Nonce = quickmode ni_b",
        qni,
        bodies(&p1s, &b1, PAYLOAD_NONCE).first().copied().unwrap_or_default(),
    )?;
    c.eq(
        "QM2 Nonce = quickmode nr_b",
        qnr,
        bodies(&p2s, &b2, PAYLOAD_NONCE).first().copied().unwrap_or_default(),
    )?;
    c.eq(
        "QM1 IDci = idci_b",
        v.bytes(qm, "idci_b")?,
        bodies(&p1s, &b1, PAYLOAD_ID).first().copied().unwrap_or_default(),
    )?;
    c.eq(
        "QM1 IDcr = idcr_b",
        v.bytes(qm, "idcr_b")?,
        bodies(&p1s, &b1, PAYLOAD_ID).get(1).copied().unwrap_or_default(),
    )?;
    if pfs.is_some() {
        c.eq(
            "QM1 KE = g_qm_xi",
            v.bytes(qm, "g_qm_xi")?,
            bodies(&p1s, &b1, PAYLOAD_KE).first().copied().unwrap_or_default(),
        )?;
        c.eq(
            "QM2 KE = g_qm_xr",
            v.bytes(qm, "g_qm_xr")?,
            bodies(&p2s, &b2, PAYLOAD_KE).first().copied().unwrap_or_default(),
        )?;
    }

    let skeyid_a = &keys.skeyid_a;
    let (h1_received, after1) = split_hash("QM1", &b1, &p1s, e1)?;
    let (h2_received, after2) = split_hash("QM2", &b2, &p2s, e2)?;
    let (h3_received, after3) = split_hash("QM3", &b3, &p3s, e3)?;
    c.ok("QM3 holds only HASH(3)", after3.is_empty())?;
    let h1 = skeyid_a.quick_mode_hash_1(message_id, after1);
    let h2 = skeyid_a.quick_mode_hash_2(message_id, qni, after2);
    let h3 = skeyid_a.quick_mode_hash_3(message_id, qni, qnr);
    c.eq("hash_1", v.bytes(qm, "hash_1")?, &h1)?;
    c.eq("hash_2", v.bytes(qm, "hash_2")?, &h2)?;
    c.eq("hash_3", v.bytes(qm, "hash_3")?, &h3)?;
    c.ok("QM1 HASH(1) verifies", skeyid_a.verify_quick_mode_hash_1(message_id, after1, h1_received).is_ok())?;
    c.ok(
        "QM2 HASH(2) verifies",
        skeyid_a.verify_quick_mode_hash_2(message_id, qni, after2, h2_received).is_ok(),
    )?;
    c.ok(
        "QM3 HASH(3) verifies",
        skeyid_a.verify_quick_mode_hash_3(message_id, qni, qnr, h3_received).is_ok(),
    )?;

    // ---- KEYMAT for both SAs. We take the initiator's view, as the file does: our SPI is
    // spi_i (QM1), the peer's is spi_r (QM2).
    let esp_key_bits = v.num(qm, "esp_key_length_num").ok();
    let esp_enc = esp_cipher(v.num(qm, "esp_transform_id_num")?, esp_key_bits)?;
    let (auth_hash, auth_key_len, icv_len) = esp_auth(v.num(qm, "esp_auth_algorithm_num")?)?;
    let lengths =
        EspKeyLengths { encryption_key_len: esp_enc.key_len(), salt_len: 0, integrity_key_len: auth_key_len };
    let protocol = u8::try_from(v.num(qm, "protocol_num")?).map_err(|e| e.to_string())?;
    let input = KeymatInput { pfs_shared_secret: pfs, protocol, ni_b: qni, nr_b: qnr };
    let spi_of = |section: &str, key: &str| -> Result<Spi, String> {
        Ok(Spi::from_bytes(v.bytes(section, key)?.try_into().map_err(|_| format!("{key} is not 4 bytes"))?))
    };
    let (our_spi, peer_spi) = (spi_of(qm, "spi_i")?, spi_of(qm, "spi_r")?);
    let sa_keys =
        keys.skeyid_d.ipsec_sa_keys(&input, our_spi, peer_spi, lengths).map_err(|e| e.to_string())?;

    for (section, esp_keys) in [("esp-in", &sa_keys.inbound), ("esp-out", &sa_keys.outbound)] {
        let spi = spi_of(section, "spi")?;
        c.eq(&format!("[{section}] spi = SPI our KEYMAT used"), &spi.to_bytes(), &esp_keys.spi().to_bytes())?;
        c.eq(
            &format!("[{section}] keymat_seed"),
            v.bytes(section, "keymat_seed")?,
            input.seed(spi).expose(),
        )?;
        let keymat = keys
            .skeyid_d
            .keymat(&input, spi, lengths.total().unwrap_or(usize::MAX))
            .map_err(|e| e.to_string())?;
        c.eq(&format!("[{section}] keymat"), v.bytes(section, "keymat")?, keymat.expose())?;
        c.eq(
            &format!("[{section}] encryption_key"),
            v.bytes(section, "encryption_key")?,
            esp_keys.encryption_key(),
        )?;
        c.eq(
            &format!("[{section}] integrity_key"),
            v.bytes(section, "integrity_key")?,
            esp_keys.integrity_key(),
        )?;
        c.ok(&format!("[{section}] no salt for CBC"), esp_keys.salt().is_empty())?;
        c.num(&format!("[{section}] icv_bytes_num"), v.num(section, "icv_bytes_num")?, icv_len as u64)?;

        // packet1_esp = SPI | seq | IV | ciphertext | ICV (RFC 4303 §2), checked and opened
        // with our keys.
        let packet = v.bytes(section, "packet1_esp")?;
        let block = esp_enc.block_len();
        let icv_at = packet.len().checked_sub(icv_len).ok_or("ESP packet shorter than its ICV")?;
        c.eq(&format!("[{section}] packet1_esp SPI"), &spi.to_bytes(), &packet[..4])?;
        let icv = auth_hash.hmac(esp_keys.integrity_key(), &[&packet[..icv_at]]);
        c.ok(
            &format!("[{section}] packet1_esp ICV"),
            crypto::secret::ct_eq(&icv[..icv_len], &packet[icv_at..]),
        )?;
        let iv = packet.get(8..8 + block).ok_or("ESP packet shorter than its IV")?;
        let mut plain = packet.get(8 + block..icv_at).ok_or("ESP packet has no ciphertext")?.to_vec();
        esp_enc.decrypt(esp_keys.encryption_key(), iv, &mut plain).map_err(|e| format!("{section}: {e}"))?;
        let (&next_header, rest) = plain.split_last().ok_or("empty ESP payload")?;
        let (&pad_len, rest) = rest.split_last().ok_or("no ESP pad length")?;
        c.num(&format!("[{section}] ESP next header (IPv4)"), 4, u64::from(next_header))?;
        let inner_len = rest.len().checked_sub(usize::from(pad_len)).ok_or("ESP pad length too long")?;
        let expected_padding: Vec<u8> = (1..=pad_len).collect();
        c.eq(&format!("[{section}] ESP padding 1, 2, 3, …"), &expected_padding, &rest[inner_len..])?;
        c.eq(&format!("[{section}] packet1_inner"), v.bytes(section, "packet1_inner")?, &rest[..inner_len])?;
    }
    Ok(c.count)
}

// ---------------------------------------------------------------- tests

/// Every check above that always runs; aggressive mode has a few fewer than main mode.
const MIN_CHECKS_PER_FILE: usize = 75;

#[test]
fn strongswan_vectors_recompute() {
    let all = load_all();
    let mut total = 0;
    for v in &all {
        let n = verify_file(v).unwrap_or_else(|e| panic!("{e}"));
        println!("{}: {n} values checked, all equal", v.name);
        assert!(n >= MIN_CHECKS_PER_FILE, "{}: only {n} checks ran", v.name);
        total += n;
    }
    println!("{} files, {total} values checked", all.len());
    // At least one scenario must need the Appendix-B expansion (SKEYID_e shorter than Ka),
    // or that branch of the key schedule would go unchecked.
    assert!(
        all.iter()
            .any(|v| v.bytes("phase1", "skeyid_e").unwrap().len() < v.bytes("phase1", "ka").unwrap().len()),
        "no scenario exercises the Appendix-B expansion"
    );
    // Likewise PFS (g(qm)^xy in KEYMAT) and aggressive mode.
    assert!(all.iter().any(|v| v.opt_bytes("quickmode", "g_qm_xy").unwrap().is_some()), "no PFS scenario");
    assert!(
        all.iter().any(|v| v.num("phase1", "exchange_type_num").unwrap() == 4),
        "no aggressive-mode scenario"
    );
    // The repository ships five scenarios; losing one silently would weaken the test.
    assert!(all.len() >= 5, "expected the 5 strongSwan scenarios, found {}", all.len());
}

#[test]
fn parser_reads_the_documented_types() {
    let v = Vectors::parse(
        "t",
        "# comment\n\n[phase1]\nrole_text = initiator  \nkey_length_num = 128\nni_b = 00ff\n[quickmode]\nni_b = 01\n",
    )
    .unwrap();
    assert_eq!(v.text("phase1", "role_text").unwrap(), "initiator");
    assert_eq!(v.num("phase1", "key_length_num").unwrap(), 128);
    assert_eq!(v.bytes("phase1", "ni_b").unwrap(), [0x00, 0xff]);
    assert_eq!(v.bytes("quickmode", "ni_b").unwrap(), [0x01]);
    assert!(v.bytes("phase1", "missing").is_err());
    assert!(Vectors::parse("t", "k = 1\n").is_err(), "key outside a section");
    assert!(Vectors::parse("t", "[a]\nk = 1\nk = 2\n").is_err(), "duplicate key");
    assert!(Vectors::parse("t", "[a]\nk = 0g\n").is_err(), "bad hex");
    assert!(Vectors::parse("t", "[a]\nk_num = x\n").is_err(), "bad number");
}

/// The test can fail: one changed byte in an input or an expected value is caught, and by the
/// check that should catch it.
#[test]
fn mutated_vectors_fail() {
    let original = load("mm-psk-modp2048");
    assert!(verify_file(&original).is_ok());

    // A changed PSK gives another SKEYID.
    let mut psk = original.bytes("phase1", "psk").unwrap().to_vec();
    psk[0] ^= 1;
    let skeyid = Skeyid::for_pre_shared_key(
        HashAlgorithm::Sha256,
        &psk,
        original.bytes("phase1", "ni_b").unwrap(),
        original.bytes("phase1", "nr_b").unwrap(),
    );
    assert_ne!(skeyid.expose(), original.bytes("phase1", "skeyid").unwrap());
    let mut v = original.clone();
    v.set_bytes("phase1", "psk", psk);
    let psk_text = String::from_utf8(v.bytes("phase1", "psk").unwrap().to_vec()).unwrap();
    v.sections.get_mut("phase1").unwrap().insert("psk_text".into(), Value::Text(psk_text));
    let err = verify_file(&v).unwrap_err();
    assert!(err.contains("skeyid differs"), "{err}");

    let flip = |section: &str, key: &str, at: usize, expect: &str| {
        let mut v = original.clone();
        let mut bytes = v.bytes(section, key).unwrap().to_vec();
        let at = at.min(bytes.len() - 1);
        bytes[at] ^= 0x80;
        v.set_bytes(section, key, bytes);
        let err = verify_file(&v).unwrap_err();
        assert!(err.contains(expect), "mutating [{section}] {key}: expected {expect:?}, got {err}");
    };
    flip("phase1", "g_xy", 0, "skeyid_d differs");
    flip("phase1", "ka", 3, "ka differs");
    flip("phase1", "sai_b", 10, "hash_i differs");
    flip("phase1", "mm6_message", 40, "mm6_plaintext differs");
    flip("quickmode", "ni_b", 0, "QM1 Nonce");
    flip("quickmode", "hash_3", 5, "hash_3 differs");
    flip("esp-out", "integrity_key", 0, "[esp-out] integrity_key differs");
    flip("esp-in", "packet1_esp", usize::MAX, "[esp-in] packet1_esp ICV failed");
    flip("esp-in", "packet1_inner", 20, "[esp-in] packet1_inner differs");
}
