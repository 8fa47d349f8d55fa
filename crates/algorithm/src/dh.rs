//! Diffie-Hellman groups: the Group Description attribute of phase 1 (RFC 2409 App. A) and
//! of quick-mode PFS (RFC 2407 §4.5), numbered by the IANA IKE group registry (RFC 2409 §6,
//! RFC 3526, RFC 5903, RFC 8031).

use core::fmt;

/// How a group computes, which decides the KE payload's encoding in `crypto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhGroupKind {
    /// Finite-field (MODP) group, generator 2.
    Modp,
    /// NIST prime curve (RFC 5903): the KE body is `x || y`.
    Ecp,
    /// Curve25519 (RFC 8031).
    Curve25519,
}

/// One Diffie-Hellman group and every fact about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhGroupRow {
    /// The typed id `crypto` implements.
    pub id: DhGroup,
    /// The group number (Group Description attribute value).
    pub group: u16,
    /// MODP, ECP or Curve25519.
    pub kind: DhGroupKind,
    /// Length of the KE payload body: the prime's length (MODP), twice the coordinate length
    /// (ECP), or 32 (Curve25519).
    pub public_len: usize,
    /// Length of the shared secret `g^xy`: the prime's length (MODP), the coordinate length
    /// (ECP), or 32 (Curve25519).
    pub shared_len: usize,
    /// Weak: `vrp check` warns.
    pub weak: bool,
    /// The VRP keyword of an IKE proposal (`dh group14`), `None` where VRP has none.
    pub vrp_keyword: Option<&'static str>,
    /// Further spellings VRP accepts on input.
    pub vrp_aliases: &'static [&'static str],
    /// The VRP keyword of a policy's PFS group (`pfs dh-group14`).
    pub vrp_pfs_keyword: Option<&'static str>,
    /// The name the displays print (`MODP-2048`).
    pub display: &'static str,
    /// strongSwan's proposal keyword.
    pub strongswan: &'static str,
}

crate::algorithm_table! {
    /// A Diffie-Hellman group as IKEv1 negotiates it (the Oakley group number of RFC 2409
    /// Appendix A, "Group Description", and the IANA IKE group registry).
    pub enum DhGroup;
    /// The groups keysteward implements, in group-number order.
    pub const DH_GROUPS: [DhGroupRow] = [
        /// Group 1, 768-bit MODP (RFC 2409 §6.1). Broken; kept only for ancient peers.
        Modp768 {
            group: 1, kind: DhGroupKind::Modp, public_len: 96, shared_len: 96, weak: true,
            vrp_keyword: Some("group1"), vrp_aliases: &[], vrp_pfs_keyword: Some("dh-group1"),
            display: "MODP-768", strongswan: "modp768",
        },
        /// Group 2, 1024-bit MODP (RFC 2409 §6.2). Weak.
        Modp1024 {
            group: 2, kind: DhGroupKind::Modp, public_len: 128, shared_len: 128, weak: true,
            vrp_keyword: Some("group2"), vrp_aliases: &[], vrp_pfs_keyword: Some("dh-group2"),
            display: "MODP-1024", strongswan: "modp1024",
        },
        /// Group 5, 1536-bit MODP (RFC 3526 §2).
        Modp1536 {
            group: 5, kind: DhGroupKind::Modp, public_len: 192, shared_len: 192, weak: true,
            vrp_keyword: Some("group5"), vrp_aliases: &[], vrp_pfs_keyword: Some("dh-group5"),
            display: "MODP-1536", strongswan: "modp1536",
        },
        /// Group 14, 2048-bit MODP (RFC 3526 §3).
        Modp2048 {
            group: 14, kind: DhGroupKind::Modp, public_len: 256, shared_len: 256, weak: false,
            vrp_keyword: Some("group14"), vrp_aliases: &[], vrp_pfs_keyword: Some("dh-group14"),
            display: "MODP-2048", strongswan: "modp2048",
        },
        /// Group 15, 3072-bit MODP (RFC 3526 §4).
        Modp3072 {
            group: 15, kind: DhGroupKind::Modp, public_len: 384, shared_len: 384, weak: false,
            vrp_keyword: Some("group15"), vrp_aliases: &[], vrp_pfs_keyword: Some("dh-group15"),
            display: "MODP-3072", strongswan: "modp3072",
        },
        /// Group 16, 4096-bit MODP (RFC 3526 §5).
        Modp4096 {
            group: 16, kind: DhGroupKind::Modp, public_len: 512, shared_len: 512, weak: false,
            vrp_keyword: Some("group16"), vrp_aliases: &[], vrp_pfs_keyword: Some("dh-group16"),
            display: "MODP-4096", strongswan: "modp4096",
        },
        /// Group 17, 6144-bit MODP (RFC 3526 §6). No VRP keyword: peers may offer it.
        Modp6144 {
            group: 17, kind: DhGroupKind::Modp, public_len: 768, shared_len: 768, weak: false,
            vrp_keyword: None, vrp_aliases: &[], vrp_pfs_keyword: None,
            display: "MODP-6144", strongswan: "modp6144",
        },
        /// Group 18, 8192-bit MODP (RFC 3526 §7). No VRP keyword: peers may offer it.
        Modp8192 {
            group: 18, kind: DhGroupKind::Modp, public_len: 1024, shared_len: 1024, weak: false,
            vrp_keyword: None, vrp_aliases: &[], vrp_pfs_keyword: None,
            display: "MODP-8192", strongswan: "modp8192",
        },
        /// Group 19, NIST P-256 (RFC 5903 §3.1).
        Ecp256 {
            group: 19, kind: DhGroupKind::Ecp, public_len: 64, shared_len: 32, weak: false,
            vrp_keyword: Some("group19"), vrp_aliases: &[], vrp_pfs_keyword: Some("dh-group19"),
            display: "ECP-256", strongswan: "ecp256",
        },
        /// Group 20, NIST P-384 (RFC 5903 §3.2).
        Ecp384 {
            group: 20, kind: DhGroupKind::Ecp, public_len: 96, shared_len: 48, weak: false,
            vrp_keyword: Some("group20"), vrp_aliases: &[], vrp_pfs_keyword: Some("dh-group20"),
            display: "ECP-384", strongswan: "ecp384",
        },
        /// Group 21, NIST P-521 (RFC 5903 §3.3).
        Ecp521 {
            group: 21, kind: DhGroupKind::Ecp, public_len: 132, shared_len: 66, weak: false,
            vrp_keyword: Some("group21"), vrp_aliases: &[], vrp_pfs_keyword: Some("dh-group21"),
            display: "ECP-521", strongswan: "ecp521",
        },
        /// Group 31, Curve25519 (RFC 8031). Its VRP keywords are a keysteward extension named
        /// in the USG pattern; strongSwan's default IKEv1 proposal uses it.
        Curve25519 {
            group: 31, kind: DhGroupKind::Curve25519, public_len: 32, shared_len: 32, weak: false,
            vrp_keyword: Some("group31"), vrp_aliases: &[], vrp_pfs_keyword: Some("dh-group31"),
            display: "CURVE25519", strongswan: "curve25519",
        },
    ];
}

