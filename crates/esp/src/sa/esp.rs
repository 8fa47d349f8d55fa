//! One-way ESP security associations: outbound processing (RFC 4303 §3.3) and inbound
//! processing (§3.4), in tunnel and transport mode (§3.1), without allocation per packet.
//!
//! Algorithms come from `crypto::esp_transform`: AES-CBC and (3)DES-CBC (RFC 3602, RFC 2451)
//! with an HMAC (RFC 2403, RFC 2404, RFC 4868), AES-GCM-16 (RFC 4106) and NULL with an HMAC
//! (RFC 2410). Confidentiality-only ESP (a CBC cipher without integrity) is refused when the
//! SA is built: RFC 4303 §3.2 allows it, but unauthenticated CBC is open to the padding and
//! bit-flipping attacks of Paterson and Yau, and no peer of ours needs it.
//!
//! IVs (RFC 4303 §3.3.2, RFC 3602 §3): a CBC IV must be unpredictable, so an outbound SA
//! draws a random nonce once at set-up and encrypts nonce || sequence number under its own
//! key (NIST SP 800-38A Appendix C, the first method: "apply the forward cipher function,
//! under the same key that is used for the encryption of the plaintext, to a nonce"; the
//! sequence number makes each nonce unique). Randomness is needed only once per SA, so
//! sealing takes no random source, and the generator is a few bytes, not a second key
//! schedule (issue 16: memory per SA).
//! An AES-GCM IV must never repeat under one key, so it is the 64-bit sequence number
//! (RFC 4106 §3.1), which the 32-bit counter below never lets wrap.
//!
//! Sequence numbers, the anti-replay window and traffic lifetimes are the [`Sa`]'s, shared
//! with AH.
//!
//! UDP encapsulation (RFC 3948) is the caller's: `seal` produces the ESP packet and `open`
//! takes one; the caller adds or strips the outer IP and UDP headers (and drops NAT-keepalive
//! bytes `0xFF` and non-ESP-marker IKE traffic on port 4500 before calling `open`).
//! [`SaParams::udp_encapsulated`] records which framing the SA uses so the caller can ask.

use crypto::esp_transform::{EspCryptoError, GCM_ICV_LEN, GCM_IV_LEN};
use crypto::{CipherKey, EspCipher, Integrity, IntegrityKey, KeyUse, SecureRandom};

use super::{Mode, OpenError, Sa, SaError, SaKeys, SealError, SequenceCounter, TrafficLimits};
use crate::replay::{ReplayWindow, DEFAULT_WINDOW};
use crate::wire::esp::{
    self as wire, check_trailer, write_trailer, EspPacket, HEADER_LEN, NEXT_HEADER_IPV4, NEXT_HEADER_IPV6,
    NEXT_HEADER_NONE, TRAILER_LEN,
};
use spd::{Flow, FlowError};

/// Most bytes an SA puts before the payload: header and the longest IV (AES-CBC, 16).
/// Callers sealing in place reserve this much headroom (plus their own outer IP and UDP
/// headers).
pub const MAX_HEADROOM: usize = HEADER_LEN + 16;
/// Most bytes an SA puts after the payload: 15 bytes of padding (AES-CBC), the two trailer
/// bytes and the longest ICV (HMAC-SHA2-512-256, 32).
pub const MAX_TAILROOM: usize = 15 + TRAILER_LEN + crypto::esp_transform::MAX_ICV_LEN;

/// Everything about an SA but its keys: algorithms, mode, framing, replay window, limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaParams {
    /// The ESP transform.
    pub cipher: EspCipher,
    /// The authentication algorithm; `None` exactly when the cipher is AES-GCM.
    pub integrity: Option<Integrity>,
    /// Tunnel or transport.
    pub mode: Mode,
    /// True when packets travel in UDP on port 4500 (RFC 3948); the caller frames them.
    pub udp_encapsulated: bool,
    /// Inbound anti-replay window in packets (64 by default, see [`ReplayWindow::new`]).
    pub replay_window: u32,
    /// Traffic lifetime.
    pub limits: TrafficLimits,
}

