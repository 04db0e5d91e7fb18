"""The dbt project builds the churn_features mart exactly as its contract declares.

Runs ``dbt build`` (models and data tests) on a small generated lake, with a stub
of the `mesh` plugin that serves the lake as ``<domain>.<product>`` views.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from datamesh.paths import DBT_PROJECT_DIR
from demo_sources.generator import SOURCE_PRODUCTS, DemoConfig, iter_product
from demo_sources.population import simulate_population
from tests.unit.dbt import stub_mesh_plugin
from tests.unit.demo_sources.contract_yaml import arrow_schema_for, contract_yaml

CONFIG = DemoConfig(customers=2_000, chunk_customers=1_000)

pytestmark = pytest.mark.slow


def _write_lake(lake_dir: Path) -> None:
    for product_id in SOURCE_PRODUCTS:
        domain = contract_yaml(product_id)["domain"]
        target = lake_dir / domain / product_id
        target.mkdir(parents=True)
        for index, table in enumerate(iter_product(product_id, CONFIG)):
            pq.write_table(table, target / f"part-{index:05d}.parquet")


def _sources_yaml() -> str:
    domains: dict[str, list[dict[str, str]]] = {}
    for product_id in SOURCE_PRODUCTS:
        domains.setdefault(contract_yaml(product_id)["domain"], []).append({"name": product_id})
    sources = [{"name": d, "schema": d, "tables": tables} for d, tables in domains.items()]
    return yaml.safe_dump({"version": 2, "sources": sources})


@pytest.fixture(scope="module")
def mart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dbt.cli.main import dbtRunner

    root = tmp_path_factory.mktemp("dbt")
    _write_lake(root / "lake")
    project = root / "project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "profiles.yml"))
    (project / "models" / "sources").mkdir(exist_ok=True)
    (project / "models" / "sources" / "_sources.yml").write_text(_sources_yaml())
    profile = {
        "datamesh": {
            "target": "test",
            "outputs": {
                "test": {
                    "type": "duckdb",
                    "path": str(root / "dbt.duckdb"),
                    "threads": 1,
                    "plugins": [
                        {
                            "module": stub_mesh_plugin.__name__,
                            "alias": "mesh",
                            "config": {"lake_dir": str(root / "lake")},
                        }
                    ],
                }
            },
        }
    }
    (root / "profiles.yml").write_text(yaml.safe_dump(profile))
    staging = root / "staging"
    staging.mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MESH_DBT_STAGING_DIR", str(staging))
        env.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        result = dbtRunner().invoke(
            [
                "build",
                "--project-dir",
                str(project),
                "--profiles-dir",
                str(root),
                "--target-path",
                str(root / "target"),
                "--log-path",
                str(root / "logs"),
                "--quiet",
            ]
        )
    assert result.success, result.exception or [r.message for r in result.result or [] if r.status != "pass"]
    return staging / "churn_features.parquet"


def test_mart_is_staged_for_the_mesh_plugin(mart: Path) -> None:
    assert str(mart) in stub_mesh_plugin.STORED


def test_mart_schema_is_the_contract_schema(mart: Path) -> None:
    assert pq.read_schema(mart).equals(arrow_schema_for("churn_features"))


def test_mart_has_one_row_per_customer_active_at_the_cutoff_with_the_true_label(mart: Path) -> None:
    table = pq.read_table(mart)
    active, churned = set(), set()
    for chunk_index in range(CONFIG.chunk_count):
        population = simulate_population(CONFIG, chunk_index)
        active |= {f"C{n:08d}" for n in population.customer_numbers[population.is_active_at_cutoff]}
        churned |= {f"C{n:08d}" for n in population.customer_numbers[population.has_churned]}
    assert table["customer_id"].to_pylist() == sorted(active)
    labelled = table.filter(table["has_churned"])["customer_id"].to_pylist()
    assert set(labelled) == churned
    assert set(pc.unique(table["feature_cutoff_date"]).to_pylist()) == {CONFIG.feature_cutoff_date}


def test_mart_required_columns_are_filled(mart: Path) -> None:
    table = pq.read_table(mart)
    for column in contract_yaml("churn_features")["columns"]:
        if column.get("required"):
            assert table[column["name"]].null_count == 0, column["name"]


def test_mart_features_carry_signal(mart: Path) -> None:
    """Churners were less active before the cutoff (no model needed to see it)."""
    table = pq.read_table(mart)
    churned = table["has_churned"].to_numpy(zero_copy_only=False)
    active_days = table["active_days_last_90_days"].to_numpy()
    assert np.mean(active_days[churned]) < 0.8 * np.mean(active_days[~churned])


def test_mart_is_learnable_but_has_no_leaking_column(mart: Path) -> None:
    """The churn signal is real but noisy: a boosted model beats chance by far, never perfectly."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    frame = pq.read_table(mart).to_pandas()
    label = frame.pop("has_churned").astype(int)
    features = frame.drop(columns=["customer_id", "feature_cutoff_date"])
    for column in features.select_dtypes(exclude="number").columns:
        features[column] = features[column].astype("category")
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=100, random_state=0)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    with threadpool_limits(limits=1):  # tiny data: threads only add overhead
        auc = cross_val_score(model, features, label, cv=folds, scoring="roc_auc").mean()
    assert 0.65 < auc < 0.95
