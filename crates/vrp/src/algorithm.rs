//! The keyword-valued settings of the language: algorithms, groups, modes and ID types.
//!
//! Canonical keywords are the USG-V5 ones (reference `vrp-cli.md` §2.2–§2.6, §6
//! "Recommendation"); the aliases of §6 are accepted on input and normalised on output;
//! values that VRP knows and keysteward does not implement are rejected with a reason.
//! These enums belong to the configuration model; `crypto` has its own, and the mapping is
//! made where the two meet, so that `vrp` does not depend on `crypto`.

use std::fmt;

/// A keyword-valued setting: its canonical keywords, its input aliases, and the VRP
/// keywords that are refused as unsupported.
pub trait Value: Sized + Copy + 'static {
    /// What the value is, for error messages ("encryption algorithm").
    const WHAT: &'static str;
    /// Every value, in the order of the reference's tables.
    const ALL: &'static [Self];
    /// Input-only spellings and the value they stand for.
    const ALIASES: &'static [(&'static str, Self)];
    /// Keywords VRP has and keysteward refuses, with the reason.
    const UNSUPPORTED: &'static [(&'static str, &'static str)];
    /// The canonical keyword, as the renderer prints it.
    fn keyword(self) -> &'static str;
}

macro_rules! keyword_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $kw:literal, )+
        }
        aliases { $( $alias:literal => $avariant:ident, )* }
        unsupported { $( $ukw:literal => $reason:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl Value for $name {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[ $( $name::$variant, )+ ];
            const ALIASES: &'static [(&'static str, Self)] = &[ $( ($alias, $name::$avariant), )* ];
            const UNSUPPORTED: &'static [(&'static str, &'static str)] = &[ $( ($ukw, $reason), )* ];
            fn keyword(self) -> &'static str {
                match self { $( $name::$variant => $kw, )+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.keyword())
            }
        }
    };
}

keyword_enum! {
    /// A CBC cipher of an IKE proposal (`encryption-algorithm`) or of ESP
    /// (`esp encryption-algorithm`); AES-256 is the default of both.
    pub enum EncryptionAlgorithm ("encryption algorithm") {
        /// DES-CBC, 56-bit key: weak, accepted for the article's example.
        Des = "des",
        /// 3DES-CBC: weak (64-bit block).
        TripleDes = "3des",
        /// AES-CBC with a 128-bit key.
        Aes128 = "aes-128",
        /// AES-CBC with a 192-bit key.
        Aes192 = "aes-192",
        /// AES-CBC with a 256-bit key.
        Aes256 = "aes-256",
        /// AES-GCM with a 128-bit key and a 16-byte ICV (RFC 4106), ESP only (USG-E keyword).
        Aes128Gcm = "aes-128-gcm-128",
        /// AES-GCM with a 256-bit key and a 16-byte ICV (RFC 4106), ESP only (USG-E keyword).
        Aes256Gcm = "aes-256-gcm-128",
    }
    aliases {
        "des-cbc" => Des,
        "3des-cbc" => TripleDes,
        "aes-cbc-128" => Aes128,
        "aes-cbc-192" => Aes192,
        "aes-cbc-256" => Aes256,
        "aes" => Aes128,
        "aes-cbc" => Aes128,
    }
    unsupported {
        "sm4" => "SM4 is not implemented",
        "aes-gcm-128" => "write aes-128-gcm-128 or aes-256-gcm-128 (the VRP8 form is not supported)",
        "aes-192-gcm-128" => "AES-GCM with a 192-bit key is not implemented",
        "aes-128-gmac" => "AES-GMAC is not implemented",
        "aes-192-gmac" => "AES-GMAC is not implemented",
        "aes-256-gmac" => "AES-GMAC is not implemented",
    }
}

impl EncryptionAlgorithm {
    /// True for DES and 3DES, which `check` warns about.
    pub fn is_weak(self) -> bool {
        matches!(self, EncryptionAlgorithm::Des | EncryptionAlgorithm::TripleDes)
    }

    /// True for AES-GCM: combined encryption and integrity, for ESP only (IKEv1 phase 1 has
    /// no AEAD transform), and with no separate `esp authentication-algorithm`.
    pub fn is_aead(self) -> bool {
        matches!(self, EncryptionAlgorithm::Aes128Gcm | EncryptionAlgorithm::Aes256Gcm)
    }
}

