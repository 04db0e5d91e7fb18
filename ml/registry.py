"""A model registry in the lake, versioned like data products.

Layout under ``<lake>/models``::

    <name>/versions/<n>/<run_id>/model.joblib   the fitted pipeline (joblib)
    <name>/versions/<n>/<run_id>/card.json      the ModelCard
    <name>/versions/<n>/<run_id>/plots/<p>.png  evaluation plots
    <name>/versions/<n>/manifest.json           commit record, created last, create-only
    <name>/champion.json                        pointer to the champion version

A version exists once its manifest does. Files are written first under a
directory unique to the run (a platform run id), so two writers that race for
the same ``n`` never overwrite each other's files; only one manifest create
succeeds and the loser gets :class:`RegistryError`. The champion pointer is
replaced atomically. See docs/decisions/0031-model-registry-layout.md.

Every write goes through the platform's :class:`~datamesh.storage.Lake`: files
with ``write_bytes``, the manifest with ``create_only`` (hard link on a
folder, ``If-None-Match: *`` on S3), the pointer with ``replace``. What is
read back (manifest, card, pointer) is validated; a corrupt file raises
:class:`RegistryError` naming it and what to do.

Loading a model unpickles it: only point the registry at storage you trust.
A process keeps the few models it last stored or loaded in memory, keyed by
where they live and the checksum their manifest records (decision 0046): a
version stored and then scored in one run is unpickled never, and a manifest
that changes is a miss. Models handed out are shared: treat them as read-only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from datamesh.errors import ConflictError, InvalidNameError, did_you_mean
from datamesh.names import validate_name
from datamesh.provenance import RUN_ID_PATTERN, new_run_id
from datamesh.storage import Lake
from ml.card import ModelCard, utc_now_iso
from ml.errors import RegistryError, validation_problems

__all__ = ["DEFAULT_PREFIX", "ModelRegistry", "ModelVersion"]

DEFAULT_PREFIX = "models"
MANIFEST_FORMAT = 1
_MANIFEST = "manifest.json"
_CHAMPION = "champion.json"
_PNG = ".png"
_MODEL = "model.joblib"


class _ModelCache:
    """The models this process last stored or loaded, least recently used out first.

    A key is the version's place in the lake (endpoint, directory, run id) and
    the SHA-256 its manifest records for ``model.joblib``: committed versions
    are write-once, and a manifest rewritten to name other bytes names another
    checksum, so it misses and those bytes are read and verified as before.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._models: OrderedDict[tuple[str | None, str, str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str | None, str, str, str]) -> Any | None:
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
            return model

    def put(self, key: tuple[str | None, str, str, str], model: Any) -> None:
        with self._lock:
            self._models[key] = model
            self._models.move_to_end(key)
            while len(self._models) > self.size:
                self._models.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


# Two champions (churn and revenue) and a challenger fit; each holds a fitted pipeline, tens of MiB at demo scale.
MODEL_CACHE = _ModelCache(size=3)


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _FileEntry(_Record):
    """One file of a version, as the manifest records it."""

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(alias="bytes", ge=0)

    @field_validator("path")
    @classmethod
    def _inside_version(cls, value: str) -> str:
        if value.startswith("/") or any(part in ("", ".", "..") for part in value.split("/")):
            raise ValueError("expected a relative path inside the version directory")
        return value


class _Manifest(_Record):
    """The commit record ``<name>/versions/<n>/manifest.json``."""

    format: int
    name: str
    version: int = Field(ge=1)
    run_id: str
    created_at: str
    files: dict[str, _FileEntry]

    @field_validator("run_id")
    @classmethod
    def _valid_run_id(cls, value: str) -> str:
        if not RUN_ID_PATTERN.fullmatch(value):
            raise ValueError(f"expected a run id matching {RUN_ID_PATTERN.pattern}")
        return value


