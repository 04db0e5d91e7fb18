"""Start, stop and inspect a native stack, and what clients need to reach it.

Start order: S3 and PostgreSQL, then the lake bucket, the catalog role and
database and pyiceberg's catalog tables, then Trino (its Iceberg catalog needs
those tables). Stop order: Trino, PostgreSQL, S3.

``start()`` fetches missing artifacts, launches the services in the
background and waits until each is healthy; ``stop()`` and ``status()`` find
them again from the state directory, from any process.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from datamesh.errors import StackError
from nativestack import iam, identities, postgres, trino_security
from nativestack.artifacts import Installation, fetch
from nativestack.credentials import (
    CatalogCredentials,
    PrincipalSecrets,
    S3Credentials,
    load_catalog_credentials,
    load_or_create_catalog_credentials,
    load_or_create_credentials,
    load_or_create_principal_secrets,
    load_principal_secrets,
)
from nativestack.defaults import (
    DEFAULT_BUCKET,
    DEFAULT_POSTGRES_PORT,
    DEFAULT_REGION,
    DEFAULT_S3_PORT,
    DEFAULT_TRINO_PORT,
    ENV_JAVA_HOME,
    HOST,
    Echo,
    default_cache_dir,
    default_home,
    default_java_home,
    print_progress,
)
from nativestack.health import s3_healthy, trino_health_check
from nativestack.layout import Layout
from nativestack.processes import file_lock, log_tail, port_free, read_pid, spawn, terminate
from nativestack.services import (
    COORDINATOR_SERVICE,
    POSTGRES_SERVICE,
    S3_SERVICE,
    Service,
    StackState,
    program_of,
    services_for,
    stop_signal_of,
    worker_name,
)

if TYPE_CHECKING:
    from datamesh.policy import Policy

__all__ = [
    "ServiceStatus",
    "StackEndpoints",
    "StackStatus",
    "endpoints",
    "start",
    "status",
    "stop",
    "wait_healthy",
]

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class StackEndpoints:
    """Everything a client needs to reach a running stack.

    ``access_key``/``secret_key`` and ``catalog_user``/``catalog_password`` are the *platform* service user's
    (its own S3 user and PostgreSQL role); the S3 root account and the catalog tables' owner ``lake`` stay
    inside the stack (``credentials.json``) for administration. Every other identity's secrets are in
    ``principals``; :meth:`as_settings_env` gives the settings of any ``MESH_ACTOR``.
    """

    s3_endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str
    bucket: str
    trino_host: str
    trino_port: int
    catalog_host: str
    catalog_port: int
    catalog_database: str
    catalog_user: str
    catalog_password: str = field(repr=False)
    trino_catalog: str = "lake"
    #: Every principal's generated secrets (policy name -> secrets); empty for a stack without a policy.
    principals: Mapping[str, PrincipalSecrets] = field(default_factory=dict, repr=False)
    #: MESH_ACTOR value -> the principal it acts as ("platform" -> "mesh_platform", "publisher:crm" -> "svc_crm").
    actors: Mapping[str, str] = field(default_factory=dict)
    trino_scheme: str = "http"
    trino_ca_file: str | None = None  # the stack's CA (PEM) when Trino serves https
    #: The private file of every identity's credentials (``MESH_CREDENTIALS_FILE``), written by ``start``.
    credentials_file: str | None = None

    @property
    def trino_url(self) -> str:
        return f"{self.trino_scheme}://{self.trino_host}:{self.trino_port}"

    def principal_of(self, actor: str) -> str:
        """The principal a ``MESH_ACTOR`` value acts as on this stack."""
        try:
            return self.actors[actor]
        except KeyError:
            raise StackError(
                f"No identity for MESH_ACTOR={actor!r} on this stack; known: {', '.join(sorted(self.actors))}."
            ) from None

    @property
    def lake_url(self) -> str:
        return f"s3://{self.bucket}/"

    @property
    def iceberg_catalog_uri(self) -> str:
        """The Iceberg catalog's database for pyiceberg's ``SqlCatalog``, as the platform's own role."""
        return postgres.sqlalchemy_uri(
            self.catalog_host, self.catalog_port, self.catalog_database, self.catalog_user, self.catalog_password
        )

    @property
    def iceberg_catalog_name(self) -> str:
        """The name to give ``SqlCatalog`` (Trino's ``iceberg.jdbc-catalog.catalog-name``)."""
        return postgres.ICEBERG_CATALOG_NAME

    @property
    def iceberg_warehouse(self) -> str:
        """Where new Iceberg tables go."""
        return f"s3://{self.bucket}/{postgres.WAREHOUSE_PREFIX}"

    def iceberg_s3_properties(self) -> dict[str, str]:
        """pyiceberg's FileIO properties for the stack's S3 server."""
        return {
            "s3.endpoint": self.s3_endpoint,
            "s3.access-key-id": self.access_key,
            "s3.secret-access-key": self.secret_key,
            "s3.region": self.region,
        }

    def as_settings_env(self, actor: str = "platform") -> dict[str, str]:
        """The ``MESH_*`` variables that point the platform settings at this stack, acting as ``actor``.

        ``actor`` is a ``MESH_ACTOR`` value (``platform``, ``analyst``, ``publisher:<domain>``): the S3 keys,
        the catalog URI (its own PostgreSQL role) and the Trino login are those of the service user it acts as.
        """
        name = self.principal_of(actor)
        secrets = self.principals[name]
        if not (secrets.s3_secret_key and secrets.pg_password):
            raise StackError(f"'{name}' (MESH_ACTOR={actor}) is not a service user: it has no S3 or catalog keys.")
        env = {
            "MESH_ACTOR": actor,
            "MESH_LAKE_URL": self.lake_url,
            "MESH_S3_ENDPOINT_URL": self.s3_endpoint,
            "MESH_S3_ACCESS_KEY_ID": name,
            "MESH_S3_SECRET_ACCESS_KEY": secrets.s3_secret_key,
            "MESH_S3_REGION": self.region,
            "MESH_TRINO_HOST": self.trino_host,
            "MESH_TRINO_PORT": str(self.trino_port),
            "MESH_TRINO_CATALOG": self.trino_catalog,
            "MESH_ICEBERG_CATALOG_URI": postgres.sqlalchemy_uri(
                self.catalog_host, self.catalog_port, self.catalog_database, name, secrets.pg_password
            ),
        }
        # -- Trino login (the Trino helper's part: https, the generated password, the stack's CA) -------------
        env["MESH_TRINO_USER"] = name
        env["MESH_TRINO_SCHEME"] = self.trino_scheme
        if self.trino_scheme == "https":  # Trino accepts passwords over https only
            env["MESH_TRINO_PASSWORD"] = secrets.trino_password
        if self.trino_ca_file:
            env["MESH_TRINO_CA_FILE"] = self.trino_ca_file
        # -- end of the Trino login ----------------------------------------------------------------------------
        if self.credentials_file:
            env["MESH_CREDENTIALS_FILE"] = self.credentials_file_for(actor)
        return env

    def credentials_file_for(self, actor: str) -> str:
        """The credentials file to hand to ``actor``: the platform's (the orchestrator runs each step as its
        owner) holds every identity; any other actor's holds its own entry only."""
        if not self.credentials_file:
            raise StackError("This stack has no credentials file yet: start it again (python -m nativestack up).")
        if self.principal_of(actor) == self.actors.get("platform"):
            return self.credentials_file
        return str(Path(self.credentials_file).with_name("identities.d") / f"{actor.replace(':', '-')}.json")


