//! The reassembler against fragments cut here: whole in any order, overlaps and repeats drop
//! the datagram, and every bound holds.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

/// A UDP datagram (IPv4, protocol 17) of `len` bytes of data, identification `id`, header
/// with its checksum.
fn datagram(id: u16, len: usize) -> Vec<u8> {
    let mut packet = vec![0u8; IPV4_HEADER_LEN + len];
    packet[0] = 0x45;
    packet[2..4].copy_from_slice(&((IPV4_HEADER_LEN + len) as u16).to_be_bytes());
    packet[4..6].copy_from_slice(&id.to_be_bytes());
    packet[8] = 64;
    packet[9] = 17;
    packet[12..16].copy_from_slice(&[10, 1, 1, 2]);
    packet[16..20].copy_from_slice(&[10, 2, 2, 2]);
    for (i, byte) in packet[IPV4_HEADER_LEN..].iter_mut().enumerate() {
        *byte = (i * 7 + usize::from(id)) as u8;
    }
    let sum = checksum(&packet[..IPV4_HEADER_LEN]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    packet
}

/// The fragment of `packet` holding data `[start, end)` (`start` a multiple of 8).
fn piece(packet: &[u8], start: usize, end: usize) -> Vec<u8> {
    let data = &packet[IPV4_HEADER_LEN..];
    let mut fragment = packet[..IPV4_HEADER_LEN].to_vec();
    fragment.extend_from_slice(&data[start..end]);
    let more = if end < data.len() { MORE_FRAGMENTS } else { 0 };
    fragment[2..4].copy_from_slice(&((IPV4_HEADER_LEN + end - start) as u16).to_be_bytes());
    fragment[6..8].copy_from_slice(&(more | (start / 8) as u16).to_be_bytes());
    fragment[10..12].fill(0);
    let sum = checksum(&fragment[..IPV4_HEADER_LEN]);
    fragment[10..12].copy_from_slice(&sum.to_be_bytes());
    fragment
}

/// `packet` cut into fragments of at most `size` bytes of data (a multiple of 8).
fn cut(packet: &[u8], size: usize) -> Vec<Vec<u8>> {
    let len = packet.len() - IPV4_HEADER_LEN;
    (0..len).step_by(size).map(|start| piece(packet, start, (start + size).min(len))).collect()
}

fn whole(offer: Offer<'_>) -> Option<Vec<u8>> {
    match offer {
        Offer::Whole(packet) => Some(packet.to_vec()),
        _ => None,
    }
}

#[test]
fn fragments_in_order_make_the_datagram() {
    let packet = datagram(7, 3000);
    assert!(!is_fragment(&packet));
    let fragments = cut(&packet, 1480);
    assert_eq!(fragments.len(), 3);
    assert!(fragments.iter().all(|f| is_fragment(f)));
    let (mut table, now) = (Reassembler::default(), Instant::now());
    assert_eq!(table.offer(&fragments[0], now), Offer::Held);
    assert_eq!(table.offer(&fragments[1], now), Offer::Held);
    assert_eq!(whole(table.offer(&fragments[2], now)), Some(packet));
    assert_eq!((table.in_progress(), table.bytes(), table.counters().reassembled), (0, 0, 1));
}

#[test]
fn a_repeated_fragment_drops_the_datagram_and_its_later_fragments() {
    let packet = datagram(8, 2000);
    let fragments = cut(&packet, 800);
    let (mut table, now) = (Reassembler::default(), Instant::now());
    assert_eq!(table.offer(&fragments[0], now), Offer::Held);
    // An exact repeat is a duplicated fragment (RFC 791): let go. A repeat with other bytes
    // contradicts what is held: the datagram goes.
    assert_eq!(table.offer(&fragments[0], now), Offer::Held);
    let mut contradicting = fragments[0].clone();
    contradicting[IPV4_HEADER_LEN] ^= 0xff;
    assert_eq!(table.offer(&contradicting, now), Offer::Dropped(Dropped::Overlap));
    assert_eq!(table.offer(&fragments[1], now), Offer::Dropped(Dropped::DatagramDropped));
    assert_eq!(table.offer(&fragments[2], now), Offer::Dropped(Dropped::DatagramDropped));
    assert_eq!(table.bytes(), 0);
    let counters = table.counters();
    assert_eq!((counters.overlap, counters.after_drop, counters.reassembled), (1, 2, 0));
    // After the timeout the identification is free again.
    let later = now + Limits::default().timeout;
    for fragment in &fragments[..2] {
        assert_eq!(table.offer(fragment, later), Offer::Held);
    }
    assert_eq!(whole(table.offer(&fragments[2], later)), Some(packet));
}

#[test]
fn overlapping_data_and_a_second_end_drop_the_datagram() {
    let packet = datagram(9, 64);
    let (mut table, now) = (Reassembler::default(), Instant::now());
    assert_eq!(table.offer(&piece(&packet, 0, 32), now), Offer::Held);
    assert_eq!(table.offer(&piece(&packet, 24, 40), now), Offer::Dropped(Dropped::Overlap));
    let packet = datagram(10, 64);
    assert_eq!(table.offer(&piece(&packet, 32, 64), now), Offer::Held);
    let mut short_end = piece(&packet, 16, 24);
    short_end[6] &= !0x20; // a last fragment ending before data already held
    assert_eq!(table.offer(&short_end, now), Offer::Dropped(Dropped::Overlap));
    assert_eq!(table.counters().overlap, 2);
}

#[test]
fn malformed_fragments_are_dropped_without_touching_their_datagram() {
    let packet = datagram(11, 100);
    let (mut table, now) = (Reassembler::default(), Instant::now());
    assert_eq!(table.offer(&piece(&packet, 0, 48), now), Offer::Held);
    let mut odd = piece(&packet, 48, 60);
    odd[6] |= 0x20; // More Fragments with 12 bytes: not a multiple of 8
    assert_eq!(table.offer(&odd, now), Offer::Dropped(Dropped::Malformed));
    assert_eq!(table.offer(&packet[..10], now), Offer::Dropped(Dropped::Malformed));
    assert_eq!(whole(table.offer(&piece(&packet, 48, 100), now)), Some(packet));
    assert_eq!(table.counters().malformed, 2);
}

#[test]
fn fragments_that_never_complete_time_out() {
    let packet = datagram(12, 100);
    let (mut table, now) = (Reassembler::default(), Instant::now());
    assert_eq!(table.offer(&piece(&packet, 0, 48), now), Offer::Held);
    assert_eq!(table.bytes(), 68);
    let late = now + Limits::default().timeout;
    assert_eq!(table.offer(&piece(&packet, 48, 100), late), Offer::Held, "starts a new datagram");
    assert_eq!(table.counters().timed_out, 1);
    // The gap before offset 48 is held (and counted) too.
    assert_eq!((table.in_progress(), table.bytes()), (1, 100));
}

#[test]
fn the_table_and_byte_bounds_hold() {
    let limits = Limits { max_datagrams: 2, max_bytes: 200, ..Limits::default() };
    let (mut table, now) = (Reassembler::new(limits), Instant::now());
    for id in 0..2 {
        assert_eq!(table.offer(&piece(&datagram(id, 100), 0, 48), now), Offer::Held);
    }
    let third = datagram(2, 100);
    assert_eq!(table.offer(&piece(&third, 0, 48), now), Offer::Dropped(Dropped::TableFull { max: 2 }));
    // 2 × 68 bytes held, and 52 more complete datagram 0 (188 ≤ 200).
    assert_eq!(whole(table.offer(&piece(&datagram(0, 100), 48, 100), now)).map(|p| p.len()), Some(120));
    // Datagram 1 holds 68; 152 more would make 220.
    let big = datagram(1, 300);
    assert_eq!(table.offer(&piece(&big, 48, 200), now), Offer::Dropped(Dropped::BytesFull { max: 200 }));
    assert_eq!(table.offer(&piece(&big, 200, 300), now), Offer::Dropped(Dropped::DatagramDropped));
    assert_eq!(table.bytes(), 0);
    let too_long = Limits { max_datagram_len: 100, ..Limits::default() };
    let mut table = Reassembler::new(too_long);
    let packet = datagram(3, 100);
    assert_eq!(table.offer(&piece(&packet, 48, 100), now), Offer::Dropped(Dropped::TooLong { max: 100 }));
    assert_eq!(table.counters().too_long, 1);
}

#[test]
fn exact_duplicates_complete_the_datagram() {
    let packet = datagram(30, 3000);
    let fragments = cut(&packet, 1480);
    let (mut table, now) = (Reassembler::default(), Instant::now());
    for fragment in [&fragments[1], &fragments[0], &fragments[1], &fragments[0]] {
        assert_eq!(table.offer(fragment, now), Offer::Held);
    }
    assert_eq!(whole(table.offer(&fragments[2], now)), Some(packet));
    assert_eq!(table.counters().dropped(), 0);
}

#[test]
fn a_longer_first_header_counts_toward_the_length_bound() {
    // Later fragments reach 65,515 bytes of data with a 20-byte header (65,535 in all); a
    // first fragment with 40 bytes of options would make the datagram 65,555 bytes long.
    let mut packet = datagram(31, 65_515);
    let (mut table, now) = (Reassembler::default(), Instant::now());
    assert_eq!(table.offer(&piece(&packet, 65_000, 65_515), now), Offer::Held);
    packet[0] = 0x4f; // a 60-byte header
    let mut first = packet[..60].to_vec();
    first.extend_from_slice(&packet[60..60 + 1480]);
    first[2..4].copy_from_slice(&((60 + 1480) as u16).to_be_bytes());
    first[6..8].copy_from_slice(&MORE_FRAGMENTS.to_be_bytes());
    first[10..12].fill(0);
    let sum = checksum(&first[..60]);
    first[10..12].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(table.offer(&first, now), Offer::Dropped(Dropped::TooLong { max: 65_535 }));
}

#[test]
fn too_many_fragments_drop_the_datagram() {
    let limits = Limits { max_fragments: 4, ..Limits::default() };
    let (mut table, now) = (Reassembler::new(limits), Instant::now());
    let packet = datagram(32, 80);
    let fragments = cut(&packet, 8);
    for fragment in &fragments[..4] {
        assert_eq!(table.offer(fragment, now), Offer::Held);
    }
    assert_eq!(table.offer(&fragments[4], now), Offer::Dropped(Dropped::TooManyFragments { max: 4 }));
    assert_eq!((table.counters().too_many_fragments, table.bytes()), (1, 0));
}

#[test]
fn bad_fragments_cannot_fill_the_table() {
    // A bad fragment that starts a datagram leaves nothing behind; datagrams dropped after
    // holding data give their place to new ones once the table is full.
    let limits = Limits { max_datagrams: 2, max_datagram_len: 100, ..Limits::default() };
    let (mut table, now) = (Reassembler::new(limits), Instant::now());
    for id in 0..10 {
        let packet = datagram(id, 200);
        assert_eq!(table.offer(&piece(&packet, 96, 200), now), Offer::Dropped(Dropped::TooLong { max: 100 }));
    }
    assert_eq!(table.in_progress(), 0);
    for id in 10..12 {
        let packet = datagram(id, 64);
        assert_eq!(table.offer(&piece(&packet, 0, 32), now), Offer::Held);
        assert_eq!(table.offer(&piece(&packet, 24, 40), now), Offer::Dropped(Dropped::Overlap));
    }
    let packet = datagram(20, 64);
    assert_eq!(table.offer(&piece(&packet, 0, 32), now), Offer::Held, "a dropped datagram makes room");
    assert_eq!(whole(table.offer(&piece(&packet, 32, 64), now)), Some(packet));
}

#[test]
fn datagrams_are_told_apart_by_identification() {
    let (a, b) = (datagram(20, 200), datagram(21, 200));
    let (mut table, now) = (Reassembler::default(), Instant::now());
    for (x, y) in cut(&a, 64).iter().zip(cut(&b, 64).iter()).take(3) {
        assert_eq!(table.offer(x, now), Offer::Held);
        assert_eq!(table.offer(y, now), Offer::Held);
    }
    assert_eq!(whole(table.offer(&cut(&b, 64)[3], now)), Some(b));
    assert_eq!(whole(table.offer(&cut(&a, 64)[3], now)), Some(a));
}

/// Room for the hundreds of 8-byte fragments the properties cut a datagram into.
const MANY_FRAGMENTS: Limits = Limits {
    max_datagrams: 64,
    max_bytes: 1 << 20,
    timeout: Duration::from_secs(30),
    max_datagram_len: 65_535,
    max_fragments: 8192,
};

proptest! {
    /// Fragments of several datagrams, interleaved in any order, make each datagram exactly
    /// once, and nothing is held afterwards.
    #[test]
    fn any_order_reassembles(
        lens in proptest::collection::vec(9usize..4000, 1..5),
        size in 1usize..200,
        seed in any::<u64>(),
    ) {
        let size = size * 8;
        prop_assume!(lens.iter().all(|&len| len > size), "one fragment would be no fragment");
        let packets: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &len)| datagram(i as u16, len)).collect();
        let mut fragments: Vec<Vec<u8>> = packets.iter().flat_map(|p| cut(p, size)).collect();
        shuffle(&mut fragments, seed);
        let (mut table, now) = (Reassembler::new(MANY_FRAGMENTS), Instant::now());
        let mut made = Vec::new();
        for fragment in &fragments {
            match table.offer(fragment, now) {
                Offer::Whole(packet) => made.push(packet.to_vec()),
                Offer::Held => {}
                Offer::Dropped(reason) => prop_assert!(false, "dropped: {reason}"),
            }
        }
        made.sort();
        let mut expected = packets.clone();
        expected.sort();
        prop_assert_eq!(made, expected);
        prop_assert_eq!((table.in_progress(), table.bytes()), (0, 0));
    }

    /// One extra fragment that overlaps the others without lining up with their edges, then
    /// the datagram's fragments in any order: the datagram never comes out, and its bytes
    /// are freed. (An extra that lines up with a fragment's edges can stand in for it and
    /// complete the datagram before the overlap arrives; exact repeats are tested above.)
    #[test]
    fn an_overlap_anywhere_drops_the_datagram(
        len in 64usize..3000,
        size in 1usize..100,
        start in 0usize..3000,
        extra in 1usize..400,
        seed in any::<u64>(),
    ) {
        prop_assume!(len > size * 8, "one fragment would be no fragment");
        let packet = datagram(1, len);
        let mut fragments = cut(&packet, size * 8);
        let start = (start % len) / 8 * 8;
        let end = (start + extra).min(len);
        let end = if end < len { start + ((end - start) / 8).max(1) * 8 } else { end };
        let end = end.min(len);
        let size = size * 8;
        prop_assume!(start % size != 0 || (end % size != 0 && end != len), "lines up with the fragments");
        shuffle(&mut fragments, seed);
        fragments.insert(0, piece(&packet, start, end));
        let (mut table, now) = (Reassembler::new(MANY_FRAGMENTS), Instant::now());
        for fragment in &fragments {
            prop_assert!(!matches!(table.offer(fragment, now), Offer::Whole(_)));
        }
        prop_assert_eq!(table.bytes(), 0);
        prop_assert_eq!(table.counters().overlap, 1);
    }

    /// Whatever arrives (random bytes, random fragments), the bounds hold.
    #[test]
    fn bounds_hold_under_any_input(
        offers in proptest::collection::vec((0u16..40, 0usize..1000, 1usize..60, any::<bool>(), 0u64..100), 1..300),
    ) {
        let limits = Limits { max_datagrams: 8, max_bytes: 4000, timeout: Duration::from_secs(30), max_datagram_len: 65_535, max_fragments: 64 };
        let (mut table, start) = (Reassembler::new(limits), Instant::now());
        for (id, offset, len, more, at) in offers {
            let packet = datagram(id, 9000);
            let mut fragment = piece(&packet, offset * 8, offset * 8 + len * 8);
            if more {
                fragment[6] |= 0x20;
            } else {
                fragment[6] &= !0x20;
            }
            let _ = table.offer(&fragment, start + Duration::from_secs(at));
            prop_assert!(table.in_progress() <= 8);
            prop_assert!(table.bytes() <= 4000);
        }
    }
}

/// A deterministic shuffle (xorshift) of `items`.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}
