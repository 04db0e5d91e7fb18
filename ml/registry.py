"""A model registry in the lake, versioned like data products.

Layout under ``root`` (e.g. ``<lake>/models``)::

    <name>/versions/<n>/<run_id>/model.joblib   the fitted pipeline (joblib)
    <name>/versions/<n>/<run_id>/card.json      the ModelCard
    <name>/versions/<n>/<run_id>/plots/<p>.png  evaluation plots
    <name>/versions/<n>/manifest.json           commit record, created last, create-only
    <name>/champion.json                        pointer to the champion version

A version exists once its manifest does. Files are written first under a
directory unique to the run, so two writers that race for the same ``n``
never overwrite each other's files; only one manifest create succeeds and
the loser gets :class:`RegistryError`. The champion pointer is replaced
atomically. See docs/decisions/0031-model-registry-layout.md.

Loading a model unpickles it: only point the registry at storage you trust.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import joblib
import pyarrow.fs as pafs

from ml.card import ModelCard, utc_now_iso
from ml.errors import RegistryError, did_you_mean

__all__ = ["ModelRegistry", "ModelVersion", "atomic_write", "create_only"]

MANIFEST_FORMAT = 1
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_PLOT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}$")


def _local_path(fs: pafs.FileSystem, path: str) -> str | None:
    """The OS path behind ``path`` if ``fs`` is a local file system, else None."""
    if isinstance(fs, pafs.LocalFileSystem):
        return path
    if isinstance(fs, pafs.SubTreeFileSystem) and isinstance(fs.base_fs, pafs.LocalFileSystem):
        return os.path.join(fs.base_path, path.lstrip("/"))
    return None


def create_only(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` only if nothing is there yet.

    On a local file system the bytes go to a temporary file that is then
    hard-linked to ``path``: the link fails if ``path`` exists, is atomic
    between processes and never exposes a partly written file (the same
    protocol as the platform's product manifests). On other file systems it
    is check-then-write, which is NOT atomic: the platform's conditional
    write (``If-None-Match: *`` on S3) should replace it there. Raises
    :class:`FileExistsError` if the path exists.
    """
    local = _local_path(fs, path)
    if local is not None:
        tmp = _durable_temp(local, data)
        try:
            os.link(tmp, local)
        finally:
            os.unlink(tmp)
        return
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        raise FileExistsError(path)
    with fs.open_output_stream(path) as out:
        out.write(data)


