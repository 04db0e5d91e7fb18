"""Errors raised by the ML layer.

One root, :class:`MLError`, with one subclass per kind of problem. Messages say
which product and column were wrong, what was expected and what to do. The
root is meant to be re-parented under the platform's root error later; code
that catches ML problems should catch :class:`MLError` or a subclass.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "FeatureError",
    "LabelError",
    "MLError",
    "RegistryError",
    "SpecError",
    "TrainingError",
    "did_you_mean",
]


class MLError(Exception):
    """Root of every error raised by ``ml``."""


class SpecError(MLError):
    """A learning spec (the ``ml:`` block of a contract) is invalid."""


class LabelError(MLError):
    """The label column is missing, null, single-class or otherwise unusable."""


class FeatureError(MLError):
    """A feature column is missing, of an unsupported type or holds bad values."""


class TrainingError(MLError):
    """A candidate model could not be trained (diverged, crashed, produced NaN)."""


class RegistryError(MLError):
    """The model registry could not read or write a model version."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""``."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{matches[0]}'?" if matches else ""
