"""The dbt project follows the house layout (jaffle-shop style)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from datamesh.paths import DBT_PROJECT_DIR

MODELS = DBT_PROJECT_DIR / "models"
OWN_MODELS = sorted(p for p in MODELS.rglob("*.sql") if "sources" not in p.parts)


def _documented(model: Path) -> dict:
    properties = yaml.safe_load(model.with_suffix(".yml").read_text())
    (entry,) = [m for m in properties["models"] if m["name"] == model.stem]
    return entry


@pytest.mark.parametrize("model", OWN_MODELS, ids=lambda p: p.stem)
def test_every_model_has_a_yml_beside_it_stating_its_grain(model: Path) -> None:
    assert model.with_suffix(".yml").exists(), f"{model.name} needs {model.with_suffix('.yml').name}"
    assert re.search(r"one row per", _documented(model)["description"], re.IGNORECASE)


@pytest.mark.parametrize("model", OWN_MODELS, ids=lambda p: p.stem)
def test_model_names_follow_their_layer(model: Path) -> None:
    layer = model.relative_to(MODELS).parts[0]
    if layer == "staging":
        source = model.parent.name
        assert re.fullmatch(rf"stg_{source}__[a-z_]+s", model.stem)
    elif layer == "intermediate":
        assert re.fullmatch(r"int_[a-z_]+s_[a-z]+ed(_[a-z_]+)?", model.stem)
    else:
        assert layer == "marts"


@pytest.mark.parametrize("model", OWN_MODELS, ids=lambda p: p.stem)
def test_models_end_with_select_from_final_or_renamed(model: Path) -> None:
    code = re.sub(r"--[^\n]*", "", model.read_text()).strip()
    assert re.search(r"select \* from (final|renamed)(\s+order by [a-z_]+)?$", code)


@pytest.mark.parametrize("model", OWN_MODELS, ids=lambda p: p.stem)
def test_primary_keys_are_tested_unique_and_not_null(model: Path) -> None:
    first = _documented(model)["columns"][0]
    tests = [t if isinstance(t, str) else next(iter(t)) for t in first.get("data_tests", [])]
    assert {"unique", "not_null"} <= set(tests), f"{model.stem}.{first['name']}"
