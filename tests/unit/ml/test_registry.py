from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from datamesh.errors import ConflictError, PlatformError
from datamesh.provenance import RUN_ID_PATTERN
from datamesh.storage import Lake
from ml.errors import MLError, RegistryError
from ml.registry import MODEL_CACHE, ModelRegistry

from .test_champion import card


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(Lake(tmp_path))


@pytest.fixture
def model() -> LogisticRegression:
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    return LogisticRegression().fit(X, [0, 0, 1, 1])


def test_register_writes_version_with_manifest(registry: ModelRegistry, model: LogisticRegression, tmp_path: Path) -> None:
    mv = registry.register("churn", model, card(0.8), {"roc": b"\x89PNG-roc", "pr.png": b"\x89PNG-pr"})
    assert mv.version == 1
    assert mv.plots == ["pr.png", "roc.png"]
    assert mv.card.plots == ["pr.png", "roc.png"]
    version_dir = tmp_path / "models" / "churn" / "versions" / "1"
    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert manifest["run_id"] == mv.run_id and set(manifest["files"]) == {"model.joblib", "card.json", "plots/roc.png", "plots/pr.png"}
    assert (version_dir / mv.run_id / "model.joblib").exists()
    loaded = registry.load("churn", 1)
    assert np.allclose(loaded.predict_proba([[1.5]]), model.predict_proba([[1.5]]))
    assert registry.get("churn", 1).card.metrics["roc_auc"] == 0.8
    assert registry.read_plot("churn", 1, "roc") == b"\x89PNG-roc"


def test_versions_increase(registry: ModelRegistry, model: LogisticRegression) -> None:
    assert registry.list_versions("churn") == []
    assert [registry.register("churn", model, card(0.8)).version for _ in range(3)] == [1, 2, 3]
    assert registry.list_versions("churn") == [1, 2, 3]


def test_second_register_of_same_version_loses_the_race(registry: ModelRegistry, model: LogisticRegression, tmp_path: Path) -> None:
    first = registry.register("churn", model, card(0.8), version=1)
    with pytest.raises(RegistryError, match="version 1 was committed by another writer first"):
        registry.register("churn", model, card(0.9), version=1)
    # The winner's files are untouched; the loser's files sit in their own run directory.
    assert registry.get("churn", 1).run_id == first.run_id
    assert registry.get("churn", 1).card.metrics["roc_auc"] == 0.8
    assert len([p for p in (tmp_path / "models/churn/versions/1").iterdir() if p.is_dir()]) == 2


def test_uncommitted_version_is_invisible(registry: ModelRegistry, model: LogisticRegression, tmp_path: Path) -> None:
    registry.register("churn", model, card(0.8))
    (tmp_path / "models/churn/versions/2/run-crashed").mkdir(parents=True)  # a writer died before its manifest
    assert registry.list_versions("churn") == [1]
    assert registry.register("churn", model, card(0.8)).version == 2
    with pytest.raises(RegistryError, match="has no version 7; committed versions: \\[1, 2\\]"):
        registry.get("churn", 7)


def test_champion_pointer(registry: ModelRegistry, model: LogisticRegression, tmp_path: Path) -> None:
    assert registry.champion("churn") is None
    registry.register("churn", model, card(0.8))
    registry.register("churn", model, dataclasses.replace(card(0.85), candidate="random_forest"))
    registry.promote("churn", 1, reason="first")
    assert registry.champion("churn").version == 1
    registry.promote("churn", 2, reason="better")
    champion = registry.champion("churn")
    assert champion is not None and champion.version == 2 and champion.card.candidate == "random_forest"
    pointer = json.loads((tmp_path / "models/churn/champion.json").read_text())
    assert pointer["previous"] == 1 and pointer["reason"] == "better"
    assert [p.name for p in (tmp_path / "models/churn").iterdir() if p.name.endswith(".tmp")] == []
    with pytest.raises(RegistryError, match="has no version 5"):
        registry.promote("churn", 5)


@pytest.fixture(autouse=True)
def _cold_model_cache() -> None:
    MODEL_CACHE.clear()