def atomic_write(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or new bytes, never a mix.

    Local: write a temporary file beside it, fsync, rename over. Object
    stores: a single PUT, which is atomic there.
    """
    local = _local_path(fs, path)
    if local is None:
        with fs.open_output_stream(path) as out:
            out.write(data)
        return
    tmp = _durable_temp(local, data)
    try:
        os.replace(tmp, local)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _durable_temp(local: str, data: bytes) -> str:
    """Write ``data`` to a fsynced temporary file beside ``local``; return its path."""
    directory = os.path.dirname(local)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(local)}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return tmp


@dataclass(frozen=True)
class ModelVersion:
    """A committed model version: where it is, its card and its files."""

    name: str
    version: int
    prefix: str
    run_id: str
    created_at: str
    card: ModelCard
    files: Mapping[str, Mapping[str, Any]]

    @property
    def plots(self) -> list[str]:
        """Names of the stored plots (``roc.png``, ...)."""
        return sorted(k.removeprefix("plots/") for k in self.files if k.startswith("plots/"))


class ModelRegistry:
    """Versioned models on a ``pyarrow.fs.FileSystem`` under ``root``."""

    def __init__(self, fs: pafs.FileSystem, root: str,
                 create_only: Callable[[str, bytes], None] | None = None) -> None:
        """``create_only(path, data)`` replaces the module's check-then-write on object
        stores (the platform passes its conditional ``If-None-Match: *`` write); it must
        raise :class:`FileExistsError` when the path exists."""
        self.fs = fs
        self.root = root.rstrip("/")
        self._create_only = create_only

    # -- paths -------------------------------------------------------------------

    def _model_dir(self, name: str) -> str:
        if not isinstance(name, str) or not _NAME.match(name):
            raise RegistryError(
                f"Invalid model name {name!r}: expected lower-case letters, digits and underscores, "
                "starting with a letter (at most 63 characters)."
            )
        return f"{self.root}/{name}"

    def _version_dir(self, name: str, version: int) -> str:
        return f"{self._model_dir(name)}/versions/{int(version)}"

    # -- writing -----------------------------------------------------------------

    def register(
        self,
        name: str,
        model: Any,
        card: ModelCard,
        plots: Mapping[str, bytes] | None = None,
        *,
        version: int | None = None,
    ) -> ModelVersion:
        """Store ``model`` (joblib), ``card`` and ``plots`` as a new version.

        The version number is one more than the highest committed version
        unless ``version`` is given. Files go under a directory unique to
        this call; the manifest is created last and create-only. Raises
        :class:`RegistryError` if another writer committed that version
        first (lost the race: call again for the next number).
        """
        model_dir = self._model_dir(name)
        if version is None:
            existing = self.list_versions(name)
            version = (existing[-1] + 1) if existing else 1
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise RegistryError(f"Model '{name}': version must be a positive integer, got {version!r}.")
        version_dir = f"{model_dir}/versions/{version}"
        run_id = f"run-{utc_now_iso().replace(':', '').replace('-', '')}-{uuid.uuid4().hex[:12]}"
        files: dict[str, dict[str, Any]] = {}

        def put(key: str, data: bytes) -> None:
            relative = f"{run_id}/{key}"
            path = f"{version_dir}/{relative}"
            self._write(path, data)
            files[key] = {"path": relative, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}

        buffer = io.BytesIO()
        try:
            joblib.dump(model, buffer, compress=("zlib", 3))
        except Exception as exc:
            raise RegistryError(f"Model '{name}': the model cannot be pickled ({type(exc).__name__}: {exc}).") from exc
        put("model.joblib", buffer.getvalue())
        plot_names = []
        for plot, data in (plots or {}).items():
            key = plot if plot.endswith(".png") else f"{plot}.png"
            if not _PLOT.match(key):
                raise RegistryError(f"Model '{name}': invalid plot name {plot!r} (letters, digits, '_', '-', '.').")
            put(f"plots/{key}", data)
            plot_names.append(key)
        card = _with_plots(card, plot_names)
        put("card.json", card.to_json())
        created_at = utc_now_iso()
        manifest = {
            "format": MANIFEST_FORMAT,
            "name": name,
            "version": version,
            "run_id": run_id,
            "created_at": created_at,
            "candidate": card.candidate,
            "primary_metric": card.primary_metric,
            "score": card.metrics.get(card.primary_metric),
            "files": files,
        }
        try:
            payload = json.dumps(manifest, indent=2).encode()
            if self._create_only is not None:
                self._create_only(f"{version_dir}/manifest.json", payload)
            else:
                create_only(self.fs, f"{version_dir}/manifest.json", payload)
        except FileExistsError:
            raise RegistryError(
                f"Model '{name}' version {version} was committed by another writer first (lost the race); "
                f"this run's files stay unreferenced under {version_dir}/{run_id}. Register again to get "
                "the next version."
            ) from None
        return ModelVersion(name, version, version_dir, run_id, created_at, card, files)

    def promote(self, name: str, version: int, *, reason: str = "") -> ModelVersion:
        """Make ``version`` the champion (atomic pointer replace); return it."""
        target = self.get(name, version)
        previous = self._champion_pointer(name)
        pointer = {
            "name": name,
            "version": target.version,
            "promoted_at": utc_now_iso(),
            "previous": previous.get("version") if previous else None,
            "reason": reason,
        }
        atomic_write(self.fs, f"{self._model_dir(name)}/champion.json", json.dumps(pointer, indent=2).encode())
        return target

    def _write(self, path: str, data: bytes) -> None:
        local = _local_path(self.fs, path)
        if local is not None:
            os.makedirs(os.path.dirname(local), exist_ok=True)
        with self.fs.open_output_stream(path) as out:
            out.write(data)

    # -- reading -----------------------------------------------------------------

    def list_versions(self, name: str) -> list[int]:
        """Committed versions of ``name`` (those with a manifest), ascending."""
        base = f"{self._model_dir(name)}/versions"
        infos = self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        numbers = sorted(int(i.base_name) for i in infos if i.type == pafs.FileType.Directory and i.base_name.isdigit())
        if not numbers:
            return []
        manifests = self.fs.get_file_info([f"{base}/{n}/manifest.json" for n in numbers])
        return [n for n, info in zip(numbers, manifests, strict=True) if info.type == pafs.FileType.File]

    def get(self, name: str, version: int) -> ModelVersion:
        """The committed version ``version`` of ``name``."""
        version_dir = self._version_dir(name, version)
        try:
            manifest = json.loads(self._read(f"{version_dir}/manifest.json"))
        except FileNotFoundError:
            known = self.list_versions(name)
            raise RegistryError(
                f"Model '{name}' has no version {version}; committed versions: {known or 'none'}."
            ) from None
        card = ModelCard.from_json(self._read_file(version_dir, manifest, "card.json"))
        return ModelVersion(
            name=name,
            version=int(manifest["version"]),
            prefix=version_dir,
            run_id=str(manifest["run_id"]),
            created_at=str(manifest["created_at"]),
            card=card,
            files=manifest["files"],
        )

    def load(self, name: str, version: int) -> Any:
        """Unpickle the model of ``version`` (checksum verified)."""
        version_dir = self._version_dir(name, version)
        try:
            manifest = json.loads(self._read(f"{version_dir}/manifest.json"))
        except FileNotFoundError:
            raise RegistryError(
                f"Model '{name}' has no version {version}; committed versions: {self.list_versions(name) or 'none'}."
            ) from None
        data = self._read_file(version_dir, manifest, "model.joblib")
        return joblib.load(io.BytesIO(data))

    def read_plot(self, name: str, version: int, plot: str) -> bytes:
        """The PNG bytes of a stored plot."""
        mv = self.get(name, version)
        key = f"plots/{plot if plot.endswith('.png') else plot + '.png'}"
        if key not in mv.files:
            raise RegistryError(f"Model '{name}' version {version} has no plot '{plot}'." + did_you_mean(plot, mv.plots))
        return self._read_file(mv.prefix, {"files": mv.files}, key)

    def champion(self, name: str) -> ModelVersion | None:
        """The current champion of ``name``, or None if none was promoted."""
        pointer = self._champion_pointer(name)
        if pointer is None:
            return None
        return self.get(name, int(pointer["version"]))

    def _champion_pointer(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._read(f"{self._model_dir(name)}/champion.json"))
        except FileNotFoundError:
            return None

    def _read(self, path: str) -> bytes:
        try:
            with self.fs.open_input_stream(path) as stream:
                return stream.read()
        except FileNotFoundError:
            raise
        except OSError as exc:
            if self.fs.get_file_info(path).type == pafs.FileType.NotFound:
                raise FileNotFoundError(path) from exc
            raise RegistryError(f"Cannot read {path}: {exc}") from exc

    def _read_file(self, version_dir: str, manifest: Mapping[str, Any], key: str) -> bytes:
        entry = manifest["files"].get(key)
        if entry is None:
            raise RegistryError(f"{version_dir}/manifest.json lists no '{key}'.")
        path = f"{version_dir}/{entry['path']}"
        try:
            data = self._read(path)
        except FileNotFoundError:
            raise RegistryError(f"{path} is listed in the manifest but missing.") from None
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise RegistryError(f"{path} does not match its checksum in the manifest (corrupt or overwritten).")
        return data


def _with_plots(card: ModelCard, plots: list[str]) -> ModelCard:
    return dataclasses.replace(card, plots=sorted(set(card.plots) | set(plots)))
