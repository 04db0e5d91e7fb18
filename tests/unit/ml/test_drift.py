from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.drift import drift_report, drift_status, psi_categorical, psi_numeric
from ml.errors import FeatureError

RNG = np.random.default_rng(0)
REFERENCE = RNG.normal(0, 1, 5_000)


def test_identical_distributions_have_psi_near_zero() -> None:
    assert psi_numeric(REFERENCE, REFERENCE) == pytest.approx(0.0, abs=1e-12)
    assert psi_numeric(REFERENCE, np.random.default_rng(1).normal(0, 1, 5_000)) < 0.02


def test_shifted_distribution_is_significant() -> None:
    assert psi_numeric(REFERENCE, REFERENCE + 1.0) > 0.25
    assert 0.0 < psi_numeric(REFERENCE, REFERENCE + 0.1) < 0.1


def test_psi_by_hand_for_two_categories() -> None:
    ref = ["a"] * 50 + ["b"] * 50
    cur = ["a"] * 80 + ["b"] * 20
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert psi_categorical(ref, cur) == pytest.approx(expected)


def test_values_outside_reference_range_and_nulls_count() -> None:
    constant = np.full(100, 5.0)
    assert psi_numeric(constant, np.full(100, 10.0)) > 0.25
    with_nulls = REFERENCE.copy()
    with_nulls[:2_000] = np.nan
    assert psi_numeric(REFERENCE, with_nulls) > 0.25
    assert psi_categorical(["a", "b"] * 50, ["a", "b", "c", None] * 25) > 0.25


def test_drift_report() -> None:
    reference = pd.DataFrame({"x": REFERENCE, "plan": RNG.choice(["basic", "pro"], 5_000), "flag": RNG.random(5_000) < 0.3})
    current = reference.assign(x=reference["x"] + 1.0)
    report = drift_report(reference, current, ["x", "plan", "flag"])
    assert report.worst == "x" and report.status == "significant" and report.max_psi > 0.25
    assert report.features["plan"].psi == pytest.approx(0.0) and report.features["plan"].kind == "categorical"
    assert report.features["flag"].kind == "numeric"
    assert report.drifted == ["x"]
    assert report.to_dict()["features"]["x"]["status"] == "significant"
    with pytest.raises(FeatureError, match="current sample has no column 'plan'.*Did you mean 'plam'"):
        drift_report(reference, current.rename(columns={"plan": "plam"}), ["plan"])


@pytest.mark.parametrize(("psi", "status"), [(0.0, "stable"), (0.099, "stable"), (0.1, "moderate"), (0.25, "significant")])
def test_status_thresholds(psi: float, status: str) -> None:
    assert drift_status(psi) == status


def test_drift_status_is_an_enum_with_the_old_values() -> None:
    from ml.drift import DriftStatus

    assert drift_status(0.3) is DriftStatus.SIGNIFICANT
    assert [s.value for s in DriftStatus] == ["stable", "moderate", "significant"]
    assert f"{drift_status(0.0)}" == "stable"