def test_corrupt_model_file_is_detected(registry: ModelRegistry, model: LogisticRegression, tmp_path: Path) -> None:
    mv = registry.register("churn", model, card(0.8))
    (tmp_path / "models/churn/versions/1" / mv.run_id / "model.joblib").write_bytes(b"garbage")
    # This process keeps the model it stored, whatever the file now holds: it never reads the garbage.
    assert registry.load("churn", 1) is model
    MODEL_CACHE.clear()  # another process: it reads the file, and refuses it
    with pytest.raises(RegistryError, match="does not match its checksum"):
        registry.load("churn", 1)


def test_a_stored_model_is_loaded_without_reading_it_again(registry: ModelRegistry, model: LogisticRegression,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    registry.register("churn", model, card(0.8))
    MODEL_CACHE.clear()
    reads: list[str] = []
    real = registry.lake.read_bytes
    monkeypatch.setattr(registry.lake, "read_bytes", lambda path: reads.append(path) or real(path))
    first = registry.load("churn", 1)
    assert sum(p.endswith("model.joblib") for p in reads) == 1
    assert registry.load("churn", 1) is first and ModelRegistry(registry.lake).load("churn", 1) is first
    assert sum(p.endswith("model.joblib") for p in reads) == 1  # the manifest is read each time, the model once


def test_a_rewritten_manifest_misses_the_cache(registry: ModelRegistry, model: LogisticRegression,
                                               tmp_path: Path) -> None:
    """A manifest rewritten to name other bytes (with their checksum) is not served the old model."""
    other = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [1, 1, 0, 0])
    registry.register("churn", model, card(0.8))
    registry.register("churn", other, card(0.7))
    v1, v2 = (tmp_path / f"models/churn/versions/{n}/manifest.json" for n in (1, 2))
    doctored = json.loads(v1.read_text())
    second = json.loads(v2.read_text())
    (tmp_path / "models/churn/versions/1" / doctored["run_id"]).joinpath("model.joblib").write_bytes(
        (tmp_path / "models/churn/versions/2" / second["run_id"] / "model.joblib").read_bytes())
    doctored["files"]["model.joblib"] |= {k: second["files"]["model.joblib"][k] for k in ("sha256", "bytes")}
    v1.write_text(json.dumps(doctored))
    loaded = registry.load("churn", 1)
    assert loaded is not model  # the manifest's checksum changed: read from the lake, not the cache
    assert np.allclose(loaded.predict_proba([[0.0]]), other.predict_proba([[0.0]]))


def test_the_cache_is_bounded(registry: ModelRegistry, model: LogisticRegression) -> None:
    for _ in range(MODEL_CACHE.size + 2):
        registry.register("churn", model, card(0.8))
    assert len(MODEL_CACHE._models) == MODEL_CACHE.size


@pytest.mark.parametrize("name", ["Churn", "churn-model", "1churn", "", "a" * 64])
def test_invalid_model_name(registry: ModelRegistry, model: LogisticRegression, name: str) -> None:
    with pytest.raises(RegistryError, match="Invalid model name"):
        registry.register(name, model, card(0.8))


def test_unpicklable_model(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError, match="cannot be pickled"):
        registry.register("churn", threading.Lock(), card(0.8))


def test_racing_registers_of_one_version_commit_exactly_one(tmp_path: Path, model: LogisticRegression) -> None:
    registry = ModelRegistry(Lake(tmp_path))
    wins: list[str] = []
    losses: list[str] = []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            wins.append(registry.register("churn", model, card(0.5 + i / 100), version=1).run_id)
        except RegistryError as exc:
            losses.append(str(exc))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7
    assert all("lost the race" in message for message in losses)
    assert registry.get("churn", 1).run_id == wins[0]
    assert len([p for p in (tmp_path / "models/churn/versions/1").iterdir() if p.is_dir()]) == 8


def test_commit_and_pointer_leave_no_temporary_files(registry: ModelRegistry, model: LogisticRegression,
                                                     tmp_path: Path) -> None:
    registry.register("churn", model, card(0.8))
    registry.promote("churn", 1)
    registry.promote("churn", 1)
    assert sorted(p.name for p in (tmp_path / "models/churn").iterdir()) == ["champion.json", "versions"]
    version_dir = tmp_path / "models/churn/versions/1"
    assert sorted(p.name for p in version_dir.iterdir() if p.is_file()) == ["manifest.json"]


