"""Shared fixtures: a tiny mesh of test contracts over a temporary lake."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")

WIDGETS_CONTRACT = """
apiVersion: datamesh/v1
kind: DataProduct
id: widgets
name: Widgets
domain: shop
version: 1.0.0
description:
  purpose: Widgets for sale.
  grain: One row per widget.
owner:
  team: shop-team
  contact: shop@example.com
columns:
  - name: widget_id
    type: int64
    required: true
    unique: true
  - name: color
    type: string
    required: true
    quality:
      - rule: accepted_values
        values: [red, green, blue]
  - name: price
    type: double
    quality:
      - rule: range
        min: 0
        max: 1000
  - name: made_at
    type: timestamp
primaryKey: [widget_id]
quality:
  - rule: row_count
    min: 1
    max: 1000000
  - rule: sql
    name: no_free_blue_widgets
    query: "select count(*) from {product} where color = 'blue' and price = 0"
    mustBe: 0
  - rule: sql
    name: few_expensive_widgets
    severity: warning
    query: "select count(*) from {product} where price > 900"
    mustBeLessThan: 2
slaProperties:
  - property: retention
    value: 3
    unit: versions
"""

ORDERS_CONTRACT = """
apiVersion: datamesh/v1
kind: DataProduct
id: widget_orders
name: Widget orders
domain: shop
version: 1.0.0
description:
  purpose: Orders of widgets.
  grain: One row per order line.
owner:
  team: shop-team
  contact: shop@example.com
columns:
  - name: order_id
    type: int64
    required: true
  - name: line_number
    type: int32
    required: true
  - name: widget_id
    type: int64
primaryKey: [order_id, line_number]
lineage:
  inputs: [widgets]
"""


@pytest.fixture()
def contracts_dir(tmp_path: Path) -> Path:
    root = tmp_path / "contracts"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "widgets.yaml").write_text(WIDGETS_CONTRACT)
    (root / "shop" / "widget_orders.yaml").write_text(ORDERS_CONTRACT)
    return root


@pytest.fixture()
def mesh(tmp_path: Path, contracts_dir: Path):
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    return Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=contracts_dir))


def widgets_table(n: int = 10, *, color: str = "red", price: float = 9.5, start: int = 0) -> pa.Table:
    return pa.table({
        "widget_id": pa.array(range(start, start + n), pa.int64()),
        "color": pa.array([color] * n, pa.string()),
        "price": pa.array([price] * n, pa.float64()),
        "made_at": pa.array([0] * n, pa.timestamp("us")),
    })
