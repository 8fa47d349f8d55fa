//! Protocol numbers shared by the header and several payloads.
//!
//! - Payload types: RFC 2408 §3.1 (1–13), draft-dukes-ike-mode-cfg (14), RFC 3947 §3–4 (20, 21)
//!   and their pre-RFC draft numbers (130, 131), Cisco/Microsoft IKE fragmentation (132).
//! - Exchange types: RFC 2408 §3.1 and RFC 2409 §5 (Quick 32, New Group 33).
//! - Domains of interpretation: RFC 2408 §3.4 and RFC 2407 §4.2.
//! - Protocol IDs: RFC 2407 §4.4.1.
//! - Notify message types: RFC 2408 §3.14.1, RFC 2407 §4.6.3, RFC 3706 §5 (DPD).

use crate::macros::enum_with_unknown;

enum_with_unknown! {
    /// The "Next Payload" numbers of RFC 2408 §3.1: they name the payload that follows a
    /// header, so every chain walk dispatches on this type.
    pub enum PayloadType(u8) {
        /// NONE (0): the end of the chain.
        None = 0,
        /// Security Association (RFC 2408 §3.4).
        SecurityAssociation = 1,
        /// Proposal (RFC 2408 §3.5); only valid inside an SA payload.
        Proposal = 2,
        /// Transform (RFC 2408 §3.6); only valid inside a proposal.
        Transform = 3,
        /// Key Exchange (RFC 2408 §3.7).
        KeyExchange = 4,
        /// Identification (RFC 2408 §3.8, RFC 2407 §4.6.2).
        Identification = 5,
        /// Certificate (RFC 2408 §3.9).
        Certificate = 6,
        /// Certificate Request (RFC 2408 §3.10).
        CertificateRequest = 7,
        /// Hash (RFC 2408 §3.11).
        Hash = 8,
        /// Signature (RFC 2408 §3.12).
        Signature = 9,
        /// Nonce (RFC 2408 §3.13).
        Nonce = 10,
        /// Notification (RFC 2408 §3.14).
        Notification = 11,
        /// Delete (RFC 2408 §3.15).
        Delete = 12,
        /// Vendor ID (RFC 2408 §3.16).
        VendorId = 13,
        /// Attribute payload of the ISAKMP Configuration Method (draft-dukes-ike-mode-cfg §3.2).
        Attribute = 14,
        /// NAT-D (RFC 3947 §3.2).
        NatDiscovery = 20,
        /// NAT-OA (RFC 3947 §5.1).
        NatOriginalAddress = 21,
        /// NAT-D with the draft-ietf-ipsec-nat-t-ike-02/03 number.
        NatDiscoveryDraft = 130,
        /// NAT-OA with the draft-ietf-ipsec-nat-t-ike-02/03 number.
        NatOriginalAddressDraft = 131,
        /// Cisco/Microsoft IKEv1 fragment (no RFC).
        Fragment = 132,
    }
}

impl core::fmt::Display for PayloadType {
    /// The payload's name as RFC 2408 §3 and the logs of strongSwan write it (`SA`, `KE`,
    /// `NAT-D`, …), or its number for one this parser does not know, so that a parse error
    /// reads without Rust `Debug` names.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::None => "NONE",
            Self::SecurityAssociation => "SA",
            Self::Proposal => "PROPOSAL",
            Self::Transform => "TRANSFORM",
            Self::KeyExchange => "KE",
            Self::Identification => "ID",
            Self::Certificate => "CERT",
            Self::CertificateRequest => "CR",
            Self::Hash => "HASH",
            Self::Signature => "SIG",
            Self::Nonce => "NONCE",
            Self::Notification => "N",
            Self::Delete => "D",
            Self::VendorId => "VID",
            Self::Attribute => "ATTR",
            Self::NatDiscovery | Self::NatDiscoveryDraft => "NAT-D",
            Self::NatOriginalAddress | Self::NatOriginalAddressDraft => "NAT-OA",
            Self::Fragment => "FRAG",
            Self::Unknown(n) => return write!(f, "type {n}"),
        })
    }
}

