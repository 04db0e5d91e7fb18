"""Train, evaluate and select: the entry point of the ML layer.

:func:`train_and_evaluate` validates a product's rows against a
:class:`~ml.spec.LearningSpec`, cross-validates every candidate of the zoo on
the same folds, builds the ensembles over the best members, ranks all by the
primary metric, refits the best on every training row and gathers the
threshold, diagnostics (learning curve, permutation importance), plots and,
when a current champion is given, the champion decision.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from datamesh.errors import did_you_mean
from datamesh.provenance import code_version
from ml import plots as P
from ml.card import ModelCard
from ml.champion import Decision, decide_champion
from ml.errors import MLError, SpecError, TrainingError
from ml.evaluation import (
    CandidateResult,
    CandidateStatus,
    EvaluationKey,
    FeatureImportance,
    Folds,
    LearningCurve,
    comparison_markdown,
    comparison_table,
    cross_validate,
    evaluation_key,
    fit_candidate,
    learning_curve_for,
    make_folds,
    permutation_importances,
    rank,
    score_ensemble,
)
from ml.metrics import confusion_counts
from ml.preparation import TrainingData, prepare_training_data
from ml.spec import FeatureSet, LearningSpec, Task
from ml.zoo import Candidate, ZooPlan, candidate_by_name, default_zoo, with_members

__all__ = [
    "DEFAULT_PLOTS",
    "PlotSelection",
    "TrainingReport",
    "rescore_champion",
    "resolve_candidates",
    "train_and_evaluate",
]

Progress = Callable[[str], None]


class PlotSelection(StrEnum):
    """Whose plots :func:`train_and_evaluate` draws."""

    ALL = "all"
    """Every scored candidate's (``TrainingReport.candidate_plots``), the best model's and the comparison."""
    BEST = "best"
    """Only the best model's and the comparison chart."""
    NONE = "none"
    """No plots (fastest)."""


DEFAULT_PLOTS = PlotSelection.ALL
"""The plot selection used when none is given."""


@dataclass
class TrainingReport:
    """Everything a training run produced.

    ``model`` is the best candidate refit on all training rows (a
    scikit-learn pipeline taking a raw product DataFrame). ``plots`` holds the
    best model's plots and the comparison chart (``name.png`` -> PNG bytes);
    ``candidate_plots`` the per-candidate plots. ``decision`` is set when a
    current champion was given.
    """

    spec: LearningSpec
    results: list[CandidateResult]
    best: CandidateResult
    model: Any
    features: FeatureSet
    key: EvaluationKey
    comparison: list[dict[str, Any]]
    comparison_markdown: str
    plots: dict[str, bytes] = field(default_factory=dict, repr=False)
    candidate_plots: dict[str, dict[str, bytes]] = field(default_factory=dict, repr=False)
    learning_curve: LearningCurve | None = None
    importances: list[FeatureImportance] = field(default_factory=list)
    decision: Decision | None = None
    training_data: dict[str, str] = field(default_factory=dict)
    positive_label: Any = None
    negative_label: Any = None
    n_rows: int = 0
    n_rows_available: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def threshold(self) -> float | None:
        """The best candidate's decision threshold (None for regression)."""
        return self.best.threshold.threshold if self.best.threshold is not None else None

    @property
    def score(self) -> float:
        """The best candidate's cross-validated primary metric."""
        return self.best.score(self.spec.metric)

    def model_card(self, model_name: str | None = None) -> ModelCard:
        """The :class:`ModelCard` of the best model, ready for the registry."""
        assert self.best.candidate is not None
        policy = self.spec.threshold_policy
        return ModelCard(
            model_name=model_name or self.spec.product,
            product=self.spec.product,
            task=str(self.spec.task),
            candidate=self.best.name,
            family=self.best.family,
            params=self.best.candidate.describe(),
            metrics={k: float(v) for k, v in self.best.metrics.items()},
            primary_metric=self.spec.metric,
            threshold=self.threshold,
            threshold_policy={**policy.to_dict(), "policy": policy.describe(), **(
                {"satisfied": self.best.threshold.satisfied, "note": self.best.threshold.note}
                if self.best.threshold is not None else {}
            )},
            training_data=dict(self.training_data),
            id_column=self.spec.id_column,
            label_column=self.spec.label_column,
            positive_label=self.positive_label,
            feature_columns=list(self.features.columns),
            feature_dtypes=dict(self.features.dtypes),
            numeric_features=list(self.features.numeric),
            categorical_features=list(self.features.categorical),
            evaluation=self.key.to_dict(),
            code_version=code_version(),
            seed=self.spec.seed,
            cv_folds=self.spec.cv_folds,
            n_training_rows=self.n_rows,
            plots=sorted(self.plots),
            comparison=self.comparison,
            learning_curve=self.learning_curve.to_dict() if self.learning_curve else None,
            feature_importance=[dataclasses.asdict(f) for f in self.importances],
            notes=list(self.notes),
        )


