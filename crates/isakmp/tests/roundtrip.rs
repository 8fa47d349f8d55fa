//! Property tests: `parse(emit(m)) == m` over generated messages, and parsing random bytes and
//! mutated valid messages (bit flips, truncations, length field edits) never panics, and what
//! parses re-emits to something that parses to the same value.
//!
//! Generated values borrow leaked buffers (`Vec::leak`): a few kilobytes per case, in a test.

mod common;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::OnceLock;

use isakmp::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn bytes(max: usize) -> impl Strategy<Value = &'static [u8]> {
    vec(any::<u8>(), 0..=max).prop_map(|v| &*v.leak())
}

#[derive(Debug, Clone, Copy)]
enum Space {
    Ike,
    Ipsec,
    Other,
}

/// Class "B" attribute types, which must be sent in basic form (RFC 2409 App. A, RFC 2407 §4.5).
fn basic_only(space: Space, t: u16) -> bool {
    match space {
        Space::Ike => matches!(t, 1..=5 | 11 | 13..=15),
        Space::Ipsec => matches!(t, 1 | 3..=8 | 10 | 11),
        Space::Other => false,
    }
}

fn attribute(space: Space) -> impl Strategy<Value = Attribute<'static>> {
    let attribute_type = prop_oneof![0u16..20, 0u16..0x8000];
    let value = prop_oneof![
        any::<u16>().prop_map(AttributeValue::Basic),
        bytes(24).prop_map(|b| AttributeValue::Variable(Cow::Borrowed(b))),
        any::<u64>().prop_map(|v| AttributeValue::Variable(Cow::Owned(v.to_be_bytes().to_vec()))),
    ];
    (attribute_type, value, any::<u16>()).prop_map(move |(attribute_type, value, fallback)| {
        let value = match value {
            AttributeValue::Variable(_) if basic_only(space, attribute_type) => {
                AttributeValue::Basic(fallback)
            }
            v => v,
        };
        Attribute { attribute_type, value }
    })
}

fn transform(space: Space) -> impl Strategy<Value = Transform<'static>> {
    (any::<u8>(), any::<u8>(), vec(attribute(space), 0..6))
        .prop_map(|(number, transform_id, attributes)| Transform { number, transform_id, attributes })
}

fn proposal() -> impl Strategy<Value = Proposal<'static>> {
    (any::<u8>(), prop_oneof![1u8..=4, any::<u8>()], bytes(17), 256u32..).prop_flat_map(
        |(number, protocol, spi, ipsec_spi)| {
            let protocol = ProtocolId::from(protocol);
            // AH and ESP SPIs are 4 bytes and not reserved (RFC 2407 §4.4.1, RFC 4303 §2.1).
            let spi: &'static [u8] = if matches!(protocol, ProtocolId::Ah | ProtocolId::Esp) {
                ipsec_spi.to_be_bytes().to_vec().leak()
            } else {
                spi
            };
            let space = match protocol {
                ProtocolId::Isakmp => Space::Ike,
                ProtocolId::Ah | ProtocolId::Esp | ProtocolId::IpComp => Space::Ipsec,
                _ => Space::Other,
            };
            vec(transform(space), 0..4).prop_map(move |transforms| Proposal {
                number,
                protocol,
                spi,
                transforms,
            })
        },
    )
}

fn security_association() -> impl Strategy<Value = SecurityAssociation<'static>> {
    (any::<u32>(), vec(proposal(), 0..4))
        .prop_map(|(situation, proposals)| SecurityAssociation { situation: situation & !0x06, proposals })
}

fn identity() -> impl Strategy<Value = Identity<'static>> {
    prop_oneof![
        any::<std::net::Ipv4Addr>().prop_map(Identity::Ipv4Addr),
        any::<std::net::Ipv6Addr>().prop_map(Identity::Ipv6Addr),
        bytes(40).prop_map(Identity::Fqdn),
        bytes(40).prop_map(Identity::UserFqdn),
        bytes(40).prop_map(Identity::DerAsn1Dn),
        bytes(40).prop_map(Identity::DerAsn1Gn),
        bytes(40).prop_map(Identity::KeyId),
        (any::<std::net::Ipv4Addr>(), any::<std::net::Ipv4Addr>())
            .prop_map(|(address, mask)| Identity::Ipv4Subnet { address, mask }),
        (any::<std::net::Ipv4Addr>(), any::<std::net::Ipv4Addr>())
            .prop_map(|(start, end)| Identity::Ipv4Range { start, end }),
        (any::<std::net::Ipv6Addr>(), any::<std::net::Ipv6Addr>())
            .prop_map(|(address, mask)| Identity::Ipv6Subnet { address, mask }),
        (any::<std::net::Ipv6Addr>(), any::<std::net::Ipv6Addr>())
            .prop_map(|(start, end)| Identity::Ipv6Range { start, end }),
        (prop_oneof![Just(0u8), 12u8..=255], bytes(20))
            .prop_map(|(id_type, data)| Identity::Unknown { id_type, data }),
    ]
}

