"""All platform settings in one typed object.

Environments differ by settings only: ``MESH_LAKE_URL=s3://lake/`` plus the
``MESH_S3_*`` values switch the whole platform (CLI, dbt, Dagster) to object
storage. Values come from the environment (prefix ``MESH_``) or a ``.env``
file in the working directory.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from datamesh.errors import SettingsError
from datamesh.paths import CONTRACTS_DIR, DBT_PROJECT_DIR, DEFAULT_LAKE_DIR


class Settings(BaseSettings):
    """Platform settings; read from ``MESH_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="MESH_", env_file=".env", extra="ignore")

    lake_url: str = Field(
        default=str(DEFAULT_LAKE_DIR),
        description="Where products live: a local folder or s3://bucket/prefix.",
    )
    contracts_dir: Path = Field(default=CONTRACTS_DIR, description="Folder of product contracts.")
    dbt_project_dir: Path = Field(default=DBT_PROJECT_DIR, description="The dbt project.")

    s3_endpoint_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:9000")
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"

    trino_host: str | None = Field(default=None, description="Trino coordinator host; unset = no Trino.")
    trino_port: int = 8080
    trino_user: str = "mesh"
    trino_catalog: str = "lake"

    duckdb_memory_limit: str = "3GB"
    duckdb_threads: int | None = None

    @property
    def is_s3(self) -> bool:
        return self.lake_url.startswith("s3://")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` in tests)."""
    try:
        return Settings()
    except ValidationError as exc:  # pragma: no cover - exercised via CLI
        raise SettingsError(f"Invalid MESH_* settings: {exc}. Fix the environment or .env file.") from exc
