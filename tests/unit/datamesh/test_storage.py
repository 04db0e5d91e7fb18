"""The lake's storage primitives on a local folder: atomic replace, create-only, confined deletes."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamesh.errors import ConflictError, StorageError
from datamesh.storage import Lake


def test_replace_and_create_only(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    target = lake.path("x", "pointer.json")
    lake.replace(target, b"1")
    lake.replace(target, b"2")
    assert lake.read_bytes(target) == b"2"
    lake.create_only(lake.path("x", "m.json"), b"a")
    with pytest.raises(ConflictError):
        lake.create_only(lake.path("x", "m.json"), b"b")
    assert lake.read_bytes(lake.path("x", "m.json")) == b"a"
    assert not [p for p in Path(lake.path("x")).iterdir() if p.name.endswith(".tmp")]


def test_read_head_and_hash(tmp_path: Path) -> None:
    import hashlib

    lake = Lake(tmp_path / "lake")
    path = lake.path("f.bin")
    lake.write_bytes(path, b"x" * 1000)
    assert lake.read_head(path, 10) == b"x" * 10
    assert lake.sha256(path, chunk_bytes=7) == hashlib.sha256(b"x" * 1000).hexdigest()
    with pytest.raises(FileNotFoundError):
        lake.read_bytes(lake.path("missing"))


@pytest.mark.parametrize("bad", ["products/a/../b/x", "products/b/x", "products/a", "/etc/x", "products/a/x\\..\\y"])
def test_check_within_refuses_paths_outside(tmp_path: Path, bad: str) -> None:
    lake = Lake(tmp_path / "lake")
    prefix = lake.path("products", "a")
    path = bad if bad.startswith("/") else lake.path(*bad.split("/"))
    with pytest.raises(StorageError, match="Nothing was changed"):
        lake.check_within(path, prefix)


def test_delete_within_deletes_only_inside(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    keep = lake.path("products", "b", "data.txt")
    lake.write_bytes(keep, b"keep")
    lake.write_bytes(lake.path("products", "a", "run", "f"), b"x")
    lake.delete_dir_within(lake.path("products", "a", "run"), lake.path("products", "a"))
    assert not Path(lake.path("products", "a", "run")).exists() and Path(keep).read_bytes() == b"keep"
    with pytest.raises(StorageError):
        lake.delete_dir_within(lake.path("products", "b"), lake.path("products", "a"))
    assert Path(keep).exists()


def test_unsupported_urls_are_refused(tmp_path: Path) -> None:
    from datamesh.errors import SettingsError

    with pytest.raises(SettingsError, match="Unsupported lake URL"):
        Lake("gs://bucket/x")
    with pytest.raises(StorageError, match="no S3 settings"):
        Lake("s3://bucket/x")