def resolve_candidates(
    candidates: ZooPlan | Sequence[Candidate | str] | None, task: Task, n_rows: int
) -> ZooPlan:
    """Turn the ``candidates`` argument into a plan: None -> the full default
    zoo; names -> those candidates of the full default zoo."""
    if candidates is None:
        return default_zoo(task, n_rows)
    if isinstance(candidates, ZooPlan):
        plan = candidates
    else:
        full = {c.name: c for c in default_zoo(task, n_rows).candidates}
        chosen = []
        for c in candidates:
            if isinstance(c, str):
                chosen.append(full[c] if c in full else candidate_by_name(c, task))
            else:
                chosen.append(c)
        plan = ZooPlan(tuple(chosen))
    if not plan.candidates:
        raise SpecError("No candidates to train.")
    wrong = [c.name for c in plan.candidates if c.task != task]
    if wrong:
        raise SpecError(f"Candidates {wrong} are not for task {task}.")
    names = plan.names()
    if len(set(names)) != len(names):
        raise SpecError(f"Candidate names must be unique; got {names}.")
    return plan


def train_and_evaluate(
    frame: pd.DataFrame,
    spec: LearningSpec,
    candidates: ZooPlan | Sequence[Candidate | str] | None = None,
    progress: Progress | None = None,
    *,
    training_data: Mapping[str, str] | None = None,
    current_champion: ModelCard | None = None,
    plots: PlotSelection | str = DEFAULT_PLOTS,
    diagnostics: bool = True,
    n_threads: int | None = 1,
) -> TrainingReport:
    """Cross-validate the candidates on ``frame`` and return a :class:`TrainingReport`.

    ``frame`` holds the id, label and feature columns of the training
    product (other columns are ignored unless they are features).
    ``candidates``: a :class:`ZooPlan`, candidates or names; None runs
    ``default_zoo(spec.task, len(frame))``. ``training_data`` maps input
    products to the versions read (stored in the card and part of the
    comparability key). With ``current_champion`` the report carries the
    champion :class:`Decision` (re-scoring the champion's configuration on
    these folds when it was scored on other data). ``plots``: ``"all"``
    (every candidate), ``"best"`` or ``"none"``. ``diagnostics`` computes
    the learning curve and permutation importance of the best candidate.
    ``n_threads`` caps the OpenMP/BLAS threads of the run (threadpoolctl;
    None = library defaults). The default 1 is deliberate: on a machine
    busy with other work, OpenMP threads (HistGradientBoosting, k-means)
    spin-wait for each other and run 10-50x slower than one thread; forests
    still use ``n_jobs`` worker threads, which are not affected.

    Raises :class:`~ml.errors.LabelError` / :class:`~ml.errors.FeatureError`
    for unusable input and :class:`~ml.errors.TrainingError` when every
    candidate failed. A candidate that fails (e.g. a diverging network) is
    reported with its error and the others go on.
    """
    try:
        selection = PlotSelection(plots)
    except ValueError:
        choices = [p.value for p in PlotSelection]
        raise SpecError(
            f"plots={plots!r}; expected 'all', 'best' or 'none'." + did_you_mean(str(plots), choices)
        ) from None
    with threadpool_limits(limits=n_threads):
        return _train_and_evaluate(frame, spec, candidates, progress, training_data, current_champion, selection, diagnostics)


