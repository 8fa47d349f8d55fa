//! Data attributes in the TV (basic) and TLV (variable) forms of RFC 2408 §3.3, and their
//! typed meaning in the two number spaces a transform can use:
//!
//! - phase-1 (PROTO_ISAKMP, KEY_IKE) attributes: RFC 2409 Appendix A, with RFC 3602 (AES),
//!   RFC 4754 (ECDSA methods), RFC 3526 / 5903 / 5114 (groups);
//! - IPsec DOI (AH, ESP, IPCOMP) attributes: RFC 2407 §4.5, with RFC 3947 (UDP encapsulation),
//!   RFC 4868 (HMAC-SHA-2) and RFC 4304 (ESN).
//!
//! A transform stores its attributes raw ([`Attribute`]) so the wire form (TV or TLV, and
//! the TLV length) round-trips byte for byte; [`IkeAttribute`] and [`IpsecAttribute`] are the
//! typed reading of one attribute.

use std::borrow::Cow;

use crate::error::{ParseError, ParseErrorKind};
use crate::macros::enum_with_unknown;
use crate::reader::{patch_u16_len, Reader};

/// The AF bit of the attribute type: set for the basic (TV) form.
const FORMAT_BASIC: u16 = 0x8000;

/// The value of one attribute, in the form it was (or will be) sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttributeValue<'a> {
    /// Basic (TV) form: a 16-bit value in place of the length.
    Basic(u16),
    /// Variable (TLV) form: a 16-bit length and that many bytes. `Cow` so that a builder can
    /// hold an encoded lifetime it computed, while parsed values borrow the datagram.
    Variable(Cow<'a, [u8]>),
}

impl AttributeValue<'_> {
    /// The value as an unsigned integer: basic values as they are, variable values as
    /// big-endian numbers of any length. Values above `u64::MAX` saturate (a lifetime that
    /// long is "forever" for every purpose this crate's users have).
    pub fn as_u64(&self) -> u64 {
        match self {
            Self::Basic(v) => u64::from(*v),
            Self::Variable(bytes) => {
                let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
                let significant = bytes.get(first..).unwrap_or_default();
                if significant.len() > 8 {
                    u64::MAX
                } else {
                    significant.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
                }
            }
        }
    }

    /// The value as a basic `u16`, or `None` in variable form.
    pub fn basic(&self) -> Option<u16> {
        match self {
            Self::Basic(v) => Some(*v),
            Self::Variable(_) => None,
        }
    }
}

/// One data attribute (RFC 2408 §3.3): a 15-bit type and a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute<'a> {
    /// The attribute type without the AF bit (only the low 15 bits are emitted).
    pub attribute_type: u16,
    /// The value and its wire form.
    pub value: AttributeValue<'a>,
}

impl<'a> Attribute<'a> {
    /// A basic (TV) attribute.
    pub fn basic(attribute_type: u16, value: u16) -> Self {
        Self { attribute_type, value: AttributeValue::Basic(value) }
    }

    /// A variable (TLV) attribute borrowing its value.
    pub fn variable(attribute_type: u16, value: &'a [u8]) -> Self {
        Self { attribute_type, value: AttributeValue::Variable(Cow::Borrowed(value)) }
    }

