from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from ml.errors import FeatureError, SpecError
from ml.unsupervised import anomaly_scores, detect_anomalies, segment
from tests.lead_segments import write_unsupervised_contracts
from tests.leads import write_csv


@pytest.fixture
def blobs() -> pd.DataFrame:
    X, _ = make_blobs(600, 3, centers=[[0, 0, 0], [8, 0, 0], [0, 8, 0]], cluster_std=1.0, random_state=0)
    return pd.DataFrame(X, columns=["spend", "tenure", "tickets"]).assign(plan="basic")


def test_segments_choose_true_k(blobs: pd.DataFrame) -> None:
    result = segment(blobs, ["spend", "tenure", "tickets"], k_range=range(2, 6))
    assert result.k == 3
    assert max(result.silhouette, key=result.silhouette.get) == 3
    assert sorted(result.sizes.values()) == [200, 200, 200]
    assert len(result.labels) == 600 and list(result.profile.columns) == ["spend", "tenure", "tickets"]
    assert result.scatter_png.startswith(b"\x89PNG")
    assert (result.model.predict(blobs) == result.labels).all()


def test_segments_reject_text_columns(blobs: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match="'plan' has type"):
        segment(blobs, ["spend", "plan"])


def test_anomalies_flag_outlier(blobs: pd.DataFrame) -> None:
    blobs.loc[5, ["spend", "tenure", "tickets"]] = [40.0, -40.0, 40.0]
    result = detect_anomalies(blobs, ["spend", "tenure", "tickets"], percentile=1.0)
    assert result.flags[5]
    assert result.flags.sum() == pytest.approx(6, abs=1)
    assert int(np.argmin(result.scores)) == 5
    assert np.allclose(anomaly_scores(result.model, blobs), result.scores)
    assert result.n_components in result.bic


# -- products declared in the source contract's `ml` block -----------------------------


def _mesh(tmp_path: Path, sections: str | None = None):  # noqa: ANN202
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    root = tmp_path / "contracts"
    contracts = write_unsupervised_contracts(root) if sections is None else write_unsupervised_contracts(root, sections)
    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=contracts))
    mesh.publish_file("leads", write_csv(tmp_path / "v1.csv", n=600))
    return mesh


def test_segments_product_is_the_one_the_source_contract_names(tmp_path: Path) -> None:
    from ml.products import load_frame, segment_product

    mesh = _mesh(tmp_path)
    manifest, result = segment_product(mesh, "leads", seed=0)
    assert (manifest.product, manifest.inputs) == ("lead_segments", {"leads": 1})
    # Numeric features of the ml block: not the id, the label (is_converted) or the excluded created_date.
    assert manifest.metadata["features"] == ["company_size", "website_visits", "days_since_contact"]
    assert manifest.metadata["k"] == result.k
    frame, _ = load_frame(mesh, "lead_segments")
    assert len(frame) == 600 and set(frame["segment"]) == set(range(result.k))
    assert (frame["segment_count"] == result.k).all() and frame["features_version"].eq(1).all()


def test_anomalies_product_uses_the_declared_percentile(tmp_path: Path) -> None:
    from ml.products import anomalies_product, load_frame

    mesh = _mesh(tmp_path)
    manifest, result = anomalies_product(mesh, "leads", seed=0)
    assert (manifest.product, manifest.metadata["percentile"]) == ("lead_anomalies", 2.0)
    frame, _ = load_frame(mesh, "lead_anomalies")
    assert int(frame["is_anomalous"].sum()) == int(result.flags.sum()) == pytest.approx(12, abs=2)
    assert (frame["is_anomalous"] == (frame["log_likelihood"] < frame["threshold"])).all()


def test_declared_feature_columns_are_used_as_given(tmp_path: Path) -> None:
    from ml.products import segment_product

    mesh = _mesh(tmp_path, "  segments: {product: lead_segments, featureColumns: [website_visits, company_size]}\n")
    manifest, _ = segment_product(mesh, "leads", seed=0)
    assert manifest.metadata["features"] == ["website_visits", "company_size"]


def test_excluded_columns_leave_the_features(tmp_path: Path) -> None:
    from ml.products import anomalies_product

    mesh = _mesh(tmp_path, "  anomalies: {product: lead_anomalies, excludeColumns: [days_since_contact]}\n")
    manifest, _ = anomalies_product(mesh, "leads", seed=0)
    assert manifest.metadata["features"] == ["company_size", "website_visits"]
    assert manifest.metadata["percentile"] == 1.0


def test_a_product_without_the_section_says_how_to_declare_it(tmp_path: Path) -> None:
    from ml.products import anomalies_product, segment_product

    mesh = _mesh(tmp_path, "  anomalies: {product: lead_anomalies}\n")
    with pytest.raises(SpecError, match=r"'leads' declares no `ml.segments`: add e.g. `segments: \{product:"):
        segment_product(mesh, "leads")
    assert anomalies_product(mesh, "leads")[0].product == "lead_anomalies"
