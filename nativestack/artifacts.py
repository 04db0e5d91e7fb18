"""The pinned artifacts: Trino from Maven Central and versitygw built with ``go install``.

``stack/pins.toml`` pins every file by checksum; :func:`fetch` puts them into
the cache once per machine and refuses anything that does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from datamesh.errors import StackError
from nativestack.defaults import STACK_DIR, Echo, default_cache_dir, print_progress
from nativestack.processes import LOG_TAIL_LINES, file_lock

__all__ = ["Installation", "MavenArtifact", "Pins", "fetch", "installation", "load_pins", "sha256"]

_COMPLETE_MARKER = ".complete"


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


def fetch(cache_dir: Path | None = None, *, echo: Echo = print_progress) -> Installation:
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
    with file_lock(cache / ".fetch.lock"):
        _fetch_trino(cache, pins, inst, echo)
        _fetch_versitygw(cache, pins, inst, echo)
    return inst


def sha256(path: Path) -> str:
    """The hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected_marker(*parts: str) -> str:
    return "\n".join(parts) + "\n"


def _is_complete(directory: Path, marker: str) -> bool:
    path = directory / _COMPLETE_MARKER
    return path.is_file() and path.read_text() == marker


def _output_tail(result: subprocess.CompletedProcess[str]) -> str:
    return "\n".join((result.stdout + result.stderr).splitlines()[-LOG_TAIL_LINES:])


# ---------------------------------------------------------------------------
# Trino: Maven Central, checked against the pinned SHA-256


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
    if not (target.is_file() and sha256(target) == artifact.sha256):
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
            raise StackError(
                f"Maven could not fetch {artifact.coordinates} (exit {result.returncode}):\n{_output_tail(result)}"
            )
    digest = sha256(target)
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
    """Unzip a Trino plugin zip (``trino-iceberg-476/*.jar``) into ``plugin/<name>/``."""
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            parts = Path(info.filename).parts
            if info.is_dir() or len(parts) < 2 or ".." in parts:
                continue
            target = destination.joinpath(*parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink)


# ---------------------------------------------------------------------------
# versitygw: Go module proxy, checked against the pinned module hash, then built


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
            raise StackError(f"go install {package} failed (exit {result.returncode}):\n{_output_tail(result)}")
        directory.mkdir(parents=True, exist_ok=True)
        os.replace(built, inst.versitygw)
        (directory / _COMPLETE_MARKER).write_text(marker)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    echo(f"versitygw {pins.versitygw_version}: ready in {time.monotonic() - started:.0f}s")