keyword_enum! {
    /// A hash: the IKEv1 hash/PRF of an IKE proposal (`authentication-algorithm`) or the HMAC
    /// of ESP/AH; SHA2-256 is the default.
    pub enum HashAlgorithm ("authentication algorithm") {
        /// MD5: weak.
        Md5 = "md5",
        /// SHA-1.
        Sha1 = "sha1",
        /// SHA2-256.
        Sha2_256 = "sha2-256",
        /// SHA2-384.
        Sha2_384 = "sha2-384",
        /// SHA2-512.
        Sha2_512 = "sha2-512",
    }
    aliases {
        "sha" => Sha1,
        "sha256" => Sha2_256,
        "sha2_256" => Sha2_256,
        "sha384" => Sha2_384,
        "sha2_384" => Sha2_384,
        "sha512" => Sha2_512,
        "sha2_512" => Sha2_512,
    }
    unsupported {
        "sm3" => "SM3 is not implemented",
    }
}

impl HashAlgorithm {
    /// True for MD5, which `check` warns about.
    pub fn is_weak(self) -> bool {
        self == HashAlgorithm::Md5
    }
}

keyword_enum! {
    /// How phase 1 authenticates the peers (`authentication-method`); pre-shared keys are the
    /// default.
    pub enum AuthenticationMethod ("authentication method") {
        /// Pre-shared key.
        PreShare = "pre-share",
        /// RSA signatures with certificates (`certificate …` in the `ike peer`).
        RsaSignature = "rsa-signature",
        /// ECDSA signatures with certificates (RFC 4754): a keysteward extension named like
        /// `rsa-signature`; the curve of the local key picks the method (P-256/384/521).
        EcdsaSignature = "ecdsa-signature",
    }
    aliases {
        "rsa-sig" => RsaSignature,
        "ecdsa-sig" => EcdsaSignature,
    }
    unsupported {
        "digital-envelope" => "digital-envelope authentication is not implemented",
        "rsassa-pss" => "RSASSA-PSS authentication is not implemented",
    }
}

keyword_enum! {
    /// A Diffie-Hellman group of an IKE proposal (`dh groupN`); group 14 is the default.
    pub enum DhGroup ("DH group") {
        /// MODP-768: weak.
        Group1 = "group1",
        /// MODP-1024: weak.
        Group2 = "group2",
        /// MODP-1536: weak.
        Group5 = "group5",
        /// MODP-2048.
        Group14 = "group14",
        /// MODP-3072.
        Group15 = "group15",
        /// MODP-4096.
        Group16 = "group16",
        /// ECP-256.
        Group19 = "group19",
        /// ECP-384.
        Group20 = "group20",
        /// ECP-521.
        Group21 = "group21",
        /// Curve25519 (RFC 8031; IKE group 31). A keysteward extension: not a USG keyword, named
        /// in the same pattern; strongSwan's default IKEv1 proposal uses it.
        Group31 = "group31",
    }
    aliases {}
    unsupported {}
}

impl DhGroup {
    /// True for MODP groups 1, 2 and 5, which `check` warns about.
    pub fn is_weak(self) -> bool {
        matches!(self, DhGroup::Group1 | DhGroup::Group2 | DhGroup::Group5)
    }

    /// The group number (1, 2, 5, 14, …), as `pfs dh-groupN` spells it.
    pub fn number(self) -> u8 {
        match self {
            DhGroup::Group1 => 1,
            DhGroup::Group2 => 2,
            DhGroup::Group5 => 5,
            DhGroup::Group14 => 14,
            DhGroup::Group15 => 15,
            DhGroup::Group16 => 16,
            DhGroup::Group19 => 19,
            DhGroup::Group20 => 20,
            DhGroup::Group21 => 21,
            DhGroup::Group31 => 31,
        }
    }
}

keyword_enum! {
    /// The PFS group of a policy (`pfs dh-groupN`): the same groups, spelled differently.
    pub enum PfsGroup ("PFS group") {
        /// MODP-768: weak.
        Group1 = "dh-group1",
        /// MODP-1024: weak.
        Group2 = "dh-group2",
        /// MODP-1536: weak.
        Group5 = "dh-group5",
        /// MODP-2048.
        Group14 = "dh-group14",
        /// MODP-3072.
        Group15 = "dh-group15",
        /// MODP-4096.
        Group16 = "dh-group16",
        /// ECP-256.
        Group19 = "dh-group19",
        /// ECP-384.
        Group20 = "dh-group20",
        /// ECP-521.
        Group21 = "dh-group21",
        /// Curve25519 (keysteward extension, see `DhGroup::Group31`).
        Group31 = "dh-group31",
    }
    aliases {}
    unsupported {}
}

