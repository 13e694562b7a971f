#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo-fuzz) of the parsers that face the internet:
# registration, every route's query/form/JSON parsing through the full pipeline, the admin
# filter, and JWT verification. A crash or a failed assertion fails the run and leaves the
# reproducer under fuzz/artifacts/<target>/.
#
#   tests/fuzz.sh                  every target for FUZZ_SECONDS (default 20) each
#   FUZZ_SECONDS=600 tests/fuzz.sh registration     one target, longer
#
# The corpus each target grows is kept between runs under the target directory (CI keeps that
# directory), so every run starts where the last one stopped; fuzz/seeds/<target>/ holds
# checked-in starting inputs (one valid request per route for http_routes), read but never
# written.
#
# cargo-fuzz needs nightly features (sanitizers); on the stable toolchain RUSTC_BOOTSTRAP=1
# enables them. cargo-fuzz itself is installed under $GATEHOUSE_TOOLS (default: tools/ in the target
# directory, so CI reuses it) when missing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo/fuzz"
# Its own target directory (sanitizer builds), under the shared one so CI caches it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}/fuzz-build"
seconds="${FUZZ_SECONDS:-20}"
tools="${GATEHOUSE_TOOLS:-$(dirname "$CARGO_TARGET_DIR")/tools}"
corpus_root="${GATEHOUSE_FUZZ_CORPUS:-$(dirname "$CARGO_TARGET_DIR")/fuzz-corpus}"
export PATH="$tools/bin:$PATH" RUSTC_BOOTSTRAP=1
if ! command -v cargo-fuzz >/dev/null; then
    echo "installing cargo-fuzz into $tools" >&2
    cargo install --quiet --locked --root "$tools" cargo-fuzz@0.13.2
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(registration http_routes admin_filter jwt_verify)
fi
for t in "${targets[@]}"; do
    echo "fuzz: $t for ${seconds}s" >&2
    corpus="$corpus_root/$t"
    mkdir -p "$corpus"
    dirs=("$corpus")
    if [ -d "seeds/$t" ]; then dirs+=("seeds/$t"); fi
    echo "fuzz: corpus $corpus ($(find "$corpus" -type f | wc -l) inputs kept from earlier runs)" >&2
    log="$(mktemp)"
    status=0
    cargo fuzz run --sanitizer address "$t" "${dirs[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E "^(#[0-9]+ *DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|thread .* panicked|Failing input)" "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -40 "$log" >&2
        echo "fuzz: $t FAILED (reproducer in fuzz/artifacts/$t/)" >&2
        exit "$status"
    fi
    rm -f "$log"
done
echo "fuzz: all targets clean"
