"""The stack's credentials file: every identity's credentials, for ``MESH_CREDENTIALS_FILE``.

``identities.json`` in the state directory (mode 0600) maps each ``MESH_ACTOR``
value (``platform``, ``analyst``, ``publisher:<domain>``) to its service user's
S3 keys, catalog URI (its own PostgreSQL role) and Trino login. The platform
settings take the acting identity's entry (``datamesh.settings``), so
``MESH_ACTOR`` alone selects the credentials, and the orchestrator, which holds
this file, can run each step as the domain that owns it. People's Trino
passwords are in ``people.json`` beside it (for handing out, never read by the
platform).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datamesh.errors import StackError
from nativestack import postgres
from nativestack.credentials import write_atomic
from nativestack.layout import Layout

if TYPE_CHECKING:
    from nativestack.lifecycle import StackEndpoints

__all__ = ["SECRET_VARIABLES", "credentials_entries", "credentials_path", "public_env", "write_credentials_files"]

FORMAT = "mesh-credentials/1"


def credentials_entries(ep: StackEndpoints) -> dict[str, dict[str, str]]:
    """``MESH_ACTOR`` -> the credentials of the service user it acts as."""
    entries: dict[str, dict[str, str]] = {}
    for actor, name in sorted(ep.actors.items()):
        secrets = ep.principals[name]
        entry = {"principal": name, "trino_user": name, "trino_password": secrets.trino_password}
        if secrets.s3_secret_key:
            entry.update(s3_access_key_id=name, s3_secret_access_key=secrets.s3_secret_key)
        if secrets.pg_password:
            entry["iceberg_catalog_uri"] = postgres.sqlalchemy_uri(
                ep.catalog_host, ep.catalog_port, ep.catalog_database, name, secrets.pg_password
            )
        entries[actor] = entry
    return entries


def _private_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def credentials_path(layout: Layout) -> Path:
    """Where a stack keeps its identities file."""
    return layout.home / "identities.json"


def write_credentials_files(layout: Layout, ep: StackEndpoints) -> Path:
    """Write ``identities.json`` (and ``people.json``) privately; returns the identities file's path."""
    path = credentials_path(layout)
    entries = credentials_entries(ep)
    _private_json(path, {"format": FORMAT, "identities": entries})
    one_each = path.with_name("identities.d")  # what to hand to one identity: its own entry, nothing else
    one_each.mkdir(mode=0o700, exist_ok=True)
    os.chmod(one_each, 0o700)
    for actor, entry in entries.items():
        _private_json(one_each / f"{actor.replace(':', '-')}.json", {"format": FORMAT, "identities": {actor: entry}})
    services = set(ep.actors.values())
    people = {n: {"trino_user": n, "trino_password": s.trino_password}
              for n, s in sorted(ep.principals.items()) if n not in services and not s.s3_secret_key}
    _private_json(layout.home / "people.json", {"format": FORMAT, "people": people})
    return path


#: The ``MESH_*`` variables that hold secrets: never printed by ``env``.
SECRET_VARIABLES = frozenset({"MESH_S3_ACCESS_KEY_ID", "MESH_S3_SECRET_ACCESS_KEY", "MESH_ICEBERG_CATALOG_URI",
                              "MESH_TRINO_USER", "MESH_TRINO_PASSWORD"})


def public_env(ep: StackEndpoints, actor: str = "platform") -> dict[str, str]:
    """The ``MESH_*`` variables for ``actor`` without any secret: the credentials come from the stack's private
    credentials file (``MESH_CREDENTIALS_FILE``), selected by ``MESH_ACTOR``."""
    if not ep.credentials_file:
        raise StackError("This stack has no credentials file yet: start it again (python -m nativestack up).")
    return {k: v for k, v in ep.as_settings_env(actor).items() if k not in SECRET_VARIABLES}
