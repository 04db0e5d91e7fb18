"""The predictions product's contract, drafted for a labelled product that `mesh contract infer --label`
drafted: its columns are exactly what scoring writes (:func:`ml.scoring.prediction_schema`), so the
scores of the champion publish under it unchanged."""

from __future__ import annotations

import pyarrow as pa

from datamesh.infer import Draft, yaml_scalar
from datamesh.types import ColumnType
from ml.scoring import prediction_schema

_MEANING = {
    "probability": "Probability of the positive class (of the predicted class, for a multi-class label).",
    "predicted_label": "The predicted class.",
    "prediction": "The predicted value.",
    "model_name": "The model (product/candidate) that scored the row.",
    "model_version": "Registry version of that model.",
    "threshold": "Decision threshold of the model: predicted_label is probability >= threshold.",
    "scored_at": "When the row was scored (UTC).",
    "uncertainty": "Spread of the prediction where the model has one (Keras MC dropout), else null.",
    "features_version": "Version of the labelled product the row was scored from.",
}


def predictions_contract_yaml(draft: Draft, predictions_id: str) -> str:
    """The contract of ``predictions_id``, the product the champion on ``draft``'s product publishes."""
    if not draft.ml or draft.primary_key is None:
        raise ValueError("a predictions contract needs a draft with an ml block and an id column")
    id_column = next(c for c in draft.columns if c.name == draft.primary_key)
    task = draft.ml["task"][0]
    classes = draft.classes if draft.classes is not None and len(draft.classes) > 2 else None
    schema = prediction_schema(pa.field(id_column.name, id_column.type.arrow, False), task,
                               {"features_version": 1}, classes=classes)
    lines = [
        f"# Drafted by `mesh contract infer --label` for the scores of {draft.product_id}: the columns are what",
        "# scoring writes. Check the description, then remove 'status: draft'.",
        "apiVersion: datamesh/v1",
        "kind: DataProduct",
        f"id: {predictions_id}",
        f"name: {yaml_scalar(predictions_id.replace('_', ' ').title())}",
        f"domain: {draft.domain}",
        "version: 0.1.0",
        "status: draft",
        "description:",
        f"  purpose: {yaml_scalar(f'Scores of the champion model trained on {draft.product_id}.')}",
        f"  grain: {yaml_scalar(f'One row per {draft.primary_key} per scoring run.')}",
        "owner:",
        f"  team: {yaml_scalar(draft.owner_team)}",
        f"  contact: {yaml_scalar(draft.owner_team + '@example.com')}",
        "columns:",
    ]
    for field in schema:
        kind = ColumnType.from_arrow(field.type)
        lines += [f"  - name: {field.name}", f"    type: {yaml_scalar(kind.value)}"]
        if not field.nullable or field.name == "features_version":
            lines.append("    required: true")
        if field.name == draft.primary_key:
            lines.append("    unique: true")
        lines.append(f"    description: {yaml_scalar(_MEANING.get(field.name, f'The {field.name} of the scored row.'))}")
    lines += [f"primaryKey: [{draft.primary_key}]", "lineage:", f"  inputs: [{draft.product_id}]"]
    return "\n".join(lines) + "\n"
