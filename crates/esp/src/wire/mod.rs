//! The packet formats, as smoltcp-style checked views: [`esp`] (RFC 4303 §2) and [`ah`]
//! (RFC 4302 §2, with the outer IPv4 header AH authenticates). Formats only: the SAs in
//! [`crate::sa`] decide what the fields mean for a packet.

pub mod ah;
pub mod esp;
