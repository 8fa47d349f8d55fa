//! Every ISAKMP message of the strongSwan 5.9.8 captures in `vectors/` (see its README):
//! cleartext messages parse, match the recorded values and re-emit byte for byte; encrypted
//! ones are decrypted with the recorded Ka and IVs and their payload chains are checked the
//! same way.

mod common;

use common::{Captured, Section, Vectors};
use crypto::{CbcCipher, HashFunction, Phase1Cipher};
use isakmp::*;

struct Scenario {
    name: String,
    vectors: Vectors,
    messages: Vec<Captured>,
}

fn scenarios() -> Vec<Scenario> {
    common::scenarios()
        .into_iter()
        .map(|name| Scenario {
            vectors: Vectors::load(&name),
            messages: common::isakmp_messages(&name),
            name,
        })
        .collect()
}

impl Scenario {
    fn phase1(&self) -> &Section {
        self.vectors.section("phase1")
    }

    fn quickmode(&self) -> &Section {
        self.vectors.section("quickmode")
    }

    fn aggressive(&self) -> bool {
        self.phase1().num("exchange_type_num") == 4
    }

    /// The messages of one exchange type, in capture order.
    fn exchange(&self, exchange_type: ExchangeType) -> Vec<&Captured> {
        self.messages
            .iter()
            .filter(|c| Message::parse(&c.message).unwrap().header.exchange_type == exchange_type)
            .collect()
    }

    fn phase1_messages(&self) -> Vec<&Captured> {
        let t = if self.aggressive() { ExchangeType::Aggressive } else { ExchangeType::IdentityProtection };
        self.exchange(t)
    }

    fn cipher(&self) -> Phase1Cipher {
        let p1 = self.phase1();
        match (p1.num("encryption_algorithm_num"), p1.num("key_length_num")) {
            (7, 128) => Phase1Cipher::Aes128,
            (7, 192) => Phase1Cipher::Aes192,
            (7, 256) => Phase1Cipher::Aes256,
            (5, _) => Phase1Cipher::TripleDes,
            (1, _) => Phase1Cipher::Des,
            other => panic!("{}: unexpected cipher {other:?}", self.name),
        }
    }

    /// Decrypts message `tag` (`mm5`, `qm1`, …) recorded in `section`, checking the capture
    /// against `TAG_message` and the plaintext against `TAG_plaintext`. Returns the plaintext,
    /// the first payload type and the length of the chain without padding.
    fn decrypt(&self, captured: &Captured, section: &Section, tag: &str) -> (Vec<u8>, PayloadType, usize) {
        assert_eq!(captured.message, section.bytes(&format!("{tag}_message")), "{} {tag}", self.name);
        let message = Message::parse(&captured.message).unwrap();
        let mut plaintext = message.encrypted_body().expect("E flag set").to_vec();
        let ka = self.phase1().bytes("ka");
        let iv = section.bytes(&format!("{tag}_iv"));
        self.cipher().decrypt(&ka, &iv, &mut plaintext).unwrap();
        assert_eq!(plaintext, section.bytes(&format!("{tag}_plaintext")), "{} {tag}", self.name);
        let len = section.num(&format!("{tag}_payload_bytes_num")) as usize;
        (plaintext, message.first_payload(), len)
    }
}

/// Parses a decrypted chain, checks the padding is what the vectors say, and that the chain
/// re-emits byte for byte.
fn decrypted_chain<'a>(plaintext: &'a [u8], first: PayloadType, len: usize, what: &str) -> Vec<Payload<'a>> {
    let (payloads, padding) = parse_payload_chain_with_padding(first, plaintext).unwrap();
    assert_eq!(padding.len(), plaintext.len() - len, "{what}: padding");
    assert_eq!(parse_payload_chain(first, &plaintext[..len]).unwrap(), payloads, "{what}: without padding");
    let mut out = Vec::new();
    emit_payload_chain(&payloads, &mut out);
    assert_eq!(out, plaintext[..len], "{what}: re-emitted chain");
    payloads
}