@dataclass(frozen=True)
class ServiceStatus:
    """One background process of the stack."""

    name: str
    url: str
    pid: int | None
    running: bool
    healthy: bool
    log_file: Path


@dataclass(frozen=True)
class StackStatus:
    """The state of every service recorded in a state directory."""

    home: Path
    services: tuple[ServiceStatus, ...]

    @property
    def running(self) -> bool:
        return bool(self.services) and all(s.running and s.healthy for s in self.services)

    def describe(self) -> str:
        if not self.services:
            return f"no stack recorded in {self.home}"
        lines = [f"stack in {self.home}:"]
        for s in self.services:
            state = "healthy" if s.running and s.healthy else ("starting/unhealthy" if s.running else "stopped")
            lines.append(f"  {s.name:<20} {state:<18} pid={s.pid or '-':<8} {s.url}  log={s.log_file}")
        return "\n".join(lines)


def start(
    workers: int = 0,
    *,
    home: Path | None = None,
    cache_dir: Path | None = None,
    s3_port: int = DEFAULT_S3_PORT,
    trino_port: int = DEFAULT_TRINO_PORT,
    worker_ports: Sequence[int] | None = None,
    postgres_port: int = DEFAULT_POSTGRES_PORT,
    bucket: str = DEFAULT_BUCKET,
    region: str = DEFAULT_REGION,
    credentials: S3Credentials | None = None,
    java_home: Path | None = None,
    timeout: float = 180.0,
    echo: Echo = print_progress,
    policy: Policy | None = None,
) -> StackEndpoints:
    """Start the S3 server, PostgreSQL and Trino (coordinator + ``workers`` workers) in the background.

    Fetches missing artifacts first, creates ``bucket``, the Iceberg catalog's
    role, database and tables, and waits until every service is healthy (each
    phase at most ``timeout`` seconds). With ``workers=0`` the
    coordinator also executes queries; otherwise it only coordinates. Worker
    ports default to ``trino_port + 1 ...``. Idempotent: services already
    running with the same settings are kept. On failure everything started
    by this call is stopped and a :class:`StackError` names the service, its
    log file and the log's last lines.

    ``policy`` (default: :func:`datamesh.policy.load_policy`, from the
    contracts and ``governance/governance.yaml``) decides the identities: one
    S3 user and one catalog role per service user, the lake bucket's policy
    and the roles' row-level security (``nativestack.iam``,
    :func:`nativestack.postgres.apply_roles`), re-applied on every start.
    """
    if workers < 0:
        raise StackError(f"workers must be >= 0, got {workers}.")
    ports = tuple(worker_ports) if worker_ports is not None else tuple(trino_port + i for i in range(1, workers + 1))
    if len(ports) != workers:
        raise StackError(f"{workers} worker(s) requested but {len(ports)} worker port(s) given: {list(ports)}.")
    all_ports = [s3_port, postgres_port, trino_port, *ports]
    if len(set(all_ports)) != len(all_ports):
        raise StackError(
            f"Stack ports must differ: s3={s3_port}, postgres={postgres_port}, trino={trino_port}, "
            f"workers={list(ports)}."
        )
    java = (java_home or default_java_home()).resolve()
    if not (java / "bin" / "java").is_file():
        raise StackError(
            f"Trino 476 needs a Java 24+ JDK, but {java}/bin/java does not exist. "
            f"Set {ENV_JAVA_HOME} to a JDK 25 home (e.g. /usr/lib/jvm/temurin-25-jdk-amd64)."
        )
    if not _BUCKET_NAME.match(bucket):
        raise StackError(
            f"Invalid bucket name '{bucket}': expected 3-63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit (e.g. 'lake')."
        )
    if credentials is not None and not (credentials.access_key and credentials.secret_key):
        raise StackError("S3 credentials need a non-empty access key and secret key.")
    cache = (cache_dir or default_cache_dir()).resolve()
    layout = Layout((home or default_home()).resolve())
    layout.home.mkdir(parents=True, exist_ok=True)
    inst = fetch(cache, echo=echo)
    pg_bins = postgres.bin_dir()
    state = StackState(
        s3_port=s3_port,
        postgres_port=postgres_port,
        trino_port=trino_port,
        worker_ports=ports,
        bucket=bucket,
        region=region,
        java_home=str(java),
        cache_dir=str(cache),
    )
    with file_lock(layout.lock_file):
        recorded = StackState.load(layout.state_file)
        running = _running_services(layout, recorded, inst, pg_bins) if recorded is not None else []
        if recorded is not None and running and recorded != state:
            raise StackError(
                f"A stack with other settings already runs from {layout.home} "
                f"(s3 port {recorded.s3_port}, postgres port {recorded.postgres_port}, "
                f"trino port {recorded.trino_port}, "
                f"{len(recorded.worker_ports)} worker(s)). Stop it first: python -m nativestack down"
            )
        if running and credentials is not None and credentials != load_or_create_credentials(layout, None):
            raise StackError(
                f"The stack in {layout.home} already runs with other S3 credentials. "
                "Stop it first (python -m nativestack down) to change them."
            )
        creds = load_or_create_credentials(layout, credentials)
        catalog = load_or_create_catalog_credentials(layout)
        if policy is None:
            from datamesh.policy import load_policy

            policy = load_policy()
        secrets = load_or_create_principal_secrets(
            layout, [p.name for p in policy.service_users()], [p.name for p in policy.people()]
        )
        recorded_access = iam.StackAccess.load(layout)
        access = iam.access_from_policy(policy, recorded_access.lake_roots if recorded_access else ("",))
        for directory in (layout.s3_data, layout.s3_meta, layout.s3_iam):
            directory.mkdir(parents=True, exist_ok=True)
        # The objects on disk are the lake itself: no other local user may read them around the S3 policies.
        os.chmod(layout.s3_data.parent, 0o700)
        pg_account = postgres.account(echo)
        postgres.prepare(layout, pg_account, pg_bins, catalog, echo)
        state.save(layout.state_file)
        trino_files = _trino_files(policy)
        logins = {n: s for n, s in secrets.items() if n != policy.engine.name}  # the engine identity has no login
        trino_sec = trino_security.prepare(layout, **trino_files, principals=logins, platform=policy.platform.name)
        services = services_for(state, layout, inst, creds, catalog, pg_bins, pg_account, trino_security=trino_sec,
                                engine=secrets[policy.engine.name])
        s3, pg = services[0], services[1]
        trino_nodes = services[2:]
        lake = _endpoints(state, access, secrets, trino_ca_file=trino_sec.tls.ca_file,
                          credentials_file=identities.credentials_path(layout))
        started: list[Service] = []
        try:
            _launch([s3, pg], layout, started, echo)
            wait_healthy([s3, pg], layout, timeout, echo)
            _ensure_bucket(inst, s3.url, creds, bucket, region, layout)
            postgres.bootstrap(layout, postgres_port, catalog)
            if not postgres.can_log_in(postgres_port, catalog.password):
                raise StackError(
                    f"PostgreSQL on port {postgres_port} refuses the catalog role '{postgres.CATALOG_ROLE}' "
                    f"right after setting it up. Log {layout.log_file(POSTGRES_SERVICE)}, last lines:\n"
                    f"{log_tail(layout.log_file(POSTGRES_SERVICE), pg.log_offset)}"
                )
            owner_uri = postgres.sqlalchemy_uri(
                HOST, postgres_port, postgres.CATALOG_DATABASE, postgres.CATALOG_ROLE, catalog.password
            )
            postgres.create_catalog_tables(owner_uri, state.warehouse, lake.iceberg_s3_properties())
            _apply_policy(layout, state, s3.url, creds, catalog, pg_account, policy, access, secrets, echo)
            echo(
                f"{POSTGRES_SERVICE}: Iceberg catalog '{postgres.ICEBERG_CATALOG_NAME}' ready in database "
                f"'{postgres.CATALOG_DATABASE}' (tables owned by '{postgres.CATALOG_ROLE}', "
                f"{len(access.grants)} policy roles)"
            )
            identities.write_credentials_files(layout, lake)
            _launch(trino_nodes, layout, started, echo)
            wait_healthy(trino_nodes, layout, timeout, echo)
        except BaseException:
            for service in reversed(started):
                if service.process is not None:
                    _terminate(service.name, service.process.pid, timeout=10.0)
                    layout.pid_file(service.name).unlink(missing_ok=True)
            raise
    return lake