def test_registry_under_a_custom_prefix(tmp_path: Path, model: LogisticRegression) -> None:
    registry = ModelRegistry(Lake(tmp_path / "lake"), prefix="ml/models")
    registry.register("churn", model, card(0.8))
    with pytest.raises(RegistryError, match="lost the race"):
        registry.register("churn", model, card(0.8), version=1)
    assert (tmp_path / "lake/ml/models/churn/versions/1/manifest.json").exists()


class RecordingLake(Lake):
    """A local lake that records every write the registry asks of it."""

    def __init__(self, url: Path) -> None:
        super().__init__(url)
        self.writes: list[tuple[str, str]] = []

    def write_bytes(self, path: str, data: bytes) -> None:
        self.writes.append(("write_bytes", path))
        super().write_bytes(path, data)

    def open_output(self, path: str) -> object:
        self.writes.append(("open_output", path))
        return super().open_output(path)

    def create_only(self, path: str, data: bytes) -> None:
        self.writes.append(("create_only", path))
        super().create_only(path, data)

    def replace(self, path: str, data: bytes) -> None:
        self.writes.append(("replace", path))
        super().replace(path, data)


def test_every_write_goes_through_the_lake(tmp_path: Path, model: LogisticRegression) -> None:
    lake = RecordingLake(tmp_path)
    registry = ModelRegistry(lake)
    mv = registry.register("churn", model, card(0.8), {"roc": b"\x89PNG-roc"})
    registry.promote("churn", 1, reason="first")
    root = tmp_path / "models/churn"
    ops = {Path(path).relative_to(root).as_posix(): op for op, path in lake.writes}
    run = f"versions/1/{mv.run_id}"
    assert ops == {
        f"{run}/model.joblib": "write_bytes",
        f"{run}/plots/roc.png": "write_bytes",
        f"{run}/card.json": "write_bytes",
        "versions/1/manifest.json": "create_only",
        "champion.json": "replace",
    }
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert on_disk == set(ops)  # nothing was written around the lake


class ConflictingLake(Lake):
    """A lake on which another writer always commits first (e.g. S3 answering 412)."""

    def create_only(self, path: str, data: bytes) -> None:
        raise ConflictError(f"s3://{path} already exists: another writer committed it first.")


def test_conflict_from_the_lake_is_a_lost_race(tmp_path: Path, model: LogisticRegression) -> None:
    registry = ModelRegistry(ConflictingLake(tmp_path))
    with pytest.raises(RegistryError, match="version 1 was committed by another writer first \\(lost the race\\)") as info:
        registry.register("churn", model, card(0.8))
    assert "Register again to get the next version" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert registry.list_versions("churn") == []  # the loser's files stay unreferenced
    assert len(list((tmp_path / "models/churn/versions/1").iterdir())) == 1


def test_registry_errors_are_platform_errors(registry: ModelRegistry) -> None:
    with pytest.raises(PlatformError):
        registry.get("churn", 1)
    assert issubclass(RegistryError, MLError) and issubclass(MLError, PlatformError)


def test_run_ids_follow_the_platform_scheme(registry: ModelRegistry, model: LogisticRegression) -> None:
    run_id = registry.register("churn", model, card(0.8)).run_id
    assert RUN_ID_PATTERN.match(run_id)
    assert __import__("re").fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", run_id)


def _rewrite_card(tmp_path: Path, run_id: str, data: bytes) -> Path:
    """Replace a version's card.json and fix its checksum, as a buggy writer would have committed it."""
    version_dir = tmp_path / "models/churn/versions/1"
    path = version_dir / run_id / "card.json"
    path.write_bytes(data)
    manifest_path = version_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["card.json"].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    manifest_path.write_text(json.dumps(manifest))
    return path


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda c: {**c, "metrics": {"roc_auc": "high"}}, "field 'metrics.roc_auc': Input should be a valid number"),
        (lambda c: {k: v for k, v in c.items() if k != "primary_metric"}, "field 'primary_metric': Field required"),
        (lambda c: {**c, "feature_columns": "x"}, "field 'feature_columns': Input should be a valid list"),
        (lambda c: [c], "expected a JSON object, got list"),
        (lambda c: None, "not valid JSON"),
    ],
    ids=["wrong_type", "missing_field", "not_a_list", "not_an_object", "not_json"],
)
def test_corrupt_card_names_the_file_and_what_to_do(
    registry: ModelRegistry, model: LogisticRegression, tmp_path: Path, change: object, problem: str
) -> None:
    mv = registry.register("churn", model, card(0.8))
    registry.promote("churn", 1)
    original = json.loads((tmp_path / "models/churn/versions/1" / mv.run_id / "card.json").read_text())
    changed = change(original)  # type: ignore[operator]
    path = _rewrite_card(tmp_path, mv.run_id, b"{not json" if changed is None else json.dumps(changed).encode())
    reads = (lambda: registry.get("churn", 1), lambda: registry.champion("churn"), lambda: registry.promote("churn", 1))
    for read in reads:
        with pytest.raises(RegistryError) as info:
            read()
        message = str(info.value)
        assert message.startswith(f"Model card {path} is corrupt: ")
        assert problem in message
        assert "train and register the model again" in message
        assert info.value.__cause__ is None
    assert np.allclose(registry.load("churn", 1).predict_proba([[1.5]]), model.predict_proba([[1.5]]))


