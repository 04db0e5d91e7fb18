"""A user publishes their own CSV against their own contract and runs `mesh train` on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from meshcli import app
from tests.leads import write_contracts, write_csv


@pytest.fixture()
def user_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from datamesh.settings import get_settings

    contracts = write_contracts(tmp_path / "contracts")
    monkeypatch.setenv("MESH_CONTRACTS_DIR", str(contracts))
    monkeypatch.setenv("MESH_LAKE_URL", str(tmp_path / "lake"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.mark.slow
def test_publish_csv_then_train_and_score(user_env: Path) -> None:
    runner = CliRunner()
    csv = write_csv(user_env / "leads.csv")
    result = runner.invoke(app, ["publish", "leads", str(csv)])
    assert result.exit_code == 0, result.output
    assert "published leads version 1" in result.output
    result = runner.invoke(app, ["train", "leads", "--no-keras", "--candidate", "logistic_regression",
                                 "--candidate", "hist_gradient_boosting"])
    assert result.exit_code == 0, result.output
    assert "logistic_regression" in result.output and "promoted to champion" in result.output
    assert "published lead_scores version 1 (400 rows)" in result.output
    result = runner.invoke(app, ["query", "-f", "json",
                                 "select count(*) as n, count_if(predicted_label) as flagged from sales.lead_scores"])
    assert result.exit_code == 0, result.output
    assert '"n": 400' in result.output


def test_train_errors_are_clear(user_env: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", "leads"])
    assert result.exit_code == 1
    assert "no published version yet" in result.output
    result = runner.invoke(app, ["train", "lead_scores"])
    assert result.exit_code == 1
    assert "declares no label column" in result.output and "lead_scores.yaml" in result.output
    result = runner.invoke(app, ["train", "leadz"])
    assert "Did you mean 'leads'" in result.output


def test_publish_csv_errors_name_the_file(user_env: Path) -> None:
    runner = CliRunner()
    bad = user_env / "bad.csv"
    bad.write_text("lead_id,company_size\nL1,3\n")
    result = runner.invoke(app, ["publish", "leads", str(bad)])
    assert result.exit_code == 1
    assert "bad.csv" in result.output and "missing column 'industry'" in result.output
