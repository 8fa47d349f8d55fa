//! The parts of an IKE SA that no exchange owns: what a handler is given ([`context`]), the
//! retransmission flight ([`flight`]) and the phase-1 key material ([`keys`]). Only module
//! declarations live here, so the children import each other, never this file.

pub(crate) mod context;
pub(crate) mod core;
pub(crate) mod flight;
pub(crate) mod keys;
pub(crate) mod lifetimes;
pub(crate) mod seen;
