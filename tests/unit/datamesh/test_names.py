from __future__ import annotations

import pytest

from datamesh.errors import InvalidNameError
from datamesh.names import is_valid_name, name_problem, quote_ident, snake_case, validate_name


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


@pytest.mark.parametrize("name", ["customers\n", "customers\r\n", "customers ", " customers", "cust\nomers"])
@pytest.mark.parametrize("kind", ["product id", "domain", "column name"])
def test_whole_string_must_match(name: str, kind: str) -> None:
    """`$` would let 'customers\\n' through and create a look-alike folder; the whole string must match."""
    with pytest.raises(InvalidNameError) as info:
        validate_name(name, kind=kind)
    message = str(info.value)
    assert f"Invalid {kind} {name!r}" in message
    assert "Rename it, e.g. 'customers'" in message or "Rename it, e.g. 'cust_omers'" in message


def test_messages_state_the_rule_in_words() -> None:
    with pytest.raises(InvalidNameError) as info:
        validate_name("Customers", kind="product id")
    message = str(info.value)
    assert "lowercase letters, digits and single underscores, starting with a letter, at most 63 characters" in message
    assert "^" not in message and "[a-z" not in message and "{0,62}" not in message


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("customers\n", "line break"),
        (" customers", "whitespace"),
        ("x" * 64, "64 characters"),
        ("Customers", "uppercase"),
        ("1abc", "does not start with a lowercase letter"),
        ("a__v1", "'__'"),
        ("a-b", "characters other than"),
        ("", "empty"),
        (3, "int, not text"),
    ],
)
def test_name_problem_says_what_is_wrong(name: object, problem: str) -> None:
    assert problem in (name_problem(name) or "")
    with pytest.raises(InvalidNameError, match=problem.replace("(", r"\(")):
        validate_name(name)


@pytest.mark.parametrize(
    ("raw", "suggested"),
    [
        ("customerID", "customer_id"),
        ("TotalSpend", "total_spend"),
        ("HTTPServerName", "http_server_name"),
        ("first name", "first_name"),
        ("customers\n", "customers"),
        ("2024_sales", "sales"),
        ("a__b", "a_b"),
        ("Größe", "groe"),
        ("x" * 70, "x" * 63),
        ("!!!", ""),
    ],
)
def test_snake_case_suggestions(raw: str, suggested: str) -> None:
    assert snake_case(raw) == suggested
    assert suggested == "" or is_valid_name(suggested)