fn delete() -> impl Strategy<Value = Delete<'static>> {
    (any::<u32>(), any::<u8>(), 0u8..=16, 0usize..5).prop_flat_map(|(doi, protocol, size, count)| {
        // The SPIs of an ISAKMP SA are its 16 bytes of cookies, of an AH or ESP SA 4 bytes
        // (RFC 2408 §3.15); the parser refuses other sizes for those protocols.
        let spi_size = match protocol {
            1 => 16,
            2 | 3 => 4,
            _ => size,
        };
        let count = if spi_size == 0 { 0 } else { count };
        vec(vec(any::<u8>(), usize::from(spi_size)).prop_map(|v| &*v.leak()), count)
            .prop_map(move |spis| Delete { doi: doi.into(), protocol: protocol.into(), spi_size, spis })
    })
}

fn unknown_payload_type() -> impl Strategy<Value = PayloadType> {
    any::<u8>()
        .prop_map(PayloadType::from)
        .prop_filter("unknown types only", |t| matches!(t, PayloadType::Unknown(_)))
}

fn payload() -> impl Strategy<Value = Payload<'static>> {
    prop_oneof![
        security_association().prop_map(Payload::SecurityAssociation),
        bytes(64).prop_map(Payload::KeyExchange),
        (any::<u8>(), any::<u16>(), identity()).prop_map(|(protocol, port, identity)| {
            Payload::Identification(Identification { protocol, port, identity })
        }),
        (any::<u8>(), bytes(40))
            .prop_map(|(e, data)| Payload::Certificate(Certificate { encoding: e.into(), data })),
        (any::<u8>(), bytes(40)).prop_map(|(e, authority)| Payload::CertificateRequest(CertificateRequest {
            encoding: e.into(),
            authority
        })),
        bytes(32).prop_map(Payload::Hash),
        bytes(64).prop_map(Payload::Signature),
        // RFC 2409 §5: 8 to 256 bytes (shorter or longer ones are refused, see payload.rs).
        vec(any::<u8>(), 8..=256).prop_map(|v| Payload::Nonce(&*v.leak())),
        (any::<u32>(), any::<u8>(), bytes(17), any::<u16>(), bytes(12)).prop_map(
            |(doi, protocol, spi, notify_type, data)| {
                Payload::Notification(Notification {
                    doi: doi.into(),
                    protocol: protocol.into(),
                    spi,
                    notify_type: notify_type.into(),
                    data,
                })
            }
        ),
        delete().prop_map(Payload::Delete),
        bytes(20).prop_map(Payload::VendorId),
        (any::<u8>(), any::<u16>(), vec(attribute(Space::Other), 0..6)).prop_map(
            |(config_type, identifier, attributes)| {
                Payload::Attribute(ConfigAttributes {
                    config_type: config_type.into(),
                    identifier,
                    attributes,
                })
            }
        ),
        (any::<bool>(), bytes(32))
            .prop_map(|(draft, hash)| Payload::NatDiscovery(NatDiscovery { draft, hash })),
        (any::<bool>(), any::<IpAddr>())
            .prop_map(|(draft, address)| Payload::NatOriginalAddress(NatOriginalAddress { draft, address })),
        (any::<u16>(), any::<u8>(), any::<u8>(), bytes(40))
            .prop_map(|(id, number, flags, data)| Payload::Fragment(Fragment { id, number, flags, data })),
        (unknown_payload_type(), bytes(24))
            .prop_map(|(payload_type, body)| Payload::Unknown { payload_type, body }),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    // A zero initiator cookie is refused (it names no SA).
    let initiator = any::<[u8; 8]>().prop_filter("non-zero initiator cookie", |c| *c != [0; 8]);
    (initiator, any::<[u8; 8]>(), any::<u8>(), any::<u8>(), any::<u32>()).prop_map(|(i, r, x, f, m)| Header {
        initiator_cookie: Cookie(i),
        responder_cookie: Cookie(r),
        exchange_type: x.into(),
        flags: Flags(f),
        message_id: MessageId(m),
    })
}

fn message() -> impl Strategy<Value = Message<'static>> {
    let cleartext = (vec(payload(), 0..8), prop_oneof![3 => Just(&[][..]), 1 => bytes(7)])
        .prop_map(|(payloads, padding)| Body::Cleartext { payloads, padding });
    let encrypted = (any::<u8>(), bytes(64))
        .prop_map(|(first, ciphertext)| Body::Encrypted { first_payload: first.into(), ciphertext });
    (header(), prop_oneof![4 => cleartext, 1 => encrypted]).prop_map(|(mut header, body)| {
        header.flags = header.flags.with_encryption(matches!(body, Body::Encrypted { .. }));
        Message { header, body }
    })
}

/// Whatever parses must re-emit to bytes that parse to the same value.
fn check_stable(datagram: &[u8]) {
    if let Ok(m) = Message::parse(datagram) {
        let again = m.to_vec();
        assert_eq!(Message::parse(&again).as_ref(), Ok(&m));
        if let Some(body) = m.encrypted_body() {
            check_chain_stable(m.first_payload(), body);
        }
    }
}