def stop(home: Path | None = None, *, timeout: float = 30.0, echo: Echo = print_progress) -> None:
    """Stop every service recorded in the state directory (workers first, then PostgreSQL, S3 last).

    Each gets SIGTERM to its process group (PostgreSQL: SIGINT, a fast
    shutdown, to its postmaster), then SIGKILL after ``timeout`` seconds.
    Data, logs and credentials stay in place.
    """
    layout = Layout((home or default_home()).resolve())
    state = StackState.load(layout.state_file)
    names = state.service_names() if state else []
    # Also catch pid files of services a previous, larger stack left behind.
    run_dir = layout.run_dir
    extra = sorted(p.stem for p in run_dir.glob("*.pid")) if run_dir.is_dir() else []
    names += [n for n in extra if n not in names]
    order = sorted(names, key=lambda n: (n == S3_SERVICE, n == POSTGRES_SERVICE, n == COORDINATOR_SERVICE, n))
    with file_lock(layout.lock_file):
        for name in order:
            pid_file = layout.pid_file(name)
            pid = read_pid(pid_file, program_of(name))
            if pid is not None:
                echo(f"{name}: stopping (pid {pid})")
                _terminate(name, pid, timeout)
            pid_file.unlink(missing_ok=True)


def status(home: Path | None = None) -> StackStatus:
    """The state of the services recorded in the state directory."""
    layout = Layout((home or default_home()).resolve())
    state = StackState.load(layout.state_file)
    if state is None:
        return StackStatus(home=layout.home, services=())
    ports = {S3_SERVICE: state.s3_port, POSTGRES_SERVICE: state.postgres_port, COORDINATOR_SERVICE: state.trino_port}
    ports.update({worker_name(i): p for i, p in enumerate(state.worker_ports, start=1)})
    catalog = load_catalog_credentials(layout)
    access = iam.StackAccess.load(layout)
    trino_sec = trino_security.load(layout, load_principal_secrets(layout), access.platform) if access else None
    result = []
    for name in state.service_names():
        scheme = {POSTGRES_SERVICE: "postgresql", S3_SERVICE: "http"}.get(name, "https")
        url = f"{scheme}://{HOST}:{ports[name]}"
        pid = read_pid(layout.pid_file(name), program_of(name))
        if pid is None:
            healthy = False
        elif name == S3_SERVICE:
            healthy = s3_healthy(url)
        elif name == POSTGRES_SERVICE:  # a real login of the catalog role
            healthy = catalog is not None and postgres.can_log_in(state.postgres_port, catalog.password)
        else:
            healthy = trino_sec is not None and trino_health_check(
                name, url, state.trino_port, name == COORDINATOR_SERVICE, settle_seconds=0, login=trino_sec.login
            )()
        result.append(
            ServiceStatus(
                name=name, url=url, pid=pid, running=pid is not None, healthy=healthy, log_file=layout.log_file(name)
            )
        )
    return StackStatus(home=layout.home, services=tuple(result))


