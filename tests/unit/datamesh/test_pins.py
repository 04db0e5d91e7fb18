"""--pin parsing and the Trino rewrite of pinned products."""

from __future__ import annotations

import pytest

from datamesh.contracts import ContractRegistry
from datamesh.errors import UnknownProductError, VersionNotFoundError
from datamesh.pins import PinError, parse_pins, pin_trino_sql


@pytest.fixture()
def contracts(contracts_dir) -> ContractRegistry:  # noqa: ANN001
    return ContractRegistry.from_dir(contracts_dir)


def test_parse_pins(contracts: ContractRegistry) -> None:
    assert parse_pins(["widgets=3", "shop.widget_orders=2"], contracts) == {"widgets": 3, "widget_orders": 2}


@pytest.mark.parametrize(("pin", "error"), [
    ("widgets=²", PinError), ("widgets=1e3", PinError), ("widgets=-1", PinError), ("widgets", PinError),
    ("=3", PinError), ("widgets=0", VersionNotFoundError), ("widgetz=1", UnknownProductError),
    ("other.widgets=1", UnknownProductError),
])
def test_bad_pins(contracts: ContractRegistry, pin: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_pins([pin], contracts)


def test_conflicting_pins(contracts: ContractRegistry) -> None:
    with pytest.raises(PinError, match="twice"):
        parse_pins(["widgets=1", "shop.widgets=2"], contracts)


def test_trino_rewrite_skips_strings_and_comments(contracts: ContractRegistry) -> None:
    sql = ("select 'shop.widgets' as s, count(*) from lake.shop.widgets w -- shop.widgets\n"
           "join SHOP.\"widgets\" x on true /* shop.widgets */ where w.widgets = 1")
    out = pin_trino_sql(sql, {"widgets": 3}, contracts, "lake")
    assert out.count("lake.shop.widgets FOR VERSION AS OF 'v3'") == 2
    assert "'shop.widgets'" in out and "-- shop.widgets" in out and "/* shop.widgets */" in out
    assert "w.widgets = 1" in out


def test_trino_rewrite_needs_the_domain(contracts: ContractRegistry) -> None:
    with pytest.raises(PinError, match="never refers to it"):
        pin_trino_sql("select * from widgets", {"widgets": 1}, contracts, "lake")
