"""The playground's TLS material: a CA, a server certificate for 127.0.0.1 and a client certificate, made at `up`.

Generated with ``cryptography`` (EC P-256, 10 years) into ``<home>/tls/``; the private keys are 0600. The
TLS cluster's MariaDB serves ``server.pem`` and requires secure transport; BR (``--ca/--cert/--key``) and
every SQL connection (``ssl_ca``) trust ``ca.pem``. Made once and reused, so a restarted playground keeps
the CA its connections name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID = dt.timedelta(days=3650)


@dataclass(frozen=True)
class TLSFiles:
    """PEM paths: the CA, the server's certificate and key, a client certificate and key."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#1-style "EC PRIVATE KEY": what both MariaDB's OpenSSL and Go's tls.X509KeyPair read
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_ca(directory: Path) -> TLSFiles:
    """Write (or reuse) the CA, server and client PEMs in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = TLSFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
    )
    if all(p.exists() for p in vars(files).values()):
        return files
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("tidbops playground CA", ca_key, None, ca_key, ca=True)
    pem = serialization.Encoding.PEM
    for cert_path, key_path, subject, usage in (
        (files.server_cert, files.server_key, "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH),
        (files.client_cert, files.client_key, "tidbops", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(subject, key, ca_cert.subject, ca_key, ca=False, usage=usage)
        _write(key_path, _key_pem(key), 0o600)
        _write(cert_path, cert.public_bytes(pem), 0o644)
    _write(files.ca, ca_cert.public_bytes(pem), 0o644)
    return files