fn types(payloads: &[Payload<'_>]) -> Vec<PayloadType> {
    payloads.iter().map(Payload::payload_type).collect()
}

fn find<'p, 'a>(payloads: &'p [Payload<'a>], t: PayloadType) -> Vec<&'p Payload<'a>> {
    payloads.iter().filter(|p| p.payload_type() == t).collect()
}

fn one<'p, 'a>(payloads: &'p [Payload<'a>], t: PayloadType) -> &'p Payload<'a> {
    let found = find(payloads, t);
    assert_eq!(found.len(), 1, "{t:?} in {:?}", types(payloads));
    found[0]
}

fn body(payloads: &[Payload<'_>], t: PayloadType) -> Vec<u8> {
    one(payloads, t).body_to_vec()
}

fn sa<'p, 'a>(payloads: &'p [Payload<'a>]) -> &'p SecurityAssociation<'a> {
    match one(payloads, PayloadType::SecurityAssociation) {
        Payload::SecurityAssociation(sa) => sa,
        _ => unreachable!(),
    }
}

fn ids(payloads: &[Payload<'_>]) -> Vec<Vec<u8>> {
    find(payloads, PayloadType::Identification).iter().map(|p| p.body_to_vec()).collect()
}

#[test]
fn every_message_parses_and_re_emits() {
    let mut count = 0;
    for s in scenarios() {
        assert!(s.messages.len() >= 6, "{}: {} ISAKMP messages", s.name, s.messages.len());
        for c in &s.messages {
            let m =
                Message::parse(&c.message).unwrap_or_else(|e| panic!("{} frame {}: {e}", s.name, c.frame));
            assert_eq!(m.to_vec(), c.message, "{} frame {}", s.name, c.frame);
            count += 1;
        }
    }
    assert!(count >= 40, "only {count} messages");
}

#[test]
fn phase1_cleartext_matches_vectors() {
    for s in scenarios() {
        let p1 = s.phase1();
        let messages: Vec<Message<'_>> =
            s.phase1_messages().iter().map(|c| Message::parse(&c.message).unwrap()).collect();
        let first = &messages[0];
        assert_eq!(u64::from(u8::from(first.header.exchange_type)), p1.num("exchange_type_num"));
        assert_eq!(first.header.initiator_cookie.0.to_vec(), p1.bytes("cky_i"), "{}", s.name);
        assert!(first.header.responder_cookie.is_zero());
        assert_eq!(messages[1].header.responder_cookie.0.to_vec(), p1.bytes("cky_r"), "{}", s.name);
        assert!(messages.iter().all(|m| m.header.message_id == MessageId::ZERO));

        // SA offer and answer, byte for byte and by attribute value.
        let (sai, sar) = (first.payloads(), messages[1].payloads());
        assert_eq!(body(sai, PayloadType::SecurityAssociation), p1.bytes("sai_b"), "{}", s.name);
        assert_eq!(body(sar, PayloadType::SecurityAssociation), p1.bytes("sar_b"), "{}", s.name);
        for payloads in [sai, sar] {
            let sa = sa(payloads);
            assert_eq!(sa.situation, SIT_IDENTITY_ONLY);
            let [proposal] = &sa.proposals[..] else { panic!("{}: one proposal expected", s.name) };
            assert_eq!((proposal.protocol, proposal.spi), (ProtocolId::Isakmp, &[][..]));
            let transform = &proposal.transforms[0];
            assert_eq!(transform.transform_id, KEY_IKE);
            let attributes: Vec<_> = transform.ike_attributes().collect();
            let num = |k| p1.num(k) as u16;
            for expected in [
                IkeAttribute::EncryptionAlgorithm(num("encryption_algorithm_num").into()),
                IkeAttribute::KeyLength(num("key_length_num")),
                IkeAttribute::HashAlgorithm(num("hash_algorithm_num").into()),
                IkeAttribute::GroupDescription(num("group_description_num").into()),
                IkeAttribute::AuthenticationMethod(num("auth_method_num").into()),
                IkeAttribute::LifeType(num("life_type_num").into()),
                IkeAttribute::LifeDuration(p1.num("life_duration_num")),
            ] {
                assert!(attributes.contains(&expected), "{}: {expected:?} not in {attributes:?}", s.name);
            }
            assert!(!attributes.iter().any(|a| matches!(a, IkeAttribute::Unknown { .. })));
        }
        assert!(find(sai, PayloadType::VendorId).iter().any(|v| **v == Payload::VendorId(&vendor::DPD)));
        assert!(find(sai, PayloadType::VendorId)
            .iter()
            .any(|v| **v == Payload::VendorId(&vendor::NAT_T_RFC3947)));

        // KE, nonces, IDs in clear, NAT-D.
        let (ke_i, ke_r) =
            if s.aggressive() { (sai, sar) } else { (messages[2].payloads(), messages[3].payloads()) };
        assert_eq!(body(ke_i, PayloadType::KeyExchange), p1.bytes("g_xi"), "{}", s.name);
        assert_eq!(body(ke_r, PayloadType::KeyExchange), p1.bytes("g_xr"), "{}", s.name);
        assert_eq!(body(ke_i, PayloadType::Nonce), p1.bytes("ni_b"), "{}", s.name);
        assert_eq!(body(ke_r, PayloadType::Nonce), p1.bytes("nr_b"), "{}", s.name);
        let hash_len = if p1.num("hash_algorithm_num") == 2 { 20 } else { 32 };
        for d in find(ke_r, PayloadType::NatDiscovery) {
            let Payload::NatDiscovery(d) = d else { unreachable!() };
            assert_eq!((d.draft, d.hash.len()), (false, hash_len));
        }
        if s.aggressive() {
            assert_eq!(ids(sai), vec![p1.bytes("idii_b")]);
            assert_eq!(ids(sar), vec![p1.bytes("idir_b")]);
            let Payload::Identification(id) = one(sai, PayloadType::Identification) else { unreachable!() };
            assert_eq!(id.identity, Identity::Fqdn(b"fwa.example.net"));
            assert_eq!(body(sar, PayloadType::Hash), p1.bytes("hash_r"));
        } else {
            assert_eq!(types(messages[2].payloads())[..2], [PayloadType::KeyExchange, PayloadType::Nonce]);
        }
    }
}

#[test]
fn phase1_encrypted_matches_vectors() {
    for s in scenarios() {
        let p1 = s.phase1();
        let messages = s.phase1_messages();
        let cookies =
            (Cookie(p1.bytes("cky_i").try_into().unwrap()), Cookie(p1.bytes("cky_r").try_into().unwrap()));
        if s.aggressive() {
            let (plaintext, first, len) = s.decrypt(messages[2], p1, "am3");
            let payloads = decrypted_chain(&plaintext, first, len, "am3");
            assert_eq!(
                types(&payloads),
                [PayloadType::Hash, PayloadType::NatDiscovery, PayloadType::NatDiscovery]
            );
            assert_eq!(body(&payloads, PayloadType::Hash), p1.bytes("hash_i"));
            continue;
        }
        let (plaintext, first, len) = s.decrypt(messages[4], p1, "mm5");
        let mm5 = decrypted_chain(&plaintext, first, len, "mm5");
        assert_eq!(
            types(&mm5),
            [PayloadType::Identification, PayloadType::Hash, PayloadType::Notification],
            "{}",
            s.name
        );
        assert_eq!(ids(&mm5), vec![p1.bytes("idii_b")]);
        assert_eq!(body(&mm5, PayloadType::Hash), p1.bytes("hash_i"));
        let Payload::Notification(n) = one(&mm5, PayloadType::Notification) else { unreachable!() };
        assert_eq!(
            (n.doi, n.protocol, n.notify_type),
            (Doi::Ipsec, ProtocolId::Isakmp, NotifyType::InitialContact)
        );
        assert_eq!(n.cookies(), Some(cookies));
        let Payload::Identification(id) = &mm5[0] else { unreachable!() };
        let addr: std::net::Ipv4Addr = p1.text("initiator_addr_text").parse().unwrap();
        assert_eq!((id.protocol, id.port, &id.identity), (0, 0, &Identity::Ipv4Addr(addr)));

        let (plaintext, first, len) = s.decrypt(messages[5], p1, "mm6");
        let mm6 = decrypted_chain(&plaintext, first, len, "mm6");
        assert_eq!(types(&mm6), [PayloadType::Identification, PayloadType::Hash], "{}", s.name);
        assert_eq!(ids(&mm6), vec![p1.bytes("idir_b")]);
        assert_eq!(body(&mm6, PayloadType::Hash), p1.bytes("hash_r"));
        // The IV chain the vectors describe: MM6 continues from MM5's last ciphertext block.
        let mm5_ct = Message::parse(&messages[4].message).unwrap().encrypted_body().unwrap().to_vec();
        assert_eq!(mm5_ct[mm5_ct.len() - s.cipher().block_len()..], p1.bytes("mm6_iv")[..]);
    }
}

#[test]
fn quick_mode_matches_vectors() {
    for s in scenarios() {
        let qm = s.quickmode();
        let messages = s.exchange(ExchangeType::QuickMode);
        assert_eq!(messages.len(), 3, "{}", s.name);
        let pfs = qm.has("g_qm_xi");
        for (i, tag) in ["qm1", "qm2"].into_iter().enumerate() {
            let message = Message::parse(&messages[i].message).unwrap();
            assert_eq!(message.header.message_id.to_bytes().to_vec(), qm.bytes("message_id"));
            let (plaintext, first, len) = s.decrypt(messages[i], qm, tag);
            let payloads = decrypted_chain(&plaintext, first, len, tag);
            let mut expected = vec![PayloadType::Hash, PayloadType::SecurityAssociation, PayloadType::Nonce];
            if pfs {
                expected.push(PayloadType::KeyExchange);
            }
            expected.extend([PayloadType::Identification, PayloadType::Identification]);
            assert_eq!(types(&payloads), expected, "{} {tag}", s.name);

            let (hash, sa_b, nonce, spi, ke) = if i == 0 {
                ("hash_1", "qm1_sa_b", "ni_b", "spi_i", "g_qm_xi")
            } else {
                ("hash_2", "qm2_sa_b", "nr_b", "spi_r", "g_qm_xr")
            };
            assert_eq!(body(&payloads, PayloadType::Hash), qm.bytes(hash));
            assert_eq!(body(&payloads, PayloadType::SecurityAssociation), qm.bytes(sa_b));
            assert_eq!(body(&payloads, PayloadType::Nonce), qm.bytes(nonce));
            if pfs {
                assert_eq!(body(&payloads, PayloadType::KeyExchange), qm.bytes(ke));
            }
            assert_eq!(ids(&payloads), vec![qm.bytes("idci_b"), qm.bytes("idcr_b")], "{} {tag}", s.name);
            for id in find(&payloads, PayloadType::Identification) {
                let Payload::Identification(id) = id else { unreachable!() };
                assert_eq!((id.protocol, id.port, id.identity.id_type()), (0, 0, IdType::Ipv4AddrSubnet));
            }

            let sa = sa(&payloads);
            let [proposal] = &sa.proposals[..] else { panic!("{}: one proposal expected", s.name) };
            assert_eq!(proposal.protocol, ProtocolId::Esp);
            assert_eq!(u64::from(u8::from(proposal.protocol)), qm.num("protocol_num"));
            assert_eq!(proposal.ipsec_spi().map(Spi::to_bytes).map(Vec::from), Some(qm.bytes(spi)));
            // strongSwan offers and selects one transform: the one recorded.
            let [transform] = &proposal.transforms[..] else { panic!("{}: one transform expected", s.name) };
            assert_eq!(u64::from(transform.transform_id), qm.num("esp_transform_id_num"));
            assert_eq!(
                transform.esp_transform_id(),
                EspTransformId::from(qm.num("esp_transform_id_num") as u8)
            );
            let attributes: Vec<_> = transform.ipsec_attributes().collect();
            let num = |k| qm.num(k) as u16;
            let mut expected = vec![
                IpsecAttribute::AuthenticationAlgorithm(num("esp_auth_algorithm_num").into()),
                IpsecAttribute::EncapsulationMode(num("esp_encapsulation_mode_num").into()),
                IpsecAttribute::EncapsulationMode(EncapsulationMode::UdpTunnel),
                IpsecAttribute::LifeType(LifeType::Seconds),
                IpsecAttribute::LifeDuration(qm.num("sa_life_duration_num")),
            ];
            if qm.has("esp_key_length_num") {
                expected.push(IpsecAttribute::KeyLength(num("esp_key_length_num")));
            }
            if qm.has("pfs_group_num") {
                expected.push(IpsecAttribute::GroupDescription(num("pfs_group_num").into()));
            } else {
                assert!(!attributes.iter().any(|a| matches!(a, IpsecAttribute::GroupDescription(_))));
            }
            for e in expected {
                assert!(attributes.contains(&e), "{} {tag}: {e:?} not in {attributes:?}", s.name);
            }
            assert!(!attributes.iter().any(|a| matches!(a, IpsecAttribute::Unknown { .. })));
        }
        let (plaintext, first, len) = s.decrypt(messages[2], qm, "qm3");
        let qm3 = decrypted_chain(&plaintext, first, len, "qm3");
        assert_eq!(types(&qm3), [PayloadType::Hash]);
        assert_eq!(body(&qm3, PayloadType::Hash), qm.bytes("hash_3"));
    }
}

/// The byte ranges the engine hashes can be rebuilt from parsed payloads: HASH_I over
/// `SAi_b | IDii_b` from `body_to_vec`, and HASH(1)/HASH(2) over "the rest of the message
/// after HASH" from `emit_payload_chain(&payloads[1..])` (RFC 2409 §5 and §5.5).
#[test]
fn hashed_ranges_rebuild_from_parsed_payloads() {
    for s in scenarios() {
        let (p1, qm) = (s.phase1(), s.quickmode());
        let prf = match p1.num("hash_algorithm_num") {
            2 => crypto::HashAlgorithm::Sha1,
            4 => crypto::HashAlgorithm::Sha256,
            other => panic!("hash {other}"),
        };
        let phase1 = s.phase1_messages();
        let mm1 = Message::parse(&phase1[0].message).unwrap();
        let sai_b = body(mm1.payloads(), PayloadType::SecurityAssociation);
        let idii_b = if s.aggressive() {
            body(mm1.payloads(), PayloadType::Identification)
        } else {
            let (plaintext, first, len) = s.decrypt(phase1[4], p1, "mm5");
            body(&decrypted_chain(&plaintext, first, len, "mm5"), PayloadType::Identification)
        };
        let (g_xi, g_xr) = (p1.bytes("g_xi"), p1.bytes("g_xr"));
        let (cky_i, cky_r) = (p1.bytes("cky_i"), p1.bytes("cky_r"));
        let hash_i = prf.hmac(&p1.bytes("skeyid"), &[&g_xi, &g_xr, &cky_i, &cky_r, &sai_b, &idii_b]);
        assert_eq!(hash_i.to_vec(), p1.bytes("hash_i"), "{}", s.name);

        let skeyid_a = p1.bytes("skeyid_a");
        let message_id = qm.bytes("message_id");
        let quick = s.exchange(ExchangeType::QuickMode);
        let (plaintext, first, len) = s.decrypt(quick[0], qm, "qm1");
        let qm1 = decrypted_chain(&plaintext, first, len, "qm1");
        let mut rest = Vec::new();
        emit_payload_chain(&qm1[1..], &mut rest);
        assert_eq!(prf.hmac(&skeyid_a, &[&message_id, &rest]).to_vec(), qm.bytes("hash_1"), "{}", s.name);
        let (plaintext, first, len) = s.decrypt(quick[1], qm, "qm2");
        let qm2 = decrypted_chain(&plaintext, first, len, "qm2");
        rest.clear();
        emit_payload_chain(&qm2[1..], &mut rest);
        let ni_b = qm.bytes("ni_b");
        assert_eq!(
            prf.hmac(&skeyid_a, &[&message_id, &ni_b, &rest]).to_vec(),
            qm.bytes("hash_2"),
            "{}",
            s.name
        );
    }
}
