"""Settings: one typed object, built at the edges, with clear errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamesh.errors import SettingsError
from datamesh.settings import LakeLocation, build_settings


def test_local_lake_location_is_parsed_once(tmp_path: Path) -> None:
    loc = LakeLocation.parse(str(tmp_path / "a" / ".." / "lake"))
    assert loc.scheme == "file" and loc.root == str((tmp_path / "lake").resolve()) and not loc.is_s3
    assert LakeLocation.parse(f"file://{tmp_path}").root == str(tmp_path.resolve())


def test_s3_lake_location() -> None:
    loc = LakeLocation.parse("s3://lake/team/x/")
    assert (loc.scheme, loc.bucket, loc.root, loc.url) == ("s3", "lake", "lake/team/x", "s3://lake/team/x/")


@pytest.mark.parametrize(("url", "fragment"), [
    ("s3://", "names no bucket"), ("s3://lake/../other", "'..'"), ("s3://lake//x", "empty"),
    ("http://example/lake", "Unsupported lake URL"), ("", "empty"), ("./la\nke", "control character"),
])
def test_bad_lake_urls(url: str, fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        LakeLocation.parse(url)


def test_build_settings_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_ACTOR", "root")
    with pytest.raises(SettingsError, match="MESH_ACTOR"):
        build_settings()
    monkeypatch.setenv("MESH_ACTOR", "publisher:crm")
    settings = build_settings(lake_url="s3://lake/x", run_id="abc")
    assert settings.identity.domain == "crm" and settings.lake.bucket == "lake" and settings.run_id == "abc"
    with pytest.raises(SettingsError, match="MESH_LAKE_URL"):
        build_settings(lake_url="ftp://x")


def test_secrets_are_not_in_the_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_S3_SECRET_ACCESS_KEY", "very-secret-value")
    settings = build_settings()
    assert "very-secret-value" not in repr(settings) and "very-secret-value" not in str(settings.model_dump())
