//! The keyword-valued settings of the language: algorithms, groups, modes and ID types.
//!
//! Canonical keywords are the USG-V5 ones (reference `vrp-cli.md` §2.2–§2.6, §6
//! "Recommendation"); the aliases of §6 are accepted on input and normalised on output;
//! values that VRP knows and keysteward does not implement are rejected with a reason.
//!
//! The algorithm settings (ciphers, hashes, integrity algorithms, DH groups) are the typed
//! ids of the `algorithm` crate's tables, whose rows hold their keywords and aliases: a new
//! row is a new keyword here, with no change to this crate. The other settings are enums of
//! the language, declared below with their keywords.

use std::fmt;

pub use ::algorithm::{DhGroup, EspCipher, HashAlgorithm, Integrity, Phase1Cipher};

/// A keyword-valued setting: its canonical keywords, its input aliases, and the VRP
/// keywords that are refused as unsupported.
pub trait Value: Sized + Copy + 'static {
    /// What the value is, for error messages ("encryption algorithm").
    const WHAT: &'static str;
    /// Every value the language can name, in the order of the reference's tables.
    fn all() -> Vec<Self>;
    /// Input-only spellings and the value they stand for.
    fn aliases() -> Vec<(&'static str, Self)>;
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
            fn all() -> Vec<Self> {
                Self::ALL.to_vec()
            }
            fn aliases() -> Vec<(&'static str, Self)> {
                vec![ $( ($alias, $name::$avariant), )* ]
            }
            const UNSUPPORTED: &'static [(&'static str, &'static str)] = &[ $( ($ukw, $reason), )* ];
            fn keyword(self) -> &'static str {
                match self { $( $name::$variant => $kw, )+ }
            }
        }

        impl $name {
            /// Every value, in the order of the reference's tables.
            pub const ALL: &'static [Self] = &[ $( $name::$variant, )+ ];
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.keyword())
            }
        }
    };
}

/// Implements [`Value`] for a family of the `algorithm` crate from its table: the rows with a
/// VRP keyword are the values, in table order, and the rows' aliases are the aliases.
macro_rules! table_value {
    ($ty:ty, $table:expr, $what:literal, $fallback:ident, unsupported { $( $ukw:literal => $reason:literal, )* }) => {
        impl Value for $ty {
            const WHAT: &'static str = $what;
            fn all() -> Vec<Self> {
                $table.iter().filter(|r| r.vrp_keyword.is_some()).map(|r| r.id).collect()
            }
            fn aliases() -> Vec<(&'static str, Self)> {
                $table.iter().flat_map(|r| r.vrp_aliases.iter().map(move |a| (*a, r.id))).collect()
            }
            const UNSUPPORTED: &'static [(&'static str, &'static str)] = &[ $( ($ukw, $reason), )* ];
            fn keyword(self) -> &'static str {
                // A row without a keyword cannot come out of the parser; a model built in code
                // with one renders another of the row's names, which the parser refuses.
                self.vrp_keyword().unwrap_or(self.row().$fallback)
            }
        }
    };
}

/// The cipher keywords VRP has and keysteward does not implement (IKE and ESP alike).
macro_rules! unsupported_ciphers {
    ($ty:ty, $table:expr) => {
        table_value!($ty, $table, "encryption algorithm", log_name, unsupported {
            "sm4" => "SM4 is not implemented",
            "aes-gcm-128" => "write aes-128-gcm-128 or aes-256-gcm-128 (the VRP8 form is not supported)",
            "aes-192-gcm-128" => "AES-GCM with a 192-bit key is not implemented",
            "aes-128-gmac" => "AES-GMAC is not implemented",
            "aes-192-gmac" => "AES-GMAC is not implemented",
            "aes-256-gmac" => "AES-GMAC is not implemented",
        });
    };
}

// The IKE proposal's `encryption-algorithm` (CBC only) and the IPsec proposal's `esp
// encryption-algorithm` (AES-256 is the default of both; AES-GCM is ESP only).
unsupported_ciphers!(Phase1Cipher, ::algorithm::PHASE1_CIPHERS);
unsupported_ciphers!(EspCipher, ::algorithm::ESP_CIPHERS);

// The IKE proposal's `authentication-algorithm` (the IKEv1 hash and PRF) and the HMAC of
// ESP/AH (`esp authentication-algorithm`, `ah authentication-algorithm`); SHA2-256 is the
// default of all three.
table_value!(HashAlgorithm, ::algorithm::HASH_ALGORITHMS, "authentication algorithm", display, unsupported {
    "sm3" => "SM3 is not implemented",
});
table_value!(Integrity, ::algorithm::INTEGRITY_ALGORITHMS, "authentication algorithm", log_name, unsupported {
    "sm3" => "SM3 is not implemented",
});

// The Diffie-Hellman group of an IKE proposal (`dh groupN`); group 14 is the default.
table_value!(DhGroup, ::algorithm::DH_GROUPS, "DH group", display, unsupported {});

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

/// The PFS group of a policy (`pfs dh-groupN`): a Diffie-Hellman group, spelled with the
/// row's PFS keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PfsGroup(pub DhGroup);

impl PfsGroup {
    /// The Diffie-Hellman group this PFS keyword names.
    pub fn group(self) -> DhGroup {
        self.0
    }
}

impl Value for PfsGroup {
    const WHAT: &'static str = "PFS group";
    fn all() -> Vec<Self> {
        ::algorithm::DH_GROUPS
            .iter()
            .filter(|r| r.vrp_pfs_keyword.is_some())
            .map(|r| PfsGroup(r.id))
            .collect()
    }
    fn aliases() -> Vec<(&'static str, Self)> {
        Vec::new()
    }
    const UNSUPPORTED: &'static [(&'static str, &'static str)] = &[];
    fn keyword(self) -> &'static str {
        // As for the tables' own values: a group without a PFS keyword cannot be parsed.
        self.0.row().vrp_pfs_keyword.unwrap_or(self.0.row().display)
    }
}

impl fmt::Display for PfsGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
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
