//! Fuzz the VRP configuration language: `vrp::parse` and its inverse, `vrp::render`.
//!
//! For any input (read as UTF-8, lossily):
//! * parsing and validation never panic;
//! * a configuration that parses renders (keys in clear) to text that parses back to the same
//!   configuration: parse(render(c)) == c, the property the vrp crate's proptest checks on
//!   generated configurations, here on whatever the fuzzer finds.
//!
//! Seeds: fuzz/corpus/vrp_parse/ (the examples/ configurations).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(parsed) = vrp::parse("fuzz.cfg", &text) else {
        return;
    };
    let _ = vrp::validate("fuzz.cfg", &parsed.config, Some(&parsed.source_map), None);
    let rendered = vrp::render(&parsed.config, vrp::KeyDisplay::Clear);
    let reparsed = vrp::parse("rendered.cfg", &rendered)
        .unwrap_or_else(|e| panic!("rendered configuration does not parse: {e:?}\n{rendered}"));
    assert!(reparsed.config == parsed.config, "parse(render(c)) != c\n{rendered}");
});
