"""The stack's own certificate authority and Trino's server certificate (PEM files in the state directory).

Trino only accepts passwords over HTTPS, so every stack gets a private CA
(``ca.pem`` for clients, ``ca-key.pem`` never leaving the state directory,
mode 0600) and a server certificate for ``127.0.0.1`` and ``localhost``
signed by it. Trino reads the server key and certificate chain from one PEM
file (``http-server.https.keystore.path``). Both are reused across restarts
while they stay valid for at least :data:`RENEW_BEFORE` and the server
certificate still names the hosts and chains to the CA on disk; otherwise
they are made anew (a new CA only when the old one is unusable, so clients
keep trusting the same ``ca.pem``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nativestack.credentials import write_atomic

__all__ = ["CA_VALIDITY", "RENEW_BEFORE", "SERVER_HOSTS", "SERVER_VALIDITY", "StackTls", "ensure_tls"]

CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=397)  # the longest lifetime browsers accept for a server certificate
RENEW_BEFORE = dt.timedelta(days=30)
SERVER_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost")
"""Every service binds to the loopback interface; these are the names clients use for it."""

_CA_CERT = "ca.pem"
_CA_KEY = "ca-key.pem"
_SERVER_PEM = "trino.pem"


@dataclass(frozen=True)
class StackTls:
    """Where a stack's TLS files are."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients trust (public)."""
        return self.directory / _CA_CERT

    @property
    def ca_key_file(self) -> Path:
        return self.directory / _CA_KEY

    @property
    def keystore_file(self) -> Path:
        """Trino's PEM keystore: the server's private key, its certificate and the CA's (mode 0600)."""
        return self.directory / _SERVER_PEM


def ensure_tls(directory: Path, hosts: tuple[str, ...] = SERVER_HOSTS, *, now: dt.datetime | None = None) -> StackTls:
    """The CA and server certificate in ``directory``, created or renewed when needed."""
    tls = StackTls(directory)
    now = now or dt.datetime.now(dt.UTC)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)  # the state directory's own; clients read ca.pem as the same account
    ca = _load_ca(tls, now)
    if ca is None:
        ca = _new_ca(now)
        write_atomic(tls.ca_key_file, _key_pem(ca[0]), 0o600)
        write_atomic(tls.ca_file, ca[1].public_bytes(serialization.Encoding.PEM), 0o644)
    if not _server_usable(tls, ca[1], hosts, now):
        key, cert = _new_server(ca, hosts, now)
        chain = cert.public_bytes(serialization.Encoding.PEM) + ca[1].public_bytes(serialization.Encoding.PEM)
        write_atomic(tls.keystore_file, _key_pem(key) + chain, 0o600)
    return tls


# -- reuse ----------------------------------------------------------------------------------------------------


def _valid(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - RENEW_BEFORE > now


def _load_ca(tls: StackTls, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    try:
        cert = x509.load_pem_x509_certificate(tls.ca_file.read_bytes())
        key = serialization.load_pem_private_key(tls.ca_key_file.read_bytes(), password=None)
    except (FileNotFoundError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None
    return (key, cert) if _valid(cert, now) else None


def _server_usable(tls: StackTls, ca: x509.Certificate, hosts: tuple[str, ...], now: dt.datetime) -> bool:
    try:
        pem = tls.keystore_file.read_bytes()
        certs = x509.load_pem_x509_certificates(pem)
        key = serialization.load_pem_private_key(pem, password=None)
    except (FileNotFoundError, ValueError, TypeError):
        return False
    cert = certs[0]
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    named = {str(n) for n in names.get_values_for_type(x509.IPAddress)} | set(names.get_values_for_type(x509.DNSName))
    return key.public_key() == cert.public_key() and set(hosts) <= named and _valid(cert, now)


# -- making certificates ---------------------------------------------------------------------------------------


def _new_ca(now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"datamesh native stack CA {now:%Y-%m-%d %H:%M:%S}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _new_server(
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], hosts: tuple[str, ...], now: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + SERVER_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        # Trino nodes present this certificate to each other too (internal HTTPS), so it serves both ends.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # Unencrypted PKCS#8 ("BEGIN PRIVATE KEY"): what Trino's PEM reader takes without a keystore password.
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
