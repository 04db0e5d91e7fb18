"""Vectorised array builders and calendar arithmetic of the demo generator."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from demo_sources.arrays import (
    add_months,
    categorical,
    fixed_width_ids,
    months_between,
    sequence_within_groups,
)


def _days(*dates: str) -> np.ndarray:
    return np.array([(dt.date.fromisoformat(d) - dt.date(1970, 1, 1)).days for d in dates])


def _iso(days: np.ndarray) -> list[str]:
    return [(dt.date(1970, 1, 1) + dt.timedelta(days=int(d))).isoformat() for d in days]


def test_fixed_width_ids_are_zero_padded_strings() -> None:
    ids = fixed_width_ids("C", np.array([1, 42, 99_999_999]), 8)
    assert ids.type == pa.string()
    assert ids.to_pylist() == ["C00000001", "C00000042", "C99999999"]


def test_fixed_width_ids_refuse_numbers_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="do not fit in 2 digits"):
        fixed_width_ids("X", np.array([100]), 2)


def test_categorical_maps_codes_and_masks_nulls() -> None:
    values = categorical(("a", "b"), np.array([1, 0, 1]), mask=np.array([False, False, True]))
    assert values.to_pylist() == ["b", "a", None]


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2026-01-31", 1, "2026-02-28"),
        ("2024-01-31", 1, "2024-02-29"),
        ("2026-03-15", 12, "2027-03-15"),
        ("2026-12-31", 2, "2027-02-28"),
        ("2026-05-01", 0, "2026-05-01"),
    ],
)
def test_add_months_clamps_to_the_end_of_month(start: str, months: int, expected: str) -> None:
    assert _iso(add_months(_days(start), np.array([months]))) == [expected]


def test_months_between_counts_whole_months() -> None:
    starts = _days("2026-01-31", "2026-01-15", "2026-01-15")
    ends = _days("2026-02-28", "2026-02-14", "2026-02-15")
    assert months_between(starts, ends).tolist() == [1, 0, 1]


def test_sequence_within_groups_restarts_per_group() -> None:
    assert sequence_within_groups(np.array([0, 0, 2, 2, 2]), 3).tolist() == [0, 1, 0, 1, 2]
