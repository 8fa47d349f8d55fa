//! The parts of an IKE SA that no exchange owns: the core itself ([`core`]: cookies,
//! addresses, peer, role, what the peer announced, NAT-T and DPD state), what a handler is
//! given ([`context`]), the retransmission flight ([`flight`]), the phase-1 key material
//! ([`keys`]), the named timers ([`timer`]), the lifetime state of its IPsec SAs
//! ([`lifetimes`]), the quick-mode and informational message IDs seen ([`seen`]) and the
//! unauthenticated messages it dropped ([`unauthenticated`]). Only module
//! declarations live here, so the children import each other, never this file.

pub(crate) mod context;
pub(crate) mod core;
pub(crate) mod flight;
pub(crate) mod keys;
pub(crate) mod lifetimes;
pub(crate) mod seen;
pub(crate) mod timer;
pub(crate) mod unauthenticated;