fn check_chain_stable(first: PayloadType, body: &[u8]) {
    if let Ok(payloads) = parse_payload_chain(first, body) {
        let mut again = Vec::new();
        emit_payload_chain(&payloads, &mut again);
        let first = payloads.first().map_or(PayloadType::None, Payload::payload_type);
        assert_eq!(parse_payload_chain(first, &again).as_ref(), Ok(&payloads));
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    Truncate(usize, bool),
    SetU16(usize, u16),
    SetByte(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        (any::<usize>(), any::<bool>()).prop_map(|(len, fix)| Mutation::Truncate(len, fix)),
        (any::<usize>(), prop_oneof![0u16..8, any::<u16>()]).prop_map(|(at, v)| Mutation::SetU16(at, v)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, v)| Mutation::SetByte(at, v)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let n = bytes.len();
    match *m {
        Mutation::FlipBit(at, bit) => bytes[at % n] ^= 1 << bit,
        Mutation::Truncate(len, fix_header_length) => {
            bytes.truncate(len % (n + 1));
            if fix_header_length && bytes.len() >= HEADER_LEN {
                let len = bytes.len() as u32;
                bytes[24..28].copy_from_slice(&len.to_be_bytes());
            }
        }
        Mutation::SetU16(at, v) if n >= 2 => {
            let at = at % (n - 1);
            bytes[at..at + 2].copy_from_slice(&v.to_be_bytes());
        }
        Mutation::SetU16(..) => {}
        Mutation::SetByte(at, v) => bytes[at % n] = v,
    }
}

/// Captured messages, and decrypted chains with their first payload type.
type Corpus = (Vec<Vec<u8>>, Vec<(PayloadType, Vec<u8>)>);

/// Real inputs to mutate: every captured message, and every decrypted chain (with its first
/// payload type and padding) from the vectors files.
fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut messages = Vec::new();
        let mut chains = Vec::new();
        for name in common::scenarios() {
            messages.extend(common::isakmp_messages(&name).into_iter().map(|c| c.message));
            let vectors = common::Vectors::load(&name);
            for (section, tags) in
                [("phase1", &["mm5", "mm6", "am3"][..]), ("quickmode", &["qm1", "qm2", "qm3"][..])]
            {
                let section = vectors.section(section);
                for tag in tags {
                    let key = format!("{tag}_plaintext");
                    if section.has(&key) {
                        let message = section.bytes(&format!("{tag}_message"));
                        chains.push((PayloadType::from(message[16]), section.bytes(&key)));
                    }
                }
            }
        }
        assert!(messages.len() >= 40 && chains.len() >= 20);
        (messages, chains)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_emit_round_trip(m in message()) {
        let bytes = m.to_vec();
        let parsed = Message::parse(&bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(&parsed, &m);
        prop_assert_eq!(parsed.to_vec(), bytes);
    }

    #[test]
    fn chain_round_trip(payloads in vec(payload(), 1..8), padding in bytes(15)) {
        let mut body = Vec::new();
        emit_payload_chain(&payloads, &mut body);
        let len = body.len();
        body.extend_from_slice(padding);
        // Padding that happens to start like a payload is only skipped after next = 0,
        // which the emitted chain always ends with.
        let parsed = parse_payload_chain(payloads[0].payload_type(), &body)
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(&parsed, &payloads);
        let (_, rest) = parse_payload_chain_with_padding(payloads[0].payload_type(), &body).unwrap();
        prop_assert_eq!(rest.len(), body.len() - len);
    }

    #[test]
    fn random_bytes_never_panic(data in vec(any::<u8>(), 0..600), first in any::<u8>()) {
        check_stable(&data);
        check_chain_stable(first.into(), &data);
        // The same bytes behind a valid header with the right length.
        let mut datagram = vec![0u8; HEADER_LEN];
        datagram[16] = first;
        datagram[17] = 0x10;
        datagram.extend_from_slice(&data);
        let len = datagram.len() as u32;
        datagram[24..28].copy_from_slice(&len.to_be_bytes());
        check_stable(&datagram);
    }

    #[test]
    fn mutated_messages_never_panic(m in message(), mutations in vec(mutation(), 1..4)) {
        let mut bytes = m.to_vec();
        for mutation in &mutations {
            apply(&mut bytes, mutation);
        }
        check_stable(&bytes);
        if bytes.len() > HEADER_LEN {
            check_chain_stable(PayloadType::from(bytes[16]), &bytes[HEADER_LEN..]);
        }
    }

    #[test]
    fn mutated_captures_never_panic(index in any::<prop::sample::Index>(), mutations in vec(mutation(), 1..4)) {
        let (messages, chains) = corpus();
        let mut bytes = index.get(messages).clone();
        for mutation in &mutations {
            apply(&mut bytes, mutation);
        }
        check_stable(&bytes);
        let (first, chain) = index.get(chains);
        let mut chain = chain.clone();
        for mutation in &mutations {
            apply(&mut chain, mutation);
        }
        check_chain_stable(*first, &chain);
    }
}