class _ChampionPointer(_Record):
    """``<name>/champion.json``: which version is the champion, since when and why."""

    name: str
    version: int = Field(ge=1)
    promoted_at: str
    previous: int | None = None
    reason: str = ""


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
    """Versioned models in ``lake`` under ``<lake>/<prefix>`` (default ``<lake>/models``)."""

    def __init__(self, lake: Lake, prefix: str = DEFAULT_PREFIX) -> None:
        self.lake = lake
        self.root = lake.path(prefix.strip("/")) if prefix.strip("/") else lake.root

    # -- paths -------------------------------------------------------------------

    def _model_dir(self, name: str) -> str:
        try:
            validate_name(name, kind="model name")
        except InvalidNameError as exc:
            raise RegistryError(str(exc)) from None
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
        unless ``version`` is given. Plot names are ``<name>`` or
        ``<name>.png`` with a valid platform name (e.g. ``roc``, see
        :class:`ml.plots.PlotKind`). Files go under a directory unique to
        this call; the manifest is created last with ``Lake.create_only``.
        Raises :class:`RegistryError` if another writer committed that
        version first (lost the race: call again for the next number).
        """
        model_dir = self._model_dir(name)
        if version is None:
            existing = self.list_versions(name)
            version = (existing[-1] + 1) if existing else 1
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise RegistryError(f"Model '{name}': version must be a positive integer, got {version!r}.")
        version_dir = f"{model_dir}/versions/{version}"
        run_id = new_run_id()
        files: dict[str, dict[str, Any]] = {}

        def put(key: str, data: bytes) -> None:
            relative = f"{run_id}/{key}"
            self.lake.write_bytes(f"{version_dir}/{relative}", data)
            files[key] = {"path": relative, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}

        keys = {plot: _plot_key(name, plot) for plot in (plots or {})}
        import joblib  # here, not at import: listing cards needs no joblib (nor numpy)

        buffer = io.BytesIO()
        try:
            # lz4 (HC level 3): as small as zlib 3 (32 MiB for the demo's soft-voting churn model), loads 2.5x faster
            joblib.dump(model, buffer, compress=("lz4", 3))
        except Exception as exc:
            raise RegistryError(f"Model '{name}': the model cannot be pickled ({type(exc).__name__}: {exc}).") from exc
        put(_MODEL, buffer.getvalue())
        for plot, data in (plots or {}).items():
            put(f"plots/{keys[plot]}", data)
        card = _with_plots(card, list(keys.values()))
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
            self.lake.create_only(f"{version_dir}/{_MANIFEST}", json.dumps(manifest, indent=2).encode())
        except ConflictError:
            raise RegistryError(
                f"Model '{name}' version {version} was committed by another writer first (lost the race); "
                f"this run's files stay unreferenced under {version_dir}/{run_id}. Register again to get "
                "the next version."
            ) from None
        MODEL_CACHE.put(self._cache_key(version_dir, run_id, files[_MODEL]["sha256"]), model)
        return ModelVersion(name, version, version_dir, run_id, created_at, card, files)

    def promote(self, name: str, version: int, *, reason: str = "") -> ModelVersion:
        """Make ``version`` the champion (``Lake.replace`` of the pointer); return it.

        A corrupt pointer is overwritten (its previous version is then unknown).
        """
        target = self.get(name, version)
        previous = self._champion_pointer(name, repairing=True)
        pointer = _ChampionPointer(
            name=name,
            version=target.version,
            promoted_at=utc_now_iso(),
            previous=previous.version if previous else None,
            reason=reason,
        )
        self.lake.replace(self._pointer_path(name), json.dumps(pointer.model_dump(), indent=2).encode())
        return target

    # -- reading -----------------------------------------------------------------

    def list_versions(self, name: str) -> list[int]:
        """Committed versions of ``name`` (those with a manifest), ascending."""
        base = f"{self._model_dir(name)}/versions/"
        numbers = set()
        for info in self.lake.list_files(base.rstrip("/")):
            number, _, rest = info.path.removeprefix(base).partition("/")
            if rest == _MANIFEST and number.isascii() and number.isdigit():
                numbers.add(int(number))
        return sorted(numbers)

    def get(self, name: str, version: int) -> ModelVersion:
        """The committed version ``version`` of ``name``."""
        version_dir, manifest = self._manifest(name, version)
        source = f"{version_dir}/{manifest.files['card.json'].path}" if "card.json" in manifest.files else "card.json"
        card = ModelCard.from_json(self._read_file(version_dir, manifest, "card.json"), source=source)
        return ModelVersion(
            name=name,
            version=manifest.version,
            prefix=version_dir,
            run_id=manifest.run_id,
            created_at=manifest.created_at,
            card=card,
            files={key: entry.model_dump(by_alias=True) for key, entry in manifest.files.items()},
        )

    def load(self, name: str, version: int) -> Any:
        """The model of ``version``: unpickled (checksum verified), or this process's copy of the
        same bytes (the manifest's checksum is the key). Shared: do not modify it."""
        version_dir, manifest = self._manifest(name, version)
        entry = manifest.files.get(_MODEL)
        key = self._cache_key(version_dir, manifest.run_id, entry.sha256) if entry is not None else None
        if key is not None and (model := MODEL_CACHE.get(key)) is not None:
            return model
        data = self._read_file(version_dir, manifest, _MODEL)  # raises when the manifest lists no model
        import joblib

        model = joblib.load(io.BytesIO(data))
        MODEL_CACHE.put(self._cache_key(version_dir, manifest.run_id, manifest.files[_MODEL].sha256), model)
        return model

    def _cache_key(self, version_dir: str, run_id: str, sha256: str) -> tuple[str | None, str, str, str]:
        return (self.lake.s3.endpoint_url if self.lake.s3 else None, version_dir, run_id, sha256)

    def read_plot(self, name: str, version: int, plot: str) -> bytes:
        """The PNG bytes of a stored plot."""
        version_dir, manifest = self._manifest(name, version)
        key = f"plots/{plot if plot.endswith(_PNG) else plot + _PNG}"
        if key not in manifest.files:
            stored = [k.removeprefix("plots/") for k in manifest.files if k.startswith("plots/")]
            raise RegistryError(f"Model '{name}' version {version} has no plot '{plot}'." + did_you_mean(plot, stored))
        return self._read_file(version_dir, manifest, key)

    def champion(self, name: str) -> ModelVersion | None:
        """The current champion of ``name``, or None if none was promoted."""
        pointer = self._champion_pointer(name)
        if pointer is None:
            return None
        return self.get(name, pointer.version)

    def _pointer_path(self, name: str) -> str:
        return f"{self._model_dir(name)}/{_CHAMPION}"

    def _champion_pointer(self, name: str, *, repairing: bool = False) -> _ChampionPointer | None:
        path = self._pointer_path(name)
        try:
            data = self.lake.read_bytes(path)
        except FileNotFoundError:
            return None
        try:
            pointer = _ChampionPointer.model_validate_json(data)
            if pointer.name != name:
                raise ValueError(f"it names model '{pointer.name}', not '{name}'")
            return pointer
        except (ValidationError, ValueError) as exc:
            if repairing:
                return None
            problem = validation_problems(exc) if isinstance(exc, ValidationError) else str(exc)
            raise RegistryError(
                f"Champion pointer {path} is corrupt: {problem}. Promote a version again to "
                f"rewrite it (ModelRegistry.promote('{name}', <version>); committed versions: "
                f"{self.list_versions(name) or 'none'})."
            ) from None

    def _manifest(self, name: str, version: int) -> tuple[str, _Manifest]:
        version_dir = self._version_dir(name, version)
        path = f"{version_dir}/{_MANIFEST}"
        try:
            data = self.lake.read_bytes(path)
        except FileNotFoundError:
            raise RegistryError(
                f"Model '{name}' has no version {version}; committed versions: {self.list_versions(name) or 'none'}."
            ) from None
        try:
            manifest = _Manifest.model_validate_json(data)
            if manifest.name != name or manifest.version != version:
                raise ValueError(f"it records model '{manifest.name}' version {manifest.version}, but lives at "
                                 f"'{name}' version {version} (copied from another model?)")
            return version_dir, manifest
        except (ValidationError, ValueError) as exc:
            problem = validation_problems(exc) if isinstance(exc, ValidationError) else str(exc)
            raise RegistryError(
                f"Manifest {path} is corrupt: {problem}. Version {version} of model '{name}' "
                "cannot be used: restore the file from a copy, or register the model again for a new version."
            ) from None

    def _read_file(self, version_dir: str, manifest: _Manifest, key: str) -> bytes:
        entry = manifest.files.get(key)
        if entry is None:
            raise RegistryError(f"{version_dir}/{_MANIFEST} lists no '{key}'.")
        path = f"{version_dir}/{entry.path}"
        try:
            data = self.lake.read_bytes(path)
        except FileNotFoundError:
            raise RegistryError(f"{path} is listed in the manifest but missing.") from None
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise RegistryError(f"{path} does not match its checksum in the manifest (corrupt or overwritten).")
        return data


def _plot_key(model: str, plot: str) -> str:
    """``roc`` or ``roc.png`` -> ``roc.png``; the name must be a valid platform name."""
    stem = plot.removesuffix(_PNG) if isinstance(plot, str) else plot
    try:
        validate_name(stem, kind="plot name")
    except InvalidNameError as exc:
        raise RegistryError(f"Model '{model}': {exc}") from None
    return f"{stem}{_PNG}"


def _with_plots(card: ModelCard, plots: list[str]) -> ModelCard:
    return dataclasses.replace(card, plots=sorted(set(card.plots) | set(plots)))
