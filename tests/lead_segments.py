"""The user's leads product (tests/leads.py) plus segment and anomaly products declared in its contract."""

from __future__ import annotations

from pathlib import Path

from tests.leads import LEADS_CONTRACT, write_contracts

LEADS_UNSUPERVISED = """\
  segments: {product: lead_segments}
  anomalies: {product: lead_anomalies, percentile: 2.0}
"""

LEAD_SEGMENTS_CONTRACT = """
apiVersion: datamesh/v1
kind: DataProduct
id: lead_segments
name: Lead segments
domain: sales
version: 1.0.0
description: {purpose: K-means segments of leads., grain: One row per lead per run.}
owner: {team: sales-ops, contact: sales-ops@example.com}
columns:
  - {name: lead_id, type: string, required: true, unique: true}
  - {name: segment, type: int32, required: true}
  - {name: segment_count, type: int32, required: true}
  - {name: silhouette_score, type: double, required: true}
  - {name: segmented_at, type: timestamp, required: true}
  - {name: features_version, type: int64, required: true}
primaryKey: [lead_id]
lineage: {inputs: [leads]}
"""

LEAD_ANOMALIES_CONTRACT = """
apiVersion: datamesh/v1
kind: DataProduct
id: lead_anomalies
name: Lead anomalies
domain: sales
version: 1.0.0
description: {purpose: Unusual leads., grain: One row per lead per run.}
owner: {team: sales-ops, contact: sales-ops@example.com}
columns:
  - {name: lead_id, type: string, required: true, unique: true}
  - {name: log_likelihood, type: double, required: true}
  - {name: is_anomalous, type: boolean, required: true}
  - {name: threshold, type: double, required: true}
  - {name: mixture_components, type: int32, required: true}
  - {name: scored_at, type: timestamp, required: true}
  - {name: features_version, type: int64, required: true}
primaryKey: [lead_id]
lineage: {inputs: [leads]}
"""


def write_unsupervised_contracts(root: Path, sections: str = LEADS_UNSUPERVISED) -> Path:
    """tests/leads.py's contracts, the leads ``ml`` block extended by ``sections``, and their outputs."""
    write_contracts(root)
    (root / "sales" / "leads.yaml").write_text(LEADS_CONTRACT.rstrip("\n") + "\n" + sections)
    (root / "sales" / "lead_segments.yaml").write_text(LEAD_SEGMENTS_CONTRACT)
    (root / "sales" / "lead_anomalies.yaml").write_text(LEAD_ANOMALIES_CONTRACT)
    return root