def _train_and_evaluate(
    frame: pd.DataFrame,
    spec: LearningSpec,
    candidates: ZooPlan | Sequence[Candidate | str] | None,
    progress: Progress | None,
    training_data: Mapping[str, str] | None,
    current_champion: ModelCard | None,
    plots: PlotSelection,
    diagnostics: bool,
) -> TrainingReport:
    say = progress or (lambda _message: None)
    start = time.perf_counter()
    data = prepare_training_data(frame, spec)
    plan = resolve_candidates(candidates, spec.task, len(data.y))
    key = evaluation_key(data, spec, training_data)
    folds = make_folds(data.y, spec.task, spec.cv_folds, spec.seed)
    metric = spec.metric
    say(
        f"{spec.product}: {len(data.y):,} rows, {len(data.features.columns)} features "
        f"({len(data.features.categorical)} categorical), {len(plan.candidates)} candidates, {spec.cv_folds}-fold CV"
    )
    timings: dict[str, float] = {"prepare": time.perf_counter() - start}
    phase = time.perf_counter()
    results: list[CandidateResult] = []
    singles = [c for c in plan.candidates if c.ensemble is None]
    ensembles = [c for c in plan.candidates if c.ensemble is not None]
    total = len(plan.candidates)
    for i, candidate in enumerate(singles, start=1):
        say(f"[{i}/{total}] {candidate.name}: training")
        result = cross_validate(candidate, data, folds, spec, key=key, keep_first_fold_model=True)
        results.append(result)
        say(f"[{i}/{total}] {_summary(result, metric)}")
    for j, ensemble in enumerate(ensembles, start=len(singles) + 1):
        result = _run_ensemble(ensemble, results, data, folds, spec, key)
        results.append(result)
        say(f"[{j}/{total}] {_summary(result, metric)}")
    results.extend(
        CandidateResult(name=name, family="", status=CandidateStatus.SKIPPED, note=reason, key=key) for name, reason in plan.skipped
    )
    timings["cross_validation"] = time.perf_counter() - phase
    ranked = rank(results, metric)
    if not ranked:
        errors = "; ".join(f"{r.name}: {r.error}" for r in results if r.status is CandidateStatus.FAILED)
        raise TrainingError(f"Product '{spec.product}': every candidate failed ({errors}).")
    notes: list[str] = []
    phase = time.perf_counter()
    best, model = _refit_best(ranked, data, spec, notes, say)
    timings["refit"] = time.perf_counter() - phase
    report = TrainingReport(
        spec=spec,
        results=results,
        best=best,
        model=model,
        features=data.features,
        key=key,
        comparison=comparison_table(results, metric, spec.task),
        comparison_markdown="",
        training_data=dict(training_data or {}),
        positive_label=data.label.positive,
        negative_label=data.label.negative,
        n_rows=len(data.y),
        n_rows_available=data.n_rows_available,
        timings=timings,
        notes=notes,
    )
    report.comparison_markdown = comparison_markdown(report.comparison)
    if diagnostics:
        phase = time.perf_counter()
        _diagnostics(report, data, folds, say)
        timings["diagnostics"] = time.perf_counter() - phase
    if plots is not PlotSelection.NONE:
        phase = time.perf_counter()
        _plots(report, data, all_candidates=plots is PlotSelection.ALL)
        timings["plots"] = time.perf_counter() - phase
    if current_champion is not None:
        phase = time.perf_counter()
        report.decision = _champion_decision(report, current_champion, data, folds, say)
        timings["champion"] = time.perf_counter() - phase
        say(f"champion decision: {'promote' if report.decision.promote else 'keep'} ({report.decision.reason})")
    for r in results:
        r.first_fold_model = None
    report.seconds = time.perf_counter() - start
    say(f"{spec.product}: best {best.name} {metric} {best.score(metric):.4f}; done in {report.seconds:.1f} s")
    return report


