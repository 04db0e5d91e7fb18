"""Population stability index (PSI) between a reference and a current sample.

``PSI = sum((current% - reference%) * ln(current% / reference%))`` over bins.
Numeric features use quantile bins of the reference (values outside its
range fall in open-ended outer bins); categorical features use their
categories; nulls are a bin of their own. By convention PSI < 0.1 is stable,
0.1-0.25 a moderate shift and > 0.25 a significant one. Use it on features
and, with the ``probability`` column of two prediction products, on the
prediction distribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from datamesh.errors import did_you_mean
from ml.errors import FeatureError
from ml.spec import ColumnKind, column_kind

__all__ = [
    "MODERATE",
    "SIGNIFICANT",
    "DriftReport",
    "DriftStatus",
    "FeatureDrift",
    "drift_report",
    "drift_status",
    "psi_categorical",
    "psi_numeric",
]

MODERATE = 0.1
SIGNIFICANT = 0.25
_FLOOR = 1e-4  # proportion used for empty bins, so the log stays finite


class DriftStatus(StrEnum):
    """How far a distribution moved, by PSI (see :func:`drift_status`)."""

    STABLE = "stable"
    MODERATE = "moderate"
    SIGNIFICANT = "significant"


def drift_status(psi: float) -> DriftStatus:
    """``stable`` (< 0.1), ``moderate`` (0.1-0.25) or ``significant`` (>= 0.25)."""
    if psi >= SIGNIFICANT:
        return DriftStatus.SIGNIFICANT
    if psi >= MODERATE:
        return DriftStatus.MODERATE
    return DriftStatus.STABLE


def _psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    ref = np.maximum(ref_counts / max(ref_counts.sum(), 1), _FLOOR)
    cur = np.maximum(cur_counts / max(cur_counts.sum(), 1), _FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi_numeric(reference: ArrayLike, current: ArrayLike, bins: int = 10) -> float:
    """PSI of a numeric variable over ``bins`` quantile bins of ``reference``."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref_ok, cur_ok = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if ref_ok.size:
        edges = np.unique(np.quantile(ref_ok, np.linspace(0, 1, bins + 1)))
    else:
        edges = np.array([0.0])
    n_bins = len(edges) + 1
    ref_counts = np.bincount(np.searchsorted(edges, ref_ok, side="left"), minlength=n_bins).astype(float)
    cur_counts = np.bincount(np.searchsorted(edges, cur_ok, side="left"), minlength=n_bins).astype(float)
    ref_counts = np.append(ref_counts, np.isnan(ref).sum())
    cur_counts = np.append(cur_counts, np.isnan(cur).sum())
    return _psi(ref_counts, cur_counts)


def psi_categorical(reference: ArrayLike, current: ArrayLike) -> float:
    """PSI of a categorical variable over the union of categories (null is one)."""
    ref = pd.Series(np.asarray(reference, dtype=object)).astype(object).where(lambda s: s.notna(), "\0null")
    cur = pd.Series(np.asarray(current, dtype=object)).astype(object).where(lambda s: s.notna(), "\0null")
    ref, cur = ref.astype(str), cur.astype(str)
    categories = sorted(set(ref.unique()) | set(cur.unique()))
    ref_counts = ref.value_counts().reindex(categories, fill_value=0).to_numpy(dtype=float)
    cur_counts = cur.value_counts().reindex(categories, fill_value=0).to_numpy(dtype=float)
    return _psi(ref_counts, cur_counts)


@dataclass(frozen=True)
class FeatureDrift:
    """PSI of one column."""

    feature: str
    kind: ColumnKind
    psi: float
    status: DriftStatus


@dataclass(frozen=True)
class DriftReport:
    """PSI per column, the maximum and the overall status."""

    features: dict[str, FeatureDrift]
    max_psi: float
    worst: str | None
    status: DriftStatus
    n_reference: int
    n_current: int

    @property
    def drifted(self) -> list[str]:
        """Columns whose shift is at least moderate, worst first."""
        items = sorted(self.features.values(), key=lambda f: -f.psi)
        return [f.feature for f in items if f.psi >= MODERATE]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        out = asdict(self)
        out["features"] = {k: asdict(v) for k, v in self.features.items()}
        return out


def drift_report(reference_df: pd.DataFrame, current_df: pd.DataFrame, features: Sequence[str], *, bins: int = 10) -> DriftReport:
    """PSI of each of ``features`` between ``reference_df`` and ``current_df``.

    Numeric (incl. boolean) columns are binned on the reference's quantiles;
    string and categorical columns by category. Raises
    :class:`~ml.errors.FeatureError` if a column is missing or of another type.
    """
    if len(reference_df) == 0:
        raise FeatureError("Drift needs a non-empty reference sample.")
    results: dict[str, FeatureDrift] = {}
    for column in features:
        for name, frame in (("reference", reference_df), ("current", current_df)):
            if column not in frame.columns:
                raise FeatureError(
                    f"Drift: the {name} sample has no column '{column}'."
                    + did_you_mean(column, [str(c) for c in frame.columns])
                )
        kind = column_kind(reference_df[column].dtype, reference_df[column])
        if kind is ColumnKind.NUMERIC:
            psi = psi_numeric(
                reference_df[column].to_numpy(dtype="float64", na_value=np.nan),
                current_df[column].to_numpy(dtype="float64", na_value=np.nan),
                bins=bins,
            )
        elif kind is ColumnKind.CATEGORICAL:
            psi = psi_categorical(reference_df[column].to_numpy(), current_df[column].to_numpy())
        else:
            raise FeatureError(f"Drift: column '{column}' has type {reference_df[column].dtype}; expected numbers or strings.")
        results[column] = FeatureDrift(column, kind, psi, drift_status(psi))
    worst = max(results.values(), key=lambda f: f.psi) if results else None
    max_psi = worst.psi if worst else 0.0
    return DriftReport(
        features=results,
        max_psi=max_psi,
        worst=worst.feature if worst else None,
        status=drift_status(max_psi),
        n_reference=len(reference_df),
        n_current=len(current_df),
    )