    /// A number in the shortest form peers accept for "V" attributes such as life duration
    /// (RFC 2409 App. A, notes pitfall 6): basic up to 65535, else 4 bytes, else 8 bytes.
    pub fn number(attribute_type: u16, value: u64) -> Attribute<'static> {
        let value = if let Ok(v) = u16::try_from(value) {
            AttributeValue::Basic(v)
        } else if let Ok(v) = u32::try_from(value) {
            AttributeValue::Variable(Cow::Owned(v.to_be_bytes().to_vec()))
        } else {
            AttributeValue::Variable(Cow::Owned(value.to_be_bytes().to_vec()))
        };
        Attribute { attribute_type, value }
    }

    /// Bytes this attribute takes on the wire.
    pub fn buffer_len(&self) -> usize {
        match &self.value {
            AttributeValue::Basic(_) => 4,
            AttributeValue::Variable(v) => 4 + v.len(),
        }
    }

    /// Reads one attribute.
    pub(crate) fn parse(r: &mut Reader<'a>) -> Result<Self, ParseError> {
        let raw_type = r.u16("attribute type")?;
        let attribute_type = raw_type & !FORMAT_BASIC;
        let value = if raw_type & FORMAT_BASIC != 0 {
            AttributeValue::Basic(r.u16("attribute value")?)
        } else {
            let len = r.u16("attribute length")?;
            AttributeValue::Variable(Cow::Borrowed(r.take(usize::from(len), "attribute value")?))
        };
        Ok(Self { attribute_type, value })
    }

    /// Appends the attribute. A variable value above 65535 bytes cannot be encoded; its
    /// length saturates so the result fails to parse rather than misparses.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let attribute_type = self.attribute_type & !FORMAT_BASIC;
        match &self.value {
            AttributeValue::Basic(v) => {
                out.extend_from_slice(&(attribute_type | FORMAT_BASIC).to_be_bytes());
                out.extend_from_slice(&v.to_be_bytes());
            }
            AttributeValue::Variable(v) => {
                out.extend_from_slice(&attribute_type.to_be_bytes());
                let at = out.len();
                out.extend_from_slice(&[0xff, 0xff]);
                out.extend_from_slice(v);
                patch_u16_len(out, at, at + 2);
            }
        }
    }

    /// The typed phase-1 reading of this attribute.
    pub fn ike(&self) -> IkeAttribute<'a> {
        IkeAttribute::from_attribute(self)
    }

    /// The typed IPsec DOI reading of this attribute.
    pub fn ipsec(&self) -> IpsecAttribute<'a> {
        IpsecAttribute::from_attribute(self)
    }
}

/// Which attribute number space a list belongs to; it decides which types must be basic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttributeSpace {
    /// RFC 2409 App. A (phase-1 transforms).
    Ike,
    /// RFC 2407 §4.5 (AH, ESP, IPCOMP transforms).
    Ipsec,
    /// Anything else: no format rule is known.
    Other,
}

impl AttributeSpace {
    /// Whether `attribute_type` is class "B" (basic only) in this space.
    fn basic_only(self, attribute_type: u16) -> bool {
        match self {
            Self::Ike => matches!(attribute_type, 1..=5 | 11 | 13..=15),
            Self::Ipsec => matches!(attribute_type, 1 | 3..=8 | 10 | 11),
            Self::Other => false,
        }
    }
}

/// Reads attributes until the reader is empty, at most `max` of them, refusing basic-only
/// types sent in variable form.
pub(crate) fn parse_attributes<'a>(
    r: &mut Reader<'a>,
    space: AttributeSpace,
    max: usize,
) -> Result<Vec<Attribute<'a>>, ParseError> {
    let mut attributes = Vec::new();
    while !r.is_empty() {
        if attributes.len() == max {
            return Err(r.error(ParseErrorKind::TooMany("attributes")));
        }
        let offset = r.offset();
        let attribute = Attribute::parse(r)?;
        if matches!(attribute.value, AttributeValue::Variable(_))
            && space.basic_only(attribute.attribute_type)
        {
            return Err(r.error_at(offset, ParseErrorKind::AttributeFormat(attribute.attribute_type)));
        }
        attributes.push(attribute);
    }
    Ok(attributes)
}

