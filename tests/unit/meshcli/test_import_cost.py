"""What a `mesh` command imports, checked in a fresh interpreter (never timed: timing lives in benchmarks/cli.py).

Start-up time of the CLI is mostly import time, so the guard is on the modules loaded:
``mesh --help`` loads none of the data or ML stack, and listing models loads no ML
library, no Iceberg catalog (SQLAlchemy) and no pandas.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datamesh.paths import PROJECT_ROOT

#: Run ``mesh ARGS...`` in this interpreter, then write the top-level modules it loaded (JSON) to OUT.
_DRIVER = """
import json, sys
out, args = sys.argv[1], sys.argv[2:]
sys.argv = ["mesh", *args]
code = 0
if args != ["--import-only"]:
    from meshcli import app
    try:
        app(prog_name="mesh")
    except SystemExit as exc:
        code = exc.code or 0
else:
    import meshcli  # noqa: F401
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}, f)
"""

#: Never loaded by ``import meshcli`` nor any ``--help`` (pydantic may be: typer coerces option values with it).
HELP_FORBIDDEN = {"sklearn", "tensorflow", "keras", "dagster", "dagster_dbt", "dbt", "pyarrow", "duckdb", "pyiceberg",
                  "pandas", "numpy", "sqlalchemy", "joblib", "scipy", "matplotlib", "yaml", "pydantic_settings",
                  "orchestration", "nativestack", "trino", "requests"}
#: Never loaded to list a product's models (cards only: no model is unpickled, no table opened).
MODELS_FORBIDDEN = {"sklearn", "tensorflow", "keras", "dagster", "dagster_dbt", "dbt", "joblib", "scipy",
                    "matplotlib", "pandas", "sqlalchemy", "orchestration", "nativestack"}


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESH_")}
    return {**env, "DO_NOT_TRACK": "1", **extra}


def loaded_by(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", _DRIVER, str(out), *args], cwd=PROJECT_ROOT, env=env or _clean_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert out.exists(), proc.stderr[-2000:]
    result = json.loads(out.read_text())
    return result["code"], set(result["modules"])


@pytest.mark.parametrize("args", [["--import-only"], ["--help"], ["models", "--help"], ["query", "--help"]],
                         ids=["import", "help", "models-help", "query-help"])
def test_help_loads_no_data_or_ml_library(args: list[str], tmp_path: Path) -> None:
    code, modules = loaded_by(args, tmp_path)
    assert code == 0
    assert modules & HELP_FORBIDDEN == set()
    assert {"typer", "meshcli"} <= modules  # the driver did run the CLI


def test_listing_models_loads_no_ml_library(tmp_path: Path, contracts_dir: Path) -> None:
    from datamesh.storage import Lake
    from ml.card import ModelCard
    from ml.registry import ModelRegistry

    lake = tmp_path / "lake"
    registry = ModelRegistry(Lake(lake))
    card = ModelCard(
        model_name="widgets", product="widgets", task="classification", candidate="logistic_regression",
        family="linear", params={"name": "logistic_regression", "params": {}}, metrics={"roc_auc": 0.8},
        primary_metric="roc_auc", threshold=0.3, threshold_policy={}, training_data={"widgets": "1"},
        id_column="widget_id", label_column="color", positive_label="red", feature_columns=["price"],
        feature_dtypes={"price": "float64"}, numeric_features=["price"], categorical_features=[], evaluation={},
        code_version="unknown", seed=42, cv_folds=5, n_training_rows=10,
    )
    registry.register("widgets", {"a": "stand-in model"}, card)
    registry.promote("widgets", 1, reason="test")

    env = _clean_env(MESH_LAKE_URL=str(lake), MESH_CONTRACTS_DIR=str(contracts_dir))
    code, modules = loaded_by(["models", "widgets"], tmp_path, env)
    assert code == 0
    assert "ml" in modules and "datamesh" in modules  # it did read the registry
    assert modules & MODELS_FORBIDDEN == set()
