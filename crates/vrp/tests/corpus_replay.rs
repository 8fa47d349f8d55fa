//! Replays the committed fuzz corpus of the `vrp_parse` target (fuzz/corpus/vrp_parse/) on the
//! stable toolchain, with the target's properties: parsing and validation never panic, and a
//! configuration that parses renders to text that parses back to the same configuration.

use std::path::PathBuf;

#[test]
fn vrp_parse_corpus_replays() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/vrp_parse");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut replayed = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        replayed += 1;
        let Ok(parsed) = vrp::parse("corpus.cfg", &text) else { continue };
        let _ = vrp::validate("corpus.cfg", &parsed.config, Some(&parsed.source_map), None);
        let rendered = vrp::render(&parsed.config, vrp::KeyDisplay::Clear);
        let reparsed = vrp::parse("rendered.cfg", &rendered).unwrap_or_else(|e| {
            panic!("{}: rendered text does not parse: {e:?}\n{rendered}", path.display())
        });
        assert!(reparsed.config == parsed.config, "{}: parse(render(c)) != c\n{rendered}", path.display());
    }
    assert!(replayed >= 3, "only {replayed} corpus files in {}", dir.display());
}
