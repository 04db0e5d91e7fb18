"""Time the model zoo on synthetic churn-like data.

    python -m ml.benchmark --rows 5000 --features 25 --profile full --out bench.json

Prints one line per candidate as it finishes and, at the end, a JSON summary
(total and per-candidate seconds, metrics, the best candidate).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

from ml.spec import LearningSpec, ThresholdPolicy
from ml.training import train_and_evaluate
from ml.zoo import default_zoo

__all__ = ["main", "synthetic_churn"]

_CATEGORIES = {
    "plan": ["basic", "pro", "enterprise"],
    "country_code": ["US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "CA", "AU", "BR", "IN", "JP"],
    "industry": ["software", "retail", "finance", "healthcare", "education", "manufacturing", "media", "other"],
    "acquisition_channel": ["organic", "paid_search", "partner", "sales", "referral"],
    "support_tier": ["none", "standard", "premium"],
}


def synthetic_churn(n_rows: int, n_features: int = 25, *, seed: int = 0, churn_rate: float = 0.15) -> pd.DataFrame:
    """A churn-like frame: ``customer_id``, ``churned`` (bool) and
    ``n_features`` features, five of them categorical (string dtype) and
    the rest numeric, some with nulls. Deterministic for a seed."""
    n_categorical = min(5, max(0, n_features - 2))
    n_numeric = n_features - n_categorical
    X, y = make_classification(
        n_samples=n_rows,
        n_features=n_numeric + n_categorical,
        n_informative=max(2, min(10, n_numeric // 2)),
        n_redundant=min(4, n_numeric // 4),
        weights=[1 - churn_rate],
        flip_y=0.03,
        class_sep=0.8,
        random_state=seed,
    )
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"customer_id": [f"C{i:08d}" for i in range(n_rows)]})
    for i in range(n_numeric):
        values = X[:, i].copy()
        if i % 5 == 1:
            values[rng.random(n_rows) < 0.03] = np.nan
        frame[f"feature_{i:02d}"] = values
    for j, (name, levels) in enumerate(list(_CATEGORIES.items())[:n_categorical]):
        # Informative categories: bucket a hidden informative column into the levels.
        hidden = X[:, n_numeric + j]
        ranks = np.argsort(np.argsort(hidden + rng.normal(0, 1.0, n_rows)))
        codes = (ranks * len(levels) // n_rows).clip(0, len(levels) - 1)
        frame[name] = pd.Series(np.asarray(levels, dtype=object)[codes], dtype="str")
    frame["churned"] = y.astype(bool)
    return frame


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(description="Time the model zoo on synthetic data.")
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--features", type=int, default=25)
    parser.add_argument("--profile", choices=["full", "fast"], default="full")
    parser.add_argument("--no-keras", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="cap OpenMP/BLAS threads (threadpoolctl); 0 = no cap")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", default=None, help="write the JSON summary here too")
    args = parser.parse_args(argv)
    frame = synthetic_churn(args.rows, args.features)
    spec = LearningSpec(
        "synthetic_churn", "customer_id", "churned", cv_folds=args.folds, threshold_policy=ThresholdPolicy(recall_at_least=0.8)
    )
    plan = default_zoo(spec.task, len(frame), include_keras=not args.no_keras, profile=args.profile)
    start = time.perf_counter()

    def progress(message: str) -> None:
        print(f"{time.perf_counter() - start:8.1f}s  {message}", flush=True)

    report = train_and_evaluate(frame, spec, plan, progress=progress, n_threads=args.threads or None)
    summary: dict[str, Any] = {
        "rows": args.rows,
        "features": args.features,
        "profile": args.profile,
        "threads": args.threads,
        "total_seconds": round(report.seconds, 1),
        "phases": {k: round(v, 1) for k, v in report.timings.items()},
        "best": report.best.name,
        "best_score": round(report.score, 4),
        "candidates": [
            {"candidate": r["candidate"], "status": r["status"], "seconds": r["seconds"], "roc_auc": r.get("roc_auc"), "note": r["note"]}
            for r in report.comparison
        ],
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    print(report.comparison_markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
