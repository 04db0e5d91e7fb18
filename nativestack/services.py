"""What runs: the settings a stack was started with, and the service definitions built from them.

One S3 server (versitygw, ``posix`` backend), one PostgreSQL server (the
Iceberg JDBC catalog, see ``nativestack.postgres``) and a Trino coordinator plus
``len(worker_ports)`` workers, configured by ``stack/trino/etc`` whose
``${ENV:...}`` values are set here. Trino serves HTTPS only, on each node's
port, with password logins and the policy's access rules
(:mod:`nativestack.trino_security`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from datamesh.errors import StackError
from nativestack import postgres
from nativestack.artifacts import Installation
from nativestack.credentials import CatalogCredentials, PrincipalSecrets, S3Credentials
from nativestack.defaults import HOST, STACK_DIR
from nativestack.health import s3_healthy, trino_health_check
from nativestack.layout import Layout
from nativestack.postgres import POSTGRES_SERVICE
from nativestack.trino_security import TrinoSecurity

__all__ = [
    "COORDINATOR_SERVICE",
    "POSTGRES_SERVICE",
    "S3_SERVICE",
    "Service",
    "StackState",
    "program_of",
    "services_for",
    "stop_signal_of",
    "trino_env",
    "worker_name",
]


S3_SERVICE = "s3"
COORDINATOR_SERVICE = "trino-coordinator"


def worker_name(index: int) -> str:
    """The service name of the ``index``-th Trino worker (from 1)."""
    return f"trino-worker-{index}"


def program_of(name: str) -> str:
    """A substring of the command line of service ``name``, to recognise its pid without a cache path."""
    if name == POSTGRES_SERVICE:
        return "bin/postgres"
    return "versitygw" if name == S3_SERVICE else "trino"


def stop_signal_of(name: str) -> tuple[int, bool]:
    """The signal that stops service ``name`` and whether it goes to the whole process group.

    PostgreSQL: SIGINT (fast shutdown) to the postmaster alone, which ends its
    backends itself; the others: SIGTERM to the group.
    """
    if name == POSTGRES_SERVICE:
        return signal.SIGINT, False
    return signal.SIGTERM, True


@dataclass
class Service:
    """One background process to launch and probe."""

    name: str
    url: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    program: str  # a substring of the running process' command line
    healthy: Callable[[], bool]
    process: subprocess.Popen[bytes] | None = None
    log_offset: int = 0
    user: int | None = None  # uid/gid to run as (PostgreSQL when we are root)
    group: int | None = None


@dataclass(frozen=True)
class StackState:
    """What ``start`` recorded in ``stack.json``."""

    s3_port: int
    postgres_port: int
    trino_port: int
    worker_ports: tuple[int, ...]
    bucket: str
    region: str
    java_home: str
    cache_dir: str

    @classmethod
    def load(cls, path: Path) -> StackState | None:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            data["worker_ports"] = tuple(data["worker_ports"])
            return cls(**data)
        except (FileNotFoundError, ValueError, TypeError, KeyError):
            return None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    def service_names(self) -> list[str]:
        workers = (worker_name(i) for i in range(1, len(self.worker_ports) + 1))
        return [S3_SERVICE, POSTGRES_SERVICE, COORDINATOR_SERVICE, *workers]

    @property
    def warehouse(self) -> str:
        """Where new Iceberg tables go: ``s3://<bucket>/warehouse``."""
        return f"s3://{self.bucket}/{postgres.WAREHOUSE_PREFIX}"