enum_with_unknown! {
    /// Phase-1 attribute classes (RFC 2409 App. A).
    pub enum IkeAttributeType(u16) {
        /// Encryption Algorithm (B).
        EncryptionAlgorithm = 1,
        /// Hash Algorithm (B).
        HashAlgorithm = 2,
        /// Authentication Method (B).
        AuthenticationMethod = 3,
        /// Group Description (B).
        GroupDescription = 4,
        /// Group Type (B).
        GroupType = 5,
        /// Group Prime/Irreducible Polynomial (V).
        GroupPrime = 6,
        /// Group Generator One (V).
        GroupGeneratorOne = 7,
        /// Group Generator Two (V).
        GroupGeneratorTwo = 8,
        /// Group Curve A (V).
        GroupCurveA = 9,
        /// Group Curve B (V).
        GroupCurveB = 10,
        /// Life Type (B).
        LifeType = 11,
        /// Life Duration (V).
        LifeDuration = 12,
        /// PRF (B).
        Prf = 13,
        /// Key Length (B), in bits.
        KeyLength = 14,
        /// Field Size (B).
        FieldSize = 15,
        /// Group Order (V).
        GroupOrder = 16,
    }
}

enum_with_unknown! {
    /// Phase-1 encryption algorithms (RFC 2409 App. A, RFC 3602, RFC 4312).
    pub enum EncryptionAlgorithm(u16) {
        /// DES-CBC.
        DesCbc = 1,
        /// IDEA-CBC.
        IdeaCbc = 2,
        /// Blowfish-CBC.
        BlowfishCbc = 3,
        /// RC5-R16-B64-CBC.
        Rc5R16B64Cbc = 4,
        /// 3DES-CBC.
        TripleDesCbc = 5,
        /// CAST-CBC.
        CastCbc = 6,
        /// AES-CBC (RFC 3602), with a Key Length attribute.
        AesCbc = 7,
        /// Camellia-CBC (RFC 4312).
        CamelliaCbc = 8,
    }
}

enum_with_unknown! {
    /// Phase-1 hash algorithms (RFC 2409 App. A, RFC 4868 numbering for SHA-2).
    pub enum HashAlgorithm(u16) {
        /// MD5.
        Md5 = 1,
        /// SHA-1.
        Sha1 = 2,
        /// Tiger.
        Tiger = 3,
        /// SHA2-256.
        Sha2_256 = 4,
        /// SHA2-384.
        Sha2_384 = 5,
        /// SHA2-512.
        Sha2_512 = 6,
    }
}

enum_with_unknown! {
    /// Phase-1 authentication methods (RFC 2409 App. A, RFC 4754, hybrid and XAUTH drafts).
    pub enum AuthenticationMethod(u16) {
        /// Pre-shared key.
        PreSharedKey = 1,
        /// DSS signatures.
        DssSignatures = 2,
        /// RSA signatures.
        RsaSignatures = 3,
        /// Encryption with RSA (never implemented, security pitfall 6).
        RsaEncryption = 4,
        /// Revised encryption with RSA (never implemented).
        RsaRevisedEncryption = 5,
        /// ECDSA with SHA-256 on P-256 (RFC 4754).
        EcdsaP256 = 9,
        /// ECDSA with SHA-384 on P-384 (RFC 4754).
        EcdsaP384 = 10,
        /// ECDSA with SHA-512 on P-521 (RFC 4754).
        EcdsaP521 = 11,
        /// Hybrid, initiator RSA.
        HybridInitRsa = 64221,
        /// Hybrid, responder RSA.
        HybridRespRsa = 64222,
        /// Hybrid, initiator DSS.
        HybridInitDss = 64223,
        /// Hybrid, responder DSS.
        HybridRespDss = 64224,
        /// XAUTH, initiator pre-shared key.
        XauthInitPreShared = 65001,
        /// XAUTH, responder pre-shared key.
        XauthRespPreShared = 65002,
        /// XAUTH, initiator DSS.
        XauthInitDss = 65003,
        /// XAUTH, responder DSS.
        XauthRespDss = 65004,
        /// XAUTH, initiator RSA.
        XauthInitRsa = 65005,
        /// XAUTH, responder RSA.
        XauthRespRsa = 65006,
        /// XAUTH, initiator RSA encryption.
        XauthInitRsaEncryption = 65007,
        /// XAUTH, responder RSA encryption.
        XauthRespRsaEncryption = 65008,
        /// XAUTH, initiator revised RSA encryption.
        XauthInitRsaRevisedEncryption = 65009,
        /// XAUTH, responder revised RSA encryption.
        XauthRespRsaRevisedEncryption = 65010,
    }
}

