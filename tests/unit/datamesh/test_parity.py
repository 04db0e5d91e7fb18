"""The parity profile and value comparison for the contract types (no Trino needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import yaml

from datamesh.contracts import parse_contract
from datamesh.parity import _same, profile
from tests.conftest import WIDGETS_CONTRACT


def test_a_decimal_column_is_summed_like_the_other_numbers() -> None:
    contract = parse_contract(yaml.safe_load(WIDGETS_CONTRACT.replace("    type: double", "    type: decimal(12,2)", 1)
                                            .replace("    type: timestamp", "    type: timestamptz", 1)),
                              Path("widgets.yaml"))
    names = [name for name, _ in profile(contract)]
    assert "price.sum" in names and "widget_id.sum" in names
    assert "made_at.min" in names and "made_at.sum" not in names


def test_instants_compare_as_instants_whatever_zone_an_engine_shows() -> None:
    utc = datetime(2024, 1, 31, 12, tzinfo=UTC)
    assert _same(utc, utc.astimezone(timezone(timedelta(hours=1))))
    assert _same(utc, utc.replace(tzinfo=None))  # an engine that dropped the zone of a UTC value
    assert not _same(utc, utc.replace(tzinfo=timezone(timedelta(hours=1))))
    assert _same(datetime(2024, 1, 31, 12), datetime(2024, 1, 31, 12))
    assert _same(Decimal("12.50"), 12.5) and not _same(Decimal("12.50"), 12.51)
