"""Errors raised by the ML layer.

:class:`MLError` is the ML branch of the platform's one error tree
(:class:`datamesh.errors.PlatformError`), with one subclass per kind of
problem. Messages say which product and column were wrong, what was expected
and what to do. Catch :class:`~datamesh.errors.PlatformError` for any platform
problem, :class:`MLError` or a subclass for ML ones. Suggestions for unknown
names come from :func:`datamesh.errors.did_you_mean`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datamesh.errors import PlatformError

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "FeatureError",
    "LabelError",
    "MLError",
    "RegistryError",
    "SpecError",
    "TrainingError",
    "validation_problems",
]


class MLError(PlatformError):
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


def validation_problems(exc: ValidationError) -> str:
    """A pydantic error as ``field 'a.b': what was wrong (got x); ...``, for an error message."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        text = f"field '{where}': {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid"))
        if error.get("type") != "missing":
            text += f" (got {_short(error.get('input'))})"
        problems.append(text)
    return "; ".join(problems)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
