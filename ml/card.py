"""The model card: everything known about one trained model, stored as
``card.json`` beside the model in the registry."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml.evaluation import EvaluationKey

__all__ = ["ModelCard", "code_version", "utc_now_iso"]

CARD_FORMAT = 1


def utc_now_iso() -> str:
    """The current UTC time as ISO 8601 with a ``Z``, to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def code_version(path: str | Path | None = None) -> str:
    """The git commit of the code at ``path`` (default: this package), with
    ``-dirty`` if tracked files changed; ``"unknown"`` outside a repository."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


@dataclass(frozen=True)
class ModelCard:
    """Metadata of a trained model.

    ``metrics`` are cross-validated on the folds described by
    ``evaluation`` (see :class:`~ml.evaluation.EvaluationKey`); ``threshold``
    is the decision threshold chosen by ``threshold_policy`` on those
    out-of-fold predictions; ``training_data`` maps each input product to
    the version trained on; ``params`` describes the candidate (estimator,
    parameters, preprocessing, ensemble members).
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
    extra: dict[str, Any] = field(default_factory=dict)

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
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """Inverse of :meth:`to_dict`; unknown keys go to ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        unknown = {k: v for k, v in data.items() if k not in names and k != "format"}
        if unknown:
            known["extra"] = {**dict(known.get("extra") or {}), **unknown}
        return cls(**known)

    @classmethod
    def from_json(cls, data: bytes | str) -> ModelCard:
        """Parse ``card.json``."""
        return cls.from_dict(json.loads(data))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)