impl SaParams {
    /// Tunnel mode, raw ESP, the default window and no traffic limit.
    pub fn new(cipher: EspCipher, integrity: Option<Integrity>) -> Self {
        Self {
            cipher,
            integrity,
            mode: Mode::Tunnel,
            udp_encapsulated: false,
            replay_window: DEFAULT_WINDOW,
            limits: TrafficLimits::default(),
        }
    }

    fn icv_len(&self) -> usize {
        self.cipher.icv_len() + self.integrity.map_or(0, Integrity::icv_len)
    }

    fn validate(&self) -> Result<(), SaError> {
        match (self.cipher.is_aead(), self.integrity) {
            (true, Some(integrity)) => Err(SaError::AeadWithIntegrity { cipher: self.cipher, integrity }),
            (false, None) => Err(SaError::MissingIntegrity(self.cipher)),
            _ => Ok(()),
        }
    }
}

/// ESP's part of an SA: its parameters and keyed algorithms, keyed for the SA's direction
/// only (an inbound CBC SA holds no encrypting key schedule, an outbound one no decrypting).
#[derive(Debug)]
pub struct Esp {
    params: SaParams,
    cipher: CipherKey,
    integrity: Option<IntegrityKey>,
    /// The CBC IV nonce of an outbound CBC SA; `None` for GCM, NULL and inbound SAs.
    iv: Option<IvGenerator>,
}

impl Esp {
    /// Keys the algorithms; `rng`, given for an outbound SA, draws the CBC IV nonce.
    fn new(params: &SaParams, keys: SaKeys<'_>, rng: Option<&mut dyn SecureRandom>) -> Result<Self, SaError> {
        let usage = if rng.is_some() { KeyUse::Seal } else { KeyUse::Open };
        let cipher = CipherKey::for_use(params.cipher, keys.cipher_key, usage)?;
        let integrity = params.integrity.map(|i| IntegrityKey::new(i, keys.integrity_key)).transpose()?;
        // CBC ciphers need unpredictable IVs; AEAD ciphers take the sequence number as their
        // explicit IV, and NULL has none.
        let iv = match (params.cipher, rng) {
            (cipher, _) if cipher.is_aead() || cipher.iv_len() == 0 => None,
            (_, None) => None,
            (_, Some(rng)) => Some(IvGenerator::new(rng)),
        };
        Ok(Self { params: *params, cipher, integrity, iv })
    }
}

/// An SA for packets we send: seals inner packets into ESP.
pub type OutboundSa = Sa<SequenceCounter, Esp>;
/// An SA for packets the peer sends us: checks and opens ESP packets.
pub type InboundSa = Sa<ReplayWindow, Esp>;

impl<S> Sa<S, Esp> {
    /// Algorithms, mode and limits.
    pub fn params(&self) -> &SaParams {
        &self.protocol.params
    }
}

/// The random part of an outbound CBC SA's IV nonces, drawn once per SA: an IV is the SA's
/// own forward cipher over nonce || sequence number (one block).
#[derive(Debug)]
struct IvGenerator {
    nonce: [u8; 12],
}

impl IvGenerator {
    fn new(rng: &mut dyn SecureRandom) -> Self {
        let mut nonce = [0u8; 12];
        rng.fill(&mut nonce);
        Self { nonce }
    }

    /// Writes E_k(nonce || sequence) into `iv` (one block, so CBC from a zero IV is the block
    /// cipher) under the SA's `key`.
    fn fill(&self, key: &CipherKey, sequence: u32, iv: &mut [u8]) -> Result<(), EspCryptoError> {
        const ZERO: [u8; 16] = [0; 16];
        let len = iv.len();
        iv[..len - 4].copy_from_slice(&self.nonce[..len - 4]);
        iv[len - 4..].copy_from_slice(&sequence.to_be_bytes());
        key.encrypt_in_place(&ZERO[..len], iv)
    }
}

