"""The native stack's Trino security files: the CA and server certificate, the password file, the shared secret."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509

from datamesh.errors import StackError
from nativestack import trino_security
from nativestack.credentials import PrincipalSecrets
from nativestack.layout import Layout
from nativestack.tls import SERVER_VALIDITY, ensure_tls


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_tls_files_are_made_once_private_and_chain_to_the_ca(tmp_path: Path) -> None:
    tls = ensure_tls(tmp_path / "tls")
    assert mode(tls.ca_key_file) == mode(tls.keystore_file) == 0o600 and mode(tls.directory) == 0o700
    assert mode(tls.ca_file) == 0o644
    pem = tls.keystore_file.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # unencrypted PKCS#8: what Trino's PEM reader takes
    server, ca = x509.load_pem_x509_certificates(pem)
    assert ca == x509.load_pem_x509_certificate(tls.ca_file.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n) for n in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    before = {p.name: p.read_bytes() for p in tls.directory.iterdir()}
    ensure_tls(tmp_path / "tls")
    assert {p.name: p.read_bytes() for p in tls.directory.iterdir()} == before  # reused across restarts


def test_a_server_certificate_close_to_expiry_is_renewed_under_the_same_ca(tmp_path: Path) -> None:
    tls = ensure_tls(tmp_path / "tls")
    ca, keystore = tls.ca_file.read_bytes(), tls.keystore_file.read_bytes()
    later = dt.datetime.now(dt.UTC) + SERVER_VALIDITY - dt.timedelta(days=10)
    ensure_tls(tmp_path / "tls", now=later)
    assert tls.ca_file.read_bytes() == ca  # clients keep trusting the same ca.pem
    assert tls.keystore_file.read_bytes() != keystore


def test_a_lost_ca_key_makes_a_new_ca_and_certificate(tmp_path: Path) -> None:
    tls = ensure_tls(tmp_path / "tls")
    ca = tls.ca_file.read_bytes()
    tls.ca_key_file.unlink()
    ensure_tls(tmp_path / "tls")
    assert tls.ca_file.read_bytes() != ca
    server, _ = x509.load_pem_x509_certificates(tls.keystore_file.read_bytes())
    server.verify_directly_issued_by(x509.load_pem_x509_certificate(tls.ca_file.read_bytes()))


def test_a_client_trusting_the_ca_completes_a_handshake_with_the_keystore(tmp_path: Path) -> None:
    tls = ensure_tls(tmp_path / "tls")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tls.keystore_file)
    client_ctx = ssl.create_default_context(cafile=str(tls.ca_file))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
                tls_conn.sendall(b"ok")

        for host in ("127.0.0.1", "localhost"):  # the names in the certificate
            thread = threading.Thread(target=serve, daemon=True)
            thread.start()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                    client_ctx.wrap_socket(raw, server_hostname=host) as conn:
                assert conn.recv(2) == b"ok"
            thread.join(timeout=10)


def test_password_lines_are_what_trinos_pbkdf2_check_accepts() -> None:
    line = trino_security.pbkdf2_line("analyst", "s3cret", salt=bytes(range(16)))
    user, iterations, salt, digest = line.split(":")
    assert user == "analyst" and int(iterations) >= 1000  # Trino's minimum
    assert salt == salt.lower() and digest == digest.lower()  # Trino decodes lower-case hex
    # Trino: PBKDF2WithHmacSHA1, key length = the stored hash's length.
    expected = hashlib.pbkdf2_hmac("sha1", b"s3cret", bytes.fromhex(salt), int(iterations), len(bytes.fromhex(digest)))
    assert expected.hex() == digest
    with pytest.raises(StackError, match="password file"):
        trino_security.pbkdf2_line("a:b", "x")


def secrets_for(*names: str) -> dict[str, PrincipalSecrets]:
    return {n: PrincipalSecrets.generate(n, service=n.startswith(("svc_", "mesh_"))) for n in names}


def test_prepare_writes_private_files_and_keeps_what_did_not_change(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    principals = secrets_for("mesh_platform", "analyst", "dana")
    first = trino_security.prepare(layout, rules="{}\n", groups="# g\n", principals=principals,
                                   platform="mesh_platform")
    for path in (first.password_file, first.shared_secret_file, first.rules_file, first.groups_file):
        assert mode(path) == 0o600, path
    lines = first.password_file.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["analyst", "dana", "mesh_platform"]
    assert all(principals[line.split(":")[0]].trino_password not in line for line in lines)
    assert first.login.user == "mesh_platform" and first.login.ca_file == first.tls.ca_file
    assert first.login.password not in repr(first) and first.shared_secret not in repr(first)
    env = first.env()
    assert env["TRINO_SHARED_SECRET"] == first.shared_secret and len(first.shared_secret) >= 32
    assert {Path(env[k]) for k in ("TRINO_PASSWORD_FILE", "TRINO_ACCESS_RULES_FILE", "TRINO_GROUPS_FILE")} == {
        first.password_file, first.rules_file, first.groups_file}

    again = trino_security.prepare(layout, rules='{"tables": []}\n', groups="# g\n",
                                   principals={**principals, "alice": PrincipalSecrets.generate("alice", service=False)},
                                   platform="mesh_platform")
    assert again.shared_secret == first.shared_secret
    assert again.rules_file.read_text() == '{"tables": []}\n'
    new_lines = again.password_file.read_text().splitlines()
    assert set(lines) < set(new_lines) and len(new_lines) == 4  # unchanged logins keep their line (no churn)
    assert trino_security.load(layout, principals, "mesh_platform") == again


def test_prepare_refuses_a_platform_without_a_password(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="'mesh_platform' has no generated Trino password"):
        trino_security.prepare(Layout(tmp_path), rules="{}", groups="", principals=secrets_for("analyst"),
                               platform="mesh_platform")
