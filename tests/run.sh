#!/bin/bash
# Runs every test: unit tests, the integration tests against the static
# x86_64 musl binary (the one the AMI ships), and the appliance checks.
# Needs root (tmpfs mounts, network namespaces, port 20); installs the tools
# it needs first (tests/install-deps.sh, idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

tests/install-deps.sh

export CC_x86_64_unknown_linux_musl=musl-gcc
cargo build --release --locked --target x86_64-unknown-linux-musl
bin="$PWD/target/x86_64-unknown-linux-musl/release/lakeftpd"
file "$bin" | grep -qE 'statically linked|static-pie linked' || { echo "run.sh: $bin is not statically linked" >&2; exit 1; }

# Integration tests drive the static binary; unit tests run in-process.
LAKEFTPD_BIN="$bin" cargo test --locked

LAKEFTPD_BIN="$bin" tests/appliance/run.sh
