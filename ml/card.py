"""The model card: everything known about one trained model, stored as
``card.json`` beside the model in the registry.

A card read back is validated field by field (pydantic); a corrupt one
raises :class:`~ml.errors.RegistryError` naming the file, never a bare
``KeyError`` or ``TypeError``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ml.errors import RegistryError, validation_problems


@dataclass(frozen=True)
class EvaluationKey:
    """What makes two cross-validated scores comparable: the same task and
    label, the same folds (count and seed) over the same rows (fingerprint of
    features and label) and the same training product versions."""

    task: str
    label_column: str
    cv_folds: int
    fold_seed: int
    n_rows: int
    data_fingerprint: str
    training_data: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "task": self.task,
            "label_column": self.label_column,
            "cv_folds": self.cv_folds,
            "fold_seed": self.fold_seed,
            "n_rows": self.n_rows,
            "data_fingerprint": self.data_fingerprint,
            "training_data": dict(self.training_data),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationKey:
        """Inverse of :meth:`to_dict`."""
        return cls(
            task=str(data["task"]),
            label_column=str(data["label_column"]),
            cv_folds=int(data["cv_folds"]),
            fold_seed=int(data["fold_seed"]),
            n_rows=int(data["n_rows"]),
            data_fingerprint=str(data["data_fingerprint"]),
            training_data=tuple(sorted((str(k), str(v)) for k, v in dict(data.get("training_data", {})).items())),
        )


__all__ = ["ModelCard", "utc_now_iso"]

CARD_FORMAT = 1


def utc_now_iso() -> str:
    """The current UTC time as ISO 8601 with a ``Z``, to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ModelCard:
    """Metadata of a trained model.

    ``metrics`` are cross-validated on the folds described by
    ``evaluation`` (see :class:`EvaluationKey`); ``threshold``
    is the decision threshold chosen by ``threshold_policy`` on those
    out-of-fold predictions; ``training_data`` maps each input product to
    the version trained on; ``params`` describes the candidate (estimator,
    parameters, preprocessing, ensemble members). ``label_kind`` is
    ``binary``, ``multiclass`` or ``regression`` (None on cards written
    before it existed); ``classes`` the label's values in the order of the
    model's probability columns. A multi-class card has no threshold; its
    ``class_metrics`` hold each class's out-of-fold precision, recall, F1
    and support and ``confusion_matrix`` the row-normalised confusion matrix
    (rows actual, columns predicted, in ``classes`` order).
    """

    model_name: str
    product: str
    task: str
    candidate: str
    family: str
    params: dict[str, Any]
    metrics: dict[str, float]
    primary_metric: str
    threshold: float | None
    threshold_policy: dict[str, Any]
    training_data: dict[str, str]
    id_column: str
    label_column: str
    positive_label: Any
    feature_columns: list[str]
    feature_dtypes: dict[str, str]
    numeric_features: list[str]
    categorical_features: list[str]
    evaluation: dict[str, Any]
    code_version: str
    seed: int
    cv_folds: int
    n_training_rows: int
    created_at: str = field(default_factory=utc_now_iso)
    plots: list[str] = field(default_factory=list)
    comparison: list[dict[str, Any]] = field(default_factory=list)
    learning_curve: dict[str, Any] | None = None
    feature_importance: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    label_kind: str | None = None
    classes: list[Any] = field(default_factory=list)
    class_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion_matrix: list[list[float]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def multiclass(self) -> bool:
        """True for a model of a label with 3+ classes (predicted class = argmax, no threshold)."""
        return self.label_kind == "multiclass"

    @property
    def evaluation_key(self) -> EvaluationKey:
        """The folds and data the metrics were computed on."""
        return EvaluationKey.from_dict(self.evaluation)

    @property
    def score(self) -> float:
        """The cross-validated primary metric."""
        return float(self.metrics[self.primary_metric])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (with a ``format`` number)."""
        return {"format": CARD_FORMAT, **dataclasses.asdict(self)}

    def to_json(self) -> bytes:
        """UTF-8 JSON, indented, keys in declaration order."""
        return json.dumps(self.to_dict(), indent=2, default=_json_default).encode()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "the model card") -> ModelCard:
        """Inverse of :meth:`to_dict`, validated; unknown keys go to ``extra``.

        Raises :class:`~ml.errors.RegistryError` naming ``source`` (the file)
        when a field is missing or of the wrong type.
        """
        if not isinstance(data, Mapping):
            raise _corrupt(source, f"expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        unknown = {k: v for k, v in data.items() if k not in names and k != "format"}
        if unknown:
            extra = known.get("extra") or {}
            if not isinstance(extra, Mapping):
                raise _corrupt(source, f"field 'extra': expected an object, got {type(extra).__name__}")
            known["extra"] = {**extra, **unknown}
        try:
            return _card_adapter().validate_python(known)
        except ValidationError as exc:
            raise _corrupt(source, validation_problems(exc)) from None

    @classmethod
    def from_json(cls, data: bytes | str, *, source: str = "the model card") -> ModelCard:
        """Parse and validate ``card.json`` (``source`` names the file in errors)."""
        try:
            parsed = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _corrupt(source, f"not valid JSON ({exc})") from None
        return cls.from_dict(parsed, source=source)


@cache
def _card_adapter() -> TypeAdapter[ModelCard]:
    return TypeAdapter(ModelCard)


def _corrupt(source: str, problem: str) -> RegistryError:
    return RegistryError(
        f"Model card {source} is corrupt: {problem}. The model version it belongs to cannot be used: "
        "restore the file from a copy, or train and register the model again (`mesh train <product>`)."
    )


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)
