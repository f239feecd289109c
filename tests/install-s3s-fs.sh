#!/bin/bash
# Install the S3 API server the S3 delivery tests (tests/s3.rs) run against:
# s3s-fs verifies SigV4 signatures and Content-MD5/checksums, which moto does
# not. Idempotent: asks no registry when the pinned version is installed.
#   bash tests/install-s3s-fs.sh
set -euo pipefail
VERSION=0.14.1
if command -v s3s-fs >/dev/null && [ "$(s3s-fs --version | awk '{print $2}')" = "$VERSION" ]; then
    exit 0
fi
cargo install s3s-fs --version "$VERSION" --features binary --locked