enum_with_unknown! {
    /// Diffie-Hellman groups (RFC 2409 §6, RFC 3526, RFC 5903, RFC 5114, RFC 6932, RFC 8031).
    pub enum GroupDescription(u16) {
        /// MODP 768 (group 1).
        Modp768 = 1,
        /// MODP 1024 (group 2).
        Modp1024 = 2,
        /// EC2N 155 (group 3).
        Ec2n155 = 3,
        /// EC2N 185 (group 4).
        Ec2n185 = 4,
        /// MODP 1536 (group 5).
        Modp1536 = 5,
        /// MODP 2048 (group 14).
        Modp2048 = 14,
        /// MODP 3072 (group 15).
        Modp3072 = 15,
        /// MODP 4096 (group 16).
        Modp4096 = 16,
        /// MODP 6144 (group 17).
        Modp6144 = 17,
        /// MODP 8192 (group 18).
        Modp8192 = 18,
        /// ECP 256 (group 19).
        Ecp256 = 19,
        /// ECP 384 (group 20).
        Ecp384 = 20,
        /// ECP 521 (group 21).
        Ecp521 = 21,
        /// MODP 1024 with 160-bit subgroup (group 22).
        Modp1024s160 = 22,
        /// MODP 2048 with 224-bit subgroup (group 23).
        Modp2048s224 = 23,
        /// MODP 2048 with 256-bit subgroup (group 24).
        Modp2048s256 = 24,
        /// ECP 192 (group 25).
        Ecp192 = 25,
        /// ECP 224 (group 26).
        Ecp224 = 26,
        /// Brainpool P-224 (group 27).
        BrainpoolP224 = 27,
        /// Brainpool P-256 (group 28).
        BrainpoolP256 = 28,
        /// Brainpool P-384 (group 29).
        BrainpoolP384 = 29,
        /// Brainpool P-512 (group 30).
        BrainpoolP512 = 30,
        /// Curve25519 (group 31).
        Curve25519 = 31,
    }
}

enum_with_unknown! {
    /// Life types, shared by phase 1 (RFC 2409 App. A) and the IPsec DOI (RFC 2407 §4.5).
    pub enum LifeType(u16) {
        /// Seconds.
        Seconds = 1,
        /// Kilobytes.
        Kilobytes = 2,
    }
}

/// A phase-1 attribute read for its meaning (RFC 2409 App. A).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IkeAttribute<'a> {
    /// Encryption algorithm.
    EncryptionAlgorithm(EncryptionAlgorithm),
    /// Hash algorithm.
    HashAlgorithm(HashAlgorithm),
    /// Authentication method.
    AuthenticationMethod(AuthenticationMethod),
    /// Diffie-Hellman group.
    GroupDescription(GroupDescription),
    /// Group type (MODP 1, ECP 2, EC2N 3).
    GroupType(u16),
    /// Unit of the following life duration.
    LifeType(LifeType),
    /// Life duration, basic or variable of any length (saturating at `u64::MAX`).
    LifeDuration(u64),
    /// PRF (no PRFs are defined for IKEv1 beyond the HMAC of the hash).
    Prf(u16),
    /// Cipher key length in bits.
    KeyLength(u16),
    /// Field size in bits.
    FieldSize(u16),
    /// A type not named above (including group parameters), or a named type in a form that
    /// does not fit it.
    Unknown {
        /// The attribute type.
        attribute_type: u16,
        /// The raw value.
        value: AttributeValue<'a>,
    },
}

