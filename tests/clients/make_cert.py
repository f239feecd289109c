#!/usr/bin/env python3
"""Makes a self-signed certificate and its key (PEM) for the FTPS tests.

    make_cert.py CERT KEY [--cn NAME] [--days N] [--expired] [--chain-ca]

--expired: valid from 10 days ago until yesterday. --chain-ca: CERT holds
the server certificate followed by the CA that signed it; with --wrong-order
the CA comes first. Uses python3-cryptography (tests/install-deps.sh).
"""
import argparse
import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def build(subject, issuer, public_key, signing_key, start, end, ca):
    b = (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        b = b.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return b.sign(signing_key, hashes.SHA256())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cert")
    p.add_argument("key")
    p.add_argument("--cn", default="localhost")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--expired", action="store_true")
    p.add_argument("--chain-ca", action="store_true")
    p.add_argument("--wrong-order", action="store_true")
    a = p.parse_args()
    now = datetime.datetime.now(datetime.timezone.utc)
    if a.expired:
        start, end = now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)
    else:
        start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=a.days)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    if a.chain_ca:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = build("lakeftpd test CA", "lakeftpd test CA", ca_key.public_key(), ca_key, start, end, True)
        leaf = build(a.cn, "lakeftpd test CA", key.public_key(), ca_key, start, end, False)
        chain = pem(ca) + pem(leaf) if a.wrong_order else pem(leaf) + pem(ca)
    else:
        chain = pem(build(a.cn, a.cn, key.public_key(), key, start, end, False))
    with open(a.cert, "wb") as f:
        f.write(chain)
    with open(a.key, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


if __name__ == "__main__":
    main()
