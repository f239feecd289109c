#!/bin/bash
# Installs everything the test suite needs on a fresh Debian 12 machine
# (run as root; idempotent). .ci/run calls it through tests/run.sh; a
# developer runs it once. Nothing is assumed to be on the machine already:
# every tool and header the suite uses is named below, and after installing,
# the script proves it — each command is looked up and each C compiler the
# builds use compiles and links a probe — so a machine that lacks something
# fails here, with the package's name, not forty minutes later in a build.
#
# Debian packages, one per line, with what needs each:
packages=(
    curl                   # FTP client driven by the tests; health checks
    lftp                   # FTP client (mirror, active and passive)
    inetutils-ftp          # the classic `ftp` client
    python3                # ftplib client, fake IMDS, the benchmark's helpers
    python3-yaml           # tests/topology/render_stack.py reads the CloudFormation template
    musl-tools             # musl-gcc: C code in crates (ring) for x86_64 musl
    gcc-aarch64-linux-gnu  # linker and C compiler for aarch64 musl
    libc6-dev-arm64-cross  # aarch64 C headers (bits/libc-header-start.h) that
                           # ring's C includes; only a Recommends of the above
    qemu-user-static       # runs the aarch64 binary for its smoke test
    file                   # checks that the binaries are static and stripped
    iproute2               # ip netns / veth: hosts for the topology test
    nftables               # DNAT balancer in the topology test
    haproxy                # L4 balancer with PROXY v2 in the topology test
    procps                 # pgrep/ps in the shell tests
    util-linux             # mount (tmpfs for disk-full tests), unshare; losetup:
                           # the power-loss test's ext4 mode (tests/durability/)
    e2fsprogs              # mkfs.ext4, e2fsck: the power-loss test's ext4 mode
    xfsprogs               # mkfs.xfs, xfs_repair: the power-loss test on XFS
                           # (AL2023's root filesystem)
    ca-certificates        # crates.io over TLS for the s3s-fs build
    python3-cryptography   # tests/clients/make_cert.py: certificates for the FTPS tests
    tnftp                  # interop table (tests/interop.rs): NetBSD ftp
    wget                   # interop table: downloads, both modes
    busybox                # interop table: ftpput/ftpget
    ncftp                  # interop table: ncftpput/ncftpget
    rclone                 # interop table (passive, --ftp-writing-mdtm); FTPS (--ftp-explicit-tls) in tests/ftps.rs
    perl                   # interop table: Net::FTP (in perl's core modules)
    python3-pip            # aioftp from PyPI (below)
    openssl                # `openssl req`: FTPS certificates in tests/bench/run.sh,
                           # tests/topology.sh and tests/aarch64_smoke.sh
    fuse3                  # fusermount3: lossyfs (tests/durability/) mounts
                           # with it when mount(2) is not allowed
    # The FTPS client matrix (tests/ftps_matrix.rs, docs/interop.md "FTPS"):
    php-cli                # PHP's ftp_ssl_connect (the ftp extension is built in)
    gnutls-bin             # gnutls-cli: TLS 1.0-1.3 handshakes over AUTH TLS
    libio-socket-ssl-perl  # Net::FTP's starttls/prot (IO::Socket::SSL)
    libcommons-net-java    # Apache Commons Net FTPSClient (/usr/share/java/commons-net.jar)
    openjdk-17-jdk-headless # java with jdk.compiler: runs tests/clients/FtpsCommons.java as a source file
    linux-perf             # `perf stat`: flushes per upload in tests/bench/run.sh
                           # (syscall tracepoints; the rows stay empty without it)
)
# PyPI packages, pinned, with what needs each:
pip_packages=(
    aioftp==0.24.1         # interop table: an asyncio client, passive only
)
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
    echo "install-deps: $*" >&2
    exit 1
}

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
# tnftp takes over the `ftp` alternative; the suite's `ftp` is inetutils'.
update-alternatives --set ftp /usr/bin/inetutils-ftp >/dev/null
for pkg in "${pip_packages[@]}"; do
    python3 -c "import ${pkg%%==*}" 2>/dev/null \
        || pip install --break-system-packages "$pkg" 2>/dev/null || pip install "$pkg"
