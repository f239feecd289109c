#!/bin/bash
# Installs everything the test suite needs on a fresh Debian 12 machine
# (run as root; idempotent). .ci/run calls it; a developer runs it once.
#
# Debian packages:
#   curl lftp inetutils-ftp   the real FTP clients the tests drive
#   python3                   ftplib client, fake IMDS
#   musl-tools                musl-gcc, for the static x86_64 build
#   gcc-aarch64-linux-gnu     linker and C compiler for the aarch64 build
#   qemu-user-static          runs the aarch64 binary for its smoke test
#   file                      checks that the binaries are static
#   iproute2 nftables haproxy network namespaces, DNAT and the L4 balancer
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(curl lftp inetutils-ftp python3 musl-tools gcc-aarch64-linux-gnu qemu-user-static file iproute2 nftables haproxy)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
done

tests/appliance/install-deps.sh

# The S3 API server the delivery tests run against (verifies SigV4 and
# Content-MD5); built from crates.io, ~5 minutes the first time.
tests/install-s3s-fs.sh
