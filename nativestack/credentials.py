"""The S3 server's root credentials: generated once per state directory, kept private (mode 0600)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field

from nativestack.layout import Layout

__all__ = ["S3Credentials", "load_or_create_credentials"]


@dataclass(frozen=True)
class S3Credentials:
    """The S3 server's root credentials."""

    access_key: str
    secret_key: str = field(repr=False)

    @classmethod
    def generate(cls) -> S3Credentials:
        return cls(access_key="mesh-" + secrets.token_hex(6), secret_key=secrets.token_urlsafe(30))


def load_or_create_credentials(layout: Layout, given: S3Credentials | None) -> S3Credentials:
    """The credentials in ``layout``; with ``given``, or when there are none yet, write new ones first."""
    path = layout.credentials_file
    if given is None and path.is_file():
        data = json.loads(path.read_text())
        return S3Credentials(access_key=data["access_key"], secret_key=data["secret_key"])
    credentials = given or S3Credentials.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"access_key": credentials.access_key, "secret_key": credentials.secret_key}, handle)
    os.chmod(path, 0o600)
    return credentials
