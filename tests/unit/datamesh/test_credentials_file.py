"""The acting identity's credentials come from a private credentials file; nothing of another identity leaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datamesh.errors import SettingsError
from datamesh.settings import build_settings

ENTRIES = {
    "platform": {"s3_access_key_id": "mesh_platform", "s3_secret_access_key": "platform-secret",
                 "iceberg_catalog_uri": "postgresql+psycopg2://mesh_platform:pw@127.0.0.1:1/lake",
                 "trino_user": "mesh_platform", "trino_password": "platform-trino"},
    "analyst": {"s3_access_key_id": "analyst", "s3_secret_access_key": "analyst-secret", "trino_user": "analyst"},
    "publisher:crm": {"s3_access_key_id": "svc_crm", "s3_secret_access_key": "crm-secret", "trino_user": "svc_crm",
                      "trino_password": "crm-trino"},
}


@pytest.fixture()
def creds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "identities.json"
    path.write_text(json.dumps({"identities": ENTRIES}))
    path.chmod(0o600)
    for key in ("MESH_S3_ACCESS_KEY_ID", "MESH_S3_SECRET_ACCESS_KEY", "MESH_TRINO_USER", "MESH_TRINO_PASSWORD",
                "MESH_ICEBERG_CATALOG_URI", "MESH_ACTOR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MESH_CREDENTIALS_FILE", str(path))
    return path


def test_the_actors_credentials_fill_the_settings(creds: Path) -> None:
    s = build_settings()
    assert s.actor == "platform"
    assert s.s3_access_key_id.get_secret_value() == "mesh_platform"
    assert s.trino_user == "mesh_platform" and s.trino_password.get_secret_value() == "platform-trino"
    crm = build_settings(actor="publisher:crm")
    assert crm.s3_secret_access_key.get_secret_value() == "crm-secret"


def test_switching_actor_carries_nothing_over(creds: Path) -> None:
    analyst = build_settings().as_actor("analyst")
    assert analyst.s3_access_key_id.get_secret_value() == "analyst"
    assert analyst.trino_password is None and analyst.iceberg_catalog_uri is None
    assert "analyst-secret" not in repr(analyst) and "platform-trino" not in repr(analyst)


def test_the_file_wins_over_credentials_set_for_another_identity(creds: Path) -> None:
    """MESH_ACTOR=analyst with the platform's Trino login set explicitly must not run as the platform."""
    s = build_settings(actor="analyst", trino_user="mesh_platform", trino_password="platform-trino")
    assert s.trino_user == "analyst" and s.trino_password is None


def test_acting_as_another_identity_without_a_file_keeps_no_foreign_credentials(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MESH_CREDENTIALS_FILE", "MESH_S3_SECRET_ACCESS_KEY", "MESH_TRINO_PASSWORD", "MESH_ACTOR"):
        monkeypatch.delenv(key, raising=False)
    assert build_settings().as_actor("analyst").actor == "analyst"  # a local lake: nothing to carry over
    with pytest.raises(SettingsError, match="belong to 'platform'"):
        build_settings(trino_password="platform-trino").as_actor("analyst")


def test_an_actor_without_an_entry_is_refused(creds: Path) -> None:
    with pytest.raises(SettingsError, match=r"no credentials for MESH_ACTOR='publisher:billing'.*analyst"):
        build_settings(actor="publisher:billing")


def test_a_readable_or_missing_file_is_refused(creds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds.chmod(0o644)
    with pytest.raises(SettingsError, match="chmod 600"):
        build_settings()
    monkeypatch.setenv("MESH_CREDENTIALS_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(SettingsError, match="does not exist"):
        build_settings()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    bad.chmod(0o600)
    monkeypatch.setenv("MESH_CREDENTIALS_FILE", str(bad))
    with pytest.raises(SettingsError, match="not JSON"):
        build_settings()
