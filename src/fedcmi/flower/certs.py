"""Test certificates for a TLS deployment: a CA, a SuperLink server certificate (for the
given host names and IPs) and a client certificate, written as PEM files.

For trying out a deployment only: in production use your organisation's PKI.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _cert(
    subject: str,
    issuer: x509.Name | None,
    key,
    signer,
    days: int,
    ca: bool,
    sans: list[x509.GeneralName] | None = None,
    usage=None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_certificates(
    folder: str | Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), days: int = 30
) -> dict[str, Path]:
    """Write ca.crt, server.pem, server.key, client.pem, client.key into ``folder``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _cert("fedcmi test CA", None, ca_key, ca_key, days, ca=True)
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    server_key, client_key = _key(), _key()
    server = _cert(
        hosts[0],
        ca.subject,
        server_key,
        ca_key,
        days,
        ca=False,
        sans=sans,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client = _cert(
        "fedcmi client",
        ca.subject,
        client_key,
        ca_key,
        days,
        ca=False,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    paths = {
        "ca": out / "ca.crt",
        "server_cert": out / "server.pem",
        "server_key": out / "server.key",
        "client_cert": out / "client.pem",
        "client_key": out / "client.key",
    }
    pem = serialization.Encoding.PEM
    paths["ca"].write_bytes(ca.public_bytes(pem))
    paths["server_cert"].write_bytes(server.public_bytes(pem))
    paths["client_cert"].write_bytes(client.public_bytes(pem))
    _write_key(paths["server_key"], server_key)
    _write_key(paths["client_key"], client_key)
    return paths


def make_node_keys(folder: str | Path, names: list[str]) -> dict[str, tuple[Path, Path]]:
    """An EC (P-384) key pair per SuperNode in OpenSSH format, for SuperNode
    authentication: ``NAME`` (private, mode 600, for ``flower-supernode
    --auth-supernode-private-key``) and ``NAME.pub`` (for ``flwr supernode register``).
    Returns name -> (private key path, public key path)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keys = {}
    for name in names:
        key = ec.generate_private_key(ec.SECP384R1())
        private, public = folder / name, folder / f"{name}.pub"
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
        )
        private.chmod(0o600)
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            )
        )
        keys[name] = (private, public)
    return keys
