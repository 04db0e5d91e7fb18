"""The model zoo: a typed catalogue of candidate models.

A :class:`Candidate` is one frozen entry: its name, task and family, the
profiles that include it, whether it needs Keras, an estimator factory with
its parameters, the preprocessing it needs and how it scales (``max_rows``,
``heavy``). :meth:`Candidate.build` turns it into a scikit-learn
:class:`Pipeline` for a feature set and a seed::

    prepare (FrameCaster) -> features (ColumnTransformer) -> estimator

Every fitted model therefore takes a raw product DataFrame. Ensembles
(soft voting, stacking) are declared with ``ensemble=`` and get their
members (the best ``k`` scored candidates) at training time through
:func:`with_members`.

:data:`CATALOGUE` holds every candidate; :func:`candidates` is the one
lookup (by task, profile, Keras and names, with did-you-mean errors).
:func:`default_zoo` adds the data size: it chooses the candidates for a
run and records why any were skipped or subsampled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    AdaBoostClassifier,
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    StackingClassifier,
    VotingClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNetCV, LassoCV, LogisticRegression, RidgeCV, SGDClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from datamesh.errors import did_you_mean
from ml.choices import DEFAULT_PROFILE, Profile, profile_named  # noqa: F401 - re-exported
from ml.errors import SpecError
from ml.keras_models import KerasMLPClassifier, KerasWideDeepClassifier
from ml.preparation import MISSING_CATEGORY, FrameCaster
from ml.spec import FeatureSet, Task

__all__ = [
    "CATALOGUE",
    "DEFAULT_PROFILE",
    "Candidate",
    "ANY_CLASSES",
    "MULTICLASS_ONLY",
    "TWO_CLASSES",
    "EnsembleKind",
    "Family",
    "LabelKind",
    "Preprocessing",
    "Profile",
    "ZooPlan",
    "all_candidates",
    "candidate_by_name",
    "candidates",
    "default_zoo",
    "profile_named",
    "with_members",
]

MAX_ONE_HOT_CATEGORIES = 50
MAX_NATIVE_CATEGORIES = 250  # HistGradientBoosting takes at most 255 bins


class Family(StrEnum):
    """Kind of model, for grouping in reports."""

    LINEAR = "linear"
    SVM = "svm"
    TREE = "tree"
    FOREST = "forest"
    BOOSTING = "boosting"
    NEURAL = "neural"
    ENSEMBLE = "ensemble"


class Preprocessing(StrEnum):
    """How feature columns are turned into the estimator's input.

    * ``scaled_one_hot``: numeric median-imputed (plus missing indicators)
      and standardised; categorical imputed and one-hot encoded (unknown
      categories ignored, rare ones grouped). For linear models and SVMs.
    * ``dense_one_hot``: as above without scaling, dense output (a Keras
      ``Normalization`` layer scales).
    * ``ordinal``: numeric median-imputed; categorical ordinal-encoded. Trees.
    * ``native_categorical``: numeric passed through with NaN; categorical
      ordinal-encoded and declared categorical to HistGradientBoosting.
    """

    SCALED_ONE_HOT = "scaled_one_hot"
    DENSE_ONE_HOT = "dense_one_hot"
    ORDINAL = "ordinal"
    NATIVE_CATEGORICAL = "native_categorical"



FULL_ONLY = frozenset({Profile.FULL})
"""Profiles of a candidate only the full zoo runs (the default)."""
EVERY_PROFILE = frozenset(Profile)
"""Profiles of a candidate every profile runs."""


class LabelKind(StrEnum):
    """The kinds of classification label a candidate takes."""

    BINARY = "binary"
    """Two classes (the positive class is 1)."""
    MULTICLASS = "multiclass"
    """Three or more classes (predicted class = the most probable one)."""


TWO_CLASSES = frozenset({LabelKind.BINARY})
"""Label kinds of a candidate for two-class labels only (the default)."""
ANY_CLASSES = frozenset(LabelKind)
"""Label kinds of a candidate that takes two or more classes."""
MULTICLASS_ONLY = frozenset({LabelKind.MULTICLASS})
"""Label kinds of a candidate that only multi-class runs use."""


class EnsembleKind(StrEnum):
    """Ensembles built over the best scored candidates."""

    VOTING = "soft_voting"
    STACKING = "stacking"


@dataclass(frozen=True)
class Candidate:
    """One model to try, as configuration.

    ``factory(**params, random_state=seed)`` returns an unfitted estimator
    (``random_state`` only when ``seeded``). ``max_rows`` caps the rows any
    single fit sees (a stratified subsample) for models that do not scale;
    ``heavy`` marks candidates that :func:`default_zoo` drops on very large
    data. ``member_of_ensembles`` says whether the candidate may be a
    voting/stacking member. ``note`` records why the candidate was changed
    for this run (e.g. subsampled). ``profiles`` are the :class:`Profile`\ s
    whose zoo includes it; ``needs_keras`` marks candidates left out when
    Keras is not wanted. ``label_kinds`` says which classification labels it
    takes (two classes, 3+ classes or both); regression ignores it.
    """

    name: str
    family: Family
    task: Task
    factory: Callable[..., Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    preprocessing: Preprocessing = Preprocessing.SCALED_ONE_HOT
    max_rows: int | None = None
    heavy: bool = False
    seeded: bool = True
    member_of_ensembles: bool = True
    ensemble: EnsembleKind | None = None
    members: tuple[Candidate, ...] = ()
    note: str = ""
    profiles: frozenset[Profile] = FULL_ONLY
    needs_keras: bool = False
    label_kinds: frozenset[LabelKind] = TWO_CLASSES

    def estimator(self, seed: int) -> Any:
        """A fresh unfitted estimator (for ensembles, use :meth:`build`)."""
        if self.ensemble is not None:
            raise SpecError(f"Candidate '{self.name}' is an ensemble; build it with Candidate.build.")
        kwargs = dict(self.params)
        if self.seeded:
            kwargs["random_state"] = seed
        return self.factory(**kwargs)

    def build(self, features: FeatureSet, seed: int, product: str = "") -> Pipeline:
        """The full pipeline: cast columns, preprocess, estimate."""
        prepare = FrameCaster(features.numeric, features.categorical, product)
        if self.ensemble is None:
            return Pipeline([("prepare", prepare), *self._steps(features, seed)])
        if len(self.members) < 2:
            raise SpecError(
                f"Ensemble '{self.name}' needs at least 2 members; it has {len(self.members)}. "
                "Members are the best scored candidates: run more candidates."
            )
        members = [(m.name, Pipeline(m._steps(features, seed))) for m in self.members]
        if self.ensemble == EnsembleKind.VOTING:
            model: Any = VotingClassifier(members, voting="soft")
        else:
            model = StackingClassifier(
                members,
                final_estimator=LogisticRegression(C=1.0, max_iter=1000),
                cv=StratifiedKFold(n_splits=int(self.params.get("cv", 5)), shuffle=True, random_state=seed),
                stack_method="predict_proba",
            )
        return Pipeline([("prepare", prepare), ("ensemble", model)])

    def _steps(self, features: FeatureSet, seed: int) -> list[tuple[str, Any]]:
        estimator = self.estimator(seed)
        if self.preprocessing == Preprocessing.NATIVE_CATEGORICAL:
            mask = [False] * len(features.numeric) + [True] * len(features.categorical)
            estimator.set_params(categorical_features=np.asarray(mask) if any(mask) else None)
        return [("features", _preprocessor(self.preprocessing, features)), ("estimator", estimator)]

    def describe(self) -> dict[str, Any]:
        """JSON-able description for model cards and comparison tables."""
        out: dict[str, Any] = {
            "name": self.name,
            "family": str(self.family),
            "estimator": getattr(self.factory, "__name__", repr(self.factory)),
            "params": _jsonable(dict(self.params)),
            "preprocessing": str(self.preprocessing),
            "max_rows": self.max_rows,
        }
        if self.ensemble is not None:
            out["ensemble"] = str(self.ensemble)
            out["members"] = [m.describe() for m in self.members]
        if self.note:
            out["note"] = self.note
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


def _preprocessor(kind: Preprocessing, features: FeatureSet) -> ColumnTransformer:
    numeric, categorical = list(features.numeric), list(features.categorical)
    transformers: list[tuple[str, Any, list[str]]] = []
    missing = SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)
    if kind in (Preprocessing.SCALED_ONE_HOT, Preprocessing.DENSE_ONE_HOT):
        dense = kind == Preprocessing.DENSE_ONE_HOT
        num_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median", add_indicator=True))]
        if not dense:
            num_steps.append(("scale", StandardScaler()))
        if numeric:
            transformers.append(("numeric", Pipeline(num_steps), numeric))
        if categorical:
            encoder = OneHotEncoder(
                handle_unknown="ignore", max_categories=MAX_ONE_HOT_CATEGORIES, sparse_output=not dense
            )
            transformers.append(("categorical", Pipeline([("impute", missing), ("encode", encoder)]), categorical))
        return ColumnTransformer(transformers, sparse_threshold=0.0 if dense else 0.3)
    if kind == Preprocessing.ORDINAL:
        if numeric:
            transformers.append(("numeric", SimpleImputer(strategy="median", add_indicator=True), numeric))
        if categorical:
            encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
            transformers.append(("categorical", Pipeline([("impute", missing), ("encode", encoder)]), categorical))
        return ColumnTransformer(transformers, sparse_threshold=0.0)
    # NATIVE_CATEGORICAL: order must match the categorical mask (numeric first).
    if numeric:
        transformers.append(("numeric", "passthrough", numeric))
    if categorical:
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            max_categories=MAX_NATIVE_CATEGORIES,
        )
        transformers.append(("categorical", encoder, categorical))
    return ColumnTransformer(transformers, sparse_threshold=0.0)


# -- estimator factories that are more than a class ---------------------------------


def calibrated_linear_svc(*, C: float = 1.0, class_weight: str | None = "balanced", cv: int = 3, random_state: int | None = None) -> CalibratedClassifierCV:
    """LinearSVC with sigmoid (Platt) calibration for probabilities."""
    svc = LinearSVC(C=C, class_weight=class_weight, max_iter=5000, random_state=random_state)
    return CalibratedClassifierCV(svc, method="sigmoid", cv=cv)


def calibrated_rbf_svc(
    *, C: float = 1.0, gamma: str | float = "scale", class_weight: str | None = "balanced", cv: int = 3, random_state: int | None = None
) -> CalibratedClassifierCV:
    """RBF-kernel SVC with sigmoid calibration (SVC's own ``probability`` is deprecated)."""
    svc = SVC(C=C, gamma=gamma, class_weight=class_weight, cache_size=500, random_state=random_state)
    return CalibratedClassifierCV(svc, method="sigmoid", cv=cv)


def one_vs_rest_linear_svc(
    *, C: float = 1.0, class_weight: str | None = "balanced", cv: int = 3, random_state: int | None = None
) -> OneVsRestClassifier:
    """One-vs-rest LinearSVCs, each with sigmoid calibration (probabilities renormalised over the classes)."""
    return OneVsRestClassifier(calibrated_linear_svc(C=C, class_weight=class_weight, cv=cv, random_state=random_state))


def one_vs_one_rbf_svc(
    *, C: float = 1.0, gamma: str | float = "scale", class_weight: str | None = "balanced", cv: int = 3, random_state: int | None = None
) -> CalibratedClassifierCV:
    """RBF-kernel SVC, trained one-vs-one (libsvm's native multi-class scheme), its votes turned into
    class probabilities by sigmoid calibration of the (one-vs-rest shaped) decision function."""
    return calibrated_rbf_svc(C=C, gamma=gamma, class_weight=class_weight, cv=cv, random_state=random_state)


def boosted_trees(
    *, n_estimators: int = 200, learning_rate: float = 0.5, max_depth: int = 2, class_weight: str | None = None, random_state: int | None = None
) -> AdaBoostClassifier:
    """AdaBoost (SAMME) over shallow decision trees."""
    tree = DecisionTreeClassifier(max_depth=max_depth, class_weight=class_weight, random_state=random_state)
    return AdaBoostClassifier(tree, n_estimators=n_estimators, learning_rate=learning_rate, random_state=random_state)


def _ensemble_placeholder(**_: Any) -> None:  # pragma: no cover - never called
    raise SpecError("Ensembles are built with Candidate.build.")


# -- the catalogue --------------------------------------------------------------------

C, R = Task.CLASSIFICATION, Task.REGRESSION
P = Preprocessing
_BALANCED = "balanced"
_KERAS_COMMON: Mapping[str, Any] = {
    "hidden_units": (64, 32),
    "dropout": 0.2,
    "learning_rate": 3e-3,
    "epochs": 100,
    "batch_size": None,
    "patience": 8,
    "class_weight": _BALANCED,
}

CATALOGUE: tuple[Candidate, ...] = (
    # regression
    Candidate(
        "ridge", Family.LINEAR, R, RidgeCV, {"alphas": (0.01, 0.1, 1.0, 10.0, 100.0)}, seeded=False, profiles=EVERY_PROFILE
    ),
    Candidate("lasso", Family.LINEAR, R, LassoCV, {"alphas": 30, "cv": 3, "max_iter": 5000}),
    Candidate(
        "elastic_net", Family.LINEAR, R, ElasticNetCV, {"l1_ratio": (0.2, 0.5, 0.8), "alphas": 30, "cv": 3, "max_iter": 5000}
    ),
    Candidate(
        "hist_gradient_boosting",
        Family.BOOSTING,
        R,
        HistGradientBoostingRegressor,
        {"max_iter": 300, "learning_rate": 0.1, "l2_regularization": 0.1},
        preprocessing=P.NATIVE_CATEGORICAL,
        profiles=EVERY_PROFILE,
    ),
    # classification
    Candidate(
        "logistic_regression", Family.LINEAR, C, LogisticRegression, {"C": 1.0, "max_iter": 1000, "class_weight": _BALANCED},
        profiles=EVERY_PROFILE, label_kinds=ANY_CLASSES),
    Candidate(
        "logistic_elastic_net",
        Family.LINEAR,
        C,
        LogisticRegression,
        {"C": 0.5, "l1_ratio": 0.5, "solver": "saga", "max_iter": 300, "tol": 1e-3, "class_weight": _BALANCED}, label_kinds=ANY_CLASSES),
    Candidate(
        "sgd_log_loss",
        Family.LINEAR,
        C,
        SGDClassifier,
        {"loss": "log_loss", "alpha": 1e-4, "early_stopping": True, "n_iter_no_change": 5, "class_weight": _BALANCED}, label_kinds=ANY_CLASSES),
    Candidate("linear_svc", Family.SVM, C, calibrated_linear_svc, {"C": 0.5, "class_weight": _BALANCED}),
    Candidate("svc_rbf", Family.SVM, C, calibrated_rbf_svc, {"C": 1.0, "class_weight": _BALANCED}, max_rows=5_000, heavy=True),
    Candidate(
        "linear_svc_ovr", Family.SVM, C, one_vs_rest_linear_svc, {"C": 0.5, "class_weight": _BALANCED},
        label_kinds=MULTICLASS_ONLY,
    ),
    Candidate(
        "svc_rbf_ovo", Family.SVM, C, one_vs_one_rbf_svc, {"C": 1.0, "class_weight": _BALANCED}, max_rows=5_000, heavy=True,
        label_kinds=MULTICLASS_ONLY,
    ),
    Candidate(
        "decision_tree",
        Family.TREE,
        C,
        DecisionTreeClassifier,
        {"max_depth": 6, "min_samples_leaf": 20, "class_weight": _BALANCED},
        preprocessing=P.ORDINAL,
        profiles=EVERY_PROFILE, label_kinds=ANY_CLASSES),
    Candidate(
        "random_forest",
        Family.FOREST,
        C,
        RandomForestClassifier,
        {"n_estimators": 200, "min_samples_leaf": 3, "max_features": "sqrt", "class_weight": "balanced_subsample", "n_jobs": -1},
        preprocessing=P.ORDINAL,
        profiles=EVERY_PROFILE, label_kinds=ANY_CLASSES),
    Candidate(
        "extra_trees",
        Family.FOREST,
        C,
        ExtraTreesClassifier,
        {"n_estimators": 200, "min_samples_leaf": 3, "max_features": "sqrt", "class_weight": _BALANCED, "n_jobs": -1},
        preprocessing=P.ORDINAL, label_kinds=ANY_CLASSES),
    Candidate(
        "adaboost",
        Family.BOOSTING,
        C,
        boosted_trees,
        # no class weights: SAMME measures each tree's error on the boosting weights, and
        # a class-balanced tree can look "worse than random" there and stop the fit.
        {"n_estimators": 150, "learning_rate": 0.5, "max_depth": 2},
        preprocessing=P.ORDINAL,
        max_rows=20_000,  # sequential boosting: ~250 s for 5 folds of 50,000 rows on 2 cores
        heavy=True, label_kinds=ANY_CLASSES),
    Candidate(
        "gradient_boosting",
        Family.BOOSTING,
        C,
        GradientBoostingClassifier,
        {"n_estimators": 300, "learning_rate": 0.1, "max_depth": 3, "subsample": 0.8, "n_iter_no_change": 10, "validation_fraction": 0.1},
        preprocessing=P.ORDINAL,
        max_rows=20_000,  # use HistGradientBoosting for large data
        heavy=True, label_kinds=ANY_CLASSES),
    Candidate(
        "hist_gradient_boosting",
        Family.BOOSTING,
        C,
        HistGradientBoostingClassifier,
        {"max_iter": 300, "learning_rate": 0.1, "l2_regularization": 0.1, "class_weight": _BALANCED},
        preprocessing=P.NATIVE_CATEGORICAL,
        profiles=EVERY_PROFILE,
        label_kinds=ANY_CLASSES,
    ),
    Candidate(
        "keras_mlp",
        Family.NEURAL,
        C,
        KerasMLPClassifier,
        {**_KERAS_COMMON, "optimizer": "adam"},
        preprocessing=P.DENSE_ONE_HOT,
        max_rows=100_000,
        heavy=True,
        needs_keras=True,
    ),
    Candidate(
        "keras_wide_deep",
        Family.NEURAL,
        C,
        KerasWideDeepClassifier,
        {**_KERAS_COMMON, "optimizer": "nadam"},
        preprocessing=P.DENSE_ONE_HOT,
        max_rows=100_000,
        heavy=True,
        needs_keras=True,
    ),
    Candidate(
        "soft_voting", Family.ENSEMBLE, C, _ensemble_placeholder, {"k": 3}, ensemble=EnsembleKind.VOTING, profiles=EVERY_PROFILE, label_kinds=ANY_CLASSES),
    Candidate("stacking", Family.ENSEMBLE, C, _ensemble_placeholder, {"k": 3, "cv": 5}, ensemble=EnsembleKind.STACKING, label_kinds=ANY_CLASSES),
)
"""Every candidate the zoo knows, per task in the order they run (heaviest
last but the ensembles, which run over the others' results)."""


def _with_n_jobs(candidate: Candidate, n_jobs: int) -> Candidate:
    if "n_jobs" not in candidate.params or candidate.params["n_jobs"] == n_jobs:
        return candidate
    return dataclasses.replace(candidate, params={**candidate.params, "n_jobs": n_jobs})


def _takes(candidate: Candidate, multiclass: bool) -> bool:
    if candidate.task != Task.CLASSIFICATION:
        return True
    return (LabelKind.MULTICLASS if multiclass else LabelKind.BINARY) in candidate.label_kinds


def all_candidates(task: Task | str, *, n_jobs: int = -1, multiclass: bool = False) -> list[Candidate]:
    """Every candidate of :data:`CATALOGUE` for ``task``, in run order
    (``n_jobs`` sets the worker threads of the forests); with ``multiclass``
    those that take labels of 3+ classes, otherwise those for two classes."""
    task = Task(str(task))
    return [_with_n_jobs(c, n_jobs) for c in CATALOGUE if c.task == task and _takes(c, multiclass)]


def _left_out_because(candidate: Candidate, profile: Profile, include_keras: bool) -> str | None:
    """Why ``profile`` and ``include_keras`` leave ``candidate`` out, or None."""
    if profile not in candidate.profiles:
        return f"not in the {profile} profile"
    if candidate.needs_keras and not include_keras:
        return "include_keras=False"
    return None


def candidates(
    task: Task | str,
    profile: Profile | str = DEFAULT_PROFILE,
    include_keras: bool = True,
    names: Sequence[str] | None = None,
    *,
    n_jobs: int = -1,
    multiclass: bool = False,
) -> tuple[Candidate, ...]:
    """The catalogue's candidates for ``task``: the one lookup of the zoo.

    Without ``names``: those ``profile`` includes, Keras ones only with
    ``include_keras``, in run order. With ``names``: exactly those
    candidates, in the order given, whatever the profile (ensembles come
    without members). Raises :class:`~ml.errors.SpecError` for an unknown
    task, profile or name (suggesting the closest), a repeated name, or a
    named Keras candidate with ``include_keras=False``.
    """
    task = _task_named(task)
    profile = profile_named(profile)
    known = {c.name: c for c in all_candidates(task, n_jobs=n_jobs, multiclass=multiclass)}
    if names is None:
        return tuple(c for c in known.values() if _left_out_because(c, profile, include_keras) is None)
    chosen: list[Candidate] = []
    kind = "multi-class " if multiclass else ""
    for name in names:
        if name not in known:
            other = {c.name for c in all_candidates(task, n_jobs=n_jobs, multiclass=not multiclass)}
            why = ""
            if task == Task.CLASSIFICATION and name in other:
                why = (f" '{name}' is for {'two-class' if multiclass else 'multi-class'} labels only.")
            raise SpecError(f"Unknown {kind}{task} candidate '{name}';{why} known: {sorted(known)}."
                            + ("" if why else did_you_mean(name, known)))
        candidate = known[name]
        if candidate.needs_keras and not include_keras:
            raise SpecError(f"Candidate '{name}' needs Keras, but include_keras=False: drop it or allow Keras.")
        chosen.append(candidate)
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        raise SpecError(f"Candidate names must be unique; {repeated} given more than once.")
    return tuple(chosen)


def _task_named(task: Task | str) -> Task:
    try:
        return Task(str(task))
    except ValueError:
        choices = [t.value for t in Task]
        raise SpecError(f"Unknown task '{task}'; expected one of {choices}." + did_you_mean(str(task), choices)) from None


@dataclass(frozen=True)
class ZooPlan:
    """The candidates to run and the ones left out, each with its reason."""

    candidates: tuple[Candidate, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    def names(self) -> list[str]:
        """Names of the candidates to run."""
        return [c.name for c in self.candidates]


def default_zoo(
    task: Task | str,
    n_rows: int,
    include_keras: bool = True,
    profile: Profile | str = DEFAULT_PROFILE,
    *,
    names: Sequence[str] | None = None,
    n_jobs: int = -1,
    heavy_row_limit: int = 1_000_000,
    multiclass: bool = False,
) -> ZooPlan:
    """Choose the candidates for ``task`` on ``n_rows`` training rows.

    ``profile="full"`` runs the whole zoo; candidates with ``max_rows`` below
    ``n_rows`` are kept but fit on a stratified subsample (noted, and kept
    out of ensembles). Heavy candidates are skipped above
    ``heavy_row_limit`` rows. ``profile="fast"`` runs a small, quick set
    (no SVC, no Keras, no stacking). See :class:`Profile`. With ``names``
    the plan runs exactly those candidates (see :func:`candidates`; none is
    skipped, the subsampling still applies).
    """
    profile = profile_named(profile)
    chosen = candidates(task, profile, include_keras, names, n_jobs=n_jobs, multiclass=multiclass)
    if names is not None:
        return ZooPlan(tuple(_sized(c, n_rows) for c in chosen))
    planned: list[Candidate] = []
    skipped: list[tuple[str, str]] = []
    for candidate in all_candidates(task, n_jobs=n_jobs, multiclass=multiclass):
        reason = _left_out_because(candidate, profile, include_keras)
        if reason is None and candidate.heavy and n_rows > heavy_row_limit:
            reason = f"heavy candidate skipped above {heavy_row_limit:,} rows ({n_rows:,} rows)"
        if reason is not None:
            skipped.append((candidate.name, reason))
        else:
            planned.append(_sized(candidate, n_rows))
    return ZooPlan(tuple(planned), tuple(skipped))


def _sized(candidate: Candidate, n_rows: int) -> Candidate:
    """``candidate`` for ``n_rows`` rows: noted and kept out of ensembles when it must be subsampled."""
    if candidate.max_rows is None or n_rows <= candidate.max_rows:
        return candidate
    return dataclasses.replace(
        candidate,
        member_of_ensembles=False,
        note=f"fit on a stratified subsample of {candidate.max_rows:,} of {n_rows:,} rows (does not scale)",
    )


def candidate_by_name(name: str, task: Task | str, *, n_jobs: int = -1, multiclass: bool = False) -> Candidate:
    """The zoo's candidate called ``name`` (ensembles come without members);
    :func:`candidates` with one name."""
    (candidate,) = candidates(task, names=[name], n_jobs=n_jobs, multiclass=multiclass)
    return candidate


def with_members(ensemble: Candidate, members: Sequence[Candidate]) -> Candidate:
    """The ensemble candidate with its members filled in."""
    if ensemble.ensemble is None:
        raise SpecError(f"Candidate '{ensemble.name}' is not an ensemble.")
    return dataclasses.replace(ensemble, members=tuple(members))
