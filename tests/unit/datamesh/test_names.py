from __future__ import annotations

import pytest

from datamesh.errors import InvalidNameError
from datamesh.names import quote_ident, validate_name


@pytest.mark.parametrize("name", ["customers", "a", "churn_features_2", "x" * 63])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "Customers", "1abc", "../etc", "a/b", "a b", "a;drop", 'a"b', "a'b", "x" * 64, "a__v1", "_x", None, 3],
)
def test_invalid_names(name: object) -> None:
    with pytest.raises(InvalidNameError, match="expected lowercase"):
        validate_name(name, kind="product id")


def test_quote_ident_refuses_injection() -> None:
    assert quote_ident("plan") == '"plan"'
    with pytest.raises(InvalidNameError):
        quote_ident('plan" OR 1=1 --')