impl<'a> IkeAttribute<'a> {
    fn from_attribute(attribute: &Attribute<'a>) -> Self {
        let basic = attribute.value.basic();
        match (IkeAttributeType::from(attribute.attribute_type), basic) {
            (IkeAttributeType::EncryptionAlgorithm, Some(v)) => Self::EncryptionAlgorithm(v.into()),
            (IkeAttributeType::HashAlgorithm, Some(v)) => Self::HashAlgorithm(v.into()),
            (IkeAttributeType::AuthenticationMethod, Some(v)) => Self::AuthenticationMethod(v.into()),
            (IkeAttributeType::GroupDescription, Some(v)) => Self::GroupDescription(v.into()),
            (IkeAttributeType::GroupType, Some(v)) => Self::GroupType(v),
            (IkeAttributeType::LifeType, Some(v)) => Self::LifeType(v.into()),
            (IkeAttributeType::LifeDuration, _) => Self::LifeDuration(attribute.value.as_u64()),
            (IkeAttributeType::Prf, Some(v)) => Self::Prf(v),
            (IkeAttributeType::KeyLength, Some(v)) => Self::KeyLength(v),
            (IkeAttributeType::FieldSize, Some(v)) => Self::FieldSize(v),
            _ => Self::Unknown { attribute_type: attribute.attribute_type, value: attribute.value.clone() },
        }
    }

    /// The wire attribute for this meaning (life durations in the shortest accepted form).
    pub fn to_attribute(&self) -> Attribute<'a> {
        let basic = |t: IkeAttributeType, v: u16| Attribute::basic(t.into(), v);
        match self {
            Self::EncryptionAlgorithm(v) => basic(IkeAttributeType::EncryptionAlgorithm, (*v).into()),
            Self::HashAlgorithm(v) => basic(IkeAttributeType::HashAlgorithm, (*v).into()),
            Self::AuthenticationMethod(v) => basic(IkeAttributeType::AuthenticationMethod, (*v).into()),
            Self::GroupDescription(v) => basic(IkeAttributeType::GroupDescription, (*v).into()),
            Self::GroupType(v) => basic(IkeAttributeType::GroupType, *v),
            Self::LifeType(v) => basic(IkeAttributeType::LifeType, (*v).into()),
            Self::LifeDuration(v) => Attribute::number(IkeAttributeType::LifeDuration.into(), *v),
            Self::Prf(v) => basic(IkeAttributeType::Prf, *v),
            Self::KeyLength(v) => basic(IkeAttributeType::KeyLength, *v),
            Self::FieldSize(v) => basic(IkeAttributeType::FieldSize, *v),
            Self::Unknown { attribute_type, value } => {
                Attribute { attribute_type: *attribute_type, value: value.clone() }
            }
        }
    }
}

enum_with_unknown! {
    /// IPsec DOI SA attribute classes (RFC 2407 §4.5, RFC 3168, RFC 4304).
    pub enum IpsecAttributeType(u16) {
        /// SA Life Type (B).
        LifeType = 1,
        /// SA Life Duration (V).
        LifeDuration = 2,
        /// Group Description (B): the PFS group.
        GroupDescription = 3,
        /// Encapsulation Mode (B).
        EncapsulationMode = 4,
        /// Authentication Algorithm (B).
        AuthenticationAlgorithm = 5,
        /// Key Length (B), in bits.
        KeyLength = 6,
        /// Key Rounds (B).
        KeyRounds = 7,
        /// Compress Dictionary Size (B).
        CompressDictionarySize = 8,
        /// Compress Private Algorithm (V).
        CompressPrivateAlgorithm = 9,
        /// ECN Tunnel (B), RFC 3168.
        EcnTunnel = 10,
        /// Extended (64-bit) Sequence Number (B), RFC 4304.
        ExtendedSequenceNumber = 11,
    }
}

enum_with_unknown! {
    /// Encapsulation modes (RFC 2407 §4.5, RFC 3947 §5.1 and the NAT-T draft numbers).
    pub enum EncapsulationMode(u16) {
        /// Tunnel.
        Tunnel = 1,
        /// Transport.
        Transport = 2,
        /// UDP-Encapsulated-Tunnel (RFC 3947).
        UdpTunnel = 3,
        /// UDP-Encapsulated-Transport (RFC 3947).
        UdpTransport = 4,
        /// UDP-Encapsulated-Tunnel, draft-ietf-ipsec-nat-t-ike number.
        UdpTunnelDraft = 61443,
        /// UDP-Encapsulated-Transport, draft-ietf-ipsec-nat-t-ike number.
        UdpTransportDraft = 61444,
    }
}

