"""A PostgreSQL server the way production runs one: TLS from a throwaway CA, passwords, client certificates.

Certificates are made in the test with ``cryptography`` (which moto already brings): a CA, a server
certificate for 127.0.0.1 and ``localhost``, a client certificate for ``CERT_USER``, and a second CA
that signed nothing of this server's, to show that the wrong CA is refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.services import PostgresServer

PASSWORD_USER = "password_user"
CERT_USER = "cert_user"
# Every character that means something in a URL, and a percent escape that must stay literal.
PASSWORD = "p@ss:w/rd?#%41 é"


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: str, issuer: str, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.now(timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
    )


def new_authority(name: str) -> Authority:
    """A self-signed CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return Authority(key, certificate)


def issue(authority: Authority, common_name: str, hosts: tuple[str, ...] = ()) -> Authority:
    """A leaf certificate signed by ``authority``: a server's (with ``hosts``) or a client's."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = authority.certificate.subject.rfc4514_string().removeprefix("CN=")
    builder = _builder(common_name, issuer, key.public_key())
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Authority(key, builder.sign(authority.key, hashes.SHA256()))


def write_pem(folder: Path, name: str, identity: Authority, *, with_key: bool = True) -> tuple[Path, Path]:
    """``name.crt`` and (0600) ``name.key``."""
    certificate = folder / f"{name}.crt"
    certificate.write_bytes(identity.certificate.public_bytes(serialization.Encoding.PEM))
    key = folder / f"{name}.key"
    if with_key:
        key.write_bytes(
            identity.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key.chmod(0o600)
    return certificate, key


@dataclass(frozen=True)
class SecurePostgres:
    """The running server, and the files a client needs."""

    server: PostgresServer
    ca_file: Path
    wrong_ca_file: Path
    client_cert: Path
    client_key: Path

    def url(self, database: str, user: str = "postgres", password: str | None = None, **query: str) -> str:
        """A URL for ``database``; ``password`` is written as given (callers encode it)."""
        userinfo = user if password is None else f"{user}:{password}"
        parameters = "&".join(f"{key}={value}" for key, value in query.items())
        return f"postgresql://{userinfo}@{self.server.host}:{self.server.port}/{database}" + (
            f"?{parameters}" if parameters else ""
        )


async def _create_roles(admin_url: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        for role in (PASSWORD_USER, CERT_USER):
            await connection.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')
        # A literal, never interpolated into SQL: format() quotes it.
        sql = await connection.fetchval(
            "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", PASSWORD_USER, PASSWORD
        )
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def running_secure_postgres() -> Iterator[SecurePostgres]:
    """A new cluster with TLS on, scram for ``PASSWORD_USER``, certificates only for ``CERT_USER``."""
    server = PostgresServer()
    client_files = Path(tempfile.mkdtemp(prefix="openrag-pg-client-"))
    try:
        server.init()
        authority = new_authority("chainlit-openrag-datalayer test CA")
        server_cert, server_key = write_pem(
            server.root, "server", issue(authority, "localhost", ("127.0.0.1", "localhost"))
        )
        ca_file, _ = write_pem(server.root, "ca", authority, with_key=False)
        for path in (server_cert, server_key, ca_file):
            server.own(path)
        server.configure(
            {
                "ssl": "on",
                "ssl_cert_file": f"'{server_cert}'",
                "ssl_key_file": f"'{server_key}'",
                "ssl_ca_file": f"'{ca_file}'",
                "password_encryption": "'scram-sha-256'",
            },
            [
                f"hostssl all {CERT_USER} {server.host}/32 cert",
                f"host all {CERT_USER} {server.host}/32 reject",
                f"host all {PASSWORD_USER} {server.host}/32 scram-sha-256",
            ],
        )
        server.start()
        asyncio.run(_create_roles(server.url("postgres")))
        client_ca, _ = write_pem(client_files, "ca", authority, with_key=False)
        wrong_ca, _ = write_pem(client_files, "wrong-ca", new_authority("another CA"), with_key=False)
        client_cert, client_key = write_pem(client_files, "client", issue(authority, CERT_USER))
        yield SecurePostgres(server, client_ca, wrong_ca, client_cert, client_key)
    finally:
        server.remove()
        for path in client_files.iterdir():
            path.unlink()
        client_files.rmdir()
