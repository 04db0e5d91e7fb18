"""The `cli` fixture: `mesh ...` run in-process against the test mesh (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from meshcli import app


@pytest.fixture()
def cli(mesh, contracts_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """Run `mesh ...` against the test mesh; returns (invoke, mesh)."""
    from datamesh.settings import get_settings

    monkeypatch.setenv("MESH_LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("MESH_CONTRACTS_DIR", str(contracts_dir))
    monkeypatch.delenv("MESH_ACTOR", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str):  # noqa: ANN202
        get_settings.cache_clear()
        result = runner.invoke(app, list(args))
        assert "Traceback" not in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        return result

    yield invoke
    get_settings.cache_clear()
