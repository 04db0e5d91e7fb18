from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs
import pytest
from sklearn.linear_model import LogisticRegression

from ml.errors import RegistryError
from ml.registry import ModelRegistry, atomic_write, create_only

from .test_champion import card


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(pafs.LocalFileSystem(), str(tmp_path / "models"))


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


def test_corrupt_model_file_is_detected(registry: ModelRegistry, model: LogisticRegression, tmp_path: Path) -> None:
    mv = registry.register("churn", model, card(0.8))
    (tmp_path / "models/churn/versions/1" / mv.run_id / "model.joblib").write_bytes(b"garbage")
    with pytest.raises(RegistryError, match="does not match its checksum"):
        registry.load("churn", 1)


@pytest.mark.parametrize("name", ["Churn", "churn-model", "1churn", "", "a" * 64])
def test_invalid_model_name(registry: ModelRegistry, model: LogisticRegression, name: str) -> None:
    with pytest.raises(RegistryError, match="Invalid model name"):
        registry.register(name, model, card(0.8))


def test_unpicklable_model(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError, match="cannot be pickled"):
        registry.register("churn", threading.Lock(), card(0.8))


def test_create_only_is_exclusive_between_threads(tmp_path: Path) -> None:
    fs = pafs.LocalFileSystem()
    path = str(tmp_path / "a" / "manifest.json")
    wins: list[int] = []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            create_only(fs, path, f"writer {i}".encode())
            wins.append(i)
        except FileExistsError:
            pass

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert Path(path).read_text() == f"writer {wins[0]}"


def test_create_only_and_atomic_write_on_subtree_fs(tmp_path: Path) -> None:
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    create_only(fs, "x/y.json", b"1")
    with pytest.raises(FileExistsError):
        create_only(fs, "x/y.json", b"2")
    atomic_write(fs, "x/y.json", b"3")
    assert (tmp_path / "x/y.json").read_bytes() == b"3"
    assert os.listdir(tmp_path / "x") == ["y.json"]


def test_registry_on_subtree_fs(tmp_path: Path, model: LogisticRegression) -> None:
    registry = ModelRegistry(pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()), "lake/models")
    registry.register("churn", model, card(0.8))
    with pytest.raises(RegistryError, match="lost the race"):
        registry.register("churn", model, card(0.8), version=1)
    assert (tmp_path / "lake/models/churn/versions/1/manifest.json").exists()
