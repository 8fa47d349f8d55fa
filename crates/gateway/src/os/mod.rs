//! Everything the daemon and its data path ask of the operating system, and nothing else:
//! the routes and policy rules that steer protected traffic into the TUN and keep it from
//! leaving in clear when the daemon is gone, the TUN device, its link state, MTU and IPv4
//! setting, the host's interface list (all through rtnetlink, the `netlink` crate: the daemon spawns
//! no program and writes nothing under `/proc/sys`), and the raw ESP and AH sockets and the
//! UDP sockets. No other module opens a device or talks to the kernel's routing; they call
//! these functions, so the OS can be swapped (a test double) in one place, the way boringtun
//! keeps its device apart from the protocol.
//!
//! Failures are [`OsError`]s naming the command, device, address or file involved, worded
//! for the operator who reads them in the log or on the console.

pub mod host;
pub mod routes;
pub mod sockets;
pub mod static_routes;
pub mod tun;

use std::net::SocketAddr;

/// What the operating system refused, with the object it refused it for.
#[derive(Debug, thiserror::Error)]
pub enum OsError {
    /// The kernel refused a routing request (rtnetlink), or could not be asked.
    #[error("cannot {action}: {source}")]
    Netlink {
        /// What was asked, in `ip`'s words (`add route 10.2.2.0/24 dev ks0 metric 0`).
        action: String,
        /// The kernel's refusal.
        source: std::io::Error,
    },
    /// The TUN device could not be created.
    #[error("cannot create TUN device {name}: {source}")]
    CreateTun {
        /// The device name.
        name: String,
        /// The kernel's refusal.
        source: std::io::Error,
    },
    /// The TUN device could not be switched to non-blocking reads.
    #[error("cannot make TUN device {name} non-blocking: {source}")]
    TunNonBlocking {
        /// The device name.
        name: String,
        /// The kernel's refusal.
        source: std::io::Error,
    },
    /// A raw socket (`ESP` or `AH`) could not be opened (usually: not root).
    #[error("cannot open a raw {protocol} socket: {source}")]
    OpenRaw {
        /// `ESP` or `AH`.
        protocol: &'static str,
        /// The kernel's refusal.
        source: std::io::Error,
    },
    /// A raw socket could not be bound to a local address.
    #[error("cannot bind the raw {protocol} socket to {address}: {source}")]
    BindRaw {
        /// `ESP` or `AH`.
        protocol: &'static str,
        /// The local address.
        address: std::net::Ipv4Addr,
        /// The kernel's refusal.
        source: std::io::Error,
    },
    /// `IP_HDRINCL` could not be set on the AH socket.
    #[error("cannot set IP_HDRINCL on the AH socket: {0}")]
    HeaderIncluded(#[source] std::io::Error),
    /// A UDP socket could not be bound (the address is not ours, or another daemon holds it).
    #[error("cannot bind UDP {local}: {source}")]
    BindUdp {
        /// The local address and port.
        local: SocketAddr,
        /// The kernel's refusal.
        source: std::io::Error,
    },
    /// A second handle of a UDP socket (for the data-plane thread) could not be made.
    #[error("cannot share UDP {local}: {source}")]
    ShareUdp {
        /// The local address and port.
        local: SocketAddr,
        /// The kernel's refusal.
        source: std::io::Error,
    },
    /// A bound UDP socket could not join the async runtime.
    #[error("UDP {local}: {source}")]
    RegisterUdp {
        /// The local address and port.
        local: SocketAddr,
        /// The runtime's refusal.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each failure names what it failed on, in words, without Rust's `Debug` text.
    #[test]
    fn errors_name_their_object_for_an_operator() {
        let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let local: SocketAddr = "192.0.2.1:4500".parse().unwrap();
        let cases = [
            (
                OsError::Netlink { action: "add route 10.2.2.0/24 dev ks0 metric 0".into(), source: io() },
                "add route 10.2.2.0/24 dev ks0",
            ),
            (OsError::CreateTun { name: "ks0".into(), source: io() }, "TUN device ks0"),
            (OsError::OpenRaw { protocol: "AH", source: io() }, "raw AH socket"),
            (
                OsError::BindRaw {
                    protocol: "ESP",
                    address: std::net::Ipv4Addr::new(192, 0, 2, 1),
                    source: io(),
                },
                "raw ESP socket to 192.0.2.1",
            ),
            (OsError::BindUdp { local, source: io() }, "UDP 192.0.2.1:4500"),
            (OsError::ShareUdp { local, source: io() }, "share UDP 192.0.2.1:4500"),
        ];
        for (error, object) in cases {
            let text = error.to_string();
            assert!(text.contains(object), "{text}");
            assert!(text.contains("permission denied"), "{text}");
            assert!(!text.contains("Os {") && !text.contains("kind:"), "Debug text: {text}");
        }
    }
}
