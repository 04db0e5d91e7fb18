"""Train, evaluate and select: the entry point of the ML layer.

:func:`train_and_evaluate` runs small steps, each a function returning its
result, and builds one frozen :class:`TrainingReport` at the end:

1. :func:`~ml.preparation.prepare_training_data` validates the rows against
   the :class:`~ml.spec.LearningSpec`;
2. :func:`evaluate_candidates` cross-validates every candidate of the zoo on
   the same folds and builds the ensembles over the best members;
3. :func:`choose_best` ranks the scored ones by the primary metric;
4. :func:`refit` refits the best on every training row (falling back to the
   next best if that fails);
5. :func:`explain` computes the learning curve and permutation importance;
6. :func:`draw_plots` draws the charts;
7. :func:`champion_decision`, when a current champion is given, decides
   whether the new model replaces it.
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
from ml.metrics import BINARY_METRICS, confusion_counts
from ml.preparation import TrainingData, prepare_training_data
from ml.spec import FeatureSet, LearningSpec, Task
from ml.zoo import Candidate, LabelKind, ZooPlan, all_candidates, candidate_by_name, default_zoo, with_members

__all__ = [
    "DEFAULT_PLOTS",
    "Explanation",
    "PlotSelection",
    "PlotSet",
    "Refit",
    "TrainingReport",
    "champion_decision",
    "choose_best",
    "draw_plots",
    "evaluate_candidates",
    "explain",
    "refit",
    "rescore_champion",
    "resolve_candidates",
    "spec_for_label",
    "train_and_evaluate",
]

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    """The progress callback when none is given."""


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


# -- the results of the steps --------------------------------------------------------


@dataclass(frozen=True)
class Refit:
    """The result of :func:`refit`: the candidate refit on all rows and its model.

    ``notes`` say which better-ranked candidates could not be refit (and why).
    """

    best: CandidateResult
    model: Any
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Explanation:
    """The result of :func:`explain`: diagnostics of the best candidate.

    A diagnostic that failed is None (or empty) and ``notes`` say why.
    """

    learning_curve: LearningCurve | None = None
    importances: tuple[FeatureImportance, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlotSet:
    """The result of :func:`draw_plots` (``name.png`` -> PNG bytes).

    ``plots``: the comparison chart and the best model's plots;
    ``candidate_plots``: each drawn candidate's own plots.
    """

    plots: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    candidate_plots: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class TrainingReport:
    """Everything a training run produced, built once at the end of the run.

    ``model`` is the best candidate refit on all training rows (a
    scikit-learn pipeline taking a raw product DataFrame). ``plots`` holds the
    best model's plots and the comparison chart (``name.png`` -> PNG bytes);
    ``candidate_plots`` the per-candidate plots. ``decision`` is set when a
    current champion was given.
    """

    spec: LearningSpec
    results: tuple[CandidateResult, ...]
    best: CandidateResult
    model: Any
    features: FeatureSet
    key: EvaluationKey
    comparison: tuple[dict[str, Any], ...]
    plots: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    candidate_plots: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict, repr=False)
    learning_curve: LearningCurve | None = None
    importances: tuple[FeatureImportance, ...] = ()
    decision: Decision | None = None
    training_data: Mapping[str, str] = field(default_factory=dict)
    positive_label: Any = None
    negative_label: Any = None
    classes: tuple[Any, ...] = ()
    n_rows: int = 0
    n_rows_available: int = 0
    seconds: float = 0.0
    timings: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def comparison_markdown(self) -> str:
        """The comparison table as markdown (one row per candidate)."""
        return comparison_markdown(self.comparison)

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
        threshold_policy: dict[str, Any] = {**policy.to_dict(), "policy": policy.describe(), **(
            {"satisfied": self.best.threshold.satisfied, "note": self.best.threshold.note}
            if self.best.threshold is not None else {}
        )}
        if self.spec.multiclass:
            threshold_policy = {**policy.to_dict(), "policy": "argmax", "applied": False,
                                "note": _ARGMAX_NOTE.format(k=len(self.classes), policy=policy.describe())}
        kind = "regression" if self.spec.task == Task.REGRESSION else "multiclass" if self.spec.multiclass else "binary"
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
            threshold_policy=threshold_policy,
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
            comparison=[dict(row) for row in self.comparison],
            learning_curve=self.learning_curve.to_dict() if self.learning_curve else None,
            feature_importance=[dataclasses.asdict(f) for f in self.importances],
            notes=list(self.notes),
            label_kind=kind,
            classes=list(self.classes),
            class_metrics={k: dict(v) for k, v in self.best.per_class.items()},
            confusion_matrix=[list(row) for row in self.best.confusion] if self.best.confusion is not None else None,
        )


def resolve_candidates(
    candidates: ZooPlan | Sequence[Candidate | str] | None, task: Task, n_rows: int, *, multiclass: bool = False
) -> ZooPlan:
    """Turn the ``candidates`` argument into a plan: None -> the full default
    zoo; names -> those candidates of the full default zoo (the multi-class
    zoo with ``multiclass``)."""
    if candidates is None:
        return default_zoo(task, n_rows, multiclass=multiclass)
    if isinstance(candidates, ZooPlan):
        plan = candidates
    else:
        full = {c.name: c for c in default_zoo(task, n_rows, multiclass=multiclass).candidates}
        chosen = []
        for c in candidates:
            if isinstance(c, str):
                chosen.append(full[c] if c in full else candidate_by_name(c, task, multiclass=multiclass))
            else:
                chosen.append(c)
        plan = ZooPlan(tuple(chosen))
    if not plan.candidates:
        raise SpecError("No candidates to train.")
    wrong = [c.name for c in plan.candidates if c.task != task]
    if wrong:
        raise SpecError(f"Candidates {wrong} are not for task {task}.")
    if task == Task.CLASSIFICATION:
        kind = LabelKind.MULTICLASS if multiclass else LabelKind.BINARY
        unfit = [c.name for c in plan.candidates if kind not in c.label_kinds]
        if unfit:
            raise SpecError(
                f"Candidates {unfit} do not take {'multi-class' if multiclass else 'two-class'} labels; "
                f"choose from {[c.name for c in all_candidates(task, multiclass=multiclass)]}."
            )
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
        return _train_and_evaluate(frame, spec, candidates, progress or _quiet, training_data, current_champion,
                                   selection, diagnostics)


def _train_and_evaluate(
    frame: pd.DataFrame,
    spec: LearningSpec,
    candidates: ZooPlan | Sequence[Candidate | str] | None,
    say: Progress,
    training_data: Mapping[str, str] | None,
    current_champion: ModelCard | None,
    selection: PlotSelection,
    diagnostics: bool,
) -> TrainingReport:
    start = time.perf_counter()
    timings: dict[str, float] = {}
    phase = start

    def lap(name: str) -> None:
        nonlocal phase
        now = time.perf_counter()
        timings[name] = now - phase
        phase = now

    data = prepare_training_data(frame, spec)
    spec = spec_for_label(spec, data)
    plan = resolve_candidates(candidates, spec.task, len(data.y), multiclass=spec.multiclass)
    key = evaluation_key(data, spec, training_data)
    folds = make_folds(data.y, spec.task, spec.cv_folds, spec.seed)
    say(
        f"{spec.product}: {len(data.y):,} rows, {len(data.features.columns)} features "
        f"({len(data.features.categorical)} categorical), {len(plan.candidates)} candidates, {spec.cv_folds}-fold CV"
    )
    lap("prepare")
    evaluated = evaluate_candidates(plan, data, folds, spec, key=key, progress=say)
    lap("cross_validation")
    chosen = refit(choose_best(evaluated, spec), data, spec, progress=say)
    lap("refit")
    explanation = Explanation()
    if diagnostics:
        explanation = explain(chosen.best, data, folds, spec, progress=say)
        lap("diagnostics")
    results = tuple(dataclasses.replace(r, first_fold_model=None) for r in evaluated)  # free the fold models
    best = next(r for r in results if r.name == chosen.best.name)
    comparison = tuple(comparison_table(results, spec.metric, spec.task, multiclass=spec.multiclass))
    drawn = PlotSet()
    if selection is not PlotSelection.NONE:
        drawn = draw_plots(results, best, comparison, explanation, data, spec, every_candidate=selection is PlotSelection.ALL)
        lap("plots")
    decision = None
    if current_champion is not None:
        decision = champion_decision(best, current_champion, data, folds, spec, key, results=results, progress=say)
        lap("champion")
        say(f"champion decision: {'promote' if decision.promote else 'keep'} ({decision.reason})")
    seconds = time.perf_counter() - start
    say(f"{spec.product}: best {best.name} {spec.metric} {best.score(spec.metric):.4f}; done in {seconds:.1f} s")
    label_notes: tuple[str, ...] = ()
    if spec.multiclass:
        label_notes = (_ARGMAX_NOTE.format(k=len(data.label.classes), policy=spec.threshold_policy.describe()),)
    return TrainingReport(
        spec=spec,
        results=results,
        best=best,
        model=chosen.model,
        features=data.features,
        key=key,
        comparison=comparison,
        plots=drawn.plots,
        candidate_plots=drawn.candidate_plots,
        learning_curve=explanation.learning_curve,
        importances=explanation.importances,
        decision=decision,
        training_data=dict(training_data or {}),
        positive_label=data.label.positive,
        negative_label=data.label.negative,
        classes=data.label.classes,
        n_rows=len(data.y),
        n_rows_available=data.n_rows_available,
        seconds=seconds,
        timings=timings,
        notes=(*label_notes, *chosen.notes, *explanation.notes),
    )


_ARGMAX_NOTE = ("multi-class label ({k} classes): the predicted class is the most probable one (argmax), so there is "
                "no decision threshold and the threshold policy ({policy}) is not applied")


def spec_for_label(spec: LearningSpec, data: TrainingData) -> LearningSpec:
    """``spec`` fitted to the label found in ``data``: :meth:`~ml.spec.LearningSpec.as_multiclass`
    for 3+ classes; a multi-class-only primary metric on a two-class label raises
    :class:`~ml.errors.SpecError`."""
    if spec.task != Task.CLASSIFICATION:
        return spec
    if data.label.multiclass:
        return spec.as_multiclass()
    if spec.metric not in BINARY_METRICS:
        raise SpecError(
            f"Product '{spec.product}': `ml.primaryMetric` {spec.metric!r} in {spec.where} is for labels of 3 or more "
            f"classes, but label '{spec.label_column}' has two ({list(data.label.classes)}); use one of "
            f"{sorted(BINARY_METRICS)} (or remove it: the default is roc_auc)."
        )
    return spec


# -- the steps -----------------------------------------------------------------------


def evaluate_candidates(
    plan: ZooPlan,
    data: TrainingData,
    folds: Folds,
    spec: LearningSpec,
    *,
    key: EvaluationKey | None = None,
    progress: Progress | None = None,
) -> list[CandidateResult]:
    """Cross-validate every candidate of ``plan`` on ``folds``: the single
    models first (keeping each one's first-fold model for :func:`explain`),
    then the ensembles over the best of them, then the skipped ones.

    A candidate that fails is a failed result; the others go on."""
    say = progress or _quiet
    metric = spec.metric
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
        CandidateResult(name=name, family="", status=CandidateStatus.SKIPPED, note=reason, key=key)
        for name, reason in plan.skipped
    )
    return results


def choose_best(results: Sequence[CandidateResult], spec: LearningSpec) -> tuple[CandidateResult, ...]:
    """The scored results, best first by the primary metric: the order in
    which :func:`refit` tries them. Raises :class:`~ml.errors.TrainingError`
    (with every error) when no candidate was scored."""
    ranked = rank(results, spec.metric)
    if not ranked:
        errors = "; ".join(f"{r.name}: {r.error}" for r in results if r.status is CandidateStatus.FAILED)
        raise TrainingError(f"Product '{spec.product}': every candidate failed ({errors}).")
    return tuple(ranked)


def refit(
    ranked: Sequence[CandidateResult], data: TrainingData, spec: LearningSpec, *, progress: Progress | None = None
) -> Refit:
    """Refit the first of ``ranked`` that can be refit on all training rows.

    A refit that raises is noted and the next best is tried; raises
    :class:`~ml.errors.TrainingError` when none can be refit."""
    say = progress or _quiet
    notes: list[str] = []
    for result in ranked:
        assert result.candidate is not None
        say(f"refitting {result.name} on all {len(data.y):,} rows")
        try:
            model = fit_candidate(result.candidate, data.X, data.y, spec, data.features)
        except Exception as exc:  # noqa: BLE001 - fall back to the next best
            note = f"refit of {result.name} on all rows failed ({type(exc).__name__}: {exc}); next best used"
            notes.append(note)
            say(note)
            continue
        return Refit(result, model, tuple(notes))
    raise TrainingError(f"Product '{spec.product}': no candidate could be refit on all rows ({'; '.join(notes)}).")


def explain(
    best: CandidateResult, data: TrainingData, folds: Folds, spec: LearningSpec, *, progress: Progress | None = None
) -> Explanation:
    """Permutation importance (on the first fold's held-out rows, reusing
    ``best.first_fold_model`` when kept) and the learning curve of ``best``.

    A diagnostic that fails is noted, never raised."""
    assert best.candidate is not None
    say = progress or _quiet
    notes: list[str] = []
    importances: tuple[FeatureImportance, ...] = ()
    curve = None
    try:
        say(f"permutation importance of {best.name}")
        train, test = folds.splits[0]
        model = best.first_fold_model
        if model is None:
            model = fit_candidate(best.candidate, data.X.iloc[train], data.y[train], spec, data.features)
        importances = tuple(permutation_importances(model, data, test, spec))
    except Exception as exc:  # noqa: BLE001 - diagnostics must not fail a run
        notes.append(f"permutation importance failed: {type(exc).__name__}: {exc}")
    try:
        say(f"learning curve of {best.name}")
        curve = learning_curve_for(best.candidate, data, spec)
    except Exception as exc:  # noqa: BLE001
        notes.append(f"learning curve failed: {type(exc).__name__}: {exc}")
    return Explanation(curve, importances, tuple(notes))


def draw_plots(
    results: Sequence[CandidateResult],
    best: CandidateResult,
    comparison: Sequence[Mapping[str, Any]],
    explanation: Explanation,
    data: TrainingData,
    spec: LearningSpec,
    *,
    every_candidate: bool = True,
) -> PlotSet:
    """The comparison chart, the out-of-fold plots of every scored candidate
    (or only of ``best``) and ``best``'s diagnostics charts."""
    metric = spec.metric
    plots: dict[str, bytes] = {
        P.PlotKind.COMPARISON.filename: P.comparison_png(list(comparison), metric=metric, title=f"{spec.product}: candidates")
    }
    labels: tuple[str, ...] = tuple(str(c) for c in data.label.classes) if spec.multiclass else (
        str(data.label.negative), str(data.label.positive))
    targets = [r for r in results if r.ok] if every_candidate else [best]
    candidate_plots = {result.name: _candidate_plots(result, data, spec, labels) for result in targets}
    plots.update(candidate_plots.get(best.name, {}))
    if explanation.learning_curve is not None:
        lc = explanation.learning_curve
        plots[P.PlotKind.LEARNING_CURVE.filename] = P.learning_curve_png(
            lc.train_sizes, lc.train_scores, lc.validation_scores, metric=lc.metric, title=f"{best.name}: learning curve"
        )
    if explanation.importances:
        plots[P.PlotKind.FEATURE_IMPORTANCE.filename] = P.feature_importance_png(
            [(f.feature, f.mean, f.std) for f in explanation.importances],
            metric=metric,
            title=f"{best.name}: permutation importance",
        )
    return PlotSet(plots, candidate_plots)


def _candidate_plots(
    result: CandidateResult, data: TrainingData, spec: LearningSpec, labels: tuple[str, ...]
) -> dict[str, bytes]:
    assert result.oof is not None
    title = f"{result.name}"
    if spec.multiclass:
        assert result.confusion is not None
        return {P.PlotKind.CONFUSION_MATRIX.filename: P.normalised_confusion_png(
            result.confusion, labels=labels, title=f"{title}: confusion (out of fold, row-normalised)")}
    if spec.task != Task.CLASSIFICATION:
        predicted = P.predicted_vs_actual_png(data.y, result.oof, title=f"{title}: out of fold")
        return {P.PlotKind.PREDICTED_VS_ACTUAL.filename: predicted}
    assert result.threshold is not None and result.calibration is not None
    counts = confusion_counts(data.y, result.oof >= result.threshold.threshold)
    return {
        P.PlotKind.CONFUSION_MATRIX.filename: P.confusion_matrix_png(
            counts, labels=labels, title=f"{title} @ {result.threshold.threshold:.3f}"
        ),
        P.PlotKind.ROC.filename: P.roc_png(data.y, result.oof, title=f"{title}: ROC (out of fold)"),
        P.PlotKind.PR.filename: P.pr_png(data.y, result.oof, threshold=result.threshold, title=f"{title}: precision-recall"),
        P.PlotKind.CALIBRATION.filename: P.calibration_png(result.calibration, title=f"{title}: calibration"),
    }


def _summary(result: CandidateResult, metric: str) -> str:
    if result.ok:
        return f"{result.name}: {metric} {result.metrics[metric]:.4f} ({result.seconds:.1f} s)"
    return f"{result.name}: {result.status}: {result.error or result.note}"


def _run_ensemble(
    ensemble: Candidate,
    results: list[CandidateResult],
    data: TrainingData,
    folds: Folds,
    spec: LearningSpec,
    key: EvaluationKey | None,
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


# -- champion ------------------------------------------------------------------------


def champion_decision(
    best: CandidateResult,
    current: ModelCard,
    data: TrainingData,
    folds: Folds,
    spec: LearningSpec,
    key: EvaluationKey,
    *,
    results: Sequence[CandidateResult] = (),
    progress: Progress | None = None,
) -> Decision:
    """Does ``best`` replace the ``current`` champion? Compared on the card's
    score when it comes from the same folds (``key``), otherwise on the
    champion's configuration re-scored on ``folds`` (see :func:`rescore_champion`)."""
    if current.evaluation_key == key and spec.metric in current.metrics:
        return decide_champion(best, current, spec.champion_margin, metric=spec.metric)
    (progress or _quiet)(f"re-scoring champion {current.model_name} ({current.candidate}) on the same folds")
    rescored = rescore_champion(current, data, folds, spec, key, results=results)
    return decide_champion(best, current, spec.champion_margin, metric=spec.metric, rescored_current=rescored)


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
        candidate = _candidate_from_description(card.params, Task(spec.task), multiclass=spec.multiclass)
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


def _candidate_from_description(description: Mapping[str, Any], task: Task, *, multiclass: bool = False) -> Candidate:
    base = candidate_by_name(str(description["name"]), task, multiclass=multiclass)
    params = dict(description.get("params", {}))
    members = tuple(_candidate_from_description(m, task, multiclass=multiclass) for m in description.get("members", []))
    candidate = dataclasses.replace(
        base,
        params={k: tuple(v) if isinstance(v, list) else v for k, v in params.items()},
        max_rows=description.get("max_rows", base.max_rows),
        members=members,
    )
    if candidate.ensemble is None:
        candidate.estimator(0)  # fail early on parameters the factory no longer takes
    return candidate