def endpoints(home: Path | None = None) -> StackEndpoints:
    """Connection details of the stack recorded in ``home`` (running or not)."""
    layout = Layout((home or default_home()).resolve())
    state = StackState.load(layout.state_file)
    catalog = load_catalog_credentials(layout) if layout.credentials_file.is_file() else None
    if state is None or catalog is None:
        raise StackError(f"No stack has been started from {layout.home}. Start one: python -m nativestack up")
    access = iam.StackAccess.load(layout)
    if access is None:
        raise StackError(
            f"The stack in {layout.home} was started before identities were applied (no {iam.ACCESS_FILE}): "
            "start it again (python -m nativestack up) to create its S3 users and catalog roles."
        )
    return _endpoints(state, access, load_principal_secrets(layout), trino_ca_file=trino_security.ca_file(layout),
                      credentials_file=identities.credentials_path(layout))


def wait_healthy(services: Sequence[Service], layout: Layout, timeout: float, echo: Echo) -> None:
    """Poll every service until healthy; raise with its log's tail if one exits or ``timeout`` passes."""
    began = time.monotonic()
    deadline = began + timeout
    pending = list(services)
    while pending:
        for service in list(pending):
            if service.process is not None and service.process.poll() is not None:
                log_file = layout.log_file(service.name)
                raise StackError(
                    f"{service.name} exited with code {service.process.returncode} while starting. "
                    f"Log {log_file}, last lines:\n{log_tail(log_file, service.log_offset)}"
                )
            if service.healthy():
                echo(f"{service.name}: healthy at {service.url} after {time.monotonic() - began:.1f}s")
                pending.remove(service)
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            details = "\n".join(
                f"{s.name}: log {layout.log_file(s.name)}, last lines:\n"
                f"{log_tail(layout.log_file(s.name), s.log_offset)}"
                for s in pending
            )
            raise StackError(f"{names} did not become healthy within {timeout:.0f}s.\n{details}")
        time.sleep(0.25)


