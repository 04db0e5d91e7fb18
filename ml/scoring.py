"""Batch scoring: stream record batches of a product through a trained model
and yield prediction batches, ready to be published as a product.

Each input batch is converted to pandas once and scored vectorised; there
is no per-row Python. Extra input columns are ignored; a missing feature
column raises :class:`~ml.errors.FeatureError` naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

from datamesh.errors import did_you_mean
from ml.errors import FeatureError, SpecError, TrainingError
from ml.spec import LearningSpec, Task

__all__ = ["model_features", "prediction_schema", "score_batches"]

RESERVED = ("probability", "predicted_label", "prediction", "model_name", "model_version", "threshold", "scored_at", "uncertainty")


def model_features(model: Any) -> list[str]:
    """The input columns a fitted model needs (from its ``prepare`` step or
    ``feature_names_in_``)."""
    steps = getattr(model, "named_steps", {})
    source = steps.get("prepare", model) if hasattr(steps, "get") else model
    names = getattr(source, "feature_names_in_", None)
    if names is None:
        raise FeatureError(f"Model {type(model).__name__} does not record its input columns; train it on a DataFrame.")
    return [str(n) for n in names]


def prediction_schema(
    id_field: pa.Field,
    task: Task | str = Task.CLASSIFICATION,
    extra: Mapping[str, Any] | None = None,
    *,
    classes: Sequence[Any] | None = None,
) -> pa.Schema:
    """The schema of scoring output for an id column ``id_field``.

    Classification: id, ``probability`` (float64), ``predicted_label``
    (bool), ``model_name``, ``model_version`` (string), ``threshold``
    (float64), ``scored_at`` (timestamp[us], UTC, no zone),
    ``uncertainty`` (float64, null when the model has none), then ``extra``.
    Multi-class (``classes`` given, 3+ of them): ``probability`` is that of
    the predicted class, ``predicted_label`` is the class itself (the
    label's type: string for text classes, int64 for integers) and there is
    no ``threshold``. Regression: ``prediction`` replaces probability,
    predicted_label and threshold.
    """
    fields = [id_field.with_nullable(id_field.nullable)]
    multiclass = classes is not None and len(classes) > 2
    if multiclass:
        fields += [pa.field("probability", pa.float64(), False),
                   pa.field("predicted_label", _class_array(classes).type, False)]
    elif Task(str(task)) == Task.CLASSIFICATION:
        fields += [pa.field("probability", pa.float64(), False), pa.field("predicted_label", pa.bool_(), False)]
    else:
        fields += [pa.field("prediction", pa.float64(), False)]
    fields += [pa.field("model_name", pa.string(), False), pa.field("model_version", pa.string(), False)]
    if Task(str(task)) == Task.CLASSIFICATION and not multiclass:
        fields.append(pa.field("threshold", pa.float64(), False))
    fields += [pa.field("scored_at", pa.timestamp("us"), False), pa.field("uncertainty", pa.float64(), True)]
    for name, value in (extra or {}).items():
        fields.append(pa.field(name, pa.scalar(value).type, True))
    return pa.schema(fields)


def score_batches(
    model: Any,
    batches: Iterable[pa.RecordBatch],
    spec: LearningSpec,
    threshold: float | None,
    model_name: str,
    model_version: int | str,
    extra: Mapping[str, Any] | None = None,
    *,
    scored_at: datetime | None = None,
    uncertainty_samples: int = 20,
    n_threads: int | None = 1,
    classes: Sequence[Any] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Score ``batches`` lazily, one output batch per input batch.

    ``threshold`` turns probabilities into ``predicted_label`` (``p >=
    threshold``; required for classification). ``extra`` adds constant
    columns (e.g. the scored product's version). Every output row of one
    call has the same ``scored_at`` (default: now, UTC). ``uncertainty`` is
    the Monte Carlo Dropout standard deviation for Keras models, else null.
    ``n_threads`` caps OpenMP/BLAS threads while predicting (see
    :func:`ml.training.train_and_evaluate`). ``classes`` (the model card's,
    3+ of them) scores a multi-class model: ``predicted_label`` is the most
    probable class, ``probability`` its probability, and no threshold is
    taken.
    """
    classification = spec.task == Task.CLASSIFICATION
    multiclass = classification and classes is not None and len(classes) > 2
    if classification and not multiclass and threshold is None:
        raise SpecError(f"Scoring '{model_name}' for product '{spec.product}' needs a threshold (from the model card).")
    extra = dict(extra or {})
    clash = [k for k in extra if k in RESERVED or k == spec.id_column]
    if clash:
        raise SpecError(f"Extra column(s) {clash} clash with the prediction columns {[spec.id_column, *RESERVED]}.")
    features = model_features(model)
    needed = [spec.id_column, *[f for f in features if f != spec.id_column]]
    stamp = np.datetime64((scored_at or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None), "us")
    if multiclass:
        yield from _score_multiclass(model, batches, spec, list(classes or ()), model_name, model_version, extra,
                                     needed=needed, stamp=stamp, n_threads=n_threads)
        return
    cut = float(threshold) if threshold is not None else float("nan")
    final = model.steps[-1][1] if hasattr(model, "steps") else None
    has_uncertainty = final is not None and hasattr(final, "predict_uncertainty")
    schema: pa.Schema | None = None
    for batch in batches:
        _check_columns(batch.schema, needed, spec, model_name)
        if schema is None:
            schema = prediction_schema(batch.schema.field(spec.id_column), spec.task, extra)
        n = batch.num_rows
        if n == 0:
            yield pa.RecordBatch.from_pylist([], schema=schema)
            continue
        frame = batch.select(needed).to_pandas()
        columns: list[pa.Array] = [batch.column(spec.id_column)]
        with threadpool_limits(limits=n_threads):
            if classification:
                p = np.asarray(model.predict_proba(frame)[:, 1], dtype=np.float64)
            else:
                p = np.asarray(model.predict(frame), dtype=np.float64).reshape(-1)
            uncertainty = (
                np.asarray(final.predict_uncertainty(model[:-1].transform(frame), n=uncertainty_samples), dtype=np.float64)
                if has_uncertainty and classification
                else None
            )
        _check_finite(p, model_name)
        if classification:
            columns += [pa.array(p), pa.array(p >= cut)]
        else:
            columns.append(pa.array(p))
        columns += [pa.repeat(pa.scalar(model_name, pa.string()), n), pa.repeat(pa.scalar(str(model_version), pa.string()), n)]
        if classification:
            columns.append(pa.repeat(pa.scalar(cut, pa.float64()), n))
        columns.append(pa.array(np.full(n, stamp, dtype="datetime64[us]"), pa.timestamp("us")))
        columns.append(pa.array(uncertainty) if uncertainty is not None else pa.nulls(n, pa.float64()))
        for name, value in extra.items():
            columns.append(pa.repeat(pa.scalar(value, schema.field(name).type), n))
        yield pa.RecordBatch.from_arrays(columns, schema=schema)


def _class_array(classes: Sequence[Any]) -> pa.Array:
    """The classes as an arrow array: int64 for integer classes, string otherwise."""
    values = [c.item() if isinstance(c, np.generic) else c for c in classes]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.array(values, pa.int64())
    return pa.array([str(v) for v in values], pa.string())


def _score_multiclass(
    model: Any,
    batches: Iterable[pa.RecordBatch],
    spec: LearningSpec,
    classes: list[Any],
    model_name: str,
    model_version: int | str,
    extra: dict[str, Any],
    *,
    needed: list[str],
    stamp: np.datetime64,
    n_threads: int | None,
) -> Iterator[pa.RecordBatch]:
    """Multi-class scoring of :func:`score_batches` (``extra`` checked, ``needed`` columns, one ``stamp``)."""
    names = _class_array(classes)
    codes = np.asarray(getattr(model, "classes_", np.arange(len(classes)))).astype(np.int64)
    if codes.min() < 0 or codes.max() >= len(classes):
        raise SpecError(f"Model '{model_name}' predicts class codes {codes.tolist()}, but its card lists "
                        f"{len(classes)} classes {classes}; retrain it.")
    schema: pa.Schema | None = None
    for batch in batches:
        _check_columns(batch.schema, needed, spec, model_name)
        if schema is None:
            schema = prediction_schema(batch.schema.field(spec.id_column), spec.task, extra, classes=classes)
        n = batch.num_rows
        if n == 0:
            yield pa.RecordBatch.from_pylist([], schema=schema)
            continue
        frame = batch.select(needed).to_pandas()
        with threadpool_limits(limits=n_threads):
            proba = np.asarray(model.predict_proba(frame), dtype=np.float64)
        _check_finite(proba, model_name)
        best = proba.argmax(axis=1)
        columns: list[pa.Array] = [
            batch.column(spec.id_column),
            pa.array(proba[np.arange(n), best]),
            names.take(pa.array(codes[best])),
            pa.repeat(pa.scalar(model_name, pa.string()), n),
            pa.repeat(pa.scalar(str(model_version), pa.string()), n),
            pa.array(np.full(n, stamp, dtype="datetime64[us]"), pa.timestamp("us")),
            pa.nulls(n, pa.float64()),
        ]
        for name, value in extra.items():
            columns.append(pa.repeat(pa.scalar(value, schema.field(name).type), n))
        yield pa.RecordBatch.from_arrays(columns, schema=schema)


def _check_columns(schema: pa.Schema, needed: Sequence[str], spec: LearningSpec, model_name: str) -> None:
    present = set(schema.names)
    missing = [c for c in needed if c not in present]
    if not missing:
        return
    column = missing[0]
    role = "id column" if column == spec.id_column else "feature column"
    raise FeatureError(
        f"Scoring product '{spec.product}' with model '{model_name}': the batch lacks {role} '{column}'"
        + (f" (and {missing[1:]})" if len(missing) > 1 else "")
        + ", which the model was trained on." + did_you_mean(column, schema.names)
    )


def _check_finite(values: np.ndarray, model_name: str) -> None:
    if not np.isfinite(values).all():
        raise TrainingError(f"Model '{model_name}' produced {int((~np.isfinite(values)).sum())} non-finite prediction(s).")
