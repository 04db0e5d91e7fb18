"""Real-world-shaped files go infer → publish → train → score with no hand edits (issue: bring your own data).

The file has what exports have: a UTF-8 BOM, CRLF line ends, CamelCase headers, blanks in a numeric
column, Yes/No booleans, the country code NA (Namibia) as a value; its labels are Yes/No, two words
that are not yes/no, or three classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from meshcli import app


def write_telco(path: Path, n: int = 500, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    rows = ["CustomerID,Gender,SeniorCitizen,Partner,Country,Tenure,MonthlyCharges,TotalSpend,Contract,Churn,Status"]
    for i in range(n):
        tenure, monthly = int(rng.integers(1, 72)), round(float(rng.uniform(20, 110)), 2)
        contract = str(rng.choice(["Month-to-month", "One year", "Two year"], p=[0.5, 0.3, 0.2]))
        z = -1.5 - 0.05 * tenure + 0.03 * monthly + (1.5 if contract == "Month-to-month" else 0.0)
        churned = rng.random() < 1 / (1 + np.exp(-z))
        total = " " if tenure < 3 and rng.random() < 0.5 else f"{tenure * monthly:.2f}"
        rows.append(f"{i:04d}-QWERT,{rng.choice(['Female', 'Male'])},{int(rng.random() < 0.2)},"
                    f"{rng.choice(['Yes', 'No'])},{rng.choice(['NA', 'DE', 'FR'])},{tenure},{monthly},{total},"
                    f"{contract},{'Yes' if churned else 'No'},{'Left' if churned else 'Stayed'}")
    path.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8-sig", newline="")
    return path


@pytest.fixture()
def byod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from datamesh.settings import get_settings

    monkeypatch.setenv("MESH_CONTRACTS_DIR", str(tmp_path / "contracts"))
    monkeypatch.setenv("MESH_LAKE_URL", str(tmp_path / "lake"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
@pytest.mark.parametrize(("label", "product", "expect"), [
    ("Churn", "telco", {"task": "classification", "positive": None, "predicted": "boolean"}),
    ("Status", "telco_status", {"task": "classification", "positive": "Left", "predicted": "boolean"}),
    ("Contract", "telco_contract", {"task": "classification", "positive": None, "predicted": "string"}),
])
def test_a_users_export_goes_from_infer_to_scores_without_edits(byod: Path, label: str, product: str,
                                                                expect: dict) -> None:
    from datamesh.platform import Mesh

    csv = write_telco(byod / "Telco Export.csv")
    out = byod / "contracts" / "crm" / f"{product}.yaml"
    _run("contract", "infer", str(csv), "--id", product, "--domain", "crm", "--owner-team", "crm-team",
         "--label", label, "--out", str(out))
    drafted = yaml.safe_load(out.read_text())
    assert drafted["ml"]["task"] == expect["task"] and drafted["ml"]["idColumn"] == "customer_id"
    assert drafted["ml"]["labelColumn"] == label.lower()
    assert drafted["ml"].get("positiveLabel") == expect["positive"]
    predictions = drafted["ml"]["predictionsProduct"]
    scores_contract = yaml.safe_load((out.parent / f"{predictions}.yaml").read_text())
    assert {c["name"]: c["type"] for c in scores_contract["columns"]}["predicted_label"] == expect["predicted"]

    assert f"published {product} version 1: 500 rows" in _run("publish", product, str(csv))
    trained = _run("train", product, "--profile", "fast", "--no-keras", "--candidate", "logistic_regression",
                   "--candidate", "random_forest")
    assert "promoted to champion" in trained and f"published {predictions} version 1 (500 rows)" in trained

    mesh = Mesh.from_settings()
    with mesh.session() as s:
        rows = s.sql(f"select count(*), count(distinct predicted_label), min(probability), max(probability) "
                     f"from crm.{predictions}").fetchone()
        kept = s.sql(f"select count(*) from crm.{product} where country = 'NA'").fetchone()[0]
        blanks = s.sql(f"select count(*) from crm.{product} where total_spend is null").fetchone()[0]
    assert rows[0] == 500 and rows[1] >= 2 and 0 <= rows[2] <= rows[3] <= 1, rows
    assert kept > 100  # Namibia stayed a country, not a null
    assert blanks > 0  # the whitespace-only amounts are nulls, not a failed publish
    from ml.products import registry

    card = registry(mesh).champion(product).card
    if label == "Contract":
        assert card.multiclass and sorted(card.classes) == ["Month-to-month", "One year", "Two year"]
    else:
        assert card.metrics["roc_auc"] > 0.6, card.metrics
