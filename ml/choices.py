"""Fixed choices of the ML layer (zoo profile, task), in a light module without scikit-learn, so
the Dagster code location and the CLI can name them without importing the zoo."""

from __future__ import annotations

from enum import StrEnum

from datamesh.errors import did_you_mean
from ml.errors import SpecError

__all__ = ["DEFAULT_PROFILE", "Profile", "Task", "profile_named"]


class Profile(StrEnum):
    """Which part of the zoo :func:`default_zoo` runs.

    * ``full``: every candidate (large data: subsampled or skipped, see
      :func:`default_zoo`);
    * ``fast``: a small, quick set (no SVC, no Keras, no stacking).
    """

    FULL = "full"
    FAST = "fast"


DEFAULT_PROFILE = Profile.FULL
"""The profile used when none is given."""


def profile_named(name: Profile | str) -> Profile:
    """The :class:`Profile` called ``name`` (``"fast"``, ``"full"``); a clear error otherwise."""
    try:
        return Profile(name)
    except ValueError:
        choices = [p.value for p in Profile]
        expected = " or ".join(f"'{c}'" for c in choices)
        raise SpecError(f"Unknown zoo profile '{name}'; expected {expected}." + did_you_mean(str(name), choices)) from None


class Task(StrEnum):
    """What is predicted: a binary class or a number.

    The members are the values a contract's ``ml.task`` accepts
    (``MLSection.task``); ``Task(contract.ml.task)`` converts one.
    """

    CLASSIFICATION = "classification"
    REGRESSION = "regression"
