"""Parquet files damaged the ways real exports are: corrupt data pages, strings that are not UTF-8."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import widgets_table


def write_corrupt_pages(path: Path, rows: int = 5000) -> Path:
    """A Parquet file whose footer is intact but whose ``color`` data pages are overwritten mid-way."""
    table = widgets_table(rows).set_column(1, "color", pa.array([f"red{i}" for i in range(rows)]))
    pq.write_table(table, path)
    data = bytearray(path.read_bytes())
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(1)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    middle = start + chunk.total_compressed_size // 2
    data[middle:middle + 64] = b"\xab" * 64
    path.write_bytes(bytes(data))
    assert pq.ParquetFile(path).metadata.num_rows == rows  # the footer still reads
    return path


def bad_utf8_strings() -> pa.Array:
    """A string array whose second value is the bytes ff fe (not UTF-8), relabelled without validation."""
    return pa.array([b"red", b"\xff\xfe", b"red"], pa.binary()).view(pa.string())


def write_bad_utf8(path: Path) -> Path:
    pq.write_table(widgets_table(3).set_column(1, "color", bad_utf8_strings()), path)
    return path
