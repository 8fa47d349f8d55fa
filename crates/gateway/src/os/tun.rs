//! The TUN device the protected traffic is routed into.

use std::sync::Arc;

use tracing::warn;

use super::OsError;
use netlink::Netlink;

/// The TUN device's MTU: 1500 minus room for the outer IPv4 header, UDP encapsulation and the
/// largest ESP overhead, so inside hosts rarely need fragmentation or ICMP from us.
pub const TUN_MTU: u16 = 1400;

/// Creates the TUN device `name`, up, with [`TUN_MTU`] and no address (routes point at it);
/// link state, MTU and `accept_local` are set through rtnetlink, not ioctls or `/proc/sys`.
/// It asks for the kernel's TCP segmentation offloads (`IFF_VNET_HDR`, TSO): one read then
/// returns a whole TCP burst, which the data path's fast path splits into MTU-sized
/// packets, and one write takes coalesced segments back. A kernel that refuses offloads gets
/// a plain device; the fast path reads one packet per read then.
pub fn open_tun(name: &str) -> Result<Arc<tun_rs::SyncDevice>, OsError> {
    let build = |offload: bool| {
        tun_rs::DeviceBuilder::new().name(name).offload(offload).inherit_enable_state().build_sync()
    };
    let device = match build(true) {
        Ok(device) => device,
        Err(e) => {
            warn!("TUN device {name} without offloads ({e}): one packet per read");
            build(false).map_err(|source| OsError::CreateTun { name: name.to_owned(), source })?
        }
    };
    device
        .set_nonblocking(true)
        .map_err(|source| OsError::TunNonBlocking { name: name.to_owned(), source })?;
    let link = |action: String, source| OsError::Netlink { action, source };
    let mut netlink = Netlink::open().map_err(|e| link("open rtnetlink".into(), e))?;
    let index = netlink.link_index(name).map_err(|e| link(format!("find device {name}"), e))?;
    netlink
        .set_link_up(index, u32::from(TUN_MTU))
        .map_err(|e| link(format!("set device {name} up with mtu {TUN_MTU}"), e))?;
    // The data plane's ICMP "fragmentation needed" comes from our public address (as a
    // router's would); without accept_local the kernel drops a packet arriving on the TUN
    // with a source address of its own as a martian. Set through IFLA_AF_SPEC, so the
    // daemon needs no write access to /proc/sys.
    if let Err(e) = netlink.set_accept_local(index) {
        warn!("cannot set accept_local on {name}: {e}; ICMP fragmentation-needed from the data plane will be dropped");
    }
    Ok(Arc::new(device))
}

/// Writes one packet (an ICMP error the data plane built) to the TUN outside the fast path's
/// batches: rare, so it pays for its own headroom buffer and GRO table.
pub fn write_one(tun: &tun_rs::SyncDevice, packet: &[u8]) {
    let mut buffer = vec![0u8; tun_rs::VIRTIO_NET_HDR_LEN];
    buffer.extend_from_slice(packet);
    let mut gro = tun_rs::GROTable::default();
    if let Err(e) = tun.send_multiple(&mut gro, &mut [buffer], tun_rs::VIRTIO_NET_HDR_LEN) {
        warn!("TUN write: {e}");
    }
}
