"""The hand-written baseline of issue 13 (benchmarks/baseline.py) does the platform's analytical work.

No demo lake fixture exists among the unit tests (the integration suite's ``pipeline`` fixture runs on
the native stack, seed 11), so this does not run a second demo: it checks the baseline's learning
constants against the contracts, its feature marts against the contracts' schemas, and its churn zoo
against the platform's own training entry point (:func:`ml.training.train_and_evaluate`) on the
same frame at 600 customers: same candidates, ROC-AUCs, threshold, champion and per-customer
probabilities, bit for bit. ``python -m benchmarks.versus`` checks the whole demo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from benchmarks import baseline as B

CUSTOMERS, SEED = 600, 42
TOLERANCE = 1e-12


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("baseline")
    B.write_sources(out, CUSTOMERS, SEED)
    B.build_features(out, B.render_models(out))
    return out


@pytest.fixture(scope="module")
def churn(built: Path) -> pd.DataFrame:
    return pq.read_table(B.mart_path(built, "churn_features")).to_pandas()


@pytest.mark.parametrize("learning", [B.CHURN, B.REVENUE], ids=lambda learning: learning.product)
def test_learning_constants_match_the_contracts(learning: B.Learning) -> None:
    from demo_sources.schemas import project_contracts
    from ml.products import learning_spec

    spec = learning_spec(project_contracts().get(learning.product), seed=SEED)
    assert (spec.label_column, spec.id_column, tuple(spec.exclude_columns), str(spec.task), spec.metric,
            spec.cv_folds, spec.feature_columns) == (
        learning.label, learning.id_column, learning.exclude, learning.task, learning.metric, learning.cv_folds, None)
    assert spec.threshold_policy.recall_at_least == learning.recall_at_least
    assert spec.threshold_policy.precision_at_least is None


def test_models_render_to_plain_sql(built: Path) -> None:
    models = B.render_models(built)
    names = [m.name for m in models]
    assert set(B.MARTS) <= set(names)
    assert names.index("churn_features") < names.index("revenue_features")
    assert all("{{" not in m.sql and "{%" not in m.sql for m in models)


@pytest.mark.parametrize("mart", B.MARTS)
def test_marts_have_the_contract_schema(built: Path, mart: str) -> None:
    from demo_sources.schemas import project_contracts

    schema = pq.read_schema(B.mart_path(built, mart))
    expected = project_contracts().get(mart).arrow_schema()
    assert schema.names == expected.names
    assert [f.type for f in schema] == [f.type for f in expected]
    table = pq.read_table(B.mart_path(built, mart))
    assert 0 < table.num_rows <= CUSTOMERS
    ids = table.column("customer_id").to_pylist()
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_churn_zoo_equals_the_platforms_training(churn: pd.DataFrame) -> None:
    from demo_sources.schemas import project_contracts
    from ml.products import learning_spec
    from ml.training import train_and_evaluate
    from ml.zoo import Profile, default_zoo

    zoo = B.run_zoo(churn, B.CHURN, SEED)
    spec = learning_spec(project_contracts().get("churn_features"), seed=SEED, max_training_rows=B.MAX_TRAINING_ROWS)
    plan = default_zoo(spec.task, len(churn), include_keras=False, profile=Profile.FAST)
    report = train_and_evaluate(churn, spec, plan, plots="none")

    # Not bit for bit: a random forest's predict_proba (n_jobs=-1) adds its trees' probabilities in the
    # order the threads finish, so two runs of the platform itself differ in the last bits (~1e-16).
    platform = {r.name: r.metrics for r in report.results if r.ok}
    baseline = {r.name: r.metrics for r in zoo.results}
    assert baseline.keys() == platform.keys()
    for name, metrics in platform.items():
        assert metrics.keys() == baseline[name].keys()
        for metric, value in metrics.items():
            assert baseline[name][metric] == pytest.approx(value, rel=TOLERANCE, abs=TOLERANCE), (name, metric)
    assert zoo.champion.name == report.best.name
    assert report.threshold is not None and zoo.champion.threshold == pytest.approx(report.threshold, abs=TOLERANCE)
    ours = report.model.predict_proba(churn)[:, 1]
    np.testing.assert_allclose(B.score(zoo.model, churn, B.CHURN), ours, rtol=0, atol=TOLERANCE)
    assert [f.feature for f in report.importances] == [f[0] for f in zoo.importances]
    np.testing.assert_allclose([f.mean for f in report.importances], [f[1] for f in zoo.importances], atol=TOLERANCE)
    assert report.learning_curve is not None
    np.testing.assert_allclose(report.learning_curve.validation_scores, zoo.learning_curve["validation_scores"],
                               atol=TOLERANCE)
