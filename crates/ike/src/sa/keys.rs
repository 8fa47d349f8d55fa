//! The phase-1 key material of an IKE SA (RFC 2409 §5, Appendix B): SKEYID and its three
//! keys, Ka and the IV chain, derived the same way by main and aggressive mode.

use crypto::key_schedule::{AuthHashInput, Phase1CipherKey, Phase1IvChain, Skeyid, SkeyidA, SkeyidD};
use crypto::HashAlgorithm;
use isakmp::Cookie;

use crate::config::IkeProposal;

/// Length of the nonces we send (strongSwan sends 32 bytes; RFC 2409 asks for 8 to 256).
pub(crate) const NONCE_LEN: usize = 32;

/// Keys and IVs of an IKE SA once its Diffie-Hellman exchange is done.
pub(crate) struct Phase1Material {
    pub(crate) hash: HashAlgorithm,
    pub(crate) skeyid: Skeyid,
    pub(crate) skeyid_d: SkeyidD,
    pub(crate) skeyid_a: SkeyidA,
    pub(crate) key: Phase1CipherKey,
    pub(crate) iv: Phase1IvChain,
    pub(crate) g_xi: Vec<u8>,
    pub(crate) g_xr: Vec<u8>,
}

impl Phase1Material {
    /// The heap bytes held, boxed as the states keep it: itself, both public values and the
    /// five secrets (SKEYID, its three keys, Ka: at most 64 bytes each).
    pub(crate) fn held_bytes(&self) -> usize {
        use crate::sa::flight::heap_bytes;
        let public = heap_bytes(self.g_xi.capacity()) + heap_bytes(self.g_xr.capacity());
        heap_bytes(std::mem::size_of::<Self>()) + public + 5 * heap_bytes(64)
    }
}

/// The public values of a phase-1 exchange that the key schedule mixes in, named as in
/// RFC 2409 §5 (nonce and KE payload bodies, cookies).
pub(crate) struct Phase1Exchange<'a> {
    pub(crate) cookie_i: Cookie,
    pub(crate) cookie_r: Cookie,
    pub(crate) ni: &'a [u8],
    pub(crate) nr: &'a [u8],
    pub(crate) g_xi: &'a [u8],
    pub(crate) g_xr: &'a [u8],
}

/// SKEYID for a pre-shared key, its three keys, Ka and the phase-1 IV chain at
/// `hash(g^xi | g^xr)` (RFC 2409 §5, Appendix B). A free function so the known-answer tests
/// feed strongSwan's values through exactly the derivation the exchanges use.
pub(crate) fn phase1_material(
    suite: &IkeProposal,
    psk: &[u8],
    exchange: &Phase1Exchange<'_>,
    g_xy: &[u8],
) -> Phase1Material {
    let skeyid = Skeyid::for_pre_shared_key(suite.hash, psk, exchange.ni, exchange.nr);
    phase1_material_from_skeyid(suite, skeyid, exchange, g_xy)
}

/// The phase-1 keys and IV chain from a SKEYID of either kind (pre-shared key or signatures).
pub(crate) fn phase1_material_from_skeyid(
    suite: &IkeProposal,
    skeyid: Skeyid,
    exchange: &Phase1Exchange<'_>,
    g_xy: &[u8],
) -> Phase1Material {
    let keys = skeyid.derive_phase1_keys(g_xy, &exchange.cookie_i.0, &exchange.cookie_r.0);
    let key = keys.skeyid_e.cipher_key(suite.encryption);
    Phase1Material {
        hash: suite.hash,
        iv: Phase1IvChain::new(suite.hash, suite.encryption, exchange.g_xi, exchange.g_xr),
        skeyid,
        skeyid_d: keys.skeyid_d,
        skeyid_a: keys.skeyid_a,
        key,
        g_xi: exchange.g_xi.to_vec(),
        g_xr: exchange.g_xr.to_vec(),
    }
}

/// What HASH_I and HASH_R cover besides the ID payload.
pub(crate) fn auth_input<'m>(
    material: &'m Phase1Material,
    cookie_i: Cookie,
    cookie_r: Cookie,
    sai_b: &'m [u8],
) -> AuthHashInput<'m> {
    AuthHashInput { g_xi: &material.g_xi, g_xr: &material.g_xr, cky_i: cookie_i.0, cky_r: cookie_r.0, sai_b }
}
