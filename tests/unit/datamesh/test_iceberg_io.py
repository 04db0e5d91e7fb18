"""The local lake's Iceberg file I/O: plain files, exclusive creates, local locations only."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamesh.iceberg_io import LocalFileIO, local_path


def test_a_written_file_reads_back_with_its_length(tmp_path: Path) -> None:
    io = LocalFileIO()
    location = f"file://{tmp_path}/a/b/00001.metadata.json"
    out = io.new_output(location)
    assert not out.exists()
    with out.create() as stream:
        stream.write(b"0123456789")
    assert (tmp_path / "a" / "b" / "00001.metadata.json").read_bytes() == b"0123456789"
    source = out.to_input_file()
    assert source.exists() and len(source) == 10 == len(out) and source.location == location
    with source.open() as stream:
        stream.seek(4)
        assert stream.read(3) == b"456" and stream.tell() == 7


def test_create_never_truncates_an_existing_file_unless_told(tmp_path: Path) -> None:
    target = tmp_path / "snap.avro"
    target.write_bytes(b"committed")
    out = LocalFileIO().new_output(str(target))
    with pytest.raises(FileExistsError, match="already exists"):
        out.create()
    assert target.read_bytes() == b"committed"
    with out.create(overwrite=True) as stream:
        stream.write(b"new")
    assert target.read_bytes() == b"new"


def test_delete_and_a_missing_file(tmp_path: Path) -> None:
    io = LocalFileIO()
    (tmp_path / "x").write_bytes(b"1")
    io.delete(io.new_input(f"file://{tmp_path}/x"))
    assert not (tmp_path / "x").exists()
    with pytest.raises(FileNotFoundError):
        io.new_input(f"file://{tmp_path}/x").open()
    with pytest.raises(FileNotFoundError):
        io.delete(f"{tmp_path}/x")


@pytest.mark.parametrize("location", ["s3://bucket/key", "https://example.com/x.json", "gs://b/k"])
def test_only_local_locations(location: str) -> None:
    with pytest.raises(ValueError, match="not a local file"):
        LocalFileIO().new_input(location)


def test_a_location_is_the_path_written_not_percent_decoded() -> None:
    assert local_path("file:///lake/a%20b/c") == "/lake/a%20b/c"
    assert local_path("file:/lake/x") == "/lake/x" == local_path("/lake/x")
