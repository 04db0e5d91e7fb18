"""The native stack: an S3-compatible server and Trino as local background processes.

No Docker is needed. ``fetch()`` builds/downloads the pinned artifacts once per
machine into a cache; ``start()`` runs them as plain background processes whose
pid files, logs and data live in a state directory; ``stop()`` and ``status()``
find them again from there, from any process.

* S3: versitygw (Apache-2.0, ``posix`` backend), built with ``go install`` from
  the Go module proxy (see ``docs/decisions/0020-s3-server.md``).
* Trino 476 (``trino-server-core`` + the Hive plugin) from Maven Central, run
  with a Java 25 JDK and the configuration in ``stack/trino/etc``, which
  docker-compose uses unchanged (``${ENV:...}`` values are set here).

Environment variables (read when a function is called, never at import):

``MESH_STACK_CACHE``  artifacts cache (default ``~/.cache/datamesh/stack``)
``MESH_STACK_HOME``   state: pids, logs, credentials, S3 data
                      (default ``~/.local/state/datamesh/stack``)
``MESH_JAVA_HOME``    JDK for Trino (default ``/usr/lib/jvm/temurin-25-jdk-amd64``)

Usage::

    from datamesh import stack
    lake = stack.start()            # or stack.start(workers=1)
    lake.s3_endpoint, lake.trino_port, lake.as_settings_env()
    stack.status(); stack.stop()

or ``python -m datamesh.stack up|down|status|fetch|env``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datamesh.errors import StackError
from datamesh.paths import PROJECT_ROOT

__all__ = [
    "DEFAULT_BUCKET",
    "DEFAULT_REGION",
    "DEFAULT_S3_PORT",
    "DEFAULT_TRINO_PORT",
    "Installation",
    "S3Credentials",
    "ServiceStatus",
    "StackEndpoints",
    "StackStatus",
    "default_cache_dir",
    "default_home",
    "endpoints",
    "fetch",
    "main",
    "start",
    "status",
    "stop",
]

ENV_CACHE = "MESH_STACK_CACHE"
ENV_HOME = "MESH_STACK_HOME"
ENV_JAVA_HOME = "MESH_JAVA_HOME"

STACK_DIR: Path = PROJECT_ROOT / "stack"
"""The project's ``stack/`` folder: ``pins.toml`` and ``trino/etc``."""

DEFAULT_JAVA_HOME = Path("/usr/lib/jvm/temurin-25-jdk-amd64")
DEFAULT_S3_PORT = 9070
DEFAULT_TRINO_PORT = 8085
DEFAULT_BUCKET = "lake"
DEFAULT_REGION = "us-east-1"
HOST = "127.0.0.1"
"""Every service binds to the loopback interface only."""

METASTORE_PREFIX = "_trino_metastore"
"""Key prefix in the lake bucket holding Trino's file metastore."""

S3_SERVICE = "s3"
COORDINATOR_SERVICE = "trino-coordinator"

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_COMPLETE_MARKER = ".complete"
_LOG_TAIL_LINES = 30

Echo = Callable[[str], None]