impl OutboundSa {
    /// Builds the SA; `rng` keys the CBC IV generator (unused for GCM and NULL).
    pub fn new(params: &SaParams, keys: SaKeys<'_>, rng: &mut dyn SecureRandom) -> Result<Self, SaError> {
        params.validate()?;
        Sa::build(keys.spi, SequenceCounter::default(), params.limits, || Esp::new(params, keys, Some(rng)))
    }

    /// Bytes before the payload: the header and the IV. [`OutboundSa::seal_in_place`] expects
    /// the payload to start here.
    pub fn headroom(&self) -> usize {
        HEADER_LEN + self.protocol.params.cipher.iv_len()
    }

    /// Length of the ESP packet for a payload of `payload_len` bytes.
    pub fn sealed_len(&self, payload_len: usize) -> usize {
        self.headroom()
            + payload_len
            + wire::pad_len(payload_len, self.protocol.params.cipher.block_len())
            + TRAILER_LEN
            + self.protocol.params.icv_len()
    }

    /// The longest payload whose ESP packet fits in `space` bytes (0 when none does): what
    /// path-MTU handling compares inner packets against.
    pub fn max_payload_len(&self, space: usize) -> usize {
        let fixed = self.headroom() + self.protocol.params.icv_len();
        let align = self.protocol.params.cipher.block_len().max(wire::ALIGNMENT);
        let encrypted = space.saturating_sub(fixed) / align * align;
        encrypted.saturating_sub(TRAILER_LEN)
    }

    /// Seals a whole IPv4 or IPv6 packet in tunnel mode (next header 4 or 41) into `out`,
    /// which needs [`OutboundSa::sealed_len`] bytes (at most `packet.len()` +
    /// [`MAX_HEADROOM`] + [`MAX_TAILROOM`]). Returns the ESP packet.
    pub fn seal_tunnel<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Result<&'o mut [u8], SealError> {
        if self.protocol.params.mode != Mode::Tunnel {
            return Err(SealError::WrongMode(self.protocol.params.mode));
        }
        let next_header = match packet.first().map(|b| b >> 4) {
            Some(4) => NEXT_HEADER_IPV4,
            Some(6) => NEXT_HEADER_IPV6,
            _ => return Err(SealError::NotAnIpPacket),
        };
        self.seal(next_header, packet, out)
    }

    /// Seals the payload of an IP packet in transport mode: `protocol` (the IP header's
    /// protocol field) becomes the next header; the caller rewrites the IP header's protocol
    /// to 50 (or wraps the result in UDP).
    pub fn seal_transport<'o>(
        &mut self,
        protocol: u8,
        payload: &[u8],
        out: &'o mut [u8],
    ) -> Result<&'o mut [u8], SealError> {
        if self.protocol.params.mode != Mode::Transport {
            return Err(SealError::WrongMode(self.protocol.params.mode));
        }
        self.seal(protocol, payload, out)
    }

    fn seal<'o>(
        &mut self,
        next_header: u8,
        payload: &[u8],
        out: &'o mut [u8],
    ) -> Result<&'o mut [u8], SealError> {
        let needed = self.sealed_len(payload.len());
        if out.len() < needed {
            return Err(SealError::BufferTooSmall { needed, available: out.len() });
        }
        let start = self.headroom();
        out[start..start + payload.len()].copy_from_slice(payload);
        let len = self.seal_in_place(out, payload.len(), next_header)?;
        Ok(&mut out[..len])
    }

    /// Seals in place, without copying the payload: `buf[headroom()..headroom() +
    /// payload_len]` holds the payload (a gateway reads the TUN device straight there); the
    /// header and IV are written before it, the trailer and ICV after it. Returns the ESP
    /// packet's length, which starts at `buf[0]`.
    pub fn seal_in_place(
        &mut self,
        buf: &mut [u8],
        payload_len: usize,
        next_header: u8,
    ) -> Result<usize, SealError> {
        let needed = self.sealed_len(payload_len);
        if buf.len() < needed {
            return Err(SealError::BufferTooSmall { needed, available: buf.len() });
        }
        let sequence = self.next_sequence()?;

        let start = self.headroom();
        let buf = &mut buf[..needed];
        let mut header = EspPacket::new_unchecked(&mut buf[..HEADER_LEN]);
        header.set_spi(self.spi);
        header.set_sequence_number(sequence);
        let ciphertext_end = start
            + write_trailer(
                &mut buf[start..],
                payload_len,
                self.protocol.params.cipher.block_len(),
                next_header,
            );

        let (head, rest) = buf.split_at_mut(start);
        let (ciphertext, icv) = rest.split_at_mut(ciphertext_end - start);
        if self.protocol.params.cipher.is_aead() {
            let iv = u64::from(sequence).to_be_bytes();
            head[HEADER_LEN..].copy_from_slice(&iv);
            let tag = self.protocol.cipher.seal_in_place(&iv, &head[..HEADER_LEN], ciphertext)?;
            icv.copy_from_slice(&tag);
        } else {
            let iv = &mut head[HEADER_LEN..];
            if let Some(generator) = &self.protocol.iv {
                generator.fill(&self.protocol.cipher, sequence, iv)?;
            }
            self.protocol.cipher.encrypt_in_place(iv, ciphertext)?;
            if let Some(integrity) = &self.protocol.integrity {
                let computed = integrity.compute(&[head, ciphertext])?;
                icv.copy_from_slice(&computed);
            }
        }

        self.sealed(sequence, payload_len);
        Ok(needed)
    }
}

