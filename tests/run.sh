#!/bin/bash
# Runs every test: unit tests, the integration tests against the static
# x86_64 musl binary (the one the AMI ships), the aarch64 binary's smoke test
# under qemu, and the appliance checks. Needs root (tmpfs mounts, network
# namespaces, port 20); installs the tools it needs first
# (tests/install-deps.sh, idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

tests/install-deps.sh

# The layout: no import cycle, no source file over 600 lines, and the module
# tree in docs/architecture.md is the current one.
python3 tests/module_graph.py --check-doc docs/architecture.md

# The one documented build (also what the AMI recipe ships): both targets,
# each checked by `file` to be static and stripped.
image/build.sh
bin="$PWD/target/x86_64-unknown-linux-musl/release/lakeftpd"

# Integration tests drive the static binary; unit tests run in-process.
LAKEFTPD_BIN="$bin" cargo test --locked

# Every parser of untrusted input under the stable fuzz runner, 10 s per
# target (the libFuzzer runs are in fuzz/README.md).
fuzz/run-stable.sh 10

tests/aarch64_smoke.sh
LAKEFTPD_BIN="$bin" tests/appliance/run.sh

# The deployment topology with network namespaces as hosts (devices, a
# balancer, two instances, an S3 host): haproxy with PROXY v2, then kernel
# DNAT; every acknowledged file must be in S3.
LAKEFTPD_BIN="$bin" tests/topology.sh

# Power loss on a filesystem that drops what was not fsync'd (20 crash
# points), then on ext4 on a loop device whose image drops what was not
# flushed (20 crash points), and 60 s of uploads through a fault-injecting S3
# proxy; the long versions: tests/durability/run.sh --long.
LAKEFTPD_BIN="$bin" tests/durability/run.sh

# A seconds-long smoke of the benchmark, so it cannot rot (the full run,
# against vsftpd and pure-ftpd, is `tests/bench/run.sh`; see docs/benchmark.md).
tests/bench/run.sh --smoke
# The users-file benchmark, small (the full one is 100,000 users: docs/benchmark.md).
LAKEFTPD_BIN="$bin" BENCH_USERS=2000 tests/bench/users.sh

# The attack soak, 30 seconds (the 5-minute run is `tests/bench/attack.sh`):
# non-zero exit when a device saw an error, a file was lost, or a health
# check got no answer at all; the 1 s goals are reported (`goals` in the
# summary), not failed on, as CI shares its cores with the generator.
LAKEFTPD_BIN="$bin" tests/bench/attack.sh --seconds 30 --baseline 15
