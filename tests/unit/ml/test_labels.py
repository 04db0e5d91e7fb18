"""Bring your own labels: ``ml.positiveLabel`` for Yes/No labels and multi-class labels, trained
through ``train_product`` on a local lake and scored through ``score_product``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datamesh.contracts import ContractRegistry
from datamesh.errors import ContractError
from ml.errors import LabelError, RegistryError, SpecError
from ml.spec import LearningSpec
from tests.labels import accounts_table, subscribers_table, write_label_contracts

FAST = ["logistic_regression", "decision_tree"]


def _mesh(tmp_path: Path, **contract_options: object):  # noqa: ANN202
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    contracts = write_label_contracts(tmp_path / "contracts", **contract_options)  # type: ignore[arg-type]
    return Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=contracts))


def _published(mesh, product: str) -> pd.DataFrame:  # noqa: ANN001
    manifest = mesh.catalog.manifest(product)
    table = pq.ParquetDataset(mesh.catalog.verified_file_paths(manifest), filesystem=mesh.lake.fs).read()
    return table.to_pandas()


# -- ml.positiveLabel ----------------------------------------------------------------------------


def test_contract_accepts_positive_label_and_rejects_it_for_regression(tmp_path: Path) -> None:
    contracts = ContractRegistry.from_dir(write_label_contracts(tmp_path / "c"))
    assert contracts.get("subscribers").ml.positive_label == "Yes"
    bad = tmp_path / "bad"
    write_label_contracts(bad)
    path = bad / "growth" / "subscribers.yaml"
    path.write_text(path.read_text().replace("  labelColumn: churn\n", "  labelColumn: tenure_months\n  task: regression\n"))
    with pytest.raises(ContractError, match="positiveLabel.*remove it for task: regression"):
        ContractRegistry.from_dir(bad)


def test_yes_no_label_trains_with_the_positive_label_and_scores_it(tmp_path: Path) -> None:
    from ml.products import score_product, train_product

    mesh = _mesh(tmp_path)
    rows = subscribers_table()
    mesh.publish("subscribers", rows)
    outcome = train_product(mesh, "subscribers", candidates=FAST, include_keras=False)
    card = outcome.model_version.card
    assert card.positive_label == "Yes" and card.classes == ["No", "Yes"] and card.label_kind == "binary"
    assert 0.75 < card.metrics["roc_auc"] <= 1.0 and card.threshold is not None
    y = np.asarray(rows["churn"].to_pylist()) == "Yes"
    assert card.metrics["tp"] + card.metrics["fn"] == y.sum()  # metrics count "Yes" as the positive class
    score_product(mesh, "subscribers")
    scores = _published(mesh, "subscriber_scores").set_index("subscriber_id")
    truth = pd.Series(y, index=rows["subscriber_id"].to_pylist())
    scores = scores.join(truth.rename("is_yes"))
    # probability is P(churn = Yes): higher for the rows that did churn
    assert scores.loc[scores.is_yes, "probability"].mean() > scores.loc[~scores.is_yes, "probability"].mean() + 0.2
    assert (scores.predicted_label == (scores.probability >= card.threshold)).all()
    from orchestration.assets.ml import prediction_stats  # the scoring asset's metadata, from the published files

    stats = prediction_stats(mesh, mesh.catalog.manifest("subscriber_scores"), regression=False)
    assert stats["predicted_positive"] == int(scores.predicted_label.sum())
    assert stats["mean_probability"] == pytest.approx(scores.probability.mean(), abs=1e-12)


def test_positive_label_no_flips_the_classes(tmp_path: Path) -> None:
    from ml.training import train_and_evaluate

    frame = subscribers_table().to_pandas()
    spec = LearningSpec("subscribers", "subscriber_id", "churn", cv_folds=3)
    yes = train_and_evaluate(frame, LearningSpec(**{**spec.__dict__, "positive_label": "Yes"}), ["logistic_regression"],
                             plots="none", diagnostics=False)
    no = train_and_evaluate(frame, LearningSpec(**{**spec.__dict__, "positive_label": "No"}), ["logistic_regression"],
                            plots="none", diagnostics=False)
    assert yes.positive_label == "Yes" and no.positive_label == "No"
    assert yes.best.metrics["roc_auc"] == pytest.approx(no.best.metrics["roc_auc"], abs=0.01)
    assert yes.best.metrics["tp"] + yes.best.metrics["fn"] == (frame.churn == "Yes").sum()
    assert no.best.metrics["tp"] + no.best.metrics["fn"] == (frame.churn == "No").sum()


def test_unquoted_yaml_yes_matches_the_yes_label(tmp_path: Path) -> None:
    from ml.products import learning_spec, train_product

    mesh = _mesh(tmp_path, positive="Yes")  # YAML 1.1 reads this as true
    assert mesh.contract("subscribers").ml.positive_label is True
    mesh.publish("subscribers", subscribers_table())
    outcome = train_product(mesh, "subscribers", candidates=["logistic_regression"], include_keras=False)
    assert outcome.model_version.card.positive_label == "Yes"
    assert learning_spec(mesh.contract("subscribers")).positive_label is True


def test_positive_label_that_is_not_a_label_value_is_a_clear_error(tmp_path: Path) -> None:
    from ml.products import train_product

    mesh = _mesh(tmp_path, positive='"Churned"')
    mesh.publish("subscribers", subscribers_table())
    with pytest.raises(LabelError) as error:
        train_product(mesh, "subscribers", candidates=FAST, include_keras=False)
    text = str(error.value)
    for part in ("'subscribers'", "'Churned'", "label column 'churn'", "['No', 'Yes']", "subscribers.yaml"):
        assert part in text, text


def test_string_label_without_positive_label_asks_for_it(tmp_path: Path) -> None:
    from ml.products import train_product

    mesh = _mesh(tmp_path, positive="null")
    mesh.publish("subscribers", subscribers_table())
    with pytest.raises(LabelError, match=r"classes \['No', 'Yes'\]; say which one is positive with `ml.positiveLabel`"):
        train_product(mesh, "subscribers", candidates=FAST, include_keras=False)


def test_scoring_refuses_a_champion_trained_on_another_positive_label(tmp_path: Path) -> None:
    from ml.products import score_product, train_product

    mesh = _mesh(tmp_path)
    mesh.publish("subscribers", subscribers_table())
    train_product(mesh, "subscribers", candidates=["logistic_regression"], include_keras=False)
    path = tmp_path / "contracts" / "growth" / "subscribers.yaml"
    path.write_text(path.read_text().replace('positiveLabel: "Yes"', 'positiveLabel: "No"'))
    changed = _mesh_at(tmp_path)
    with pytest.raises(RegistryError, match="trained with positive class 'Yes'.*now says 'No'.*Retrain"):
        score_product(changed, "subscribers")
    # Removed altogether, the default (true / 1) would be meant: the champion's scores are of 'Yes', refused too.
    path.write_text(path.read_text().replace('  positiveLabel: "No"\n', ""))
    assert "positiveLabel" not in path.read_text()
    with pytest.raises(RegistryError, match="no longer sets `ml.positiveLabel`"):
        score_product(_mesh_at(tmp_path), "subscribers")


def _mesh_at(tmp_path: Path):  # noqa: ANN202
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    return Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=tmp_path / "contracts"))


def test_boolean_labels_need_no_positive_label(frame: pd.DataFrame, spec: LearningSpec) -> None:
    from ml.preparation import encode_label

    encoded = encode_label(frame["churned"], spec)
    assert encoded.positive is True and encoded.classes == (False, True) and not encoded.multiclass


# -- multi-class labels --------------------------------------------------------------------------


def test_three_plans_train_score_and_keep_the_champion(tmp_path: Path) -> None:
    from ml.products import registry, score_product, train_product

    mesh = _mesh(tmp_path)
    rows = accounts_table()
    mesh.publish("accounts", rows)
    outcome = train_product(mesh, "accounts", candidates=["logistic_regression", "random_forest"], include_keras=False)
    report, card = outcome.report, outcome.model_version.card
    assert report.spec.multiclass and report.spec.metric == "f1_macro"
    assert card.label_kind == "multiclass" and card.classes == ["basic", "enterprise", "pro"]
    assert card.primary_metric == "f1_macro" and card.threshold is None
    assert card.threshold_policy["policy"] == "argmax" and card.threshold_policy["applied"] is False
    assert any("threshold policy (recall>=0.8) is not applied" in note for note in card.notes)
    m = card.metrics
    assert 0.7 < m["f1_macro"] <= 1 and 0.7 < m["accuracy"] <= 1 and 0.85 < m["roc_auc_ovr"] <= 1
    assert 0 < m["log_loss"] < 1.0
    assert set(card.class_metrics) == {"basic", "pro", "enterprise"}
    assert sum(c["support"] for c in card.class_metrics.values()) == rows.num_rows
    assert all(0.4 < c["recall"] <= 1 for c in card.class_metrics.values())
    matrix = np.asarray(card.confusion_matrix)
    assert matrix.shape == (3, 3) and np.allclose(matrix.sum(axis=1), 1.0) and (np.diag(matrix) > 0.5).all()
    assert {"confusion_matrix.png", "comparison.png", "learning_curve.png", "feature_importance.png"} <= set(card.plots)
    assert registry(mesh).read_plot("accounts", outcome.model_version.version, "confusion_matrix.png").startswith(b"\x89PNG")
    assert [row["candidate"] for row in card.comparison] and "f1_macro" in card.comparison[0]
    assert "threshold" not in card.comparison[0] and "roc_auc" not in card.comparison[0]

    manifest = score_product(mesh, "accounts")
    assert manifest.row_count == rows.num_rows
    scored = _published(mesh, "plan_predictions").set_index("account_id")
    truth = rows.to_pandas().set_index("account_id")["plan"]
    assert set(scored.predicted_label) <= {"basic", "pro", "enterprise"}
    assert scored.probability.between(1 / 3, 1.0).all()
    assert (scored.predicted_label == truth.reindex(scored.index)).mean() > 0.8
    from orchestration.assets.ml import prediction_stats

    stats = prediction_stats(mesh, manifest, regression=False)
    assert stats["predicted_by_class"].value == scored.predicted_label.value_counts().to_dict()

    again = train_product(mesh, "accounts", candidates=["logistic_regression", "random_forest"], include_keras=False)
    assert again.decision is not None and not again.promoted and again.decision.metric == "f1_macro"
    assert "does not beat" in again.decision.reason and not again.decision.rescored
    assert again.champion is not None and again.champion.version == outcome.model_version.version


def test_integer_classes_run_the_multiclass_zoo(tmp_path: Path) -> None:
    from ml.training import train_and_evaluate
    from ml.zoo import default_zoo

    frame = accounts_table(300, seed=1).to_pandas()
    frame["plan"] = frame["plan"].map({"basic": 1, "pro": 2, "enterprise": 3})
    spec = LearningSpec("accounts", "account_id", "plan", cv_folds=3)
    names = ["logistic_regression", "linear_svc_ovr", "svc_rbf_ovo", "decision_tree", "hist_gradient_boosting",
             "soft_voting", "stacking"]
    plan = default_zoo("classification", len(frame), include_keras=False, names=names, multiclass=True)
    report = train_and_evaluate(frame, spec, plan, plots="none", diagnostics=False)
    by_name = {r.name: r for r in report.results}
    assert all(by_name[n].ok for n in names), {n: by_name[n].error for n in names}
    assert report.classes == (1, 2, 3)
    for name in names:
        assert 0.6 < by_name[name].metrics["f1_macro"] <= 1, (name, by_name[name].metrics)
        assert by_name[name].oof is not None and by_name[name].oof.shape == (len(frame), 3)
    assert np.allclose(by_name["soft_voting"].oof.sum(axis=1), 1.0)
    card = report.model_card()
    assert card.classes == [1, 2, 3] and card.label_kind == "multiclass"
    assert set(report.model.predict(frame)) <= {0, 1, 2}  # the pipeline predicts class codes; classes maps them


def test_multiclass_zoo_leaves_out_two_class_only_candidates() -> None:
    from ml.zoo import candidates, default_zoo

    binary = default_zoo("classification", 500, profile="full")
    multi = default_zoo("classification", 500, profile="full", multiclass=True)
    assert "linear_svc_ovr" not in binary.names() and "svc_rbf_ovo" not in binary.names()
    assert {"logistic_regression", "linear_svc_ovr", "svc_rbf_ovo", "decision_tree", "random_forest",
            "hist_gradient_boosting"} <= set(multi.names())
    assert not {"linear_svc", "svc_rbf", "keras_mlp", "keras_wide_deep"} & set(multi.names())
    assert default_zoo("classification", 500, profile="fast", multiclass=True).names() == [
        "logistic_regression", "decision_tree", "random_forest", "hist_gradient_boosting", "soft_voting"]
    with pytest.raises(SpecError, match="'linear_svc' is for two-class labels only"):
        candidates("classification", names=["linear_svc"], multiclass=True)


def test_multiclass_with_a_binary_primary_metric_is_a_clear_error(tmp_path: Path) -> None:
    from ml.training import train_and_evaluate

    frame = accounts_table(200).to_pandas()
    spec = LearningSpec("accounts", "account_id", "plan", primary_metric="pr_auc", cv_folds=3)
    with pytest.raises(SpecError, match=r"'pr_auc'.*3 or more classes; use one of \['accuracy', 'f1_macro'"):
        train_and_evaluate(frame, spec, ["logistic_regression"], plots="none", diagnostics=False)
    ovr = LearningSpec("accounts", "account_id", "plan", primary_metric="macro_roc_auc", cv_folds=3)
    report = train_and_evaluate(frame, ovr, ["logistic_regression"], plots="none", diagnostics=False)
    assert report.spec.metric == "roc_auc_ovr" and report.score > 0.85
    binary = subscribers_table(200).to_pandas()
    wrong = LearningSpec("subscribers", "subscriber_id", "churn", positive_label="Yes", primary_metric="f1_macro",
                         cv_folds=3)
    with pytest.raises(SpecError, match="'f1_macro'.*for labels of 3 or more classes.*has two"):
        train_and_evaluate(binary, wrong, ["logistic_regression"], plots="none", diagnostics=False)


# -- labels that cannot be learnt ----------------------------------------------------------------


def test_a_single_class_label_is_a_clear_error(tmp_path: Path) -> None:
    from ml.products import train_product

    mesh = _mesh(tmp_path)
    rows = accounts_table(60)
    mesh.publish("accounts", rows.set_column(5, "plan", pa.array(["pro"] * 60)))
    with pytest.raises(LabelError) as error:
        train_product(mesh, "accounts", candidates=FAST, include_keras=False)
    text = str(error.value)
    for part in ("'accounts'", "label column 'plan'", "single class ('pro')", "{'pro': 60}", "at least two classes"):
        assert part in text, text


def test_a_class_with_fewer_rows_than_folds_is_a_clear_error(tmp_path: Path) -> None:
    from ml.products import train_product

    mesh = _mesh(tmp_path, folds=5)
    n = 120
    plan = np.asarray(["basic", "pro"] * (n // 2), dtype=object)
    plan[[7, 40, 90]] = "enterprise"
    mesh.publish("accounts", accounts_table(n, plan=plan))
    with pytest.raises(LabelError) as error:
        train_product(mesh, "accounts", candidates=FAST, include_keras=False)
    text = str(error.value)
    for part in ("'accounts'", "label 'plan'", "only 3 row(s) of class 'enterprise'", "5-fold",
                 "'enterprise': 3", "`ml.cvFolds`", "accounts.yaml", "merge rare classes"):
        assert part in text, text


def test_positive_label_on_a_multiclass_label_is_a_clear_error() -> None:
    from ml.preparation import prepare_training_data

    frame = accounts_table(90).to_pandas()
    spec = LearningSpec("accounts", "account_id", "plan", positive_label="pro", cv_folds=3)
    with pytest.raises(LabelError, match="positiveLabel.*'pro'.*has 3 classes.*Remove `ml.positiveLabel`"):
        prepare_training_data(frame, spec)


def test_drift_on_the_training_version_reads_it_once_and_predicts_nothing(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The champion's training version is the latest: drift reads it once and neither loads nor runs
    the model (the reference and current samples are the same rows), and nothing moved."""
    import ml.products as products

    mesh = _mesh(tmp_path)
    mesh.publish("accounts", accounts_table())
    products.train_product(mesh, "accounts", candidates=["logistic_regression"], include_keras=False)
    reads: list[int | None] = []
    real = products.load_frame

    def counting(m: object, product: str, version: int | None = None) -> object:
        reads.append(version)
        return real(m, product, version)  # type: ignore[arg-type]

    monkeypatch.setattr(products, "load_frame", counting)
    loaded: list[int] = []
    monkeypatch.setattr(products.ModelRegistry, "load", lambda self, name, version: loaded.append(version))
    report = products.drift_against_champion(mesh, "accounts")
    assert report is not None and reads == [None] and loaded == []
    assert report.reference_version == report.current_version
    assert report.max_psi == 0.0 and report.predictions_psi == 0.0


def test_drift_on_a_new_version_predicts_both_and_finds_the_shift(tmp_path: Path) -> None:
    """New data under the same champion: both versions are scored, and a shifted population shows."""
    import numpy as np
    import pyarrow.compute as pc

    import ml.products as products
    from ml.drift import psi_numeric

    mesh = _mesh(tmp_path)
    mesh.publish("accounts", accounts_table())
    products.train_product(mesh, "accounts", candidates=["logistic_regression"], include_keras=False)
    later = accounts_table(seed=1)
    shifted = later.set_column(later.schema.get_field_index("api_calls_k"), "api_calls_k",
                               pc.multiply(later.column("api_calls_k"), 5.0))
    mesh.publish("accounts", shifted)
    report = products.drift_against_champion(mesh, "accounts")
    assert report is not None and report.current_version == report.reference_version + 1
    assert report.predictions_psi is not None and report.predictions_psi > 0
    # a distribution against itself: what the shortcut on the training version stands for
    same = np.random.default_rng(0).random(5000)
    assert psi_numeric(same, same) == 0.0