def _summary(result: CandidateResult, metric: str) -> str:
    if result.ok:
        return f"{result.name}: {metric} {result.metrics[metric]:.4f} ({result.seconds:.1f} s)"
    return f"{result.name}: {result.status}: {result.error or result.note}"


def _run_ensemble(
    ensemble: Candidate, results: list[CandidateResult], data: TrainingData, folds: Folds, spec: LearningSpec, key: EvaluationKey
) -> CandidateResult:
    k = int(ensemble.params.get("k", 3))
    eligible = [
        r
        for r in rank(results, spec.metric)
        if r.candidate is not None and r.candidate.ensemble is None and r.candidate.member_of_ensembles
    ]
    members = eligible[:k]
    if len(members) < 2:
        return CandidateResult(
            name=ensemble.name,
            family=str(ensemble.family),
            status=CandidateStatus.SKIPPED,
            candidate=ensemble,
            note=f"needs at least 2 scored members that can be ensembled; found {len(members)}",
            key=key,
        )
    built = with_members(ensemble, [m.candidate for m in members if m.candidate is not None])
    try:
        return score_ensemble(built, members, data, folds, spec, key=key)
    except Exception as exc:  # noqa: BLE001 - a failed ensemble must not stop the run
        return CandidateResult(
            name=ensemble.name, family=str(ensemble.family), status=CandidateStatus.FAILED, candidate=built,
            error=f"{type(exc).__name__}: {exc}", key=key,
        )


def _refit_best(
    ranked: list[CandidateResult], data: TrainingData, spec: LearningSpec, notes: list[str], say: Progress
) -> tuple[CandidateResult, Any]:
    for result in ranked:
        assert result.candidate is not None
        say(f"refitting {result.name} on all {len(data.y):,} rows")
        try:
            return result, fit_candidate(result.candidate, data.X, data.y, spec, data.features)
        except Exception as exc:  # noqa: BLE001 - fall back to the next best
            note = f"refit of {result.name} on all rows failed ({type(exc).__name__}: {exc}); next best used"
            notes.append(note)
            say(note)
    raise TrainingError(f"Product '{spec.product}': no candidate could be refit on all rows ({'; '.join(notes)}).")


def _diagnostics(report: TrainingReport, data: TrainingData, folds: Folds, say: Progress) -> None:
    best = report.best
    assert best.candidate is not None
    spec = report.spec
    try:
        say(f"permutation importance of {best.name}")
        train, test = folds.splits[0]
        model = best.first_fold_model or fit_candidate(best.candidate, data.X.iloc[train], data.y[train], spec, data.features)
        report.importances = permutation_importances(model, data, test, spec)
    except Exception as exc:  # noqa: BLE001 - diagnostics must not fail a run
        report.notes.append(f"permutation importance failed: {type(exc).__name__}: {exc}")
    try:
        say(f"learning curve of {best.name}")
        report.learning_curve = learning_curve_for(best.candidate, data, spec)
    except Exception as exc:  # noqa: BLE001
        report.notes.append(f"learning curve failed: {type(exc).__name__}: {exc}")


