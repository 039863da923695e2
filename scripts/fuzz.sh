#!/usr/bin/env bash
# Runs the cargo-fuzz targets of tests/fuzz (all, or those named as arguments) for FUZZ_SECONDS
# each (default 60), installing cargo-fuzz when it is missing. New interesting inputs go to
# tests/fuzz/work/<target> (not committed); the committed seeds in tests/fuzz/corpus/<target> are
# read too. A crash leaves its input in tests/fuzz/artifacts/<target>: fix the cause, then add the
# input to the corpus so that `cargo test --test fuzz_corpus` keeps checking it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# libFuzzer's instrumentation flags are nightly-only; this lets the stable compiler take them.
export RUSTC_BOOTSTRAP=1
fuzz_dir=tests/fuzz

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list --fuzz-dir "$fuzz_dir")
fi
# The parsers are safe Rust: without AddressSanitizer the build is quicker and a run twice as fast.
for target in "${targets[@]}"; do
  echo "fuzz: $target for ${seconds}s" >&2
  mkdir -p "$fuzz_dir/work/$target"
  cargo fuzz run --fuzz-dir "$fuzz_dir" --sanitizer none "$target" \
    "$fuzz_dir/work/$target" "$fuzz_dir/corpus/$target" \
    -- -max_total_time="$seconds" -print_final_stats=1
done
