"""datamesh.provenance, the run ids and code version ml uses.

These belong in tests/unit/datamesh/test_provenance.py (they test the core);
they live here until that folder is free to edit.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from datamesh.provenance import RUN_ID_PATTERN, code_version, new_run_id

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_new_run_id_format_and_uniqueness() -> None:
    ids = {new_run_id() for _ in range(100)}
    assert len(ids) == 100
    for run_id in ids:
        assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", run_id) and RUN_ID_PATTERN.match(run_id)
        started = datetime.strptime(run_id.split("-")[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        assert abs((datetime.now(UTC) - started).total_seconds()) < 60


@pytest.mark.parametrize(
    ("orchestrator_run_id", "tag"),
    [("6f1c2a3e-9b1d-4c3a", "-6f1c2a3e"), ("../a/b..c", "-abc"), ("", ""), (None, ""), ("ü-ß", "")],
)
def test_new_run_id_tags_the_orchestrator_run(orchestrator_run_id: str | None, tag: str) -> None:
    run_id = new_run_id(orchestrator_run_id)
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}" + re.escape(tag), run_id) and RUN_ID_PATTERN.match(run_id)
    assert new_run_id(orchestrator_run_id) != run_id


@pytest.mark.parametrize(
    "run_id",
    ["20240131T120000Z-1a2b3c4d", "run-20240131T120000Z-abc", "dagster_run.1", "A", "_x", "a" * 100,
     "6f1c2a3e-9b1d-4c3a-8e2f-1a2b3c4d5e6f"],
)
def test_valid_run_ids(run_id: str) -> None:
    assert RUN_ID_PATTERN.match(run_id)


@pytest.mark.parametrize(
    "run_id",
    ["", "a" * 101, "a/b", "../x", "a..b", "..", ".", ".hidden", "-x", "a b", "x\n", "naïve", "a\\b"],
)
def test_invalid_run_ids(run_id: str) -> None:
    assert not RUN_ID_PATTERN.match(run_id)


def _git(tmp_path: Path, head: str, files: dict[str, str] | None = None) -> Path:
    git = tmp_path / ".git"
    git.mkdir()
    (git / "HEAD").write_text(head)
    for name, text in (files or {}).items():
        (git / name).parent.mkdir(parents=True, exist_ok=True)
        (git / name).write_text(text)
    return tmp_path


def test_code_version_from_a_loose_ref(tmp_path: Path) -> None:
    root = _git(tmp_path, "ref: refs/heads/main\n", {"refs/heads/main": COMMIT + "\n"})
    assert code_version(root) == COMMIT[:12]


def test_code_version_from_packed_refs(tmp_path: Path) -> None:
    packed = (f"# pack-refs with: peeled fully-peeled sorted\n{'f' * 40} refs/heads/feature/main\n"
              f"{COMMIT} refs/heads/main\n^{'e' * 40}\n")
    root = _git(tmp_path, "ref: refs/heads/main\n", {"packed-refs": packed})
    assert code_version(root) == COMMIT[:12]


def test_code_version_of_a_detached_head(tmp_path: Path) -> None:
    assert code_version(_git(tmp_path, COMMIT + "\n")) == COMMIT[:12]


def test_code_version_outside_a_repository(tmp_path: Path) -> None:
    assert code_version(tmp_path) == "unknown"
    assert code_version(_git(tmp_path, "ref: refs/heads/gone\n")) == "unknown"


def test_code_version_of_this_checkout_matches_publish() -> None:
    from datamesh.publish import code_version as publish_code_version

    assert code_version() == publish_code_version()
