from __future__ import annotations

import pytest

import ml.errors
from datamesh.errors import PlatformError
from ml.errors import FeatureError, LabelError, MLError, RegistryError, SpecError, TrainingError


@pytest.mark.parametrize("error", [MLError, SpecError, LabelError, FeatureError, TrainingError, RegistryError])
def test_ml_errors_are_platform_errors(error: type[Exception]) -> None:
    assert issubclass(error, MLError) and issubclass(error, PlatformError)


def test_ml_has_no_suggestion_helper_of_its_own() -> None:
    assert not hasattr(ml.errors, "did_you_mean")