enum_with_unknown! {
    /// Exchange types (RFC 2408 §3.1, RFC 2409 §5): they select the engine's state machine.
    pub enum ExchangeType(u8) {
        /// NONE.
        None = 0,
        /// Base exchange (RFC 2408 §4.4).
        Base = 1,
        /// Identity Protection, IKE's Main Mode (RFC 2408 §4.5).
        IdentityProtection = 2,
        /// Authentication Only (RFC 2408 §4.6).
        AuthenticationOnly = 3,
        /// Aggressive (RFC 2408 §4.7).
        Aggressive = 4,
        /// Informational (RFC 2408 §4.8).
        Informational = 5,
        /// Transaction, the ISAKMP Configuration Method (draft-dukes-ike-mode-cfg).
        Transaction = 6,
        /// Quick Mode (RFC 2409 §5.5).
        QuickMode = 32,
        /// New Group Mode (RFC 2409 §5.6).
        NewGroupMode = 33,
    }
}

enum_with_unknown! {
    /// Domain of interpretation (RFC 2408 §3.4, RFC 2407 §4.2): the namespace in which SA,
    /// notify and delete payloads carry their numbers.
    pub enum Doi(u32) {
        /// The generic ISAKMP DOI (0), seen in some notifications.
        Isakmp = 0,
        /// The Internet IP Security DOI (1), RFC 2407.
        Ipsec = 1,
    }
}

enum_with_unknown! {
    /// Protocol IDs of the IPsec DOI (RFC 2407 §4.4.1): which kind of SA a proposal,
    /// notification or delete speaks about.
    pub enum ProtocolId(u8) {
        /// No protocol (notifications about the message as a whole).
        None = 0,
        /// PROTO_ISAKMP: the phase-1 SA.
        Isakmp = 1,
        /// PROTO_IPSEC_AH.
        Ah = 2,
        /// PROTO_IPSEC_ESP.
        Esp = 3,
        /// PROTO_IPCOMP.
        IpComp = 4,
    }
}

enum_with_unknown! {
    /// Notify message types (RFC 2408 §3.14.1, RFC 2407 §4.6.3, RFC 3706 §5): errors 1–30
    /// tell the peer why its message was refused; the status types carry protocol events.
    pub enum NotifyType(u16) {
        /// INVALID-PAYLOAD-TYPE.
        InvalidPayloadType = 1,
        /// DOI-NOT-SUPPORTED.
        DoiNotSupported = 2,
        /// SITUATION-NOT-SUPPORTED.
        SituationNotSupported = 3,
        /// INVALID-COOKIE.
        InvalidCookie = 4,
        /// INVALID-MAJOR-VERSION.
        InvalidMajorVersion = 5,
        /// INVALID-MINOR-VERSION.
        InvalidMinorVersion = 6,
        /// INVALID-EXCHANGE-TYPE.
        InvalidExchangeType = 7,
        /// INVALID-FLAGS.
        InvalidFlags = 8,
        /// INVALID-MESSAGE-ID.
        InvalidMessageId = 9,
        /// INVALID-PROTOCOL-ID.
        InvalidProtocolId = 10,
        /// INVALID-SPI.
        InvalidSpi = 11,
        /// INVALID-TRANSFORM-ID.
        InvalidTransformId = 12,
        /// ATTRIBUTES-NOT-SUPPORTED.
        AttributesNotSupported = 13,
        /// NO-PROPOSAL-CHOSEN.
        NoProposalChosen = 14,
        /// BAD-PROPOSAL-SYNTAX.
        BadProposalSyntax = 15,
        /// PAYLOAD-MALFORMED.
        PayloadMalformed = 16,
        /// INVALID-KEY-INFORMATION.
        InvalidKeyInformation = 17,
        /// INVALID-ID-INFORMATION.
        InvalidIdInformation = 18,
        /// INVALID-CERT-ENCODING.
        InvalidCertEncoding = 19,
        /// INVALID-CERTIFICATE.
        InvalidCertificate = 20,
        /// CERT-TYPE-UNSUPPORTED.
        CertTypeUnsupported = 21,
        /// INVALID-CERT-AUTHORITY.
        InvalidCertAuthority = 22,
        /// INVALID-HASH-INFORMATION.
        InvalidHashInformation = 23,
        /// AUTHENTICATION-FAILED.
        AuthenticationFailed = 24,
        /// INVALID-SIGNATURE.
        InvalidSignature = 25,
        /// ADDRESS-NOTIFICATION.
        AddressNotification = 26,
        /// NOTIFY-SA-LIFETIME.
        NotifySaLifetime = 27,
        /// CERTIFICATE-UNAVAILABLE.
        CertificateUnavailable = 28,
        /// UNSUPPORTED-EXCHANGE-TYPE.
        UnsupportedExchangeType = 29,
        /// UNEQUAL-PAYLOAD-LENGTHS.
        UnequalPayloadLengths = 30,
        /// CONNECTED (RFC 2408 status).
        Connected = 16384,
        /// RESPONDER-LIFETIME (RFC 2407 §4.6.3.1).
        ResponderLifetime = 24576,
        /// REPLAY-STATUS (RFC 2407 §4.6.3.2).
        ReplayStatus = 24577,
        /// INITIAL-CONTACT (RFC 2407 §4.6.3.3).
        InitialContact = 24578,
        /// R-U-THERE (RFC 3706 §5).
        DpdRUThere = 36136,
        /// R-U-THERE-ACK (RFC 3706 §5).
        DpdRUThereAck = 36137,
        /// Cisco Unity load balance (no RFC).
        UnityLoadBalance = 40501,
    }
}

