"""Vectorised builders of Arrow arrays and calendar arithmetic for the demo generator.

Everything here works on whole numpy arrays: building tens of millions of
identifiers or timestamps never loops over rows in Python.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MICROSECONDS_PER_DAY = 86_400_000_000
_MAX_ID_DIGITS = 18  # int64 holds every 18-digit number


def fixed_width_ids(prefix: str, numbers: np.ndarray, digits: int) -> pa.StringArray:
    """Return ``prefix`` + zero-padded ``numbers`` as an Arrow string array.

    The strings are written straight into one byte buffer, ``digits`` positions
    at a time, so a chunk of millions of ids costs a few numpy operations.
    """
    if not 1 <= digits <= _MAX_ID_DIGITS:
        raise ValueError(f"digits must be between 1 and {_MAX_ID_DIGITS}, got {digits}")
    values = np.asarray(numbers, dtype=np.int64)
    if values.size and (values.min() < 0 or values.max() >= 10**digits):
        raise ValueError(f"ids with prefix {prefix!r} do not fit in {digits} digits")
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    width = head.size + digits
    count = values.size
    data = np.empty((count, width), dtype=np.uint8)
    data[:, : head.size] = head
    remaining = values.copy()
    for position in range(width - 1, head.size - 1, -1):
        data[:, position] = 48 + remaining % 10
        remaining //= 10
    offsets = np.arange(0, (count + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(data))


def categorical(values: Sequence[str], codes: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Return ``values[codes]`` as an Arrow string array (null where ``mask`` is true)."""
    taken = pc.take(pa.array(values, type=pa.string()), pa.array(np.asarray(codes, dtype=np.int32)))
    if mask is None:
        return taken
    return pc.if_else(pa.array(mask), pa.scalar(None, type=pa.string()), taken)


def timestamps(microseconds: np.ndarray, mask: np.ndarray | None = None) -> pa.TimestampArray:
    """Return epoch microseconds as Arrow ``timestamp('us')`` (null where ``mask`` is true)."""
    values = np.asarray(microseconds, dtype=np.int64).view("datetime64[us]")
    return pa.array(values, type=pa.timestamp("us"), mask=mask)


def dates(days: np.ndarray) -> pa.Date32Array:
    """Return epoch days as Arrow ``date32``."""
    return pa.array(np.asarray(days, dtype=np.int32), type=pa.date32())


def int32s(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Int32Array:
    """Return integers as Arrow ``int32`` (null where ``mask`` is true)."""
    return pa.array(np.asarray(values, dtype=np.int32), type=pa.int32(), mask=mask)


def add_months(epoch_days: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Add calendar months to dates given as epoch days, clamping the day of month.

    ``add_months(2026-01-31, 1)`` is 2026-02-28, as billing systems do.
    """
    day = np.asarray(epoch_days, dtype=np.int64).astype("datetime64[D]")
    month_start = day.astype("datetime64[M]")
    day_of_month = (day - month_start.astype("datetime64[D]")).astype(np.int64)
    target = month_start + np.asarray(months, dtype=np.int64)
    days_in_target = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    result = target.astype("datetime64[D]") + np.minimum(day_of_month, days_in_target - 1)
    return result.astype(np.int64)


def months_between(start_days: np.ndarray, end_days: np.ndarray) -> np.ndarray:
    """Whole calendar months ``m`` with ``add_months(start, m) <= end`` (end >= start)."""
    start = np.asarray(start_days, dtype=np.int64).astype("datetime64[D]")
    end = np.asarray(end_days, dtype=np.int64).astype("datetime64[D]")
    months = (end.astype("datetime64[M]") - start.astype("datetime64[M]")).astype(np.int64)
    overshoot = add_months(start_days, months) > np.asarray(end_days, dtype=np.int64)
    return months - overshoot.astype(np.int64)


def sequence_within_groups(group: np.ndarray, group_count: int) -> np.ndarray:
    """Return 0, 1, 2, ... restarting at each group of a *sorted* group array."""
    counts = np.bincount(group, minlength=group_count)
    starts = np.cumsum(counts) - counts
    return np.arange(group.size, dtype=np.int64) - starts[group]
