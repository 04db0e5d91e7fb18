"""Trino's authentication and access control on a native stack: the files it reads, in the state directory.

``stack/trino/etc`` switches on HTTPS, the PASSWORD file authenticator, the
internal shared secret, file-based access control and the file group
provider, and takes every path and secret from ``${ENV:...}`` (:func:`trino_env`).
:func:`prepare` writes what those point to, under ``<home>/trino-security``:

``rules.json``, ``groups.txt``
    rendered from the policy (``datamesh.policy.trino.render_trino``), re-applied on
    every start; Trino reloads both within seconds, also while running.
``password.db``
    one ``user:<PBKDF2 hash>`` line per principal, from the generated Trino
    passwords in ``credentials.json`` (mode 0600). Trino takes bcrypt (``$2y$``,
    cost >= 8) or PBKDF2-HMAC-SHA1 as ``iterations:salt:hash`` in hex (>= 1000
    iterations); PBKDF2 needs no extra dependency. The passwords are 192-bit
    random tokens, so the work factor only has to satisfy Trino; a line is kept
    as is while it still matches its password, so restarts do not churn the file.
``shared-secret``
    ``internal-communication.shared-secret``: nodes sign their requests to each
    other with it (mode 0600, generated once).

TLS material (the stack's CA and Trino's certificate) is in ``<home>/tls``
(:mod:`nativestack.tls`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from datamesh.errors import StackError
from nativestack.credentials import PrincipalSecrets, write_atomic
from nativestack.health import TrinoLogin
from nativestack.layout import Layout
from nativestack.tls import StackTls, ensure_tls

__all__ = [
    "PBKDF2_ITERATIONS", "TrinoSecurity", "ca_file", "load", "pbkdf2_line", "prepare", "security_dir", "tls_dir",
]

PBKDF2_ITERATIONS = 10_000
_HASH_BYTES = 32


def security_dir(layout: Layout) -> Path:
    return layout.home / "trino-security"


def tls_dir(layout: Layout) -> Path:
    return layout.home / "tls"


def ca_file(layout: Layout) -> Path:
    """The stack's CA certificate, which clients trust to reach Trino over HTTPS."""
    return StackTls(tls_dir(layout)).ca_file


@dataclass(frozen=True)
class TrinoSecurity:
    """The files and secret a stack's Trino nodes are started with, and the login of the stack's own probes."""

    directory: Path
    tls: StackTls
    shared_secret: str = field(repr=False)
    login: TrinoLogin

    @property
    def rules_file(self) -> Path:
        return self.directory / "rules.json"

    @property
    def groups_file(self) -> Path:
        return self.directory / "groups.txt"

    @property
    def password_file(self) -> Path:
        return self.directory / "password.db"

    @property
    def shared_secret_file(self) -> Path:
        return self.directory / "shared-secret"

    def env(self) -> dict[str, str]:
        """The ``${ENV:...}`` values of ``stack/trino/etc`` about security (the same on every node)."""
        return {
            "TRINO_KEYSTORE_FILE": str(self.tls.keystore_file),
            "TRINO_CA_FILE": str(self.tls.ca_file),
            "TRINO_SHARED_SECRET": self.shared_secret,
            "TRINO_PASSWORD_FILE": str(self.password_file),
            "TRINO_ACCESS_RULES_FILE": str(self.rules_file),
            "TRINO_GROUPS_FILE": str(self.groups_file),
        }


def pbkdf2_line(user: str, password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """One line of Trino's password file: ``user:iterations:salt:hash``, PBKDF2-HMAC-SHA1, hex."""
    if ":" in user or "\n" in user or "\n" in password:
        raise StackError(f"Trino user name {user!r} cannot go into a password file (':' or a line break).")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, iterations, _HASH_BYTES)
    return f"{user}:{iterations}:{salt.hex()}:{digest.hex()}"


def _matches(line: str, password: str) -> bool:
    try:
        _, iterations, salt, digest = line.split(":")
        expected = bytes.fromhex(digest)
        got = hashlib.pbkdf2_hmac("sha1", password.encode(), bytes.fromhex(salt), int(iterations), len(expected))
    except ValueError:
        return False
    return int(iterations) >= PBKDF2_ITERATIONS and hmac.compare_digest(got, expected)


def _password_file(existing: str, principals: Mapping[str, PrincipalSecrets]) -> str:
    kept = {}
    for line in existing.splitlines():
        user = line.split(":", 1)[0]
        if user in principals and _matches(line, principals[user].trino_password):
            kept[user] = line
    lines = [kept.get(name) or pbkdf2_line(name, s.trino_password) for name, s in sorted(principals.items())]
    return "\n".join(lines) + "\n"


def _shared_secret(path: Path) -> str:
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if len(existing) >= 32:
        return existing
    secret = secrets.token_urlsafe(48)
    write_atomic(path, secret + "\n", 0o600)
    return secret


def prepare(
    layout: Layout, *, rules: str, groups: str, principals: Mapping[str, PrincipalSecrets], platform: str
) -> TrinoSecurity:
    """Write Trino's rules, groups, password file, shared secret and TLS files for the stack in ``layout``.

    ``rules`` and ``groups`` are the rendered files; ``principals`` every identity's generated secrets (each
    becomes a Trino login); ``platform`` the principal the stack's own probes log in as.
    """
    if platform not in principals:
        raise StackError(f"The platform principal '{platform}' has no generated Trino password in "
                         f"{layout.credentials_file}; known: {', '.join(sorted(principals)) or 'none'}.")
    directory = security_dir(layout)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    tls = ensure_tls(tls_dir(layout))
    security = TrinoSecurity(directory, tls, _shared_secret(directory / "shared-secret"),
                             TrinoLogin(platform, principals[platform].trino_password, tls.ca_file))
    try:
        existing = security.password_file.read_text()
    except FileNotFoundError:
        existing = ""
    wanted = _password_file(existing, principals)
    if wanted != existing:
        write_atomic(security.password_file, wanted, 0o600)
    for path, text in ((security.rules_file, rules), (security.groups_file, groups)):
        if not path.is_file() or path.read_text() != text:
            write_atomic(path, text, 0o600)
    return security


def load(layout: Layout, principals: Mapping[str, PrincipalSecrets], platform: str) -> TrinoSecurity | None:
    """What :func:`prepare` wrote for ``layout``, without changing anything; None before the first start."""
    directory = security_dir(layout)
    tls = StackTls(tls_dir(layout))
    try:
        secret = (directory / "shared-secret").read_text().strip()
    except FileNotFoundError:
        return None
    if platform not in principals or not tls.ca_file.is_file():
        return None
    return TrinoSecurity(directory, tls, secret, TrinoLogin(platform, principals[platform].trino_password,
                                                            tls.ca_file))
