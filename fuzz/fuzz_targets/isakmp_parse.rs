//! Fuzz the ISAKMP wire format: `isakmp::Message::parse` and its inverse, `Message::to_vec`.
//!
//! For any input:
//! * parsing never panics (it returns `Ok` or a `ParseError`);
//! * if it parses, the emitted bytes parse again, and emitting that second parse gives the same
//!   bytes: emit(parse(emit(parse(x)))) == emit(parse(x)), i.e. emit is canonical and stable;
//! * if the header's E (encryption) flag is clear, the body is a cleartext payload chain, and
//!   `isakmp::parse_payload_chain` on it must not panic either.
//!
//! Seeds: fuzz/corpus/isakmp_parse/ (see fuzz/README.md and fuzz/extract_seeds.py).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// ISAKMP fixed header (RFC 2408 3.1): cookies (16), next payload (1), version (1),
/// exchange type (1), flags (1), message ID (4), length (4).
const HEADER_LEN: usize = 28;
/// Offset of the header's "next payload" field: the type of the first payload.
const NEXT_PAYLOAD: usize = 16;
/// Offset of the header's flags byte; bit 0x01 is E (the body is encrypted).
const FLAGS: usize = 19;
const FLAG_E: u8 = 0x01;
/// Offset of the header's 4-byte big-endian length of the whole message.
const LENGTH: usize = 24;

fuzz_target!(|data: &[u8]| {
    // Any input must either parse or be rejected with an error; a panic is a bug.
    let Ok(message) = isakmp::Message::parse(data) else {
        return;
    };

    // Round trip: what we emit must parse again and emit to the same bytes.
    let emitted = message.to_vec();
    let reparsed = isakmp::Message::parse(&emitted)
        .unwrap_or_else(|e| panic!("emitted message does not parse: {e:?}\n{emitted:02x?}"));
    let emitted_again = reparsed.to_vec();
    assert!(
        emitted_again == emitted,
        "emit is not stable: emit(parse(x)) = {emitted:02x?}\nemit(parse(emit(parse(x)))) = {emitted_again:02x?}"
    );

    // The header was accepted, so the fixed fields are there. Read them from the raw input (not
    // through the typed API) so the chain parser sees the peer's bytes exactly as they came.
    let (Some(&flags), Some(&first)) = (data.get(FLAGS), data.get(NEXT_PAYLOAD)) else {
        return;
    };
    if flags & FLAG_E == 0 {
        // The cleartext body: from the end of the header up to the header's length field, cut
        // to what the datagram holds (empty if the length field is below the header size).
        let declared =
            data.get(LENGTH..HEADER_LEN).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
        let body = data.get(HEADER_LEN..declared.min(data.len())).unwrap_or_default();
        // The result does not matter: only that it returns instead of panicking.
        let _ = isakmp::parse_payload_chain(isakmp::PayloadType::from(first), body);
    }
});
