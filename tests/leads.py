"""A user's own labelled product: sales leads from a CSV, with a contract naming the label."""

from __future__ import annotations

from pathlib import Path

import numpy as np

LEADS_CONTRACT = """
apiVersion: datamesh/v1
kind: DataProduct
id: leads
name: Sales leads
domain: sales
version: 1.0.0
description:
  purpose: Inbound sales leads and whether they converted.
  grain: One row per lead.
owner:
  team: sales-ops
  contact: sales-ops@example.com
columns:
  - {name: lead_id, type: string, required: true, unique: true}
  - {name: company_size, type: int32, required: true}
  - {name: industry, type: string, required: true}
  - {name: website_visits, type: int32, required: true}
  - {name: days_since_contact, type: double}
  - {name: created_date, type: date, required: true}
  - {name: is_converted, type: boolean, required: true}
primaryKey: [lead_id]
ml:
  idColumn: lead_id
  labelColumn: is_converted
  excludeColumns: [created_date]
  primaryMetric: roc_auc
  cvFolds: 3
  thresholdPolicy: {recallAtLeast: 0.7}
  predictionsProduct: lead_scores
"""

LEAD_SCORES_CONTRACT = """
apiVersion: datamesh/v1
kind: DataProduct
id: lead_scores
name: Lead scores
domain: sales
version: 1.0.0
description:
  purpose: Conversion probability of each lead.
  grain: One row per lead per scoring run.
owner:
  team: sales-ops
  contact: sales-ops@example.com
columns:
  - {name: lead_id, type: string, required: true, unique: true}
  - {name: probability, type: double, required: true}
  - {name: predicted_label, type: boolean, required: true}
  - {name: model_name, type: string, required: true}
  - {name: model_version, type: string, required: true}
  - {name: threshold, type: double, required: true}
  - {name: scored_at, type: timestamp, required: true}
  - {name: uncertainty, type: double}
  - {name: features_version, type: int64, required: true}
primaryKey: [lead_id]
lineage:
  inputs: [leads]
"""


def write_contracts(root: Path) -> Path:
    (root / "sales").mkdir(parents=True, exist_ok=True)
    (root / "sales" / "leads.yaml").write_text(LEADS_CONTRACT)
    (root / "sales" / "lead_scores.yaml").write_text(LEAD_SCORES_CONTRACT)
    return root


def write_csv(path: Path, n: int = 400, seed: int = 0, shift: float = 0.0) -> Path:
    """Leads with a learnable, noisy conversion signal; ``shift`` moves the feature distributions."""
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 500, n) + int(shift * 400)
    visits = rng.poisson(3 + 6 * shift, n)
    days = rng.exponential(20, n) * (1 + 3 * shift)
    industry = rng.choice(["retail", "software", "finance"], n)
    logit = -1.0 + 0.25 * visits - 0.04 * days + 0.6 * (industry == "software") + rng.normal(0, 0.8, n)
    converted = rng.random(n) < 1 / (1 + np.exp(-logit))
    lines = ["lead_id,company_size,industry,website_visits,days_since_contact,created_date,is_converted"]
    for i in range(n):
        d = "" if i % 17 == 0 else f"{days[i]:.2f}"  # some missing values
        lines.append(f"L{seed}-{i:05d},{size[i]},{industry[i]},{visits[i]},{d},2026-0{1 + i % 9}-1{i % 9},"
                     f"{str(bool(converted[i])).lower()}")
    path.write_text("\n".join(lines) + "\n")
    return path
