#!/bin/bash
# The one documented build of the binaries the AMI ships (image/lakeftpd.pkr.hcl
# copies them from target/<triple>/release/lakeftpd):
#
#   image/build.sh                       # both: x86_64 and aarch64 (Graviton)
#   image/build.sh x86_64-unknown-linux-musl   # one (CI builds only this)
#
# Release profile (Cargo.toml): LTO, one codegen unit, panic=abort, stripped.
# musl targets link statically (Rust's musl targets default to crt-static and
# ship their own libc and crt objects), so the binary runs on any Linux.
#
# Needs (Debian packages): musl-tools (musl-gcc, for crates that compile C,
# e.g. ring once S3 brings rustls), gcc-aarch64-linux-gnu (linker and C
# compiler for aarch64), file; and the rustup targets of the two triples.
# Every variable below can be overridden from the environment.
#
# Checks each binary with `file`: an ELF of the right machine, statically
# linked, stripped. Prints each size. Exits non-zero on any failure.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Cross linker and C compilers, in the variables cargo and the cc crate read
# (cargo reference, "Configuration: target.<triple>.linker"; cc crate docs,
# "CC_<target>"). Kept here, not in .cargo/config.toml, so a plain
# `cargo build` / `cargo test` on the host is unaffected.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER:-aarch64-linux-gnu-gcc}
export CC_aarch64_unknown_linux_musl=${CC_aarch64_unknown_linux_musl:-aarch64-linux-gnu-gcc}
export AR_aarch64_unknown_linux_musl=${AR_aarch64_unknown_linux_musl:-aarch64-linux-gnu-ar}
export CC_x86_64_unknown_linux_musl=${CC_x86_64_unknown_linux_musl:-musl-gcc}

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
fi

die() {
    echo "build.sh: $*" >&2
    exit 1
}

need() {
    command -v "$1" >/dev/null || die "$1 not found: apt-get install $2"
}

need file file
installed=$(rustup target list --installed 2>/dev/null || true)
for target in "${targets[@]}"; do
    case $target in
    x86_64-unknown-linux-musl)
        machine="x86-64"
        need "$CC_x86_64_unknown_linux_musl" musl-tools
        ;;
    aarch64-unknown-linux-musl)
        machine="ARM aarch64"
        need "$CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER" gcc-aarch64-linux-gnu
        ;;
    *) die "unknown target $target (x86_64-unknown-linux-musl or aarch64-unknown-linux-musl)" ;;
    esac
    if [ -n "$installed" ] && ! grep -qx "$target" <<<"$installed"; then
        die "the Rust target $target is not installed: rustup target add $target"
    fi

    start=$(date +%s)
    cargo build --release --locked --target "$target"
    bin=target/$target/release/lakeftpd
    [ -x "$bin" ] || die "$bin was not built"

    desc=$(file -b "$bin")
    case $desc in
    *"$machine"*) ;;
    *) die "$bin is not a $machine binary: $desc" ;;
    esac
    case $desc in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) die "$bin is not statically linked: $desc" ;;
    esac
    case $desc in
    *"not stripped"* | *"with debug_info"*) die "$bin is not stripped: $desc" ;;
    *stripped*) ;;
    *) die "$bin: cannot tell whether it is stripped: $desc" ;;
    esac

    size=$(stat -c %s "$bin")
    printf '%s: %s bytes (%s KiB), built in %ss\n  %s\n' \
        "$bin" "$size" "$((size / 1024))" "$(($(date +%s) - start))" "$desc"
done