enum_with_unknown! {
    /// IPsec authentication algorithms (RFC 2407 §4.5, RFC 4868, RFC 3566, RFC 4543).
    pub enum AuthenticationAlgorithm(u16) {
        /// HMAC-MD5 (RFC 2403).
        HmacMd5 = 1,
        /// HMAC-SHA-1 (RFC 2404).
        HmacSha1 = 2,
        /// DES-MAC.
        DesMac = 3,
        /// KPDK.
        Kpdk = 4,
        /// HMAC-SHA2-256 (RFC 4868, 128-bit ICV).
        HmacSha2_256 = 5,
        /// HMAC-SHA2-384 (RFC 4868).
        HmacSha2_384 = 6,
        /// HMAC-SHA2-512 (RFC 4868).
        HmacSha2_512 = 7,
        /// HMAC-RIPEMD.
        HmacRipemd = 8,
        /// AES-XCBC-MAC (RFC 3566).
        AesXcbcMac = 9,
        /// SIG-RSA.
        SigRsa = 10,
        /// AES-128-GMAC (RFC 4543).
        Aes128Gmac = 11,
        /// AES-192-GMAC (RFC 4543).
        Aes192Gmac = 12,
        /// AES-256-GMAC (RFC 4543).
        Aes256Gmac = 13,
    }
}

enum_with_unknown! {
    /// ESP transform IDs (RFC 2407 §4.4.4 and the IANA registry): the cipher of an ESP
    /// transform.
    pub enum EspTransformId(u8) {
        /// ESP_DES_IV64.
        DesIv64 = 1,
        /// ESP_DES.
        Des = 2,
        /// ESP_3DES.
        TripleDes = 3,
        /// ESP_RC5.
        Rc5 = 4,
        /// ESP_IDEA.
        Idea = 5,
        /// ESP_CAST.
        Cast = 6,
        /// ESP_BLOWFISH.
        Blowfish = 7,
        /// ESP_3IDEA.
        TripleIdea = 8,
        /// ESP_DES_IV32.
        DesIv32 = 9,
        /// ESP_RC4.
        Rc4 = 10,
        /// ESP_NULL.
        Null = 11,
        /// ESP_AES (CBC, RFC 3602).
        AesCbc = 12,
        /// ESP_AES-CTR (RFC 3686).
        AesCtr = 13,
        /// ESP_AES-CCM_8 (RFC 4309).
        AesCcm8 = 14,
        /// ESP_AES-CCM_12.
        AesCcm12 = 15,
        /// ESP_AES-CCM_16.
        AesCcm16 = 16,
        /// ESP_AES-GCM_8 (RFC 4106).
        AesGcm8 = 18,
        /// ESP_AES-GCM_12.
        AesGcm12 = 19,
        /// ESP_AES-GCM_16.
        AesGcm16 = 20,
        /// ESP_CAMELLIA (RFC 4312).
        Camellia = 22,
        /// ESP_NULL_AUTH_AES-GMAC (RFC 4543).
        NullAuthAesGmac = 23,
    }
}

enum_with_unknown! {
    /// AH transform IDs (RFC 2407 §4.4.3, RFC 4868).
    pub enum AhTransformId(u8) {
        /// AH_MD5.
        Md5 = 2,
        /// AH_SHA.
        Sha = 3,
        /// AH_DES.
        Des = 4,
        /// AH_SHA2-256.
        Sha2_256 = 5,
        /// AH_SHA2-384.
        Sha2_384 = 6,
        /// AH_SHA2-512.
        Sha2_512 = 7,
    }
}

enum_with_unknown! {
    /// IPCOMP transform IDs (RFC 2407 §4.4.5).
    pub enum IpCompTransformId(u8) {
        /// IPCOMP_OUI.
        Oui = 1,
        /// IPCOMP_DEFLATE.
        Deflate = 2,
        /// IPCOMP_LZS.
        Lzs = 3,
    }
}

