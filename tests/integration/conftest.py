"""Session fixtures for integration tests: the native stack (S3 server, PostgreSQL, Trino).

``native_stack`` starts versitygw, PostgreSQL and a single-node Trino once per test
session, in a temporary state directory on free ports, and stops them at the
end. The first run on a machine fetches the pinned artifacts (a few minutes);
later runs use the cache (``MESH_STACK_CACHE``).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import trino
from pyarrow import fs as pafs

import nativestack
from nativestack import StackEndpoints

STACK_START_TIMEOUT_S = 300.0


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on the loopback interface."""
    with ExitStack() as sockets:
        ports = []
        for _ in range(count):
            sock = sockets.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((nativestack.HOST, 0))
            ports.append(sock.getsockname()[1])
    return ports


def s3_filesystem(endpoints: StackEndpoints, *, secret_key: str | None = None) -> pafs.S3FileSystem:
    """A pyarrow S3 file system for a running stack (optionally with another secret)."""
    return pafs.S3FileSystem(
        access_key=endpoints.access_key,
        secret_key=endpoints.secret_key if secret_key is None else secret_key,
        endpoint_override=endpoints.s3_endpoint,
        scheme="http",
        region=endpoints.region,
        allow_bucket_creation=False,
        allow_bucket_deletion=False,
    )


def trino_connection(endpoints: StackEndpoints, actor: str = "platform") -> trino.dbapi.Connection:
    """A Trino DB-API connection to a running stack's coordinator, catalog ``lake``, as ``actor``'s identity.

    Over https, trusting the stack's own CA, with the identity's generated password (``actor`` is a
    ``MESH_ACTOR`` value or a principal's name, e.g. a person's).
    """
    from datamesh.trino import trino_session

    user = endpoints.actors.get(actor, actor)
    return trino.dbapi.connect(
        host=endpoints.trino_host,
        port=endpoints.trino_port,
        user=user,
        catalog=endpoints.trino_catalog,
        http_scheme=endpoints.trino_scheme,
        auth=trino.auth.BasicAuthentication(user, endpoints.principals[user].trino_password),
        http_session=trino_session(endpoints.trino_ca_file) if endpoints.trino_ca_file else None,
    )


@pytest.fixture(scope="session")
def native_stack_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state directory of the session's native stack."""
    return tmp_path_factory.mktemp("native-stack")


@pytest.fixture(scope="session")
def native_stack(native_stack_home: Path) -> Iterator[StackEndpoints]:
    """S3 server + PostgreSQL (Iceberg catalog) + single-node Trino, started once per session."""
    s3_port, trino_port, postgres_port = free_ports(3)
    try:
        endpoints = nativestack.start(
            home=native_stack_home,
            s3_port=s3_port,
            trino_port=trino_port,
            postgres_port=postgres_port,
            timeout=STACK_START_TIMEOUT_S,
        )
    except BaseException:
        nativestack.stop(native_stack_home)
        raise
    try:
        yield endpoints
    finally:
        nativestack.stop(native_stack_home)


@pytest.fixture(scope="session")
def lake_fs(native_stack: StackEndpoints) -> pafs.S3FileSystem:
    """pyarrow S3 file system on the session stack's S3 server."""
    return s3_filesystem(native_stack)


@pytest.fixture()
def trino_cursor(native_stack: StackEndpoints) -> Iterator[trino.dbapi.Cursor]:
    """A cursor on the session stack's Trino coordinator (catalog ``lake``)."""
    connection = trino_connection(native_stack)
    try:
        yield connection.cursor()
    finally:
        connection.close()


@pytest.fixture()
def unique_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix no other test uses, e.g. ``tests/test_range_read-1a2b3c4d``."""
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in request.node.name)[:60]
    return f"tests/{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def pipeline(native_stack: StackEndpoints, native_stack_home: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The whole demo pipeline on the stack's S3 lake, each step as the identity that owns it.

    The orchestrator holds the stack's credentials file (MESH_CREDENTIALS_FILE) and acts as the platform;
    each source, mart and model step publishes with its owning domain's own S3, catalog and Trino
    credentials, so the storage layer would refuse a step writing outside its domain.
    """
    from datamesh.platform import Mesh
    from datamesh.settings import get_settings
    from orchestration.demo import run_demo

    work = tmp_path_factory.mktemp("pipeline")
    root = f"pipeline-{uuid.uuid4().hex[:8]}"
    nativestack.grant_lake_root(native_stack_home, root)
    mp = pytest.MonkeyPatch()
    for key, value in native_stack.as_settings_env("platform").items():
        mp.setenv(key, value)
    mp.setenv("MESH_LAKE_URL", f"s3://{native_stack.bucket}/{root}")
    mp.setenv("MESH_DBT_DUCKDB_PATH", str(work / "dbt.duckdb"))
    mp.setenv("MESH_DBT_STAGING_DIR", str(work / "staging"))
    get_settings.cache_clear()
    try:  # the environment only while the pipeline runs: a session fixture must not leak it into later tests
        summary = run_demo(customers=1500, seed=11, progress=lambda m: None, dagster_home=work / "dagster")
        mesh = Mesh.from_settings()
    finally:
        mp.undo()
        get_settings.cache_clear()
    return summary, mesh