/// A packet that passed every inbound check, in the caller's buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The inner packet (tunnel mode; TFC padding removed) or the IP payload (transport mode).
    pub payload: &'a mut [u8],
    /// Where `payload` starts in the buffer given to `open` / `open_in_place`.
    pub offset: usize,
    /// The next header: 4 or 41 in tunnel mode, the payload's protocol in transport mode.
    pub next_header: u8,
    /// The packet's sequence number.
    pub sequence: u32,
}

impl InboundSa {
    /// Builds the SA; allocates its replay window.
    pub fn new(params: &SaParams, keys: SaKeys<'_>) -> Result<Self, SaError> {
        params.validate()?;
        let window = ReplayWindow::new(params.replay_window);
        Sa::build(keys.spi, window, params.limits, || Esp::new(params, keys, None))
    }

    /// The checks that cost no cryptography: length, SPI, lifetime, replay window.
    fn precheck<'p>(&self, packet: &'p [u8]) -> Result<(EspPacket<&'p [u8]>, wire::Layout), OpenError> {
        let packet = EspPacket::new_checked(packet)?;
        if packet.spi() != self.spi {
            return Err(OpenError::WrongSpi { expected: self.spi, found: packet.spi() });
        }
        self.check(packet.sequence_number())?;
        let cipher = self.protocol.params.cipher;
        match packet.layout(cipher.iv_len(), self.protocol.params.icv_len(), cipher.block_len()) {
            // Misaligned under our ICV length: the ICV decides first (RFC 4303 §3.4.4), so a
            // peer truncating HMAC-SHA2-256 otherwise (96 against 128 bits) is counted as an
            // integrity failure, not as a malformed packet.
            Err(wire::WireError::NotBlockAligned { .. }) if !self.icv_matches(packet.into_inner()) => {
                Err(OpenError::AuthenticationFailed)
            }
            layout => Ok((packet, layout?)),
        }
    }

    /// Whether the last bytes of `packet` are the ICV of the rest under this SA's integrity
    /// key (true without an integrity algorithm: nothing to check).
    fn icv_matches(&self, packet: &[u8]) -> bool {
        let Some(integrity) = &self.protocol.integrity else { return true };
        let (body, icv) = packet.split_at(packet.len().saturating_sub(integrity.integrity().icv_len()));
        integrity.verify(&[body], icv).is_ok()
    }

    /// Opens the ESP packet `esp` (the UDP payload or the IP payload of protocol 50) into
    /// `out`, which needs `esp.len()` bytes. Replayed and malformed packets are refused before
    /// they are copied.
    pub fn open<'o>(&mut self, esp: &[u8], out: &'o mut [u8]) -> Result<Opened<'o>, OpenError> {
        self.precheck(esp)?;
        let available = out.len();
        let Some(out) = out.get_mut(..esp.len()) else {
            return Err(OpenError::BufferTooSmall { needed: esp.len(), available });
        };
        out.copy_from_slice(esp);
        self.open_in_place(out)
    }

    /// Opens the ESP packet that fills `buf`, decrypting in place. On an error the buffer's
    /// contents are unspecified (AES-GCM may have decrypted part of a forgery) and must be
    /// discarded.
    ///
    /// Order (RFC 4303 §3.4.3): replay check, then ICV, then decryption and trailer, and only
    /// then the window update, so neither a forgery nor a broken trailer moves the window.
    pub fn open_in_place<'b>(&mut self, buf: &'b mut [u8]) -> Result<Opened<'b>, OpenError> {
        let (packet, layout) = self.precheck(buf)?;
        let sequence = packet.sequence_number();
        let mut aad = [0u8; HEADER_LEN];
        aad.copy_from_slice(packet.header());
        let iv_len = self.protocol.params.cipher.iv_len();
        let mut iv = [0u8; 16];
        iv[..iv_len].copy_from_slice(&buf[layout.iv_start..layout.ciphertext_start]);

        if self.protocol.params.cipher.is_aead() {
            let gcm_iv: [u8; GCM_IV_LEN] =
                iv[..GCM_IV_LEN].try_into().map_err(|_| OpenError::Crypto(EspCryptoError::Internal))?;
            let (body, icv) = buf.split_at_mut(layout.icv_start);
            debug_assert_eq!(icv.len(), GCM_ICV_LEN);
            self.protocol
                .cipher
                .open_in_place(&gcm_iv, &aad, &mut body[layout.ciphertext_start..], icv)
                .map_err(authentication)?;
        } else {
            if let Some(integrity) = &self.protocol.integrity {
                let (body, icv) = buf.split_at(layout.icv_start);
                integrity.verify(&[body], icv).map_err(authentication)?;
            }
            self.protocol
                .cipher
                .decrypt_in_place(&iv[..iv_len], &mut buf[layout.ciphertext_start..layout.icv_start])
                .map_err(OpenError::Crypto)?;
        }

        let plaintext = &buf[layout.ciphertext_start..layout.icv_start];
        let (payload_len, next_header) = check_trailer(plaintext)?;
        let payload = &plaintext[..payload_len];
        let payload_len = match (self.protocol.params.mode, next_header) {
            // Authentic (the ICV matched), so it may move the window; it carries nothing.
            (_, NEXT_HEADER_NONE) => return self.dummy(sequence),
            (Mode::Tunnel, NEXT_HEADER_IPV4) => {
                Flow::parse_ipv4(payload).map_err(OpenError::InnerMalformed)?.2
            }
            (Mode::Tunnel, NEXT_HEADER_IPV6) => ipv6_len(payload)?,
            (Mode::Tunnel, other) => return Err(OpenError::UnexpectedNextHeader(other)),
            (Mode::Transport, _) => payload_len,
        };

        self.accept(sequence, payload_len)?;
        let offset = layout.ciphertext_start;
        Ok(Opened { payload: &mut buf[offset..offset + payload_len], offset, next_header, sequence })
    }
}

fn authentication(error: EspCryptoError) -> OpenError {
    match error {
        EspCryptoError::AuthenticationFailed | EspCryptoError::IcvLength { .. } => {
            OpenError::AuthenticationFailed
        }
        other => OpenError::Crypto(other),
    }
}

/// Length of an inner IPv6 packet from its header (40 bytes plus the payload length).
fn ipv6_len(payload: &[u8]) -> Result<usize, OpenError> {
    let malformed = |len| OpenError::InnerMalformed(FlowError::Truncated(len));
    if payload.len() < 40 || payload[0] >> 4 != 6 {
        return Err(malformed(payload.len()));
    }
    let len = 40 + usize::from(u16::from_be_bytes([payload[4], payload[5]]));
    if len > payload.len() {
        return Err(malformed(payload.len()));
    }
    Ok(len)
}

#[cfg(test)]
mod tests;