/// The transform ID of a PROTO_ISAKMP transform (RFC 2407 §4.4.2).
pub const KEY_IKE: u8 = 1;

/// An IPsec DOI attribute read for its meaning (RFC 2407 §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpsecAttribute<'a> {
    /// Unit of the following life duration.
    LifeType(LifeType),
    /// Life duration, basic or variable of any length (saturating at `u64::MAX`).
    LifeDuration(u64),
    /// PFS group.
    GroupDescription(GroupDescription),
    /// Encapsulation mode.
    EncapsulationMode(EncapsulationMode),
    /// Integrity algorithm.
    AuthenticationAlgorithm(AuthenticationAlgorithm),
    /// Cipher key length in bits.
    KeyLength(u16),
    /// Key rounds.
    KeyRounds(u16),
    /// IPCOMP dictionary size.
    CompressDictionarySize(u16),
    /// ECN tunnel (RFC 3168).
    EcnTunnel(u16),
    /// Extended sequence numbers (RFC 4304).
    ExtendedSequenceNumber(u16),
    /// A type not named above, or a named type in a form that does not fit it.
    Unknown {
        /// The attribute type.
        attribute_type: u16,
        /// The raw value.
        value: AttributeValue<'a>,
    },
}

impl<'a> IpsecAttribute<'a> {
    fn from_attribute(attribute: &Attribute<'a>) -> Self {
        let basic = attribute.value.basic();
        match (IpsecAttributeType::from(attribute.attribute_type), basic) {
            (IpsecAttributeType::LifeType, Some(v)) => Self::LifeType(v.into()),
            (IpsecAttributeType::LifeDuration, _) => Self::LifeDuration(attribute.value.as_u64()),
            (IpsecAttributeType::GroupDescription, Some(v)) => Self::GroupDescription(v.into()),
            (IpsecAttributeType::EncapsulationMode, Some(v)) => Self::EncapsulationMode(v.into()),
            (IpsecAttributeType::AuthenticationAlgorithm, Some(v)) => Self::AuthenticationAlgorithm(v.into()),
            (IpsecAttributeType::KeyLength, Some(v)) => Self::KeyLength(v),
            (IpsecAttributeType::KeyRounds, Some(v)) => Self::KeyRounds(v),
            (IpsecAttributeType::CompressDictionarySize, Some(v)) => Self::CompressDictionarySize(v),
            (IpsecAttributeType::EcnTunnel, Some(v)) => Self::EcnTunnel(v),
            (IpsecAttributeType::ExtendedSequenceNumber, Some(v)) => Self::ExtendedSequenceNumber(v),
            _ => Self::Unknown { attribute_type: attribute.attribute_type, value: attribute.value.clone() },
        }
    }

