//! Path MTU handling for tunnel mode (RFC 4301 §8): no ESP packet may leave bigger than the
//! path allows, so an inner IPv4 packet that would not fit after encapsulation is either
//! refused with an ICMP "fragmentation needed" (RFC 792 type 3 code 4, with the next-hop
//! MTU of RFC 1191 §4) when its DF bit is set, or fragmented before encryption (RFC 791
//! §3.2, "fragment before encryption": each fragment becomes its own ESP packet, so the
//! peer never reassembles ciphertext).
//!
//! Fragmentation is the slow path and allocates one buffer per fragment. Non-first fragments
//! get a plain 20-byte header: IP options, which inside traffic practically never carries,
//! stay in the first fragment only.

use std::net::Ipv4Addr;

/// Bytes of IPv4 header (without options).
pub const IPV4_HEADER_LEN: usize = 20;
/// Bytes of UDP header, added when ESP is UDP-encapsulated (RFC 3948).
pub const UDP_HEADER_LEN: usize = 8;
/// Length of the ICMP "fragmentation needed" error the data plane builds, at most: IPv4 header, ICMP header, the
/// offending header with options (60) and 8 bytes of its payload.
pub const MAX_ICMP_LEN: usize = IPV4_HEADER_LEN + 8 + 60 + 8;

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn set_header_checksum(header: &mut [u8]) {
    header[10..12].fill(0);
    let sum = checksum(header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// Writes a 20-byte IPv4 header without options, TTL 64 (RFC 1700's default for packets we
/// originate), DF as asked, and its checksum: for the packets the data plane originates.
pub fn write_header(
    header: &mut [u8],
    total_len: usize,
    identification: u16,
    dont_fragment: bool,
    protocol: u8,
    source: Ipv4Addr,
    destination: Ipv4Addr,
) {
    header[0] = 0x45;
    header[1] = 0;
    header[2..4].copy_from_slice(&(total_len as u16).to_be_bytes());
    header[4..6].copy_from_slice(&identification.to_be_bytes());
    header[6..8].copy_from_slice(&if dont_fragment { 0x4000u16 } else { 0 }.to_be_bytes());
    header[8] = 64;
    header[9] = protocol;
    header[12..16].copy_from_slice(&source.octets());
    header[16..20].copy_from_slice(&destination.octets());
    set_header_checksum(&mut header[..IPV4_HEADER_LEN]);
}

/// True when the packet's Don't Fragment bit is set.
pub fn dont_fragment(packet: &[u8]) -> bool {
    packet.get(6).is_some_and(|flags| flags & 0x40 != 0)
}

/// Writes an ICMP "fragmentation needed and DF set" for `original` (a valid IPv4 packet) into
/// `out`, from `source` back to the original sender, announcing `mtu`; returns its length, or
/// `None` if `out` is shorter than [`MAX_ICMP_LEN`] or `original` is not a packet to answer.
pub fn frag_needed(original: &[u8], source: Ipv4Addr, mtu: u16, out: &mut [u8]) -> Option<usize> {
    let header_len = usize::from(original.first()? & 0x0f) * 4;
    let quoted = original.get(..(header_len + 8).min(original.len()))?;
    // Never answer an ICMP error with one (RFC 1122 §3.2.2): type 3, 4, 5, 11, 12.
    if original.get(9) == Some(&1) && matches!(original.get(header_len), Some(3 | 4 | 5 | 11 | 12)) {
        return None;
    }
    let total = IPV4_HEADER_LEN + 8 + quoted.len();
    let destination = <[u8; 4]>::try_from(original.get(12..16)?).ok()?.into();
    let out = out.get_mut(..total)?;
    out.fill(0);
    write_header(out, total, 0, false, 1, source, destination);
    let icmp = &mut out[IPV4_HEADER_LEN..];
    icmp[0] = 3; // destination unreachable
    icmp[1] = 4; // fragmentation needed and DF set
    icmp[6..8].copy_from_slice(&mtu.to_be_bytes());
    icmp[8..].copy_from_slice(quoted);
    let sum = checksum(icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    Some(total)
}

/// Splits a valid IPv4 packet (header length `header_len`, exactly its total length) into
/// fragments of at most `max_len` bytes each, calling `emit` with each in order. Returns
/// false (emitting nothing) when `max_len` leaves no room for 8 bytes of data.
pub fn fragment(packet: &[u8], header_len: usize, max_len: usize, mut emit: impl FnMut(&[u8])) -> bool {
    let first_room = max_len.saturating_sub(header_len) / 8 * 8;
    let other_room = max_len.saturating_sub(IPV4_HEADER_LEN) / 8 * 8;
    if first_room == 0 || other_room == 0 || packet.len() < header_len {
        return false;
    }
    let flags_offset = u16::from_be_bytes([packet[6], packet[7]]);
    let original_offset = usize::from(flags_offset & 0x1fff) * 8;
    let original_more = flags_offset & 0x2000 != 0;
    let data = &packet[header_len..];
    let mut buf = vec![0u8; max_len.min(usize::from(u16::MAX))];
    let mut start = 0;
    while start < data.len() {
        let first = start == 0;
        let room = if first { first_room } else { other_room };
        let end = (start + room).min(data.len());
        let last = end == data.len();
        let hlen = if first { header_len } else { IPV4_HEADER_LEN };
        let total = hlen + end - start;
        buf[..IPV4_HEADER_LEN].copy_from_slice(&packet[..IPV4_HEADER_LEN]);
        if first {
            buf[IPV4_HEADER_LEN..header_len].copy_from_slice(&packet[IPV4_HEADER_LEN..header_len]);
        } else {
            buf[0] = 0x45;
        }
        buf[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let offset = ((original_offset + start) / 8) as u16;
        let more = !last || original_more;
        let flags = (flags_offset & 0x4000) | if more { 0x2000 } else { 0 };
        buf[6..8].copy_from_slice(&(flags | offset).to_be_bytes());
        set_header_checksum(&mut buf[..hlen]);
        buf[hlen..total].copy_from_slice(&data[start..end]);
        emit(&buf[..total]);
        start = end;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use spd::Flow;

    #[test]
    fn checksums() {
        // RFC 1071 §3 example.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
        // A header with its checksum in place sums to zero.
        let mut header = ipv4_packet(1, [10, 1, 1, 2], [10, 2, 2, 2], &[])[..20].to_vec();
        set_header_checksum(&mut header);
        assert_eq!(checksum(&header), 0);
        assert_eq!(checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn frag_needed_quotes_the_header() {
        let payload: Vec<u8> = (0..100).collect();
        let mut original = ipv4_packet(17, [10, 1, 1, 2], [10, 2, 2, 2], &payload);
        original[6] = 0x40;
        let mut out = [0u8; MAX_ICMP_LEN];
        let len = frag_needed(&original, Ipv4Addr::new(10, 1, 1, 1), 1400, &mut out).unwrap();
        let icmp = &out[..len];
        assert_eq!(len, 20 + 8 + 28);
        let (flow, ..) = Flow::parse_ipv4(icmp).unwrap();
        assert_eq!(
            (flow.protocol, flow.source, flow.destination),
            (1, Ipv4Addr::new(10, 1, 1, 1), Ipv4Addr::new(10, 1, 1, 2))
        );
        assert_eq!(checksum(&icmp[..20]), 0);
        assert_eq!(checksum(&icmp[20..]), 0);
        assert_eq!(&icmp[20..22], &[3, 4]);
        assert_eq!(u16::from_be_bytes([icmp[26], icmp[27]]), 1400);
        assert_eq!(&icmp[28..], &original[..28]);
        assert_eq!(frag_needed(&original, Ipv4Addr::LOCALHOST, 1400, &mut [0u8; 40]), None);
        // No ICMP error about an ICMP error.
        let error = ipv4_packet(1, [10, 1, 1, 2], [10, 2, 2, 2], &[3, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(frag_needed(&error, Ipv4Addr::LOCALHOST, 1400, &mut out), None);
    }

    #[test]
    fn fragments_reassemble() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let packet = ipv4_packet(17, [10, 1, 1, 2], [10, 2, 2, 2], &payload);
        let mut fragments = Vec::new();
        assert!(fragment(&packet, 20, 1000, |f| fragments.push(f.to_vec())));
        assert_eq!(fragments.len(), 4);
        let mut reassembled = vec![0u8; payload.len()];
        for (i, f) in fragments.iter().enumerate() {
            assert!(f.len() <= 1000);
            assert_eq!(checksum(&f[..20]), 0);
            let (flow, header_len, total) = Flow::parse_ipv4(f).unwrap();
            assert_eq!((header_len, total), (20, f.len()));
            assert_eq!(flow.destination, Ipv4Addr::new(10, 2, 2, 2));
            let flags_offset = u16::from_be_bytes([f[6], f[7]]);
            assert_eq!(flags_offset & 0x2000 != 0, i < 3, "MF on all but the last");
            let offset = usize::from(flags_offset & 0x1fff) * 8;
            reassembled[offset..offset + f.len() - 20].copy_from_slice(&f[20..]);
            if i < 3 {
                assert_eq!((f.len() - 20) % 8, 0);
            }
        }
        assert_eq!(reassembled, payload);
        assert!(!fragment(&packet, 20, 27, |_| {}));
    }

    #[test]
    fn fragmenting_a_fragment_keeps_its_offset_and_more_flag() {
        let mut packet = ipv4_packet(17, [10, 1, 1, 2], [10, 2, 2, 2], &[7u8; 64]);
        packet[6] = 0x20; // MF
        packet[7] = 10; // offset 80
        let mut fragments = Vec::new();
        assert!(fragment(&packet, 20, 52, |f| fragments.push(f.to_vec())));
        let fields: Vec<u16> = fragments.iter().map(|f| u16::from_be_bytes([f[6], f[7]])).collect();
        assert_eq!(fields, [0x2000 | 10, 0x2000 | 14]);
    }

    /// An IPv4 packet (no options, DF set, TTL 64) around `payload`.
    fn ipv4_packet(protocol: u8, source: [u8; 4], destination: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let total = 20 + payload.len();
        let mut p = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, protocol, 0, 0];
        p.extend_from_slice(&source);
        p.extend_from_slice(&destination);
        p.extend_from_slice(payload);
        p
    }
}
