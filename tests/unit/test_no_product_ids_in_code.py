"""Everything product-specific comes from a contract: no product id is written in orchestration/ or ml/.

A product id is "written" in code when it appears as

* an id with an underscore (``churn_features``): anywhere in the file, in any
  form (literal, identifier, comment): such a token is never an English word;
* a one-word id (``customers``, ``tickets``): qualified by its domain
  (``crm.customers``, ``crm/customers``, ``["crm", "customers"]``) or as a part of a
  longer name (``segment_customers``, ``"customers_model"``). The bare word is
  allowed: it is also an English noun (the demo generator's ``customers=`` count).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from datamesh.contracts import ContractRegistry
from datamesh.paths import CONTRACTS_DIR

ROOT = CONTRACTS_DIR.parent
SCANNED = ("orchestration", "ml")
_WORD = re.compile(r"[A-Za-z0-9_]+")


def product_ids() -> dict[str, str]:
    """Every product id under data_products/, with its domain."""
    return {c.id: c.domain for c in ContractRegistry.from_dir(CONTRACTS_DIR)}


def written_ids(source: str, ids: dict[str, str]) -> list[str]:
    """The product ids ``source`` writes (see the module docstring), in order of first appearance."""
    found: dict[str, None] = {}
    words = [m.group() for m in _WORD.finditer(source)]
    for product, domain in ids.items():
        if "_" in product:
            hit = product in source
        else:
            qualified = re.search(rf"\b{domain}\s*[./]\s*{product}\b|['\"]{domain}['\"]\s*,\s*['\"]{product}['\"]",
                                  source)
            hit = bool(qualified) or any(w != product and product in w.split("_") for w in words)
        if hit:
            found[product] = None
    return list(found)


def python_files() -> list[Path]:
    return sorted(p for folder in SCANNED for p in (ROOT / folder).rglob("*.py"))


IDS = {"churn_features": "retention", "customers": "crm", "tickets": "support"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('contracts.get("churn_features")', ["churn_features"]),
        ("def build(source: str = 'churn_features'): ...", ["churn_features"]),
        ("key = model_key_churn_features_v2", ["churn_features"]),
        ("# wired to churn_features for now", ["churn_features"]),
        ('asset = dg.AssetKey(["crm", "customers"])', ["customers"]),
        ('relation = "crm.customers"', ["customers"]),
        ('path = f"{lake}/crm/customers/v1"', ["customers"]),
        ("def segment_customers(frame): ...", ["customers"]),
        ('name = "tickets_model"', ["tickets"]),
        ("customers: int = 50_000", []),
        ('say(f"{n:,} customers, seed {seed}")', []),
        ('extra = {"customers": config.customers}', []),
        ("features = [c for c in frame if c != contract.ml.id_column]", []),
    ],
)
def test_the_scan_finds_written_ids(source: str, expected: list[str]) -> None:
    assert written_ids(source, IDS) == expected


def test_the_scan_covers_the_code() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in python_files()}
    assert {"orchestration/schedules.py", "orchestration/demo.py", "orchestration/assets/ml.py",
            "ml/products.py", "ml/unsupervised.py"} <= files
    assert len(product_ids()) >= 10


def test_no_product_id_in_orchestration_or_ml_code() -> None:
    ids = product_ids()
    offenders = {}
    for path in python_files():
        found = written_ids(path.read_text(encoding="utf-8"), ids)
        if found:
            offenders[path.relative_to(ROOT).as_posix()] = found
    assert not offenders, (
        f"Product ids written in code (derive them from the contracts instead): {offenders}"
    )
