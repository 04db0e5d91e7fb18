"""One error tree with one root; suggestions for unknown names."""

from __future__ import annotations

import inspect

import datamesh.errors as errors
from datamesh.errors import PlatformError, did_you_mean


def test_every_platform_error_has_the_one_root() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]
    assert classes and all(issubclass(c, PlatformError) for c in classes)


def test_ml_errors_are_platform_errors() -> None:
    from ml.errors import MLError

    assert issubclass(MLError, PlatformError)


def test_did_you_mean() -> None:
    assert did_you_mean("custmers", ["customers", "invoices"]) == " Did you mean 'customers'?"
    assert did_you_mean("zzz", ["customers"]) == ""
