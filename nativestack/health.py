"""Health probes: when the S3 server serves and when Trino can schedule work on a node.

Trino serves HTTPS only, with the stack's own CA: ``/v1/info`` answers without a
login, the node list needs one (the platform's, :class:`TrinoLogin`).
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nativestack.defaults import HOST

__all__ = [
    "NODE_MAP_REFRESH_SECONDS",
    "TrinoLogin",
    "http_get",
    "s3_healthy",
    "trino_active_node_ids",
    "trino_health_check",
    "trino_node_ready",
]

NODE_MAP_REFRESH_SECONDS = 6.0
"""How long a Trino node must have been listed as active before it counts as healthy."""


@dataclass(frozen=True)
class TrinoLogin:
    """Who the stack's own probes log into Trino as, and the CA that signed Trino's certificate."""

    user: str
    password: str = field(repr=False)
    ca_file: Path


def http_get(
    url: str, timeout: float = 2.0, headers: Mapping[str, str] | None = None, ca_file: Path | None = None
) -> tuple[int, bytes] | None:
    """``(status, body)``, or None when nothing answers (or, over https, the certificate is not ``ca_file``'s)."""
    request = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310 - 127.0.0.1 only
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file is not None else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return None


def s3_healthy(url: str) -> bool:
    """Whether the S3 server at ``url`` answers at all."""
    # Any S3 answer (403 for an anonymous request) proves the server is serving.
    return http_get(url + "/") is not None


def trino_node_ready(url: str, ca_file: Path | None = None) -> bool:
    """Whether the Trino node at ``url`` answers ``/v1/info`` (no login needed) and has finished starting."""
    answer = http_get(url + "/v1/info", ca_file=ca_file)
    if answer is None or answer[0] != 200:
        return False
    try:
        return json.loads(answer[1]).get("starting") is False
    except ValueError:
        return False


def trino_active_node_ids(host: str, port: int, login: TrinoLogin | None = None) -> set[str] | None:
    """Node ids the coordinator lists as active in ``system.runtime.nodes``, or None.

    A real query, so "healthy" means the coordinator can schedule on the node
    (the failure detector alone sees a worker seconds earlier).
    """
    import trino  # a platform dependency; imported lazily to keep this module light

    if login is None:
        options: dict[str, Any] = {"user": "datamesh-stack", "http_scheme": "http"}
    else:
        from datamesh.trino import trino_session  # one CA-pinned session for the platform and the probes

        options = {"user": login.user, "http_scheme": "https", "http_session": trino_session(login.ca_file),
                   "auth": trino.auth.BasicAuthentication(login.user, login.password)}
    try:
        with trino.dbapi.connect(host=host, port=port, request_timeout=15, **options) as connection:
            cursor = connection.cursor()
            cursor.execute("SELECT node_id FROM system.runtime.nodes WHERE state = 'active'")
            return {str(row[0]) for row in cursor.fetchall()}
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return None


def trino_health_check(
    name: str,
    url: str,
    coordinator_port: int,
    is_coordinator: bool,
    settle_seconds: float = NODE_MAP_REFRESH_SECONDS,
    login: TrinoLogin | None = None,
) -> Callable[[], bool]:
    """A probe for the Trino node ``name`` at ``url``, which remembers when the node was first listed.

    With ``login`` (a stack serving HTTPS with password logins) the probes use
    https with the login's CA and log in; without it, plain http and no login.
    """
    # Coordinator and workers alike: healthy once the coordinator lists the node as active,
    # i.e. it can schedule on it. /v1/info alone answers seconds earlier, and a first
    # query in that window fails with NO_NODES_AVAILABLE.
    # The coordinator's node scheduler caches its node map for 5 s, so a node is only
    # schedulable a few seconds after it is listed: wait that long after first seeing it.
    first_seen: list[float] = []

    def worker_ready() -> bool:
        if not trino_node_ready(url, login.ca_file if login else None):
            return False
        active = trino_active_node_ids(HOST, coordinator_port, login)
        if active is None or name not in active:
            return False
        if not first_seen:
            first_seen.append(time.monotonic())
        return time.monotonic() - first_seen[0] >= settle_seconds

    return worker_ready
