//! Vendor ID payloads of phase 1 (RFC 2408 §3.16): what an IKEv1 endpoint announces and what
//! it recognises in the peer's. The well-known values are in [`crate::vendor`]; this module
//! turns them into capabilities, and is the engine's (`keysteward-ike`) only source of them.
//!
//! We announce dead peer detection (RFC 3706 §4) always, because we always answer R-U-THERE,
//! and NAT traversal (RFC 3947 §3.1, with the VIDs of draft-ietf-ipsec-nat-t-ike-02, -02\n and
//! -03 that older peers still look for) when `nat traversal` is on, and IKE fragmentation
//! (the engine's `fragmentation` module) when the engine's `Limits::fragmentation` is on: a responder answers it
//! only when the initiator announced it. Unknown VIDs are ignored.
//!
//! Main mode sends these in MM1/MM2; aggressive mode reuses [`our_vendor_ids`] for AM1 and
//! [`responder_vendor_ids`] for AM2, and [`PeerCapabilities::recognise`] for the peer's.

use crate::{vendor, Payload};

/// The IKE fragmentation Vendor ID we send: MD5("FRAGMENTATION") followed by the capability bytes `80000000`,
/// as strongSwan and Cisco send it.
pub const FRAGMENTATION_VID: [u8; 20] = {
    let mut vid = [0u8; 20];
    let mut i = 0;
    while i < 16 {
        vid[i] = vendor::FRAGMENTATION[i];
        i += 1;
    }
    vid[16] = 0x80;
    vid
};

/// The NAT-T dialect both sides speak, in order of preference (the derived order: later is
/// better). The dialect decides payload numbers (NAT-D 20 / 130, NAT-OA 21 / 131) and the
/// UDP-encapsulated modes (3, 4 / 61443, 61444).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NatTVersion {
    /// draft-ietf-ipsec-nat-t-ike-02.
    Draft02,
    /// draft-ietf-ipsec-nat-t-ike-02 with the trailing newline some implementations hash.
    Draft02N,
    /// draft-ietf-ipsec-nat-t-ike-03.
    Draft03,
    /// RFC 3947.
    Rfc3947,
}

impl NatTVersion {
    /// The Vendor ID that announces this dialect.
    pub fn vendor_id(self) -> &'static [u8] {
        match self {
            Self::Draft02 => &vendor::NAT_T_DRAFT_02,
            Self::Draft02N => &vendor::NAT_T_DRAFT_02_N,
            Self::Draft03 => &vendor::NAT_T_DRAFT_03,
            Self::Rfc3947 => &vendor::NAT_T_RFC3947,
        }
    }

    /// True for the drafts, which use the private payload numbers and encapsulation modes.
    pub fn is_draft(self) -> bool {
        self != Self::Rfc3947
    }

    fn from_vendor_id(id: &[u8]) -> Option<Self> {
        [Self::Rfc3947, Self::Draft03, Self::Draft02N, Self::Draft02]
            .into_iter()
            .find(|v| v.vendor_id() == id)
    }
}

/// What a peer announced in its phase-1 Vendor IDs, as far as we care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerCapabilities {
    /// RFC 3706 DPD: the peer answers R-U-THERE.
    pub dpd: bool,
    /// The best NAT-T dialect the peer announced.
    pub nat_t: Option<NatTVersion>,
    /// The peer reassembles IKE fragments (FRAGMENTATION Vendor ID).
    pub fragmentation: bool,
}

impl PeerCapabilities {
    /// Reads the Vendor ID payloads among `payloads`; any other payload and unknown VIDs are
    /// ignored.
    pub fn recognise(payloads: &[Payload<'_>]) -> Self {
        let mut caps = Self::default();
        for payload in payloads {
            let Payload::VendorId(id) = payload else { continue };
            if *id == vendor::DPD {
                caps.dpd = true;
            } else if vendor::is_fragmentation(id) {
                caps.fragmentation = true;
            } else if let Some(version) = NatTVersion::from_vendor_id(id) {
                caps.nat_t = caps.nat_t.max(Some(version));
            }
        }
        caps
    }
}

/// The Vendor IDs an initiator sends in MM1 / AM1: DPD, and when `nat_traversal` is on every
/// NAT-T dialect we speak (RFC first, as strongSwan orders them).
pub fn our_vendor_ids(nat_traversal: bool, fragmentation: bool) -> Vec<Payload<'static>> {
    let mut ids = vec![Payload::VendorId(&vendor::DPD)];
    if fragmentation {
        ids.push(Payload::VendorId(&FRAGMENTATION_VID));
    }
    if nat_traversal {
        for version in
            [NatTVersion::Rfc3947, NatTVersion::Draft03, NatTVersion::Draft02N, NatTVersion::Draft02]
        {
            ids.push(Payload::VendorId(version.vendor_id()));
        }
    }
    ids
}

/// The Vendor IDs a responder sends in MM2 / AM2: DPD, and the one NAT-T dialect it chose
/// from the initiator's (`nat_t`), so that both sides know which one is in force.
pub fn responder_vendor_ids(nat_t: Option<NatTVersion>, fragmentation: bool) -> Vec<Payload<'static>> {
    let mut ids = vec![Payload::VendorId(&vendor::DPD)];
    if fragmentation {
        ids.push(Payload::VendorId(&FRAGMENTATION_VID));
    }
    if let Some(version) = nat_t {
        ids.push(Payload::VendorId(version.vendor_id()));
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_ours_and_ignores_unknown() {
        let mut payloads = our_vendor_ids(true, false);
        payloads.push(Payload::VendorId(&vendor::XAUTH));
        payloads.push(Payload::VendorId(&[1, 2, 3]));
        payloads.push(Payload::Nonce(&vendor::DPD));
        let caps = PeerCapabilities::recognise(&payloads);
        assert_eq!(
            caps,
            PeerCapabilities { dpd: true, nat_t: Some(NatTVersion::Rfc3947), fragmentation: false }
        );
        let draft_only =
            [Payload::VendorId(&vendor::NAT_T_DRAFT_02), Payload::VendorId(&vendor::NAT_T_DRAFT_03)];
        assert_eq!(PeerCapabilities::recognise(&draft_only).nat_t, Some(NatTVersion::Draft03));
        assert_eq!(PeerCapabilities::recognise(&our_vendor_ids(false, false)).nat_t, None);
    }

    #[test]
    fn fragmentation_is_announced_only_when_on() {
        let announces = |ids: Vec<Payload<'static>>| PeerCapabilities::recognise(&ids).fragmentation;
        assert!(announces(our_vendor_ids(true, true)));
        assert!(!announces(our_vendor_ids(true, false)));
        assert!(announces(responder_vendor_ids(Some(NatTVersion::Draft02), true)));
        assert!(!announces(responder_vendor_ids(None, false)));
        // Windows sends the 16-byte form without capability bytes.
        assert!(announces(vec![Payload::VendorId(&vendor::FRAGMENTATION)]));
    }
}
