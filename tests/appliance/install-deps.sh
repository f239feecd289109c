#!/bin/bash
# Install what tests/appliance/run.sh needs on a fresh Debian 12 machine.
# Idempotent: installs only what is missing, and asks no registry when
# everything is already there. Run as root.
#
# Debian packages:
#   systemd   systemd-analyze (verify, security --offline) and systemctl --root
#   passwd    useradd/groupadd --prefix (provision.sh against a scratch root)
#   packer    1.6.6, the only Packer in Debian 12 (fmt, validate)
#   python3-pip  only if this machine's python3 has no pip
#   curl      image/lakeftpd-ops.sh reads IMDS with it (test_ops.py)
# PyPI packages (pinned: checks depend on their behaviour and output):
#   cfn-lint      CloudFormation linter (brings PyYAML, used by check_cfn.py)
#   python-hcl2   HCL2 parser for check_packer.py
#   moto[server]  moto_server: the Auto Scaling API for test_ops.py and a local
#                 EC2 API for claim_test.py (the direct topology's Elastic IP
#                 claim); brings boto3
#   awscli        the `aws` command lakeftpd-ops and lakeftpd-claim run, as on
#                 the instance (AL2023 has v2; v1 from PyPI speaks the same calls)
# Cargo: s3s-fs (tests/install-s3s-fs.sh), a local S3 for the users object.
set -euo pipefail

CFN_LINT=1.51.0
PYTHON_HCL2=8.1.4
MOTO=5.2.1
AWSCLI=1.45.11

missing=()
for pkg in systemd passwd packer curl; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# (sed, not grep -q: pip complains when its reader stops early.)
have() { [ "$(python3 -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p')" = "$2" ]; }
if ! have cfn-lint "$CFN_LINT" || ! have python-hcl2 "$PYTHON_HCL2" || ! have moto "$MOTO" ||
    ! command -v aws >/dev/null; then
    # Debian's own python3 marks itself externally managed (PEP 668); these are
    # test tools on a throwaway test machine, so install them anyway.
    pins=("cfn-lint==$CFN_LINT" "python-hcl2==$PYTHON_HCL2" "moto[server]==$MOTO")
    # An aws already there (AWS CLI v2, or v1) is kept.
    command -v aws >/dev/null || pins+=("awscli==$AWSCLI")
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet "${pins[@]}"
fi

# cfn-lint installs its command next to python3's scripts; make sure it runs.
for cmd in cfn-lint moto_server aws; do
    command -v "$cmd" >/dev/null || { echo "install-deps: $cmd not on PATH" >&2; exit 1; }
done
python3 -c 'import boto3' || { echo "install-deps: python3 cannot import boto3 (moto[server])" >&2; exit 1; }
# s3s-fs: the local S3 that serves the users object to `lakeftpd check` (run.sh).
bash "$(dirname "$0")/../install-s3s-fs.sh"
command -v s3s-fs >/dev/null || { echo "install-deps: s3s-fs not on PATH" >&2; exit 1; }
python3 -c 'import boto3, flask; from moto.server import ThreadedMotoServer' ||
    { echo "install-deps: moto[server] does not import" >&2; exit 1; }
echo "install-deps: systemd $(systemctl --version | head -1 | cut -d' ' -f2)," \
    "$(packer version | head -1), cfn-lint $(cfn-lint --version | cut -d' ' -f2)," \
    "python-hcl2 $PYTHON_HCL2, moto $MOTO, $(aws --version 2>&1 | cut -d' ' -f1)"
