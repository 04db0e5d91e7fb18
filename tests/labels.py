"""A user's own labelled products with labels that are not booleans: a churn table labelled
``Yes``/``No`` (``ml.positiveLabel``) and a customer table whose plan (``basic``/``pro``/``enterprise``)
is the label of a multi-class model, with the contracts of their predictions products."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

_OWNER = """
owner:
  team: growth
  contact: growth@example.com
"""

SUBSCRIBERS_CONTRACT = """
apiVersion: datamesh/v1
kind: DataProduct
id: subscribers
name: Subscribers
domain: growth
version: 1.0.0
description:
  purpose: Subscribers and whether they cancelled (Yes/No, as exported by the billing tool).
  grain: One row per subscriber.
""" + _OWNER + """
columns:
  - {name: subscriber_id, type: string, required: true, unique: true}
  - {name: tenure_months, type: int32, required: true}
  - {name: monthly_charges, type: double, required: true}
  - {name: support_calls, type: int32, required: true}
  - {name: contract_type, type: string, required: true}
  - {name: churn, type: string, required: true}
primaryKey: [subscriber_id]
ml:
  idColumn: subscriber_id
  labelColumn: churn
  positiveLabel: {positive}
  cvFolds: 3
  predictionsProduct: subscriber_scores
"""

SUBSCRIBER_SCORES_CONTRACT = """
apiVersion: datamesh/v1
kind: DataProduct
id: subscriber_scores
name: Subscriber churn scores
domain: growth
version: 1.0.0
description:
  purpose: Probability that each subscriber churns (churn = Yes).
  grain: One row per subscriber per scoring run.
""" + _OWNER + """
columns:
  - {name: subscriber_id, type: string, required: true, unique: true}
  - {name: probability, type: double, required: true}
  - {name: predicted_label, type: boolean, required: true}
  - {name: model_name, type: string, required: true}
  - {name: model_version, type: string, required: true}
  - {name: threshold, type: double, required: true}
  - {name: scored_at, type: timestamp, required: true}
  - {name: uncertainty, type: double}
  - {name: features_version, type: int64, required: true}
primaryKey: [subscriber_id]
lineage:
  inputs: [subscribers]
"""

ACCOUNTS_CONTRACT = """
apiVersion: datamesh/v1
kind: DataProduct
id: accounts
name: Accounts
domain: growth
version: 1.0.0
description:
  purpose: Accounts with their usage and the plan they are on.
  grain: One row per account.
""" + _OWNER + """
columns:
  - {name: account_id, type: string, required: true, unique: true}
  - {name: seats, type: int32, required: true}
  - {name: api_calls_k, type: double, required: true}
  - {name: storage_gb, type: double}
  - {name: region, type: string, required: true}
  - {name: plan, type: string, required: true}
primaryKey: [account_id]
ml:
  idColumn: account_id
  labelColumn: plan
  cvFolds: {folds}
  thresholdPolicy: {recallAtLeast: 0.8}
  predictionsProduct: plan_predictions
"""

PLAN_PREDICTIONS_CONTRACT = """
apiVersion: datamesh/v1
kind: DataProduct
id: plan_predictions
name: Predicted plan
domain: growth
version: 1.0.0
description:
  purpose: The plan each account most likely belongs on, and how sure the model is.
  grain: One row per account per scoring run.
""" + _OWNER + """
columns:
  - {name: account_id, type: string, required: true, unique: true}
  - {name: probability, type: double, required: true}
  - {name: predicted_label, type: string, required: true}
  - {name: model_name, type: string, required: true}
  - {name: model_version, type: string, required: true}
  - {name: scored_at, type: timestamp, required: true}
  - {name: uncertainty, type: double}
  - {name: features_version, type: int64, required: true}
primaryKey: [account_id]
lineage:
  inputs: [accounts]
"""


def write_label_contracts(root: Path, *, positive: str = '"Yes"', folds: int = 3) -> Path:
    """The four contracts under ``root/growth``; ``positive`` is the YAML text of ``positiveLabel``."""
    (root / "growth").mkdir(parents=True, exist_ok=True)
    (root / "growth" / "subscribers.yaml").write_text(SUBSCRIBERS_CONTRACT.replace("{positive}", positive))
    (root / "growth" / "subscriber_scores.yaml").write_text(SUBSCRIBER_SCORES_CONTRACT)
    (root / "growth" / "accounts.yaml").write_text(ACCOUNTS_CONTRACT.replace("{folds}", str(folds)))
    (root / "growth" / "plan_predictions.yaml").write_text(PLAN_PREDICTIONS_CONTRACT)
    return root


def subscribers_table(n: int = 400, seed: int = 0) -> pa.Table:
    """Churn-like rows: short tenure, high charges, many support calls and monthly contracts churn."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    charges = rng.uniform(20, 120, n)
    calls = rng.poisson(2, n)
    contract = rng.choice(["month-to-month", "one year", "two year"], n, p=[0.5, 0.3, 0.2])
    logit = (1.0 - 0.06 * tenure + 0.02 * (charges - 70) + 0.5 * calls
             + 1.0 * (contract == "month-to-month") - 1.0 * (contract == "two year") + rng.normal(0, 0.7, n))
    churn = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "Yes", "No")
    return pa.table({
        "subscriber_id": pa.array([f"S{seed}-{i:05d}" for i in range(n)]),
        "tenure_months": pa.array(tenure, pa.int32()),
        "monthly_charges": pa.array(charges),
        "support_calls": pa.array(calls, pa.int32()),
        "contract_type": pa.array(contract),
        "churn": pa.array(churn),
    })


def accounts_table(n: int = 450, seed: int = 0, *, plan: np.ndarray | None = None) -> pa.Table:
    """Accounts whose plan follows from seats and API usage (with some noise), so a model can learn it."""
    rng = np.random.default_rng(seed)
    tier = rng.choice([0, 1, 2], n, p=[0.45, 0.35, 0.20])
    seats = np.maximum(1, np.round(rng.lognormal(np.log([3, 15, 80])[tier], 0.5))).astype(np.int32)
    api = rng.gamma(2.0, np.asarray([5.0, 40.0, 200.0])[tier])
    storage = rng.gamma(2.0, np.asarray([2.0, 20.0, 100.0])[tier])
    storage_list: list[float | None] = [None if i % 23 == 0 else float(v) for i, v in enumerate(storage)]
    region = rng.choice(["eu", "us", "apac"], n)
    noisy = np.where(rng.random(n) < 0.08, rng.integers(0, 3, n), tier)
    names = np.asarray(["basic", "pro", "enterprise"])
    return pa.table({
        "account_id": pa.array([f"A{seed}-{i:05d}" for i in range(n)]),
        "seats": pa.array(seats, pa.int32()),
        "api_calls_k": pa.array(api),
        "storage_gb": pa.array(storage_list, pa.float64()),
        "region": pa.array(region),
        "plan": pa.array(names[noisy] if plan is None else plan),
    })
