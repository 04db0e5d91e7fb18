"""The champion rule: does the best new candidate replace the current champion?

The new model must beat the champion's primary metric by at least
``margin``, and both scores must come from the same folds over the same data
(see docs/decisions/0032-champion-comparability.md). When the champion was
scored on other data, its candidate configuration is refit on the new folds
first (:func:`ml.training.rescore_champion`) and that score is compared.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ml.card import ModelCard
from ml.errors import TrainingError
from ml.evaluation import CandidateResult
from ml.metrics import gain, metric_info

__all__ = ["Decision", "decide_champion"]

_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Decision:
    """Whether to promote, why, and the numbers behind it."""

    promote: bool
    reason: str
    metric: str
    candidate: str
    candidate_score: float
    champion_score: float | None = None
    margin: float = 0.0
    rescored: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def decide_champion(
    best: CandidateResult,
    current: ModelCard | None,
    margin: float,
    *,
    metric: str | None = None,
    rescored_current: CandidateResult | None = None,
) -> Decision:
    """Promote ``best`` only if it beats ``current`` by at least ``margin``.

    ``metric`` defaults to the champion's primary metric. The comparison is
    made on the same folds: against ``rescored_current`` (the champion's
    configuration refit on ``best``'s folds) when given, otherwise against
    the champion card's own score, which requires the card's evaluation key
    to equal ``best.key``; if it does not, :class:`TrainingError` asks for a
    re-score. With no champion, ``best`` is promoted; if the champion could
    not be re-scored (its candidate failed on the new data), ``best`` is
    promoted and the reason says so.
    """
    if not best.ok:
        raise TrainingError(f"Candidate '{best.name}' was not scored ({best.status}); it cannot become champion.")
    metric = metric or (current.primary_metric if current is not None else None)
    if metric is None:
        metric = "roc_auc" if "roc_auc" in best.metrics else "rmse"
    metric = metric_info(metric).name
    score = best.score(metric)
    if current is None:
        return Decision(True, "no current champion", metric, best.name, score, None, margin)
    if rescored_current is not None:
        if rescored_current.key != best.key:
            raise TrainingError(
                f"The re-scored champion '{rescored_current.name}' was evaluated on other folds or data than "
                f"'{best.name}'; re-score it with the same folds."
            )
        if not rescored_current.ok:
            return Decision(
                True,
                f"current champion '{current.candidate}' could not be re-scored on the new data "
                f"({rescored_current.error}); promoting '{best.name}'",
                metric,
                best.name,
                score,
                None,
                margin,
                rescored=True,
            )
        champion_score = rescored_current.score(metric)
        rescored = True
    else:
        if best.key is None or current.evaluation_key != best.key:
            raise TrainingError(
                f"Champion '{current.model_name}' ({current.candidate}) was scored on other folds or data "
                f"(training data {current.training_data}, {current.evaluation.get('n_rows')} rows) than "
                f"'{best.name}'; re-score it on the same folds with ml.training.rescore_champion and pass "
                "it as rescored_current."
            )
        if metric not in current.metrics:
            raise TrainingError(f"Champion '{current.model_name}' has no '{metric}' score in its card.")
        champion_score = float(current.metrics[metric])
        rescored = False
    improvement = gain(score, champion_score, metric)
    direction = "higher" if metric_info(metric).greater_is_better else "lower"
    if improvement >= margin - _TOLERANCE:
        reason = (
            f"'{best.name}' {metric} {score:.4f} beats champion '{current.candidate}' {champion_score:.4f} "
            f"by {improvement:.4f} ({direction} is better; margin {margin})"
        )
        return Decision(True, reason, metric, best.name, score, champion_score, margin, rescored)
    reason = (
        f"'{best.name}' {metric} {score:.4f} does not beat champion '{current.candidate}' {champion_score:.4f} "
        f"by the margin {margin} (improvement {improvement:.4f}; {direction} is better)"
    )
    return Decision(False, reason, metric, best.name, score, champion_score, margin, rescored)