impl PfsGroup {
    /// The Diffie-Hellman group this PFS keyword names.
    pub fn group(self) -> DhGroup {
        match self {
            PfsGroup::Group1 => DhGroup::Group1,
            PfsGroup::Group2 => DhGroup::Group2,
            PfsGroup::Group5 => DhGroup::Group5,
            PfsGroup::Group14 => DhGroup::Group14,
            PfsGroup::Group15 => DhGroup::Group15,
            PfsGroup::Group16 => DhGroup::Group16,
            PfsGroup::Group19 => DhGroup::Group19,
            PfsGroup::Group20 => DhGroup::Group20,
            PfsGroup::Group21 => DhGroup::Group21,
            PfsGroup::Group31 => DhGroup::Group31,
        }
    }
}

keyword_enum! {
    /// The IKEv1 phase-1 exchange of a peer (`exchange-mode`); main mode is the default.
    pub enum ExchangeMode ("exchange mode") {
        /// Main mode (identity protection).
        Main = "main",
        /// Aggressive mode: identities in clear, PSK open to offline guessing.
        Aggressive = "aggressive",
        /// USG-E `auto`: main when initiating, either when responding.
        Auto = "auto",
    }
    aliases {}
    unsupported {}
}

keyword_enum! {
    /// The type of an IKE identity (`local-id-type`, `remote-id-type`).
    pub enum IdType ("ID type") {
        /// An IPv4 address (the default local type).
        Ip = "ip",
        /// A fully-qualified domain name (`ike local-name` or `local-id`).
        Fqdn = "fqdn",
        /// user@fqdn.
        UserFqdn = "user-fqdn",
        /// An X.500 distinguished name (certificates).
        Dn = "dn",
        /// An opaque key ID.
        KeyId = "key-id",
        /// Any type (remote side only).
        Any = "any",
    }
    aliases {
        "name" => Fqdn,
    }
    unsupported {}
}

keyword_enum! {
    /// When dead peer detection sends its probes (`dpd type`).
    pub enum DpdType ("DPD type") {
        /// Probe every idle-time seconds.
        Periodic = "periodic",
        /// Probe only when traffic is sent and nothing came back.
        OnDemand = "on-demand",
    }
    aliases {}
    unsupported {}
}

keyword_enum! {
    /// The payload order of DPD messages (`dpd msg`); it must match at both ends.
    pub enum DpdMessageOrder ("DPD message order") {
        /// HASH, then NOTIFY (Huawei's recommendation).
        SeqHashNotify = "seq-hash-notify",
        /// NOTIFY, then HASH.
        SeqNotifyHash = "seq-notify-hash",
    }
    aliases {}
    unsupported {}
}

keyword_enum! {
    /// The IPsec protocols of an IPsec proposal (`transform`); ESP is the default.
    pub enum Transform ("transform") {
        /// ESP only.
        Esp = "esp",
        /// AH only.
        Ah = "ah",
        /// ESP inside, AH outside.
        AhEsp = "ah-esp",
    }
    aliases {}
    unsupported {}
}

keyword_enum! {
    /// The IPsec encapsulation (`encapsulation-mode`); tunnel is the default.
    pub enum EncapsulationMode ("encapsulation mode") {
        /// Tunnel mode: a new outer IP header.
        Tunnel = "tunnel",
        /// Transport mode.
        Transport = "transport",
        /// USG-E `auto`: tunnel when initiating, either when responding.
        Auto = "auto",
    }
    aliases {}
    unsupported {}
}

keyword_enum! {
    /// When a policy's SAs are negotiated (`sa trigger-mode`): on the first packet (default)
    /// or as soon as the policy is applied.
    pub enum TriggerMode ("trigger mode") {
        /// On the first packet that matches the ACL.
        TrafficBased = "traffic-based",
        /// Immediately.
        Auto = "auto",
    }
    aliases {}
    unsupported {}
}