impl DhGroup {
    /// The group for a group number; `None` for unknown, unsupported and private-use
    /// numbers, which must be refused before any DH work.
    pub fn from_id(id: u16) -> Option<Self> {
        DH_GROUPS.iter().find(|r| r.group == id).map(|r| r.id)
    }

    /// The group number carried in the Group Description attribute.
    pub const fn id(self) -> u16 {
        self.row().group
    }

    /// The group whose PFS keyword (`dh-group14`) is `keyword`.
    pub fn from_vrp_pfs_keyword(keyword: &str) -> Option<Self> {
        DH_GROUPS.iter().find(|r| r.vrp_pfs_keyword == Some(keyword)).map(|r| r.id)
    }

    /// Length of the KE payload body.
    pub const fn public_len(self) -> usize {
        self.row().public_len
    }

    /// Length of the shared secret.
    pub const fn shared_len(self) -> usize {
        self.row().shared_len
    }

    /// True for the MODP (finite-field) groups.
    pub const fn is_modp(self) -> bool {
        matches!(self.row().kind, DhGroupKind::Modp)
    }
}

impl fmt::Display for DhGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group{}", self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_unique;

    #[test]
    fn every_row_round_trips_and_no_two_rows_collide() {
        for (index, row) in DH_GROUPS.iter().enumerate() {
            assert_eq!(row.id as usize, index);
            assert_eq!(row.id.row(), row);
            assert_eq!(DhGroup::ALL[index], row.id);
            assert_eq!(DhGroup::from_id(row.group), Some(row.id));
            if let Some(keyword) = row.vrp_keyword {
                assert_eq!(DhGroup::from_vrp_keyword(keyword), Some(row.id));
                assert_eq!(keyword, row.id.to_string(), "the IKE keyword is the group number");
            }
            if let Some(keyword) = row.vrp_pfs_keyword {
                assert_eq!(DhGroup::from_vrp_pfs_keyword(keyword), Some(row.id));
            }
            assert_eq!(row.vrp_keyword.is_some(), row.vrp_pfs_keyword.is_some(), "{}", row.display);
            match row.kind {
                DhGroupKind::Modp | DhGroupKind::Curve25519 => assert_eq!(row.public_len, row.shared_len),
                DhGroupKind::Ecp => assert_eq!(row.public_len, 2 * row.shared_len),
            }
        }
        assert_unique("group number", DH_GROUPS.iter().map(|r| r.group));
        assert_unique("VRP keyword", DH_GROUPS.iter().filter_map(|r| r.vrp_keyword));
        assert_unique("PFS keyword", DH_GROUPS.iter().filter_map(|r| r.vrp_pfs_keyword));
        assert_unique("display name", DH_GROUPS.iter().map(|r| r.display));
        assert_unique("strongSwan keyword", DH_GROUPS.iter().map(|r| r.strongswan));
        assert_eq!(DhGroup::from_id(22), None);
    }
}
