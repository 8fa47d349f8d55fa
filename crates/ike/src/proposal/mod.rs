//! Building and choosing SA proposals: phase 1 (RFC 2409 §5 and Appendix A) and quick mode
//! (RFC 2407 §4.5, RFC 2409 §5.5).
//!
//! Phase 1: one ISAKMP proposal with one transform per configured `ike proposal`, in priority
//! order. The responder takes the first offered transform equal to one of its proposals in
//! encryption (and key length), hash, authentication method and DH group; the lifetime is not
//! compared, both sides use the shorter (the USG and ASA rule).
//!
//! Quick mode: one ESP proposal per configured `ipsec proposal`, each with one transform. The
//! responder takes the first one equal to one of its own, with the same PFS group.
//!
//! `phase1` and `ipsec` hold the two; this file only declares them and names what the rest of
//! the crate uses.

mod ipsec;
mod phase1;

pub(crate) use self::ipsec::{choose_ipsec, is_udp_encapsulated, quick_mode_offer, IpsecChoice, OurSpis};
pub use self::ipsec::{IpsecMismatch, IpsecOffer, IpsecSuite};
pub(crate) use self::phase1::{accept_phase1_reply, choose_phase1, phase1_offer};
pub use self::phase1::{Phase1Mismatch, Phase1Offer, SuiteName};