def _print(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------
# Locations


def default_cache_dir() -> Path:
    """The artifacts cache: ``$MESH_STACK_CACHE`` or ``~/.cache/datamesh/stack``."""
    value = os.environ.get(ENV_CACHE)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "datamesh" / "stack"


def default_home() -> Path:
    """The state directory: ``$MESH_STACK_HOME`` or ``~/.local/state/datamesh/stack``."""
    value = os.environ.get(ENV_HOME)
    return Path(value).expanduser() if value else Path.home() / ".local" / "state" / "datamesh" / "stack"


def default_java_home() -> Path:
    """The JDK for Trino: ``$MESH_JAVA_HOME`` or the machine's Temurin 25."""
    value = os.environ.get(ENV_JAVA_HOME)
    return Path(value).expanduser() if value else DEFAULT_JAVA_HOME


# ---------------------------------------------------------------------------
# Pinned artifacts and fetch


@dataclass(frozen=True)
class MavenArtifact:
    """One file from Maven Central, pinned by SHA-256."""

    coordinates: str
    file: str
    sha256: str


@dataclass(frozen=True)
class Pins:
    """The contents of ``stack/pins.toml``."""

    trino_version: str
    trino_server: MavenArtifact
    trino_plugins: Mapping[str, MavenArtifact]
    versitygw_module: str
    versitygw_version: str
    versitygw_package: str
    versitygw_go_sum: str


def load_pins(stack_dir: Path = STACK_DIR) -> Pins:
    """Read ``pins.toml`` from the project's ``stack/`` folder."""
    path = stack_dir / "pins.toml"
    try:
        data = tomllib.loads(path.read_text())
        trino = data["trino"]
        gw = data["versitygw"]
        return Pins(
            trino_version=str(trino["version"]),
            trino_server=MavenArtifact(**trino["server"]),
            trino_plugins={name: MavenArtifact(**spec) for name, spec in trino["plugins"].items()},
            versitygw_module=str(gw["module"]),
            versitygw_version=str(gw["version"]),
            versitygw_package=str(gw["package"]),
            versitygw_go_sum=str(gw["go_sum"]),
        )
    except FileNotFoundError as exc:
        raise StackError(f"Stack pins file {path} is missing; run from a checkout of the project.") from exc
    except (KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise StackError(f"Stack pins file {path} is malformed: {exc!r}.") from exc


@dataclass(frozen=True)
class Installation:
    """Where the fetched services live in the cache."""

    trino_home: Path
    versitygw: Path

    @property
    def trino_launcher(self) -> Path:
        return self.trino_home / "bin" / "launcher"


def installation(cache_dir: Path | None = None, pins: Pins | None = None) -> Installation:
    """The cache paths for the pinned versions (whether fetched or not)."""
    cache = cache_dir or default_cache_dir()
    pins = pins or load_pins()
    return Installation(
        trino_home=cache / f"trino-server-{pins.trino_version}",
        versitygw=cache / f"versitygw-{pins.versitygw_version}" / "versitygw",
    )


def fetch(cache_dir: Path | None = None, *, echo: Echo = _print) -> Installation:
    """Download/build the pinned Trino and versitygw into the cache (idempotent).

    Trino's tarball and plugin zips come from Maven Central through ``mvn``
    and are checked against ``stack/pins.toml``; versitygw is built with
    ``go install`` from the Go module proxy after checking its module hash.
    A second call only checks completion markers.
    """
    cache = (cache_dir or default_cache_dir()).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    pins = load_pins()
    inst = installation(cache, pins)
    with _file_lock(cache / ".fetch.lock"):
        _fetch_trino(cache, pins, inst, echo)
        _fetch_versitygw(cache, pins, inst, echo)
    return inst


def _expected_marker(*parts: str) -> str:
    return "\n".join(parts) + "\n"


def _is_complete(directory: Path, marker: str) -> bool:
    path = directory / _COMPLETE_MARKER
    return path.is_file() and path.read_text() == marker


def _fetch_trino(cache: Path, pins: Pins, inst: Installation, echo: Echo) -> None:
    artifacts = [pins.trino_server, *pins.trino_plugins.values()]
    marker = _expected_marker(*(f"{a.coordinates} {a.sha256}" for a in artifacts))
    if _is_complete(inst.trino_home, marker):
        echo(f"trino {pins.trino_version}: cached at {inst.trino_home}")
        return
    started = time.monotonic()
    downloads = cache / "downloads"
    downloads.mkdir(exist_ok=True)
    for artifact in artifacts:
        _maven_fetch(artifact, downloads, echo)
    echo(f"trino {pins.trino_version}: unpacking into {inst.trino_home}")
    staging = Path(tempfile.mkdtemp(prefix=".trino-", dir=cache))
    try:
        with tarfile.open(downloads / pins.trino_server.file) as archive:
            _extract_tar(archive, staging)
        tops = [p for p in staging.iterdir() if p.is_dir()]
        if len(tops) != 1:
            raise StackError(f"Unexpected layout of {pins.trino_server.file}: {sorted(p.name for p in tops)}.")
        server = tops[0]
        for name, artifact in pins.trino_plugins.items():
            _unzip_plugin(downloads / artifact.file, server / "plugin" / name)
        (server / _COMPLETE_MARKER).write_text(marker)
        if inst.trino_home.exists():
            shutil.rmtree(inst.trino_home)
        server.rename(inst.trino_home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for artifact in artifacts:  # Maven keeps its own copy in ~/.m2; the unpacked tree is the cache
        (downloads / artifact.file).unlink(missing_ok=True)
    echo(f"trino {pins.trino_version}: ready in {time.monotonic() - started:.0f}s")


def _maven_fetch(artifact: MavenArtifact, directory: Path, echo: Echo) -> None:
    target = directory / artifact.file
    if not (target.is_file() and _sha256(target) == artifact.sha256):
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError(
                f"Cannot fetch {artifact.coordinates}: Maven ('mvn') is not on PATH. "
                "Install it (e.g. apt-get install maven) and retry."
            )
        echo(f"fetching {artifact.coordinates} from Maven Central ...")
        command = [
            mvn,
            "-B",
            "--no-transfer-progress",
            "dependency:copy",
            f"-Dartifact={artifact.coordinates}",
            f"-DoutputDirectory={directory}",
            "-Dmdep.overWriteReleases=true",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not target.is_file():
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-_LOG_TAIL_LINES:])
            raise StackError(f"Maven could not fetch {artifact.coordinates} (exit {result.returncode}):\n{tail}")
    digest = _sha256(target)
    if digest != artifact.sha256:
        target.unlink()
        raise StackError(
            f"Checksum mismatch for {artifact.coordinates}: got sha256 {digest}, "
            f"stack/pins.toml pins {artifact.sha256 or '(nothing)'}. The file was deleted; "
            "if you upgraded on purpose, review and pin the new value."
        )
    echo(f"  {artifact.file}: sha256 ok ({target.stat().st_size / 1e6:.0f} MB)")


def _extract_tar(archive: tarfile.TarFile, destination: Path) -> None:
    if hasattr(tarfile, "data_filter"):
        archive.extractall(destination, filter="data")
    else:  # pragma: no cover - Python < 3.11.4
        archive.extractall(destination)  # noqa: S202 - pinned, checksummed archive


def _unzip_plugin(archive_path: Path, destination: Path) -> None:
    """Unzip a Trino plugin zip (``trino-hive-476/*.jar``) into ``plugin/<name>/``."""
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            parts = Path(info.filename).parts
            if info.is_dir() or len(parts) < 2 or ".." in parts:
                continue
            target = destination.joinpath(*parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink)


def _fetch_versitygw(cache: Path, pins: Pins, inst: Installation, echo: Echo) -> None:
    marker = _expected_marker(f"{pins.versitygw_module}@{pins.versitygw_version} {pins.versitygw_go_sum}")
    directory = inst.versitygw.parent
    if _is_complete(directory, marker) and inst.versitygw.is_file():
        echo(f"versitygw {pins.versitygw_version}: cached at {inst.versitygw}")
        return
    go = shutil.which("go")
    if go is None:
        raise StackError(
            f"Cannot build versitygw {pins.versitygw_version}: Go ('go') is not on PATH. Install Go 1.25+ and retry."
        )
    started = time.monotonic()
    module = f"{pins.versitygw_module}@{pins.versitygw_version}"
    echo(f"versitygw {pins.versitygw_version}: downloading {module} from the Go module proxy ...")
    result = subprocess.run(
        [go, "mod", "download", "-json", module], capture_output=True, text=True, cwd=cache, check=False
    )
    if result.returncode != 0:
        raise StackError(f"go mod download {module} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    got = json.loads(result.stdout).get("Sum", "")
    if got != pins.versitygw_go_sum:
        raise StackError(
            f"Module hash mismatch for {module}: got {got}, stack/pins.toml pins "
            f"{pins.versitygw_go_sum or '(nothing)'}. Review and pin the new value if you upgraded on purpose."
        )
    echo(f"  {module}: module hash ok; building (1-3 minutes on 2 cores) ...")
    staging = Path(tempfile.mkdtemp(prefix=".versitygw-", dir=cache))
    try:
        ldflags = f"-s -w -X=main.Version={pins.versitygw_version} -X=main.Build=go-install"
        env = {**os.environ, "GOBIN": str(staging), "CGO_ENABLED": "0"}
        package = f"{pins.versitygw_package}@{pins.versitygw_version}"
        result = subprocess.run(
            [go, "install", "-trimpath", f"-ldflags={ldflags}", package],
            capture_output=True,
            text=True,
            cwd=cache,
            env=env,
            check=False,
        )
        built = staging / "versitygw"
        if result.returncode != 0 or not built.is_file():
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-_LOG_TAIL_LINES:])
            raise StackError(f"go install {package} failed (exit {result.returncode}):\n{tail}")
        directory.mkdir(parents=True, exist_ok=True)
        os.replace(built, inst.versitygw)
        (directory / _COMPLETE_MARKER).write_text(marker)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    echo(f"versitygw {pins.versitygw_version}: ready in {time.monotonic() - started:.0f}s")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------
# What clients need


@dataclass(frozen=True)
class S3Credentials:
    """The S3 server's root credentials."""

    access_key: str
    secret_key: str = field(repr=False)

    @classmethod
    def generate(cls) -> S3Credentials:
        return cls(access_key="mesh-" + secrets.token_hex(6), secret_key=secrets.token_urlsafe(30))


@dataclass(frozen=True)
class StackEndpoints:
    """Everything a client needs to reach a running stack."""

    s3_endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str
    bucket: str
    trino_host: str
    trino_port: int
    trino_catalog: str = "lake"

    @property
    def trino_url(self) -> str:
        return f"http://{self.trino_host}:{self.trino_port}"

    @property
    def lake_url(self) -> str:
        return f"s3://{self.bucket}/"

    def as_settings_env(self) -> dict[str, str]:
        """The ``MESH_*`` variables that point the platform settings at this stack."""
        return {
            "MESH_LAKE_URL": self.lake_url,
            "MESH_S3_ENDPOINT_URL": self.s3_endpoint,
            "MESH_S3_ACCESS_KEY_ID": self.access_key,
            "MESH_S3_SECRET_ACCESS_KEY": self.secret_key,
            "MESH_S3_REGION": self.region,
            "MESH_TRINO_HOST": self.trino_host,
            "MESH_TRINO_PORT": str(self.trino_port),
            "MESH_TRINO_CATALOG": self.trino_catalog,
        }


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


# ---------------------------------------------------------------------------
# State directory layout


@dataclass(frozen=True)
class _Layout:
    home: Path

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"

    @property
    def credentials_file(self) -> Path:
        return self.home / "credentials.json"

    @property
    def lock_file(self) -> Path:
        return self.home / ".lock"

    @property
    def s3_data(self) -> Path:
        return self.home / "s3" / "data"

    @property
    def s3_meta(self) -> Path:
        return self.home / "s3" / "meta"

    @property
    def s3_iam(self) -> Path:
        return self.home / "s3" / "iam"

    def trino_data(self, node: str) -> Path:
        return self.home / "trino" / node

    def pid_file(self, service: str) -> Path:
        return self.home / "run" / f"{service}.pid"

    def log_file(self, service: str) -> Path:
        return self.home / "logs" / f"{service}.log"


def _load_or_create_credentials(layout: _Layout, given: S3Credentials | None) -> S3Credentials:
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


# ---------------------------------------------------------------------------
# Processes


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (reaping it first if it is our exited child)."""
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """True when every thread of ``pid`` has exited and only its exit status is left.

    A JVM's main thread may show state ``Z`` while its other threads still
    shut down, so all of ``/proc/<pid>/task/*`` are checked, not only the leader.
    """
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False  # no /proc (not Linux) or no such process
    for task in tasks:
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            return False
    return True


def _read_pid(path: Path, expect_in_cmdline: str) -> int | None:
    """The pid in ``path`` if that process still runs the expected program."""
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if not _alive(pid):
        return None
    with contextlib.suppress(OSError):  # guard against a recycled pid
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        if expect_in_cmdline not in cmdline:
            return None
    return pid


def _spawn(
    argv: Sequence[str], *, env: Mapping[str, str], log_file: Path, pid_file: Path, cwd: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a background process in its own session; returns it and its log offset."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {argv[0]} =====\n".encode())
        log.flush()
        offset = log.tell()
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
        )
    pid_file.write_text(f"{process.pid}\n")
    return process, offset


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM the process group of ``pid``, wait, then SIGKILL it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # also stray children of the group
    deadline = time.monotonic() + 5.0
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _log_tail(log_file: Path, offset: int = 0, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with log_file.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    all_lines = text.splitlines()
    tail = all_lines[-lines:]
    if not tail:
        return "    (log is empty)"
    # A Java stack trace can push the one line that explains the failure out of the tail.
    errors = [line for line in all_lines[:-lines] if "ERROR" in line][-5:]
    shown = [*errors, "..."] if errors else []
    return "\n".join("    " + line for line in [*shown, *tail])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _http_get(url: str, timeout: float = 2.0, headers: Mapping[str, str] | None = None) -> tuple[int, bytes] | None:
    """``(status, body)``, or None when nothing answers."""
    request = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310 - http://127.0.0.1 only
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return None


def _s3_healthy(url: str) -> bool:
    # Any S3 answer (403 for an anonymous request) proves the server is serving.
    return _http_get(url + "/") is not None


def _trino_node_ready(url: str) -> bool:
    answer = _http_get(url + "/v1/info")
    if answer is None or answer[0] != 200:
        return False
    try:
        return json.loads(answer[1]).get("starting") is False
    except ValueError:
        return False


def _trino_active_node_ids(host: str, port: int) -> set[str] | None:
    """Node ids the coordinator lists as active in ``system.runtime.nodes``, or None.

    A real query, so "healthy" means the coordinator can schedule on the node
    (the failure detector alone sees a worker seconds earlier).
    """
    import trino  # a platform dependency; imported lazily to keep this module light

    try:
        with trino.dbapi.connect(host=host, port=port, user="datamesh-stack", request_timeout=15) as connection:
            cursor = connection.cursor()
            cursor.execute("SELECT node_id FROM system.runtime.nodes WHERE state = 'active'")
            return {str(row[0]) for row in cursor.fetchall()}
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return None


# ---------------------------------------------------------------------------
# Service definitions


@dataclass
class _Service:
    name: str
    url: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    program: str  # a substring of the running process' command line
    healthy: Callable[[], bool]
    process: subprocess.Popen[bytes] | None = None
    log_offset: int = 0


@dataclass(frozen=True)
class _StackState:
    """What ``start`` recorded in ``stack.json``."""

    s3_port: int
    trino_port: int
    worker_ports: tuple[int, ...]
    bucket: str
    region: str
    java_home: str
    cache_dir: str

    @classmethod
    def load(cls, path: Path) -> _StackState | None:
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
        return [S3_SERVICE, COORDINATOR_SERVICE, *(_worker_name(i) for i in range(1, len(self.worker_ports) + 1))]


def _worker_name(index: int) -> str:
    return f"trino-worker-{index}"


def _services(state: _StackState, layout: _Layout, inst: Installation, credentials: S3Credentials) -> list[_Service]:
    s3_url = f"http://{HOST}:{state.s3_port}"
    s3 = _Service(
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
        healthy=lambda: _s3_healthy(s3_url),
    )
    coordinator_url = f"http://{HOST}:{state.trino_port}"
    common_env = {
        **os.environ,
        "LAKE_S3_ENDPOINT": s3_url,
        "LAKE_S3_REGION": state.region,
        "LAKE_S3_ACCESS_KEY": credentials.access_key,
        "LAKE_S3_SECRET_KEY": credentials.secret_key,
        "LAKE_METASTORE_DIR": f"s3://{state.bucket}/{METASTORE_PREFIX}",
        "TRINO_DISCOVERY_URI": coordinator_url,
        "TRINO_INCLUDE_COORDINATOR": "false" if state.worker_ports else "true",
    }
    nodes: list[tuple[str, int, bool]] = [(COORDINATOR_SERVICE, state.trino_port, True)]
    nodes += [(_worker_name(i), port, False) for i, port in enumerate(state.worker_ports, start=1)]
    services = [s3]
    for name, port, is_coordinator in nodes:
        url = f"http://{HOST}:{port}"
        node_env = {
            **common_env,
            "TRINO_COORDINATOR": "true" if is_coordinator else "false",
            "TRINO_HTTP_PORT": str(port),
            "TRINO_NODE_ID": name,
        }
        data_dir = layout.trino_data(name)
        services.append(
            _Service(
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
                healthy=_trino_health_check(name, url, state.trino_port, is_coordinator),
            )
        )
    return services


NODE_MAP_REFRESH_SECONDS = 6.0


def _trino_health_check(name: str, url: str, coordinator_port: int, is_coordinator: bool,
                        settle_seconds: float = NODE_MAP_REFRESH_SECONDS) -> Callable[[], bool]:
    # Coordinator and workers alike: healthy once the coordinator lists the node as active,
    # i.e. it can schedule on it. /v1/info alone answers seconds earlier, and a first
    # query in that window fails with NO_NODES_AVAILABLE.
    # The coordinator's node scheduler caches its node map for 5 s, so a node is only
    # schedulable a few seconds after it is listed: wait that long after first seeing it.
    first_seen: list[float] = []

    def worker_ready() -> bool:
        if not _trino_node_ready(url):
            return False
        active = _trino_active_node_ids(HOST, coordinator_port)
        if active is None or name not in active:
            return False
        if not first_seen:
            first_seen.append(time.monotonic())
        return time.monotonic() - first_seen[0] >= settle_seconds

    return worker_ready


# ---------------------------------------------------------------------------
# start / stop / status


def start(
    workers: int = 0,
    *,
    home: Path | None = None,
    cache_dir: Path | None = None,
    s3_port: int = DEFAULT_S3_PORT,
    trino_port: int = DEFAULT_TRINO_PORT,
    worker_ports: Sequence[int] | None = None,
    bucket: str = DEFAULT_BUCKET,
    region: str = DEFAULT_REGION,
    credentials: S3Credentials | None = None,
    java_home: Path | None = None,
    timeout: float = 180.0,
    echo: Echo = _print,
) -> StackEndpoints:
    """Start the S3 server and Trino (coordinator + ``workers`` workers) in the background.

    Fetches missing artifacts first, creates ``bucket``, and waits until every
    service is healthy (at most ``timeout`` seconds). With ``workers=0`` the
    coordinator also executes queries; otherwise it only coordinates. Worker
    ports default to ``trino_port + 1 ...``. Idempotent: services already
    running with the same settings are kept. On failure everything started
    by this call is stopped and a :class:`StackError` names the service, its
    log file and the log's last lines.
    """
    if workers < 0:
        raise StackError(f"workers must be >= 0, got {workers}.")
    ports = tuple(worker_ports) if worker_ports is not None else tuple(trino_port + i for i in range(1, workers + 1))
    if len(ports) != workers:
        raise StackError(f"{workers} worker(s) requested but {len(ports)} worker port(s) given: {list(ports)}.")
    all_ports = [s3_port, trino_port, *ports]
    if len(set(all_ports)) != len(all_ports):
        raise StackError(f"Stack ports must differ: s3={s3_port}, trino={trino_port}, workers={list(ports)}.")
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
    layout = _Layout((home or default_home()).resolve())
    layout.home.mkdir(parents=True, exist_ok=True)
    inst = fetch(cache, echo=echo)
    state = _StackState(
        s3_port=s3_port,
        trino_port=trino_port,
        worker_ports=ports,
        bucket=bucket,
        region=region,
        java_home=str(java),
        cache_dir=str(cache),
    )
    with _file_lock(layout.lock_file):
        recorded = _StackState.load(layout.state_file)
        running = _running_services(layout, recorded, inst) if recorded is not None else []
        if recorded is not None and running and recorded != state:
            raise StackError(
                f"A stack with other settings already runs from {layout.home} "
                f"(s3 port {recorded.s3_port}, trino port {recorded.trino_port}, "
                f"{len(recorded.worker_ports)} worker(s)). Stop it first: python -m datamesh.stack down"
            )
        if running and credentials is not None and credentials != _load_or_create_credentials(layout, None):
            raise StackError(
                f"The stack in {layout.home} already runs with other S3 credentials. "
                "Stop it first (python -m datamesh.stack down) to change them."
            )
        creds = _load_or_create_credentials(layout, credentials)
        for directory in (layout.s3_data, layout.s3_meta, layout.s3_iam):
            directory.mkdir(parents=True, exist_ok=True)
        state.save(layout.state_file)
        services = _services(state, layout, inst, creds)
        started: list[_Service] = []
        try:
            s3, trino_nodes = services[0], services[1:]
            _launch([s3], layout, started, echo)
            _wait_healthy([s3], layout, timeout, echo)
            _ensure_bucket(inst, s3.url, creds, bucket, region, layout)
            _launch(trino_nodes, layout, started, echo)
            _wait_healthy(trino_nodes, layout, timeout, echo)
        except BaseException:
            for service in reversed(started):
                if service.process is not None:
                    _terminate(service.process.pid, timeout=10.0)
                    layout.pid_file(service.name).unlink(missing_ok=True)
            raise
    return _endpoints(state, creds)


def _running_services(layout: _Layout, state: _StackState, inst: Installation) -> list[str]:
    programs = {S3_SERVICE: str(inst.versitygw)}
    return [
        name
        for name in state.service_names()
        if _read_pid(layout.pid_file(name), programs.get(name, str(inst.trino_home))) is not None
    ]


def _launch(services: Sequence[_Service], layout: _Layout, started: list[_Service], echo: Echo) -> None:
    for service in services:
        pid = _read_pid(layout.pid_file(service.name), service.program)
        if pid is not None:
            echo(f"{service.name}: already running (pid {pid}) at {service.url}")
            continue
        port = int(service.url.rsplit(":", 1)[1])
        if not _port_free(port):
            raise StackError(
                f"Cannot start {service.name}: port {port} on {HOST} is already in use by another program. "
                "Choose another port (python -m datamesh.stack up --help) or stop that program."
            )
        log_file = layout.log_file(service.name)
        service.process, service.log_offset = _spawn(
            service.argv, env=service.env, log_file=log_file, pid_file=layout.pid_file(service.name), cwd=service.cwd
        )
        started.append(service)
        echo(f"{service.name}: started (pid {service.process.pid}), log {log_file}")


def _wait_healthy(services: Sequence[_Service], layout: _Layout, timeout: float, echo: Echo) -> None:
    began = time.monotonic()
    deadline = began + timeout
    pending = list(services)
    while pending:
        for service in list(pending):
            if service.process is not None and service.process.poll() is not None:
                log_file = layout.log_file(service.name)
                raise StackError(
                    f"{service.name} exited with code {service.process.returncode} while starting. "
                    f"Log {log_file}, last lines:\n{_log_tail(log_file, service.log_offset)}"
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
                f"{_log_tail(layout.log_file(s.name), s.log_offset)}"
                for s in pending
            )
            raise StackError(f"{names} did not become healthy within {timeout:.0f}s.\n{details}")
        time.sleep(0.25)


def _ensure_bucket(
    inst: Installation, s3_url: str, creds: S3Credentials, bucket: str, region: str, layout: _Layout
) -> None:
    """Create ``bucket`` (owned by the root user) unless it exists."""
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


def stop(home: Path | None = None, *, timeout: float = 30.0, echo: Echo = _print) -> None:
    """Stop every service recorded in the state directory (workers first, S3 last).

    Each gets SIGTERM to its process group, then SIGKILL after ``timeout``
    seconds. Data, logs and credentials stay in place.
    """
    layout = _Layout((home or default_home()).resolve())
    state = _StackState.load(layout.state_file)
    names = state.service_names() if state else []
    # Also catch pid files of services a previous, larger stack left behind.
    run_dir = layout.home / "run"
    extra = sorted(p.stem for p in run_dir.glob("*.pid")) if run_dir.is_dir() else []
    names += [n for n in extra if n not in names]
    order = sorted(names, key=lambda n: (n == S3_SERVICE, n == COORDINATOR_SERVICE, n))
    with _file_lock(layout.lock_file):
        for name in order:
            pid_file = layout.pid_file(name)
            program = "versitygw" if name == S3_SERVICE else "trino"
            pid = _read_pid(pid_file, program)
            if pid is not None:
                echo(f"{name}: stopping (pid {pid})")
                _terminate(pid, timeout)
            pid_file.unlink(missing_ok=True)


def status(home: Path | None = None) -> StackStatus:
    """The state of the services recorded in the state directory."""
    layout = _Layout((home or default_home()).resolve())
    state = _StackState.load(layout.state_file)
    if state is None:
        return StackStatus(home=layout.home, services=())
    ports = {S3_SERVICE: state.s3_port, COORDINATOR_SERVICE: state.trino_port}
    ports.update({_worker_name(i): p for i, p in enumerate(state.worker_ports, start=1)})
    result = []
    for name in state.service_names():
        url = f"http://{HOST}:{ports[name]}"
        pid = _read_pid(layout.pid_file(name), "versitygw" if name == S3_SERVICE else "trino")
        if pid is None:
            healthy = False
        elif name == S3_SERVICE:
            healthy = _s3_healthy(url)
        else:
            healthy = _trino_health_check(name, url, state.trino_port, name == COORDINATOR_SERVICE, settle_seconds=0)()
        result.append(
            ServiceStatus(
                name=name, url=url, pid=pid, running=pid is not None, healthy=healthy, log_file=layout.log_file(name)
            )
        )
    return StackStatus(home=layout.home, services=tuple(result))


def endpoints(home: Path | None = None) -> StackEndpoints:
    """Connection details of the stack recorded in ``home`` (running or not)."""
    layout = _Layout((home or default_home()).resolve())
    state = _StackState.load(layout.state_file)
    if state is None or not layout.credentials_file.is_file():
        raise StackError(f"No stack has been started from {layout.home}. Start one: python -m datamesh.stack up")
    return _endpoints(state, _load_or_create_credentials(layout, None))


def _endpoints(state: _StackState, creds: S3Credentials) -> StackEndpoints:
    return StackEndpoints(
        s3_endpoint=f"http://{HOST}:{state.s3_port}",
        access_key=creds.access_key,
        secret_key=creds.secret_key,
        region=state.region,
        bucket=state.bucket,
        trino_host=HOST,
        trino_port=state.trino_port,
    )


# ---------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home",
        type=Path,
        default=None,
        help=f"state directory (default ${ENV_HOME} or ~/.local/state/datamesh/stack)",
    )
    common.add_argument(
        "--cache", type=Path, default=None, help=f"artifacts cache (default ${ENV_CACHE} or ~/.cache/datamesh/stack)"
    )
    parser = argparse.ArgumentParser(
        prog="python -m datamesh.stack",
        description="Run the native stack (S3 server + Trino) as background processes.",
        epilog="Example: python -m datamesh.stack up --workers 1 && python -m datamesh.stack status",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", parents=[common], help="fetch if needed, start and wait until healthy")
    up.add_argument("--workers", type=int, default=0, help="Trino workers besides the coordinator (default 0)")
    up.add_argument("--s3-port", type=int, default=DEFAULT_S3_PORT, help=f"default {DEFAULT_S3_PORT}")
    up.add_argument(
        "--trino-port",
        type=int,
        default=DEFAULT_TRINO_PORT,
        help=f"default {DEFAULT_TRINO_PORT}; workers use the next ports",
    )
    up.add_argument("--bucket", default=DEFAULT_BUCKET, help=f"lake bucket to create (default {DEFAULT_BUCKET})")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for health (default 180)")
    commands.add_parser("down", parents=[common], help="stop all services (data is kept)")
    commands.add_parser(
        "status", parents=[common], help="show services, pids, health and logs (exit 3 if not all healthy)"
    )
    commands.add_parser("fetch", parents=[common], help="download/build the pinned artifacts into the cache")
    commands.add_parser(
        "env", parents=[common], help='print MESH_* exports for the stack: eval "$(python -m datamesh.stack env)"'
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m datamesh.stack``."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            lake = start(
                args.workers,
                home=args.home,
                cache_dir=args.cache,
                s3_port=args.s3_port,
                trino_port=args.trino_port,
                bucket=args.bucket,
                timeout=args.timeout,
            )
            print(f"S3:    {lake.s3_endpoint} (bucket {lake.bucket}, region {lake.region})")
            print(f"Trino: {lake.trino_url} (catalog {lake.trino_catalog})")
            print('Client settings: eval "$(python -m datamesh.stack env)"')
        elif args.command == "down":
            stop(args.home)
        elif args.command == "status":
            report = status(args.home)
            print(report.describe())
            return 0 if report.running else 3
        elif args.command == "fetch":
            fetch(args.cache)
        elif args.command == "env":
            for key, value in endpoints(args.home).as_settings_env().items():
                print(f"export {key}={shlex.quote(value)}")
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
