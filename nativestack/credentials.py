"""The stack's generated credentials: one file per state directory, kept private (mode 0600).

``credentials.json`` holds the S3 server's root credentials and the two
PostgreSQL passwords (the superuser's, set by ``initdb``, and the Iceberg
catalog role's). Each is generated once and kept.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datamesh.errors import StackError
from nativestack.layout import Layout

__all__ = [
    "CatalogCredentials",
    "PrincipalSecrets",
    "S3Credentials",
    "load_catalog_credentials",
    "load_or_create_principal_secrets",
    "load_principal_secrets",
    "write_atomic",
    "load_or_create_catalog_credentials",
    "load_or_create_credentials",
]


@dataclass(frozen=True)
class S3Credentials:
    """The S3 server's root credentials."""

    access_key: str
    secret_key: str = field(repr=False)

    @classmethod
    def generate(cls) -> S3Credentials:
        return cls(access_key="mesh-" + secrets.token_hex(6), secret_key=secrets.token_urlsafe(30))


@dataclass(frozen=True)
class CatalogCredentials:
    """PostgreSQL passwords: the superuser's (administration only) and the catalog role's."""

    superuser_password: str = field(repr=False)
    password: str = field(repr=False)

    @classmethod
    def generate(cls) -> CatalogCredentials:
        # URL-safe characters only: the password goes into connection URIs unquoted.
        return cls(superuser_password=secrets.token_urlsafe(30), password=secrets.token_urlsafe(30))


def _read(layout: Layout) -> dict[str, Any]:
    path = layout.credentials_file
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


def write_atomic(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Replace ``path`` atomically (a reader never sees half a file) with ``mode`` set before any byte is
    written, so a secret is never readable by others, even briefly. Failures are a StackError."""
    payload = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.fchmod(fd, mode)  # also when a stale temporary file existed with another mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StackError(f"Cannot write {path} ({exc.strerror or exc}).") from None


def _write(layout: Layout, data: dict[str, Any]) -> None:
    path = layout.credentials_file
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data))


def load_or_create_credentials(layout: Layout, given: S3Credentials | None) -> S3Credentials:
    """The S3 credentials in ``layout``; with ``given``, or when there are none yet, write new ones first."""
    data = _read(layout)
    if given is None and "access_key" in data and "secret_key" in data:
        return S3Credentials(access_key=data["access_key"], secret_key=data["secret_key"])
    credentials = given or S3Credentials.generate()
    _write(layout, {**data, "access_key": credentials.access_key, "secret_key": credentials.secret_key})
    return credentials


def load_catalog_credentials(layout: Layout) -> CatalogCredentials | None:
    """The PostgreSQL passwords in ``layout``, or None before the first start."""
    data = _read(layout)
    if "postgres_superuser_password" in data and "catalog_password" in data:
        return CatalogCredentials(
            superuser_password=data["postgres_superuser_password"], password=data["catalog_password"]
        )
    return None


def load_or_create_catalog_credentials(layout: Layout) -> CatalogCredentials:
    """The PostgreSQL passwords in ``layout``, generated and written the first time."""
    existing = load_catalog_credentials(layout)
    if existing is not None:
        return existing
    data = _read(layout)
    credentials = CatalogCredentials.generate()
    _write(
        layout,
        {
            **data,
            "postgres_superuser_password": credentials.superuser_password,
            "catalog_password": credentials.password,
        },
    )
    return credentials


@dataclass(frozen=True)
class PrincipalSecrets:
    """One principal's generated secrets: its S3 secret key and PostgreSQL password (service users only), and
    its Trino password. The principal's name is its S3 access key, PostgreSQL role and Trino user."""

    name: str
    trino_password: str = field(repr=False)
    s3_secret_key: str | None = field(default=None, repr=False)
    pg_password: str | None = field(default=None, repr=False)

    @classmethod
    def generate(cls, name: str, *, service: bool) -> PrincipalSecrets:
        # URL-safe characters only: they go into connection URIs and Trino's password file unquoted.
        return cls(
            name=name,
            trino_password=secrets.token_urlsafe(24),
            s3_secret_key=secrets.token_urlsafe(30) if service else None,
            pg_password=secrets.token_urlsafe(30) if service else None,
        )


def load_principal_secrets(layout: Layout) -> dict[str, PrincipalSecrets]:
    """Every principal's secrets recorded in ``layout`` (empty before the first start)."""
    data = _read(layout).get("principals", {})
    return {
        name: PrincipalSecrets(name=name, trino_password=v["trino_password"], s3_secret_key=v.get("s3_secret_key"),
                               pg_password=v.get("pg_password"))
        for name, v in (data.items() if isinstance(data, dict) else ())
    }


def load_or_create_principal_secrets(layout: Layout, services: list[str], people: list[str]) -> dict[str, PrincipalSecrets]:
    """The secrets of the policy's principals, generating (and writing) those missing; kept across restarts.

    Principals no longer in the policy are dropped from the file (their S3 users, roles and Trino logins are
    removed when the stack applies the policy)."""
    existing = load_principal_secrets(layout)
    result: dict[str, PrincipalSecrets] = {}
    for name in services:
        known = existing.get(name)
        result[name] = known if known is not None and known.s3_secret_key else PrincipalSecrets.generate(name, service=True)
    for name in people:
        known = existing.get(name)
        result[name] = known if known is not None and not known.s3_secret_key else PrincipalSecrets.generate(name, service=False)
    if result != existing:
        data = _read(layout)
        data["principals"] = {
            n: {k: v for k, v in (("trino_password", s.trino_password), ("s3_secret_key", s.s3_secret_key),
                                  ("pg_password", s.pg_password)) if v is not None}
            for n, s in result.items()
        }
        _write(layout, data)
    return result