    /// The wire attribute for this meaning (life durations in the shortest accepted form).
    pub fn to_attribute(&self) -> Attribute<'a> {
        let basic = |t: IpsecAttributeType, v: u16| Attribute::basic(t.into(), v);
        match self {
            Self::LifeType(v) => basic(IpsecAttributeType::LifeType, (*v).into()),
            Self::LifeDuration(v) => Attribute::number(IpsecAttributeType::LifeDuration.into(), *v),
            Self::GroupDescription(v) => basic(IpsecAttributeType::GroupDescription, (*v).into()),
            Self::EncapsulationMode(v) => basic(IpsecAttributeType::EncapsulationMode, (*v).into()),
            Self::AuthenticationAlgorithm(v) => {
                basic(IpsecAttributeType::AuthenticationAlgorithm, (*v).into())
            }
            Self::KeyLength(v) => basic(IpsecAttributeType::KeyLength, *v),
            Self::KeyRounds(v) => basic(IpsecAttributeType::KeyRounds, *v),
            Self::CompressDictionarySize(v) => basic(IpsecAttributeType::CompressDictionarySize, *v),
            Self::EcnTunnel(v) => basic(IpsecAttributeType::EcnTunnel, *v),
            Self::ExtendedSequenceNumber(v) => basic(IpsecAttributeType::ExtendedSequenceNumber, *v),
            Self::Unknown { attribute_type, value } => {
                Attribute { attribute_type: *attribute_type, value: value.clone() }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Context;
    use crate::numbers::PayloadType;

    fn parse(bytes: &[u8], space: AttributeSpace) -> Result<Vec<Attribute<'_>>, ParseError> {
        let mut r = Reader::new(bytes, 0, Context::Payload(PayloadType::Transform));
        parse_attributes(&mut r, space, 64)
    }

    #[test]
    fn test_parse_phase1_attributes() {
        // The strongSwan transform of mm-psk-modp2048 (sai_b).
        let bytes = hex::decode("80010007800e0080800200048004000e80030001800b0001800c3de0").unwrap();
        let attributes = parse(&bytes, AttributeSpace::Ike).unwrap();
        let typed: Vec<_> = attributes.iter().map(Attribute::ike).collect();
        assert_eq!(
            typed,
            vec![
                IkeAttribute::EncryptionAlgorithm(EncryptionAlgorithm::AesCbc),
                IkeAttribute::KeyLength(128),
                IkeAttribute::HashAlgorithm(HashAlgorithm::Sha2_256),
                IkeAttribute::GroupDescription(GroupDescription::Modp2048),
                IkeAttribute::AuthenticationMethod(AuthenticationMethod::PreSharedKey),
                IkeAttribute::LifeType(LifeType::Seconds),
                IkeAttribute::LifeDuration(15840),
            ]
        );
        let mut out = Vec::new();
        attributes.iter().for_each(|a| a.emit(&mut out));
        assert_eq!(out, bytes);
    }

    #[test]
    fn test_long_life_duration() {
        // 32-bit and 9-byte TLV life durations (pitfall 6).
        let bytes = hex::decode("0002000400015180000200090000000000000000ff").unwrap();
        let attributes = parse(&bytes, AttributeSpace::Ipsec).unwrap();
        assert_eq!(attributes[0].ipsec(), IpsecAttribute::LifeDuration(86400));
        assert_eq!(attributes[1].ipsec(), IpsecAttribute::LifeDuration(255));
        let huge = [1u8; 9];
        assert_eq!(Attribute::variable(2, &huge).ipsec(), IpsecAttribute::LifeDuration(u64::MAX));
        assert_eq!(Attribute::number(2, 86400), attributes[0]);
        assert_eq!(Attribute::number(2, 3600), Attribute::basic(2, 3600));
        assert_eq!(Attribute::number(2, 1 << 40).buffer_len(), 12);
        let mut out = Vec::new();
        attributes.iter().for_each(|a| a.emit(&mut out));
        assert_eq!(out, bytes);
    }

    #[test]
    fn test_bad_attributes() {
        // Encapsulation mode (B) in TLV form.
        let err = parse(&hex::decode("000400020001").unwrap(), AttributeSpace::Ipsec).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::AttributeFormat(4));
        // TLV running past the end.
        let err = parse(&hex::decode("0002000500015180").unwrap(), AttributeSpace::Ipsec).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::MissingData("attribute value"));
        assert_eq!(err.offset, 4);
        // Truncated TV.
        let err = parse(&hex::decode("800100").unwrap(), AttributeSpace::Ike).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::MissingData("attribute value"));
        // Too many.
        let many = [0x80u8, 0x20, 0, 0].repeat(65);
        let err = parse(&many, AttributeSpace::Other).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::TooMany("attributes"));
    }

    #[test]
    fn test_typed_round_trip() {
        let typed = [
            IpsecAttribute::LifeType(LifeType::Kilobytes),
            IpsecAttribute::EncapsulationMode(EncapsulationMode::UdpTunnel),
            IpsecAttribute::AuthenticationAlgorithm(AuthenticationAlgorithm::HmacSha2_256),
            IpsecAttribute::LifeDuration(4_608_000),
        ];
        for t in typed {
            assert_eq!(t.to_attribute().ipsec(), t);
        }
    }
}
