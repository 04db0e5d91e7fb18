"""The hand-written script a user would weigh ``mesh demo`` against (issue 13).

It does the demo's analytical work with no platform machinery: no Dagster,
no dbt, no ``Mesh``/publish/contract checks/Iceberg catalog, no model
registry, no model cards, no plots. Stages, timed one by one (wall and CPU),
in the demo's order:

1. ``sources``: the demo generator (:func:`demo_sources.generator.iter_product`
   with ``DemoConfig(customers, seed)``, as ``orchestration/assets/sources.py``
   calls it) written to one plain snappy Parquet file per source product.
2. ``features``: the dbt models' SQL (``sql/models``: staging -> intermediate ->
   marts ``churn_features`` and ``revenue_features``), rendered here (``ref``,
   ``source``, ``config`` and the project's cutoff macros are simple jinja:
   see :func:`render_models`) and run once in one DuckDB connection over those
   files; the two marts are written as Parquet, like dbt-duckdb's ``external``
   materialisation does before the platform publishes them.
3. ``churn_zoo``: the demo's classification zoo on ``churn_features`` (profile
   fast, no Keras, ``max_training_rows`` 100,000, seed): the same stratified
   5-fold split, every candidate cross-validated, soft voting over the best
   three, ranking by ROC-AUC, the threshold policy (recall >= 0.8), refit of the
   champion on every row, permutation importance on the first fold's model and
   the learning curve.
4. ``revenue_zoo``: the same for ``revenue_features`` (regression, profile full,
   ranked by RMSE).
5. ``segments`` and ``anomalies``: k-means (k by silhouette) and the Gaussian
   mixture (components by BIC) of ``ml/unsupervised.py``, same parameters and seed.
6. ``scoring``: the champions' ``predict_proba`` / ``predict`` over the feature
   products, written to Parquet.
7. ``drift``: the PSI of every feature and of the predictions, champion's
   training data vs the latest features (the same data in the demo).

What is imported from the platform, and why (everything else is plain
pyarrow, DuckDB, pandas and scikit-learn calls written out here):

* ``demo_sources.generator`` — *the* generator: the input data must be the same.
* ``ml.zoo`` (``default_zoo``, ``with_members``, ``Candidate.build``) — the
  estimator definitions: which candidates a profile runs, their parameters and
  their preprocessing pipelines (``FrameCaster`` -> ``ColumnTransformer`` ->
  estimator). They *define* the analytical work; rewriting them by hand would
  only risk a different model.
* ``ml.preparation`` (``FrameCaster``, ``stratified_subsample``) — the column
  casting every pipeline starts with and the subsampling rule, for the same reason.
* ``ml.spec`` (``ThresholdPolicy``, ``FeatureSet``, ``column_kind``, ``Task``) —
  plain value types the zoo's builders take, and the numeric/categorical rule.
* ``ml.evaluation.assemble_voting`` — sets a ``VotingClassifier``'s fitted attributes from members
  already fitted on the same rows (scikit-learn has no public call for it), as the platform does.
* ``ml.metrics`` (``choose_threshold``, ``classification_metrics``,
  ``regression_metrics``, ``metric_info``) and ``ml.drift`` (``drift_report``,
  ``psi_numeric``) — pure metric helpers, so the numbers are computed by the
  same formulas.

The learning settings of the two labelled products (label, id, excluded
columns, metric, threshold policy, folds) are written down below as constants,
as a user would copy them from the contracts; the test
``tests/unit/benchmarks/test_baseline.py`` checks they still match.

Run: ``python -m benchmarks.baseline --customers 50000 --seed 42 --out DIR [--json FILE]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import resource
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from numpy.typing import NDArray

from datamesh.paths import DBT_PROJECT_DIR as SQL_DIR  # the project folder only: none of the platform runs

MARTS = ("churn_features", "revenue_features")
MAX_TRAINING_ROWS = 100_000
SCORING_BATCH_ROWS = 100_000  # ml.products.score_product's batch size
DRIFT_SAMPLE_ROWS = 200_000  # ml.products.drift_against_champion's sample size
DUCKDB_MEMORY_LIMIT = "2GB"  # sql/profiles.yml's default


@dataclass(frozen=True)
class Learning:
    """The learning settings of one labelled product (copied from its contract's ``ml`` block)."""

    product: str
    label: str
    task: str  # "classification" | "regression"
    metric: str
    profile: str
    id_column: str = "customer_id"
    exclude: tuple[str, ...] = ("feature_cutoff_date",)
    cv_folds: int = 5
    recall_at_least: float | None = None

    @property
    def classification(self) -> bool:
        return self.task == "classification"


CHURN = Learning("churn_features", "has_churned", "classification", "roc_auc", "fast", recall_at_least=0.8)
REVENUE = Learning("revenue_features", "next_period_revenue_usd", "regression", "rmse", "full")
#: churn_features' ml.segments / ml.anomalies (percentile 1.0).
ANOMALY_PERCENTILE = 1.0


# -- timing ------------------------------------------------------------------------------


@dataclass
class Stopwatch:
    """Wall (perf_counter) and CPU (process_time: every thread of this process) per stage."""

    stages: dict[str, dict[str, float]] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            entry = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
            self.stages[name] = entry
            print(f"[baseline] {name:<12} wall {entry['wall_s']:8.2f} s   cpu {entry['cpu_s']:8.2f} s",
                  file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- 1. sources --------------------------------------------------------------------------


def source_domains() -> dict[str, str]:
    """{source product: domain} from dbt's ``_sources.yml`` (where ``source(domain, product)`` points)."""
    doc = yaml.safe_load((SQL_DIR / "models" / "sources" / "_sources.yml").read_text())
    return {t["name"]: s["name"] for s in doc["sources"] for t in s["tables"]}


def source_path(out: Path, domain: str, product: str) -> Path:
    return out / "sources" / domain / f"{product}.parquet"


def write_sources(out: Path, customers: int, seed: int) -> dict[str, int]:
    """Every source product of the generator, one snappy Parquet file each; {product: rows}."""
    from demo_sources.generator import SOURCE_PRODUCTS, DemoConfig, iter_product

    domains = source_domains()
    config = DemoConfig(customers=customers, seed=seed)
    rows: dict[str, int] = {}
    for product in SOURCE_PRODUCTS:
        path = source_path(out, domains[product], product)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer: pq.ParquetWriter | None = None
        n = 0
        for table in iter_product(product, config):
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            writer.write_table(table)
            n += table.num_rows
        if writer is not None:
            writer.close()
        rows[product] = n
    return rows


# -- 2. features: the dbt models' SQL -----------------------------------------------------


def project_vars() -> dict[str, Any]:
    return dict(yaml.safe_load((SQL_DIR / "dbt_project.yml").read_text()).get("vars", {}))


def _macros(variables: Mapping[str, Any]) -> dict[str, Callable[..., str]]:
    """``sql/macros/feature_window.sql`` in Python: the cutoff literals from the project vars."""
    import datetime as dt

    cutoff = dt.date.fromisoformat(str(variables["feature_cutoff_date"]))
    window = int(variables["label_window_days"])
    return {
        "feature_cutoff_date": lambda: f"cast('{cutoff.isoformat()}' as date)",
        "feature_cutoff_at": lambda: f"cast('{cutoff.isoformat()}' as timestamp)",
        "label_window_end_at": lambda: f"cast('{(cutoff + dt.timedelta(days=window)).isoformat()}' as timestamp)",
        "days_before_cutoff_at": lambda days: f"cast('{(cutoff - dt.timedelta(days=int(days))).isoformat()}' as timestamp)",
    }


@dataclass(frozen=True)
class Model:
    """One dbt model rendered to plain DuckDB SQL."""

    name: str
    sql: str
    refs: tuple[str, ...]


def render_models(out: Path) -> list[Model]:
    """Every model under ``sql/models``, rendered (``ref`` -> the model's view, ``source`` ->
    ``read_parquet`` of the source file, ``config`` -> nothing), in dependency order."""
    import jinja2

    domains_of = source_domains()
    macros = _macros(project_vars())
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    models: dict[str, Model] = {}
    for path in sorted((SQL_DIR / "models").rglob("*.sql")):
        refs: list[str] = []

        def ref(name: str, refs: list[str] = refs) -> str:
            refs.append(name)
            return f'"{name}"'

        def source(domain: str, product: str) -> str:
            assert domains_of[product] == domain, (domain, product)
            return f"read_parquet('{source_path(out, domain, product)}')"

        sql = env.from_string(path.read_text()).render(
            ref=ref, source=source, config=lambda **_: "", this=None, mesh_staging_location=lambda _r: "", **macros)
        models[path.stem] = Model(path.stem, sql, tuple(refs))
    ordered: list[Model] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for r in models[name].refs:
            visit(r)
        ordered.append(models[name])

    for name in sorted(models):
        visit(name)
    return ordered


def mart_path(out: Path, mart: str) -> Path:
    return out / "features" / f"{mart}.parquet"


def build_features(out: Path, models: list[Model]) -> dict[str, int]:
    """Run the models in one DuckDB connection: views, and each mart copied to Parquet; {mart: rows}."""
    import duckdb

    (out / "features").mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:", config={"memory_limit": DUCKDB_MEMORY_LIMIT})
    rows: dict[str, int] = {}
    try:
        for model in models:
            body = re.sub(r";\s*$", "", model.sql.strip())
            if model.name in MARTS:
                target = mart_path(out, model.name)
                con.execute(f"COPY ({body}) TO '{target}' (FORMAT parquet, COMPRESSION snappy)")
                con.execute(f'CREATE VIEW "{model.name}" AS SELECT * FROM read_parquet(\'{target}\')')
                rows[model.name] = pq.ParquetFile(target).metadata.num_rows
            else:
                con.execute(f'CREATE VIEW "{model.name}" AS {body}')
    finally:
        con.close()
    return rows


# -- 3./4. the zoos --------------------------------------------------------------------------


@dataclass
class Prepared:
    """A training frame cast like the platform's (FrameCaster), with its label encoded."""

    X: pd.DataFrame
    y: NDArray[Any]
    features: Any  # ml.spec.FeatureSet
    n_available: int


def feature_columns(frame: pd.DataFrame, learning: Learning) -> Any:
    """The numeric and categorical features (every column but the id, the label and the excluded ones)."""
    from ml.spec import ColumnKind, FeatureSet, column_kind

    skip = {learning.id_column, learning.label, *learning.exclude}
    numeric, categorical = [], []
    for column in (str(c) for c in frame.columns if c not in skip):
        kind = column_kind(frame[column].dtype, frame[column])
        (numeric if kind is ColumnKind.NUMERIC else categorical).append(column)
    return FeatureSet(tuple(numeric), tuple(categorical), {c: str(frame[c].dtype) for c in (*numeric, *categorical)})


def prepare(frame: pd.DataFrame, learning: Learning, seed: int) -> Prepared:
    """Cast the features, encode the label (true = 1), subsample to MAX_TRAINING_ROWS (stratified)."""
    from ml.preparation import FrameCaster, stratified_subsample

    features = feature_columns(frame, learning)
    label = frame[learning.label]
    y = label.to_numpy().astype(np.int64) if learning.classification else label.to_numpy(dtype="float64")
    X = FrameCaster(features.numeric, features.categorical, learning.product).fit(frame).transform(frame)
    X = X.reset_index(drop=True)
    n = len(X)
    if n > MAX_TRAINING_ROWS:
        keep = stratified_subsample(y, MAX_TRAINING_ROWS, seed, stratify=learning.classification)
        X, y = X.iloc[keep].reset_index(drop=True), y[keep]
    return Prepared(X, y, features, n)


def folds(y: NDArray[Any], learning: Learning, seed: int) -> list[tuple[NDArray[np.intp], NDArray[np.intp]]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = (StratifiedKFold if learning.classification else KFold)(
        n_splits=learning.cv_folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def fit(candidate: Any, X: pd.DataFrame, y: NDArray[Any], data: Prepared, learning: Learning, seed: int) -> Any:
    """Build the candidate's pipeline and fit it (on its stratified max_rows subsample if it has one)."""
    from ml.preparation import stratified_subsample

    if candidate.max_rows is not None and len(y) > candidate.max_rows:
        keep = stratified_subsample(y, candidate.max_rows, seed, stratify=learning.classification)
        X, y = X.iloc[keep], y[keep]
    return candidate.build(data.features, seed, learning.product).fit(X, y)


def predict(model: Any, X: pd.DataFrame, learning: Learning) -> NDArray[np.float64]:
    if learning.classification:
        return np.asarray(model.predict_proba(X)[:, 1], dtype=np.float64)
    return np.asarray(model.predict(X), dtype=np.float64).reshape(-1)


@dataclass
class Scored:
    """One candidate's out-of-fold predictions and metrics."""

    name: str
    candidate: Any
    oof: NDArray[np.float64]
    metrics: dict[str, float]
    threshold: float | None = None
    first_fold_model: Any = None
    seconds: float = 0.0


def score_oof(name: str, candidate: Any, oof: NDArray[np.float64], y: NDArray[Any], learning: Learning) -> Scored:
    from ml.metrics import choose_threshold, classification_metrics, regression_metrics
    from ml.spec import ThresholdPolicy

    if not learning.classification:
        return Scored(name, candidate, oof, regression_metrics(y, oof))
    choice = choose_threshold(y, oof, ThresholdPolicy(recall_at_least=learning.recall_at_least))
    return Scored(name, candidate, oof, classification_metrics(y, oof, choice.threshold), choice.threshold)


def ranked(results: list[Scored], metric: str) -> list[Scored]:
    from ml.metrics import metric_info

    sign = 1.0 if metric_info(metric).greater_is_better else -1.0
    return sorted(results, key=lambda r: (-sign * r.metrics[metric], r.name))


@dataclass
class ZooOutcome:
    results: list[Scored]
    champion: Scored
    model: Any
    data: Prepared
    importances: list[tuple[str, float, float]]
    learning_curve: dict[str, list[float]]


def run_zoo(frame: pd.DataFrame, learning: Learning, seed: int) -> ZooOutcome:
    """Cross-validate the profile's candidates on shared folds, ensembles over the best, refit the
    best on every row, then its permutation importance and learning curve."""
    from threadpoolctl import threadpool_limits

    from ml.zoo import default_zoo, with_members

    data = prepare(frame, learning, seed)
    splits = folds(data.y, learning, seed)
    plan = default_zoo(learning.task, len(data.y), include_keras=False, profile=learning.profile)
    results: list[Scored] = []
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for candidate in (c for c in plan.candidates if c.ensemble is None):
            start = time.perf_counter()
            oof = np.full(len(data.y), np.nan)
            first = None
            for k, (train, test) in enumerate(splits):
                model = fit(candidate, data.X.iloc[train], data.y[train], data, learning, seed)
                oof[test] = predict(model, data.X.iloc[test], learning)
                first = model if k == 0 else first
            scored = score_oof(candidate.name, candidate, oof, data.y, learning)
            scored.first_fold_model, scored.seconds = first, time.perf_counter() - start
            results.append(scored)
        for ensemble in (c for c in plan.candidates if c.ensemble is not None):
            k = int(ensemble.params.get("k", 3))
            members = [r for r in ranked(results, learning.metric) if r.candidate.member_of_ensembles][:k]
            if len(members) < 2:
                continue
            built = with_members(ensemble, [m.candidate for m in members])
            oof = np.column_stack([m.oof for m in members]).mean(axis=1)  # soft voting (the fast/full zoos' only one)
            scored = score_oof(ensemble.name, built, oof, data.y, learning)
            scored.first_fold_model = voting_from_members(built, members, data, splits, learning, seed)
            results.append(scored)
        best = ranked(results, learning.metric)[0]
        model = fit(best.candidate, data.X, data.y, data, learning, seed)
        importances = permutation(best, data, splits, learning, seed)
        curve = learning_curve(best, data, learning, seed)
    return ZooOutcome(results, best, model, data, importances, curve)


def voting_from_members(built: Any, members: list[Scored], data: Prepared, splits: list[Any], learning: Learning,
                        seed: int) -> Any:
    """The soft-voting model of the first fold, put together from the members' first-fold models (what
    ``VotingClassifier.fit`` on those rows would fit again), as anyone who kept them would do."""
    from ml.evaluation import assemble_voting

    fitted = [m.first_fold_model for m in members]
    caps = [built.max_rows, *(m.candidate.max_rows for m in members)]
    if any(f is None for f in fitted) or any(cap is not None and len(splits[0][0]) > cap for cap in caps):
        return None  # a subsampled fit: fit the ensemble itself
    return assemble_voting(built.build(data.features, seed, learning.product), fitted, data.y[splits[0][0]])


def permutation(best: Scored, data: Prepared, splits: list[Any], learning: Learning, seed: int,
                max_rows: int = 2_000, n_repeats: int = 3) -> list[tuple[str, float, float]]:
    """Permutation importance of the best candidate's first-fold model on that fold's held-out rows."""
    from sklearn.inspection import permutation_importance

    from ml.metrics import metric_info
    from ml.preparation import stratified_subsample

    train, test = splits[0]
    model = best.first_fold_model or fit(best.candidate, data.X.iloc[train], data.y[train], data, learning, seed)
    keep = stratified_subsample(data.y[test], max_rows, seed, stratify=learning.classification)
    rows = test[keep]
    result = permutation_importance(model, data.X.iloc[rows], data.y[rows], n_repeats=n_repeats, random_state=seed,
                                    scoring=metric_info(learning.metric).sklearn_scoring)
    out = [(str(c), float(m), float(s)) for c, m, s in
           zip(data.X.columns, result.importances_mean, result.importances_std, strict=True)]
    return sorted(out, key=lambda f: (-f[1], f[0]))


def learning_curve(best: Scored, data: Prepared, learning: Learning, seed: int,
                   max_rows: int = 3_000, cv: int = 3) -> dict[str, list[float]]:
    """Train and validation score at 25/50/100 % of at most ``max_rows`` rows, 3-fold."""
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.model_selection import learning_curve as sk_learning_curve

    from ml.metrics import metric_info
    from ml.preparation import stratified_subsample

    keep = stratified_subsample(data.y, max_rows, seed, stratify=learning.classification)
    X, y = data.X.iloc[keep].reset_index(drop=True), data.y[keep]
    splitter = (StratifiedKFold if learning.classification else KFold)(n_splits=cv, shuffle=True, random_state=seed)
    scoring = metric_info(learning.metric).sklearn_scoring
    sizes, train, valid = sk_learning_curve(
        best.candidate.build(data.features, seed, learning.product), X, y, train_sizes=np.asarray((0.25, 0.5, 1.0)),
        cv=splitter, scoring=scoring, shuffle=True, random_state=seed, error_score="raise")
    flip = -1.0 if scoring.startswith("neg_") else 1.0
    return {"train_sizes": [float(s) for s in sizes], "train_scores": [float(flip * s) for s in train.mean(axis=1)],
            "validation_scores": [float(flip * s) for s in valid.mean(axis=1)]}


# -- 5. segments and anomalies -------------------------------------------------------------


def unsupervised_features(frame: pd.DataFrame, learning: Learning) -> list[str]:
    """Numeric, non-boolean columns but the id, the label and the excluded ones (ml.products' rule)."""
    from ml.spec import ColumnKind, column_kind

    skip = {learning.id_column, learning.label, *learning.exclude}
    return [str(c) for c in frame.columns if c not in skip and frame[c].dtype != bool
            and column_kind(frame[c].dtype, frame[c]) is ColumnKind.NUMERIC]


def _scaler(columns: list[str], product: str) -> list[tuple[str, Any]]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    from ml.preparation import FrameCaster

    return [("prepare", FrameCaster(columns, (), product)), ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler())]


def _sample(n: int, size: int, seed: int) -> NDArray[np.intp]:
    return np.arange(n) if n <= size else np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def segments(frame: pd.DataFrame, columns: list[str], seed: int, product: str) -> dict[str, Any]:
    """k-means on scaled features; k in 2..8 by silhouette on a 5,000-row sample, refit on every row."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.pipeline import Pipeline

    prep = Pipeline(_scaler(columns, product)).fit(frame)
    sample = prep.transform(frame)[_sample(len(frame), 5_000, seed)]
    scores: dict[int, float] = {}
    for k in (k for k in range(2, 9) if k < len(frame)):
        labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(sample)
        scores[k] = float(silhouette_score(sample, labels)) if len(set(labels)) > 1 else -1.0
    best_k = max(scores, key=lambda k: (scores[k], -k))
    labels = KMeans(n_clusters=best_k, n_init=4, random_state=seed).fit_predict(prep.transform(frame))
    return {"labels": np.asarray(labels, dtype=np.int32), "k": best_k, "silhouette": scores}


def anomalies(frame: pd.DataFrame, columns: list[str], seed: int, product: str, percentile: float) -> dict[str, Any]:
    """Gaussian mixtures of 1..6 components on a 20,000-row sample; the lowest-BIC one whose every
    component holds >= 1 % of the rows scores every row; the lowest ``percentile`` % are flagged."""
    from sklearn.mixture import GaussianMixture
    from sklearn.pipeline import Pipeline

    prep = Pipeline(_scaler(columns, product)).fit(frame)
    sample = prep.transform(frame.iloc[_sample(len(frame), 20_000, seed)])
    bic: dict[int, float] = {}
    fitted: dict[int, Any] = {}
    for n in (n for n in range(1, 7) if n <= len(sample)):
        gm = GaussianMixture(n_components=n, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(sample)
        bic[n], fitted[n] = float(gm.bic(sample)), gm
    eligible = [n for n, gm in fitted.items() if gm.weights_.min() >= 0.01] or [min(fitted)]
    best = min(eligible, key=lambda n: (bic[n], n))
    scores = np.asarray(Pipeline([*prep.steps, ("mixture", fitted[best])]).score_samples(frame), dtype=np.float64)
    threshold = float(np.percentile(scores, percentile))
    return {"scores": scores, "flags": scores < threshold, "threshold": threshold, "components": best, "bic": bic}


# -- 6. scoring, 7. drift ----------------------------------------------------------------------


def score(model: Any, frame: pd.DataFrame, learning: Learning) -> NDArray[np.float64]:
    """The champion's probability (or prediction) of every row, in the platform's batch size."""
    from threadpoolctl import threadpool_limits

    parts = []
    with threadpool_limits(limits=1):
        for start in range(0, len(frame), SCORING_BATCH_ROWS):
            parts.append(predict(model, frame.iloc[start:start + SCORING_BATCH_ROWS], learning))
    return np.concatenate(parts) if parts else np.zeros(0)


def drift(frame: pd.DataFrame, zoo: ZooOutcome, predictions: NDArray[np.float64] | None) -> dict[str, Any]:
    """PSI of the features and (classification) of the predictions: training data vs latest features.

    In the demo both are the same product version, and the predictions of the latest features were
    just computed by the scoring stage: they are reused for both sides."""
    from ml.drift import drift_report, psi_numeric

    reference = current = frame
    if len(frame) > DRIFT_SAMPLE_ROWS:
        reference = current = frame.sample(DRIFT_SAMPLE_ROWS, random_state=0)
        predictions = None  # a sample: predict it
    report = drift_report(reference, current, list(zoo.data.features.columns))
    predictions_psi = None
    if predictions is not None or zoo.data.y.dtype == np.int64:
        from threadpoolctl import threadpool_limits

        if predictions is None:
            with threadpool_limits(limits=1):
                predictions = zoo.model.predict_proba(current)[:, 1]
        predictions_psi = psi_numeric(predictions, predictions)
    return {"max_feature_psi": report.max_psi, "predictions_psi": predictions_psi}


# -- the run -------------------------------------------------------------------------------


def zoo_summary(zoo: ZooOutcome, learning: Learning) -> dict[str, Any]:
    return {
        "champion": zoo.champion.name,
        "metric": learning.metric,
        "score": zoo.champion.metrics[learning.metric],
        "threshold": zoo.champion.threshold,
        "training_rows": len(zoo.data.y),
        "candidates": {r.name: {"metrics": {k: float(v) for k, v in r.metrics.items()}, "threshold": r.threshold,
                                "seconds": round(r.seconds, 2)} for r in zoo.results},
        "importances": zoo.importances[:5],
        "learning_curve": zoo.learning_curve,
    }


@contextmanager
def _one_thread() -> Iterator[None]:
    """One OpenMP/BLAS thread, as ml/unsupervised.py runs k-means and the mixtures (n_threads=1)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def write_parquet(path: Path, columns: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(dict(columns)), path, compression="snappy")


def run(customers: int, seed: int, out: Path) -> dict[str, Any]:
    """Every stage, timed; the summary (times, peak RSS, the outputs to compare)."""
    out.mkdir(parents=True, exist_ok=True)
    watch = Stopwatch()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    outputs: dict[str, Any] = {}
    with watch.stage("sources"):
        outputs["source_rows"] = write_sources(out, customers, seed)
    models = render_models(out)  # rendering the jinja: the equivalent of `dbt compile`, kept out of the timing
    with watch.stage("features"):
        outputs["feature_rows"] = build_features(out, models)
        churn = pq.read_table(mart_path(out, "churn_features")).to_pandas()
        revenue = pq.read_table(mart_path(out, "revenue_features")).to_pandas()
    with watch.stage("churn_zoo"):
        churn_zoo = run_zoo(churn, CHURN, seed)
    with watch.stage("revenue_zoo"):
        revenue_zoo = run_zoo(revenue, REVENUE, seed)
    outputs["churn"], outputs["revenue"] = zoo_summary(churn_zoo, CHURN), zoo_summary(revenue_zoo, REVENUE)
    columns = unsupervised_features(churn, CHURN)
    ids = pa.array(churn[CHURN.id_column], pa.string())
    with watch.stage("segments"), _one_thread():
        seg = segments(churn, columns, seed, CHURN.product)
        write_parquet(out / "customer_segments.parquet", {"customer_id": ids, "segment": seg["labels"]})
    with watch.stage("anomalies"), _one_thread():
        ano = anomalies(churn, columns, seed, CHURN.product, ANOMALY_PERCENTILE)
        write_parquet(out / "anomalous_accounts.parquet", {"customer_id": ids, "log_likelihood": ano["scores"],
                                                           "is_anomalous": ano["flags"]})
    outputs["segments"] = {"k": seg["k"], "silhouette": seg["silhouette"]}
    outputs["anomalies"] = {"components": ano["components"], "threshold": ano["threshold"],
                            "flagged": int(ano["flags"].sum()), "bic": ano["bic"]}
    with watch.stage("scoring"):
        p = score(churn_zoo.model, churn, CHURN)
        threshold = float(churn_zoo.champion.threshold or 0.0)
        write_parquet(out / "churn_predictions.parquet", {"customer_id": ids, "probability": p,
                                                          "predicted_label": p >= threshold})
        forecast = score(revenue_zoo.model, revenue, REVENUE)
        write_parquet(out / "revenue_forecasts.parquet", {
            "customer_id": pa.array(revenue[REVENUE.id_column], pa.string()), "prediction": forecast})
    outputs["churn_predictions"] = str(out / "churn_predictions.parquet")
    outputs["revenue_forecasts"] = str(out / "revenue_forecasts.parquet")
    outputs["predicted_positive"] = int((p >= threshold).sum())
    with watch.stage("drift"):
        outputs["drift"] = {"churn_features": drift(churn, churn_zoo, p), "revenue_features": drift(revenue, revenue_zoo, None)}
    return {
        "customers": customers, "seed": seed, "out": str(out),
        "stages": {k: {m: round(v, 3) for m, v in e.items()} for k, e in watch.stages.items()},
        "total": {"wall_s": round(time.perf_counter() - wall0, 3), "cpu_s": round(time.process_time() - cpu0, 3)},
        "peak_rss_mib": round(peak_rss_mib()),
        "outputs": _jsonable(outputs),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, required=True, help="folder for the Parquet files")
    parser.add_argument("--json", type=Path, default=None, help="write the summary here (default: stdout)")
    args = parser.parse_args(argv)
    summary = run(args.customers, args.seed, args.out)
    text = json.dumps(summary, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
