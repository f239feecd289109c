#!/bin/bash
# The fuzz targets on stable Rust (no nightly, no libFuzzer): builds the
# stable runner and runs every target for SECONDS each (default 10) from a
# fixed or given seed. Exits non-zero, printing the input in hex, when a
# parser panics or breaks its property. tests/run.sh calls it.
#
#   fuzz/run-stable.sh [SECONDS] [SEED]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-10}"
seed="${2:-$(date +%s)}"
cargo build --locked --release --no-default-features --bin stable
exec target/release/stable --seconds "$seconds" --seed "$seed"
