"""The test mesh's products (tests/conftest.py) with query-latency targets no engine can meet, or any can."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from tests.conftest import ORDERS_CONTRACT, WIDGETS_CONTRACT

#: 1 ns: missed by any query.
TINY_TARGET = "  - property: queryLatency\n    value: 0.000001\n    unit: ms\n"
#: 11.6 days: met by any query.
HUGE_TARGET = "  - property: queryLatency\n    value: 1000000\n    unit: s\n"


def write_latency_contracts(root: Path, *, widgets: str = TINY_TARGET, orders: str = HUGE_TARGET) -> Path:
    """widgets (key widget_id) with the ``widgets`` target, widget_orders (key order_id, line_number) with ``orders``."""
    (root / "shop").mkdir(parents=True, exist_ok=True)
    (root / "shop" / "widgets.yaml").write_text(WIDGETS_CONTRACT.replace("slaProperties:\n", "slaProperties:\n" + widgets))
    (root / "shop" / "widget_orders.yaml").write_text(ORDERS_CONTRACT + "slaProperties:\n" + orders)
    return root


def orders_table(orders: int = 30, lines: int = 3) -> pa.Table:
    """``orders`` orders of ``lines`` lines each: the composite key (order_id, line_number) is unique."""
    return pa.table({
        "order_id": pa.array([o for o in range(orders) for _ in range(lines)], pa.int64()),
        "line_number": pa.array([n for _ in range(orders) for n in range(1, lines + 1)], pa.int32()),
        "widget_id": pa.array([o % 7 for o in range(orders) for _ in range(lines)], pa.int64()),
    })