def _terminate(name: str, pid: int, timeout: float) -> None:
    signum, group = stop_signal_of(name)
    terminate(pid, timeout, signum=signum, group=group)


def _running_services(layout: Layout, state: StackState, inst: Installation, pg_bins: Path) -> list[str]:
    programs = {S3_SERVICE: str(inst.versitygw), POSTGRES_SERVICE: str(pg_bins / "postgres")}
    return [
        name
        for name in state.service_names()
        if read_pid(layout.pid_file(name), programs.get(name, str(inst.trino_home))) is not None
    ]


def _launch(services: Sequence[Service], layout: Layout, started: list[Service], echo: Echo) -> None:
    for service in services:
        pid = read_pid(layout.pid_file(service.name), service.program)
        if pid is not None:
            echo(f"{service.name}: already running (pid {pid}) at {service.url}")
            continue
        port = int(service.url.rsplit(":", 1)[1])
        if not port_free(port):
            raise StackError(
                f"Cannot start {service.name}: port {port} on {HOST} is already in use by another program. "
                "Choose another port (python -m nativestack up --help) or stop that program."
            )
        log_file = layout.log_file(service.name)
        service.process, service.log_offset = spawn(
            service.argv,
            env=service.env,
            log_file=log_file,
            pid_file=layout.pid_file(service.name),
            cwd=service.cwd,
            user=service.user,
            group=service.group,
        )
        started.append(service)
        echo(f"{service.name}: started (pid {service.process.pid}), log {log_file}")


