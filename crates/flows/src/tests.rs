use super::*;

fn ipv4(protocol: u8, source: [u8; 4], destination: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, protocol, 0, 0];
    p.extend_from_slice(&source);
    p.extend_from_slice(&destination);
    p.extend_from_slice(l4);
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p
}

fn echo(kind: u8, source: [u8; 4], destination: [u8; 4], identifier: u16) -> Vec<u8> {
    let id = identifier.to_be_bytes();
    ipv4(1, source, destination, &[kind, 0, 0, 0, id[0], id[1], 0, 1, 0xaa, 0xbb])
}

fn udp(source: [u8; 4], sport: u16, destination: [u8; 4], dport: u16) -> Vec<u8> {
    let (s, d) = (sport.to_be_bytes(), dport.to_be_bytes());
    ipv4(17, source, destination, &[s[0], s[1], d[0], d[1], 0, 12, 0, 0, 1, 2, 3, 4])
}

fn published(table: &mut FlowTable, at: Instant) -> Vec<FlowRow> {
    let out = Published::default();
    table.tick(at, &out);
    out.rows(at)
}

#[test]
fn an_echo_and_its_reply_are_one_flow_in_usg_form() {
    let mut table = FlowTable::default();
    let t0 = Instant::now();
    table.tick(t0, &Published::default());
    let request = echo(8, [172, 16, 2, 2], [192, 168, 0, 2], 7264);
    table.observe(&request);
    table.observe(&echo(0, [192, 168, 0, 2], [172, 16, 2, 2], 7264));
    table.observe(&request);
    let rows = published(&mut table, t0 + Duration::from_secs(1));
    assert_eq!(rows.len(), 1);
    let row = rows[0];
    assert_eq!(
        (row.protocol_name(), row.source.to_string(), row.destination.to_string()),
        ("icmp", "172.16.2.2:7264".into(), "192.168.0.2:2048".into())
    );
    assert_eq!(row.forward, Counters { packets: 2, bytes: 2 * request.len() as u64 });
    assert_eq!(row.reverse.packets, 1);
}

#[test]
fn a_reply_seen_first_still_shows_the_requester_as_source() {
    let mut table = FlowTable::default();
    table.observe(&echo(0, [10, 2, 2, 2], [10, 1, 1, 2], 9));
    let row = published(&mut table, Instant::now() + Duration::from_secs(1))[0];
    assert_eq!(
        (row.source.to_string(), row.destination.to_string()),
        ("10.1.1.2:9".into(), "10.2.2.2:2048".into())
    );
    assert_eq!((row.forward.packets, row.reverse.packets), (0, 1));
}

#[test]
fn udp_both_ways_is_one_flow_opened_by_the_first_sender() {
    let mut table = FlowTable::default();
    table.observe(&udp([10, 2, 2, 2], 5353, [10, 1, 1, 2], 53));
    table.observe(&udp([10, 1, 1, 2], 53, [10, 2, 2, 2], 5353));
    table.observe(&udp([10, 1, 1, 2], 53, [10, 2, 2, 2], 5354));
    let rows = published(&mut table, Instant::now() + Duration::from_secs(1));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].source.to_string(), "10.2.2.2:5353");
    assert_eq!(rows[0].destination.to_string(), "10.1.1.2:53");
    assert_eq!((rows[0].forward.packets, rows[0].reverse.packets), (1, 1));
    assert_eq!(rows[1].source.to_string(), "10.1.1.2:53", "the newer flow second");
}

#[test]
fn the_table_stays_within_its_capacity_and_counts_evictions() {
    let mut table = FlowTable::with_capacity(64);
    let t0 = Instant::now();
    table.tick(t0, &Published::default());
    for port in 0..1000u16 {
        table.observe(&udp([10, 1, 1, 2], 1000 + port, [10, 2, 2, 2], 53));
    }
    let rows = published(&mut table, t0 + Duration::from_secs(1));
    assert!(rows.len() <= 64 && rows.len() >= 32, "{}", rows.len());
    assert!(table.evicted() >= 1000 - 64, "{}", table.evicted());
    // The newest flows are there.
    assert!(rows.iter().any(|r| r.source.port() == 1999));
}

#[test]
fn flows_age_out_as_on_the_device() {
    let mut table = FlowTable::default();
    let t0 = Instant::now();
    let out = Published::default();
    table.tick(t0, &out);
    table.observe(&echo(8, [10, 1, 1, 2], [10, 2, 2, 2], 1));
    table.observe(&udp([10, 1, 1, 2], 4000, [10, 2, 2, 2], 53));
    table.tick(t0 + Duration::from_secs(1), &out);
    assert_eq!(out.rows(t0 + Duration::from_secs(1)).len(), 2);
    // 21 s later the ICMP flow is gone (20 s), the UDP flow stays (120 s), even with no new
    // snapshot: the display ages what was published.
    let later = t0 + Duration::from_secs(22);
    let rows = out.rows(later);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].protocol_name(), "udp");
    assert!(out.rows(t0 + Duration::from_secs(122)).is_empty());
    // An aged slot is taken again by a new flow with fresh counters.
    table.tick(later, &out);
    table.observe(&echo(8, [10, 1, 1, 2], [10, 2, 2, 2], 1));
    table.tick(later + Duration::from_secs(1), &out);
    let icmp: Vec<_> =
        out.rows(later + Duration::from_secs(1)).into_iter().filter(|r| r.protocol == 1).collect();
    assert_eq!(icmp[0].forward.packets, 1);
}

#[test]
fn publishing_is_at_most_once_a_second_and_only_after_a_change() {
    let mut table = FlowTable::default();
    let out = Published::default();
    let t0 = Instant::now();
    table.tick(t0, &out);
    assert!(out.rows(t0).is_empty(), "nothing changed, nothing published");
    table.observe(&udp([10, 1, 1, 2], 1, [10, 2, 2, 2], 2));
    table.tick(t0 + Duration::from_millis(500), &out);
    assert_eq!(out.rows(t0 + Duration::from_secs(1))[0].forward.packets, 1);
    table.observe(&udp([10, 1, 1, 2], 1, [10, 2, 2, 2], 2));
    table.tick(t0 + Duration::from_millis(800), &out);
    assert_eq!(out.rows(t0 + Duration::from_secs(1))[0].forward.packets, 1, "the same second");
    table.tick(t0 + Duration::from_millis(1000), &out);
    assert_eq!(out.rows(t0 + Duration::from_secs(1))[0].forward.packets, 2);
}

#[test]
fn other_packets_are_ignored() {
    let mut table = FlowTable::default();
    let mut fragment = udp([10, 1, 1, 2], 1, [10, 2, 2, 2], 2);
    fragment[7] = 10; // a later fragment: no ports
    table.observe(&fragment);
    table.observe(&[0x60; 40]); // IPv6
    table.observe(&[0x45, 0, 0]); // truncated
    assert!(published(&mut table, Instant::now() + Duration::from_secs(1)).is_empty());
}

#[test]
fn memory_is_fixed_by_the_capacity() {
    assert_eq!(std::mem::size_of::<Slot>(), 72);
    let table = FlowTable::default();
    assert_eq!(table.slots.len(), DEFAULT_CAPACITY);
}
