//! Replays the cargo-fuzz corpus of the `isakmp_parse` target (`fuzz/corpus/isakmp_parse/` at
//! the repository root) as a plain test, so that every input the fuzzer found interesting is
//! checked on every `cargo test`: parsing never panics, and whatever parses re-emits to bytes
//! that parse to the same value (for encrypted messages, the body is also tried as a chain).
//!
//! The directory must exist: a missing corpus is a broken checkout, not a pass. Seeds named
//! `seed-<pcap>-<frame>` are the ISAKMP messages of `vectors/<pcap>.pcap`.

use std::path::Path;

use isakmp::{emit_payload_chain, parse_payload_chain, Message, Payload, PayloadType};

#[test]
fn corpus_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/isakmp_parse");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} is missing ({e}); it must be committed", dir.display()));
    let (mut total, mut parsed) = (0usize, 0usize);
    for entry in entries {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        total += 1;
        let Ok(message) = Message::parse(&bytes) else { continue };
        parsed += 1;
        let emitted = message.to_vec();
        let reparsed = Message::parse(&emitted)
            .unwrap_or_else(|e| panic!("{}: re-emitted message fails to parse: {e}", path.display()));
        assert_eq!(reparsed, message, "{}", path.display());
        if let Some(body) = message.encrypted_body() {
            // Garbage as a chain, but it must not panic, and must be stable if it parses.
            if let Ok(payloads) = parse_payload_chain(message.first_payload(), body) {
                let mut chain = Vec::new();
                emit_payload_chain(&payloads, &mut chain);
                let first = payloads.first().map_or(PayloadType::None, Payload::payload_type);
                assert_eq!(parse_payload_chain(first, &chain).unwrap(), payloads, "{}", path.display());
            }
        }
    }
    assert!(total > 0, "fuzz corpus {} is empty", dir.display());
    println!("replayed {total} corpus files, {parsed} parsed");
}