def trino_env(state: StackState, engine: PrincipalSecrets, security: TrinoSecurity) -> dict[str, str]:
    """The ``${ENV:...}`` values of ``stack/trino/etc`` common to every node (without ``os.environ``).

    Trino reaches S3 and the catalog as the policy's engine identity (``engine``): read-only on both, so
    nothing can change through Trino whatever its access rules say."""
    if not (engine.s3_secret_key and engine.pg_password):
        raise StackError(f"Trino's engine identity '{engine.name}' has no S3 or catalog keys; start the stack again.")
    return {
        "LAKE_S3_ENDPOINT": f"http://{HOST}:{state.s3_port}",
        "LAKE_S3_REGION": state.region,
        "LAKE_S3_ACCESS_KEY": engine.name,
        "LAKE_S3_SECRET_KEY": engine.s3_secret_key,
        "LAKE_CATALOG_JDBC_URL": f"jdbc:postgresql://{HOST}:{state.postgres_port}/{postgres.CATALOG_DATABASE}",
        "LAKE_CATALOG_USER": engine.name,
        "LAKE_CATALOG_PASSWORD": engine.pg_password,
        "LAKE_WAREHOUSE_DIR": state.warehouse,
        "TRINO_DISCOVERY_URI": f"https://{HOST}:{state.trino_port}",
        "TRINO_INCLUDE_COORDINATOR": "false" if state.worker_ports else "true",
        **security.env(),
    }


def services_for(
    state: StackState,
    layout: Layout,
    inst: Installation,
    credentials: S3Credentials,
    catalog: CatalogCredentials,
    postgres_bins: Path,
    postgres_account: postgres.Account,
    *,
    trino_security: TrinoSecurity,
    engine: PrincipalSecrets,
) -> list[Service]:
    """The S3 server first, then PostgreSQL, then the Trino coordinator, then the workers.

    ``trino_security`` (:func:`nativestack.trino_security.prepare`) gives Trino its TLS files, password file,
    access rules and shared secret, and the probes their login.
    """
    s3_url = f"http://{HOST}:{state.s3_port}"
    s3 = Service(
        name=S3_SERVICE,
        url=s3_url,
        argv=[
            str(inst.versitygw),
            "--port",
            f"{HOST}:{state.s3_port}",
            "--region",
            state.region,
            "--iam-dir",
            str(layout.s3_iam),
            "posix",
            # Metadata in a sidecar folder instead of extended attributes:
            # works on file systems without user xattrs (tmpfs, some overlays).
            "--sidecar",
            str(layout.s3_meta),
            str(layout.s3_data),
        ],
        env={**os.environ, "ROOT_ACCESS_KEY": credentials.access_key, "ROOT_SECRET_KEY": credentials.secret_key},
        cwd=layout.home,
        program=str(inst.versitygw),
        healthy=lambda: s3_healthy(s3_url),
    )
    pg = Service(
        name=POSTGRES_SERVICE,
        url=f"postgresql://{HOST}:{state.postgres_port}",
        argv=postgres.server_argv(layout, postgres_bins, state.postgres_port),
        env=postgres.server_env(),
        cwd=layout.postgres_dir,
        program=str(postgres_bins / "postgres"),
        healthy=lambda: postgres.accepting(postgres_bins, state.postgres_port),
        user=postgres_account.user,
        group=postgres_account.group,
    )
    common_env = {**os.environ, **trino_env(state, engine, trino_security)}
    nodes: list[tuple[str, int, bool]] = [(COORDINATOR_SERVICE, state.trino_port, True)]
    nodes += [(worker_name(i), port, False) for i, port in enumerate(state.worker_ports, start=1)]
    services = [s3, pg]
    for name, port, is_coordinator in nodes:
        url = f"https://{HOST}:{port}"
        node_env = {
            **common_env,
            "TRINO_COORDINATOR": "true" if is_coordinator else "false",
            "TRINO_HTTPS_PORT": str(port),
            "TRINO_NODE_ID": name,
        }
        data_dir = layout.trino_data(name)
        services.append(
            Service(
                name=name,
                url=url,
                argv=[
                    str(inst.trino_launcher),
                    "run",
                    f"--etc-dir={STACK_DIR / 'trino' / 'etc'}",
                    f"--data-dir={data_dir}",
                    f"--jvm-dir={state.java_home}",
                    f"-Dnode.bind-ip={HOST}",
                    f"-Dnode.internal-address={HOST}",
                ],
                env=node_env,
                cwd=layout.home,
                program=str(inst.trino_home),
                healthy=trino_health_check(name, url, state.trino_port, is_coordinator,
                                           login=trino_security.login),
            )
        )
    return services