impl NotifyType {
    /// Whether this is an error type (1–16383, RFC 2408 §3.14.1): errors abort an exchange,
    /// status types do not.
    pub fn is_error(self) -> bool {
        (1..16384).contains(&u16::from(self))
    }
}

enum_with_unknown! {
    /// Identification types (RFC 2407 §4.6.2.1): they fix the layout of the ID data.
    pub enum IdType(u8) {
        /// ID_IPV4_ADDR: 4 bytes.
        Ipv4Addr = 1,
        /// ID_FQDN: a domain name, no terminator.
        Fqdn = 2,
        /// ID_USER_FQDN: user@domain.
        UserFqdn = 3,
        /// ID_IPV4_ADDR_SUBNET: address and mask, 8 bytes.
        Ipv4AddrSubnet = 4,
        /// ID_IPV6_ADDR: 16 bytes.
        Ipv6Addr = 5,
        /// ID_IPV6_ADDR_SUBNET: address and mask, 32 bytes.
        Ipv6AddrSubnet = 6,
        /// ID_IPV4_ADDR_RANGE: first and last address, 8 bytes.
        Ipv4AddrRange = 7,
        /// ID_IPV6_ADDR_RANGE: first and last address, 32 bytes.
        Ipv6AddrRange = 8,
        /// ID_DER_ASN1_DN: a DER-encoded distinguished name.
        DerAsn1Dn = 9,
        /// ID_DER_ASN1_GN: a DER-encoded general name.
        DerAsn1Gn = 10,
        /// ID_KEY_ID: opaque bytes.
        KeyId = 11,
    }
}

enum_with_unknown! {
    /// Certificate encodings (RFC 2408 §3.9): the format of CERT data and the type a CR asks
    /// for.
    pub enum CertificateEncoding(u8) {
        /// PKCS #7 wrapped X.509 certificate.
        Pkcs7 = 1,
        /// PGP certificate.
        Pgp = 2,
        /// DNS signed key.
        DnsSignedKey = 3,
        /// X.509 certificate, signature.
        X509Signature = 4,
        /// X.509 certificate, key exchange.
        X509KeyExchange = 5,
        /// Kerberos tokens.
        Kerberos = 6,
        /// Certificate revocation list.
        Crl = 7,
        /// Authority revocation list.
        Arl = 8,
        /// SPKI certificate.
        Spki = 9,
        /// X.509 certificate, attribute.
        X509Attribute = 10,
    }
}
