//! Well-known Vendor ID payload values (RFC 2408 §3.16): capability announcements that decide
//! whether NAT-T (RFC 3947 §3.1 and drafts), DPD (RFC 3706 §4), XAUTH, Cisco Unity and IKE
//! fragmentation are used. Values are the MD5 hashes (sometimes truncated or extended) that
//! the implementations send; strongSwan `isakmp_vendor.c` lists the same ones.

/// NAT-T, RFC 3947: MD5("RFC 3947").
pub const NAT_T_RFC3947: [u8; 16] = hex16(*b"4a131c81070358455c5728f20e95452f");
/// NAT-T, draft-ietf-ipsec-nat-t-ike-02 with the trailing newline ("02\n").
pub const NAT_T_DRAFT_02_N: [u8; 16] = hex16(*b"90cb80913ebb696e086381b5ec427b1f");
/// NAT-T, draft-ietf-ipsec-nat-t-ike-02.
pub const NAT_T_DRAFT_02: [u8; 16] = hex16(*b"cd60464335df21f87cfdb2fc68b6a448");
/// NAT-T, draft-ietf-ipsec-nat-t-ike-03.
pub const NAT_T_DRAFT_03: [u8; 16] = hex16(*b"7d9419a65310ca6f2c179d9215529d56");
/// Dead peer detection, RFC 3706 §4 (version 1.0).
pub const DPD: [u8; 16] = hex16(*b"afcad71368a1f1c96b8696fc77570100");
/// XAUTH (draft-ietf-ipsec-isakmp-xauth-06), 8 bytes.
pub const XAUTH: [u8; 8] = [0x09, 0x00, 0x26, 0x89, 0xdf, 0xd6, 0xb7, 0x12];
/// Cisco Unity.
pub const CISCO_UNITY: [u8; 16] = hex16(*b"12f5f28c457168a9702d9fe274cc0100");
/// IKE fragmentation: MD5("FRAGMENTATION"), followed on the wire by 4 capability bytes
/// (`80000000`) — except from Windows, which sends the 16 bytes alone.
pub const FRAGMENTATION: [u8; 16] = hex16(*b"4048b7d56ebce88525e7de7f00d6c2d3");

/// Whether a Vendor ID announces IKE fragmentation, with or without capability bytes.
pub fn is_fragmentation(vendor_id: &[u8]) -> bool {
    vendor_id.starts_with(&FRAGMENTATION) && matches!(vendor_id.len(), 16 | 20)
}

const fn hex16(text: [u8; 32]) -> [u8; 16] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not lowercase hex"),
        }
    }
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = (nibble(text[2 * i]) << 4) | nibble(text[2 * i + 1]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_constants() {
        assert_eq!(hex::encode(NAT_T_RFC3947), "4a131c81070358455c5728f20e95452f");
        assert!(is_fragmentation(&hex::decode("4048b7d56ebce88525e7de7f00d6c2d380000000").unwrap()));
        assert!(is_fragmentation(&FRAGMENTATION));
        assert!(!is_fragmentation(&DPD));
    }
}