def _plots(report: TrainingReport, data: TrainingData, *, all_candidates: bool) -> None:
    spec = report.spec
    metric = spec.metric
    report.plots[P.PlotKind.COMPARISON.filename] = P.comparison_png(report.comparison, metric=metric, title=f"{spec.product}: candidates")
    labels = (str(report.negative_label), str(report.positive_label))
    targets = [r for r in report.results if r.ok] if all_candidates else [report.best]
    for result in targets:
        assert result.oof is not None
        figs: dict[str, bytes] = {}
        title = f"{result.name}"
        if spec.task == Task.CLASSIFICATION:
            assert result.threshold is not None and result.calibration is not None
            counts = confusion_counts(data.y, result.oof >= result.threshold.threshold)
            figs[P.PlotKind.CONFUSION_MATRIX.filename] = P.confusion_matrix_png(
                counts, labels=labels, title=f"{title} @ {result.threshold.threshold:.3f}"
            )
            figs[P.PlotKind.ROC.filename] = P.roc_png(data.y, result.oof, title=f"{title}: ROC (out of fold)")
            figs[P.PlotKind.PR.filename] = P.pr_png(data.y, result.oof, threshold=result.threshold, title=f"{title}: precision-recall")
            figs[P.PlotKind.CALIBRATION.filename] = P.calibration_png(result.calibration, title=f"{title}: calibration")
        else:
            figs[P.PlotKind.PREDICTED_VS_ACTUAL.filename] = P.predicted_vs_actual_png(data.y, result.oof, title=f"{title}: out of fold")
        report.candidate_plots[result.name] = figs
    report.plots.update(report.candidate_plots.get(report.best.name, {}))
    if report.learning_curve is not None:
        lc = report.learning_curve
        report.plots[P.PlotKind.LEARNING_CURVE.filename] = P.learning_curve_png(
            lc.train_sizes, lc.train_scores, lc.validation_scores, metric=lc.metric, title=f"{report.best.name}: learning curve"
        )
    if report.importances:
        report.plots[P.PlotKind.FEATURE_IMPORTANCE.filename] = P.feature_importance_png(
            [(f.feature, f.mean, f.std) for f in report.importances], metric=metric, title=f"{report.best.name}: permutation importance"
        )


# -- champion ------------------------------------------------------------------------


def _champion_decision(
    report: TrainingReport, current: ModelCard, data: TrainingData, folds: Folds, say: Progress
) -> Decision:
    spec = report.spec
    if current.evaluation_key == report.key and spec.metric in current.metrics:
        return decide_champion(report.best, current, spec.champion_margin, metric=spec.metric)
    say(f"re-scoring champion {current.model_name} ({current.candidate}) on the same folds")
    rescored = rescore_champion(current, data, folds, spec, report.key, results=report.results)
    return decide_champion(report.best, current, spec.champion_margin, metric=spec.metric, rescored_current=rescored)


def rescore_champion(
    card: ModelCard,
    data: TrainingData,
    folds: Folds,
    spec: LearningSpec,
    key: EvaluationKey,
    *,
    results: Sequence[CandidateResult] = (),
) -> CandidateResult:
    """Cross-validate the champion's candidate configuration (from its card)
    on ``folds``, so it compares with this run's candidates on the same
    folds. A result of this run with the same configuration is reused. A
    configuration the zoo cannot rebuild yields a failed result."""
    try:
        candidate = _candidate_from_description(card.params, Task(spec.task))
    except (MLError, KeyError, TypeError) as exc:
        return CandidateResult(
            name=card.candidate, family=card.family, status=CandidateStatus.FAILED, error=f"cannot rebuild: {exc}", key=key
        )
    for r in results:
        if r.ok and r.candidate is not None and _config(r.candidate) == _config(candidate):
            return r
    if candidate.ensemble is None:
        return cross_validate(candidate, data, folds, spec, key=key)
    members = []
    for m in candidate.members:
        reuse = next((r for r in results if r.ok and r.candidate is not None and _config(r.candidate) == _config(m)), None)
        members.append(reuse or cross_validate(m, data, folds, spec, key=key))
    failed = [m for m in members if not m.ok]
    if failed:
        return CandidateResult(
            name=card.candidate, family=card.family, status=CandidateStatus.FAILED,
            error=f"member {failed[0].name} failed: {failed[0].error}", key=key,
        )
    return score_ensemble(candidate, members, data, folds, spec, key=key)


def _config(candidate: Candidate) -> dict[str, Any]:
    described = candidate.describe()
    described.pop("note", None)
    return described


def _candidate_from_description(description: Mapping[str, Any], task: Task) -> Candidate:
    base = candidate_by_name(str(description["name"]), task)
    params = dict(description.get("params", {}))
    members = tuple(_candidate_from_description(m, task) for m in description.get("members", []))
    candidate = dataclasses.replace(
        base,
        params={k: tuple(v) if isinstance(v, list) else v for k, v in params.items()},
        max_rows=description.get("max_rows", base.max_rows),
        members=members,
    )
    if candidate.ensemble is None:
        candidate.estimator(0)  # fail early on parameters the factory no longer takes
    return candidate