@pytest.mark.parametrize(
    "pointer",
    [b"garbage", b"{}", json.dumps({"name": "churn", "version": "two", "promoted_at": "x"}).encode(),
     json.dumps({"name": "churn", "version": 0, "promoted_at": "x"}).encode()],
    ids=["not_json", "empty", "version_not_a_number", "version_zero"],
)
def test_corrupt_champion_pointer_names_the_file_and_is_repaired_by_promote(
    registry: ModelRegistry, model: LogisticRegression, tmp_path: Path, pointer: bytes
) -> None:
    registry.register("churn", model, card(0.8))
    path = tmp_path / "models/churn/champion.json"
    path.write_bytes(pointer)
    with pytest.raises(RegistryError, match=f"Champion pointer {path} is corrupt: .*Promote a version again") as info:
        registry.champion("churn")
    assert "committed versions: [1]" in str(info.value)
    registry.promote("churn", 1, reason="repair")
    champion = registry.champion("churn")
    assert champion is not None and champion.version == 1
    assert json.loads(path.read_text())["previous"] is None


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: "garbage",
        lambda m: {k: v for k, v in m.items() if k != "files"},
        lambda m: {**m, "run_id": "../elsewhere"},
        lambda m: {**m, "files": {**m["files"], "model.joblib": {**m["files"]["model.joblib"], "path": "../../x"}}},
    ],
    ids=["not_json", "no_files", "bad_run_id", "path_outside_version"],
)
def test_corrupt_manifest_names_the_file(registry: ModelRegistry, model: LogisticRegression, tmp_path: Path,
                                         edit: object) -> None:
    registry.register("churn", model, card(0.8))
    path = tmp_path / "models/churn/versions/1/manifest.json"
    edited = edit(json.loads(path.read_text()))  # type: ignore[operator]
    path.write_text(edited if isinstance(edited, str) else json.dumps(edited))
    for read in (lambda: registry.get("churn", 1), lambda: registry.load("churn", 1)):
        with pytest.raises(RegistryError, match=f"Manifest {path} is corrupt: .*restore the file"):
            read()


def test_invalid_plot_name_is_refused_before_anything_is_written(registry: ModelRegistry, model: LogisticRegression,
                                                                 tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="Model 'churn': Invalid plot name '../roc'"):
        registry.register("churn", model, card(0.8), {"../roc.png": b"x"})
    assert not (tmp_path / "models/churn").exists()



def test_a_version_copied_from_another_model_is_refused(registry: ModelRegistry, model: LogisticRegression,
                                                        tmp_path: Path) -> None:
    """A version folder copied into another model, or a pointer naming another model, is refused."""
    import shutil

    registry.register("churn", model, card(0.8))
    registry.promote("churn", 1, reason="first")
    shutil.copytree(tmp_path / "models/churn/versions/1", tmp_path / "models/revenue/versions/2")
    with pytest.raises(RegistryError, match="copied from another model"):
        registry.get("revenue", 2)
    with pytest.raises(RegistryError, match="copied from another model"):
        registry.load("revenue", 2)
    shutil.copy(tmp_path / "models/churn/champion.json", tmp_path / "models/revenue/champion.json")
    with pytest.raises(RegistryError, match="names model 'churn', not 'revenue'"):
        registry.champion("revenue")
