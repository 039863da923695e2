//! Replays the committed fuzz corpus (`tests/fuzz/corpus/<target>/`) through the same checks
//! the cargo-fuzz targets run, so that every input the fuzzers once found interesting, and
//! every regression they found, is tried on each `cargo test` without cargo-fuzz or nightly.

#[path = "fuzz/targets.rs"]
mod targets;

use std::path::Path;

#[test]
fn every_committed_fuzz_input_passes_its_target() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus");
    for (name, target) in targets::TARGETS {
        let dir = corpus.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("the corpus of {name} ({}): {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "the corpus of {name} is empty");
        for input in inputs {
            let bytes = std::fs::read(&input).expect("corpus file");
            let outcome = std::panic::catch_unwind(|| target(&bytes));
            assert!(outcome.is_ok(), "{name} fails on {}", input.display());
        }
    }
}