def _ensure_bucket(
    inst: Installation, s3_url: str, creds: S3Credentials, bucket: str, region: str, layout: Layout
) -> None:
    """Create ``bucket`` (owned by the root user) unless it exists.

    Root stays the owner on purpose: no service user owns the bucket, so none may change its policy or ACL,
    and with the bucket policy in place ownership grants nothing (versitygw consults the ACL only when a
    bucket has no policy, and then admits the owner alone).
    """
    env = {
        **os.environ,
        "ADMIN_ACCESS_KEY": creds.access_key,
        "ADMIN_SECRET_KEY": creds.secret_key,
        "ADMIN_ENDPOINT_URL": s3_url,
        "ADMIN_REGION": region,
    }
    if (layout.s3_data / bucket).is_dir():
        return
    result = subprocess.run(
        [str(inst.versitygw), "admin", "create-bucket", "--owner", creds.access_key, "--bucket", bucket],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0 and "BucketAlready" not in result.stdout + result.stderr:
        raise StackError(
            f"Could not create bucket '{bucket}' on the S3 server at {s3_url}: "
            f"{(result.stdout + result.stderr).strip()}"
        )


def _apply_policy(
    layout: Layout,
    state: StackState,
    s3_url: str,
    root: S3Credentials,
    catalog: CatalogCredentials,
    pg_account: postgres.Account,
    policy: Policy,
    access: iam.StackAccess,
    secrets: Mapping[str, PrincipalSecrets],
    echo: Echo,
) -> None:
    """The policy's identities on the running S3 server and PostgreSQL, then recorded in ``access.json``."""
    from datamesh.policy.storage import postgres_roles_sql

    removed = iam.apply(s3_url, state.region, root, state.bucket, access, secrets)
    echo(
        f"{S3_SERVICE}: {len(access.grants)} S3 users and the policy of bucket '{state.bucket}' applied "
        f"({len(access.lake_roots)} lake root(s))" + (f"; removed users {', '.join(removed)}" if removed else "")
    )
    passwords = {g.principal: secrets[g.principal].pg_password for g in access.grants}
    missing = sorted(n for n, pw in passwords.items() if not pw)
    if missing:
        raise StackError(f"No catalog password was generated for {', '.join(missing)} ({layout.credentials_file}).")
    dropped = postgres.apply_roles(
        layout, pg_account, state.postgres_port, catalog, postgres_roles_sql(policy),
        {n: pw for n, pw in passwords.items() if pw},
    )
    if dropped:
        echo(f"{POSTGRES_SERVICE}: dropped catalog roles no longer in the policy: {', '.join(dropped)}")
    access.save(layout)


def _trino_files(policy: Policy) -> dict[str, str]:
    """Trino's access rules and groups rendered from ``policy``, as :func:`trino_security.prepare` takes them."""
    from datamesh.policy.trino import GROUPS_FILE, RULES_FILE, render_trino

    files = render_trino(policy)
    return {"rules": files[RULES_FILE], "groups": files[GROUPS_FILE]}


def _endpoints(
    state: StackState,
    access: iam.StackAccess,
    principals: Mapping[str, PrincipalSecrets],
    *,
    trino_ca_file: Path,
    credentials_file: Path,
) -> StackEndpoints:
    """What clients use: the platform service user's S3 keys and catalog role (never the root's or ``lake``'s)."""
    platform = principals.get(access.platform)
    if platform is None or not platform.s3_secret_key or not platform.pg_password:
        raise StackError(
            f"The stack's credentials file has no keys for the platform service user '{access.platform}': "
            "start the stack again (python -m nativestack up) to generate them."
        )
    return StackEndpoints(
        s3_endpoint=f"http://{HOST}:{state.s3_port}",
        access_key=access.platform,
        secret_key=platform.s3_secret_key,
        region=state.region,
        bucket=state.bucket,
        trino_host=HOST,
        trino_port=state.trino_port,
        catalog_host=HOST,
        catalog_port=state.postgres_port,
        catalog_database=postgres.CATALOG_DATABASE,
        catalog_user=access.platform,
        catalog_password=platform.pg_password,
        principals=dict(principals),
        actors=dict(access.actors),
        trino_scheme="https",
        trino_ca_file=str(trino_ca_file),
        credentials_file=str(credentials_file),
    )