done
for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
done
for component in rustfmt clippy; do
    rustup component list --installed | grep -q "^$component" || rustup component add "$component"
done

# Proof, part 1: every command the suite runs is on PATH.
for cmd in curl lftp ftp python3 musl-gcc aarch64-linux-gnu-gcc aarch64-linux-gnu-ar \
    qemu-aarch64-static file ip nft haproxy pgrep mount cargo rustc \
    tnftp wget busybox ncftpput ncftpget rclone perl inetutils-ftp openssl \
    php gnutls-cli java perf; do
    command -v "$cmd" >/dev/null || die "$cmd is not on PATH after installing (${packages[*]})"
done

# The FTPS tests make their certificates with python3-cryptography.
python3 -c 'import cryptography.x509' 2>/dev/null ||
    die "python3 cannot import cryptography (package python3-cryptography)"
[ "$(readlink -f /usr/bin/ftp)" = /usr/bin/inetutils-ftp ] || die "ftp is not inetutils-ftp (update-alternatives)"
perl -MNet::FTP -e1 || die "perl has no Net::FTP (package perl)"
perl -MIO::Socket::SSL -e1 || die "perl has no IO::Socket::SSL (package libio-socket-ssl-perl)"
php -r 'exit(function_exists("ftp_ssl_connect") ? 0 : 1);' ||
    die "php has no ftp_ssl_connect (package php-cli)"
[ -f /usr/share/java/commons-net.jar ] || die "no commons-net.jar (package libcommons-net-java)"
java --list-modules 2>/dev/null | grep -q '^jdk.compiler@' ||
    die "java cannot run a source file: no jdk.compiler (package openjdk-17-jdk-headless)"
python3 -c 'import aioftp' || die "aioftp did not install (pip)"
python3 -c 'import yaml' || die "python3 cannot import yaml (package python3-yaml)"

# Proof, part 2: each C compiler the builds use compiles and links a probe
# that includes the header ring needs. (A machine that had
# libc6-dev-arm64-cross by chance once hid its absence from this list.)
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
cat >"$probe/probe.c" <<'EOF'
#include <stdint.h>
#include <string.h>
int main(void) { uint8_t b[4]; memset(b, 0, sizeof b); return b[0]; }
EOF
musl-gcc -static -o "$probe/x86_64" "$probe/probe.c" 2>"$probe/err" \
    || die "musl-gcc cannot compile and link a C file (package musl-tools): $(cat "$probe/err")"
"$probe/x86_64" || die "the musl-gcc probe does not run"
aarch64-linux-gnu-gcc -static -o "$probe/aarch64" "$probe/probe.c" 2>"$probe/err" \
    || die "aarch64-linux-gnu-gcc cannot compile and link a C file (packages gcc-aarch64-linux-gnu and libc6-dev-arm64-cross): $(cat "$probe/err")"
qemu-aarch64-static "$probe/aarch64" || die "qemu-aarch64-static cannot run the aarch64 probe (package qemu-user-static)"
echo "install-deps: C probes compiled, linked and ran (musl-gcc, aarch64-linux-gnu-gcc under qemu)"

tests/appliance/install-deps.sh

# The S3 API server the delivery tests run against (verifies SigV4 and
# Content-MD5); built from crates.io, ~5 minutes the first time.
tests/install-s3s-fs.sh
command -v fusermount3 >/dev/null || die "fuse3 (fusermount3) was not installed"
[ -c /dev/fuse ] || die "/dev/fuse is missing: the power-loss test (tests/durability/) needs FUSE"
for cmd in losetup mkfs.ext4 e2fsck mkfs.xfs xfs_repair; do
    command -v "$cmd" >/dev/null || die "$cmd is missing: the power-loss test's disk mode needs it (util-linux, e2fsprogs, xfsprogs)"
done
[ -e /dev/loop-control ] || die "/dev/loop-control is missing: the power-loss test's disk mode needs loop devices"
grep -qw xfs /proc/filesystems || modprobe xfs 2>/dev/null || die "the kernel has no XFS: the power-loss test on XFS needs it"
command -v s3s-fs >/dev/null || [ -x "$HOME/.cargo/bin/s3s-fs" ] || die "s3s-fs was not installed"
echo "install-deps: all present"
