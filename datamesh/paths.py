"""The project root, defined once.

The platform ships with its project layout (``data_products/``, ``sql/``);
everything that needs a default location starts from here.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT: Path = Path(__file__).resolve().parents[1]
CONTRACTS_DIR: Path = PROJECT_ROOT / "data_products"
DBT_PROJECT_DIR: Path = PROJECT_ROOT / "sql"
DEFAULT_LAKE_DIR: Path = PROJECT_ROOT / "lake"
