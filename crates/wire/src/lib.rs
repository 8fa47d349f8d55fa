//! The packet formats of the data plane, as smoltcp-style checked views: [`esp`] (RFC 4303
//! §2) and [`ah`] (RFC 4302 §2, with the outer IPv4 header AH authenticates); and [`mtu`],
//! path-MTU handling for tunnel mode. Formats only: the SAs of the `esp` crate decide what
//! the fields mean for a packet. The `esp` crate re-exports them as `esp::wire` and `esp::mtu`.
#![forbid(unsafe_code)]

pub mod ah;
pub mod esp;
pub mod mtu;
