"""Typed Dagster resources. Values come from MESH_* settings at run time, never at import."""

from __future__ import annotations

import shutil
import sys
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject

from datamesh.paths import DBT_PROJECT_DIR
from datamesh.platform import Mesh
from datamesh.settings import Settings, build_settings


class MeshResource(dg.ConfigurableResource):
    """The data mesh (lake + contracts), the edge where Dagster builds the platform settings.

    Empty fields fall back to the ``MESH_*`` environment of the code location
    (configure them with ``dg.EnvVar`` in a deployment); the demo sets
    ``lake_url`` through run config. The Dagster run id is recorded in every
    manifest this resource's mesh commits.
    """

    lake_url: str | None = None
    contracts_dir: str | None = None
    actor: str | None = None

    def settings(self, run_id: str | None = None) -> Settings:
        return build_settings(lake_url=self.lake_url or None, contracts_dir=self.contracts_dir or None,
                              actor=self.actor or None, run_id=run_id)

    def mesh(self, run_id: str | None = None) -> Mesh:
        return Mesh.from_settings(self.settings(run_id))


def dbt_executable() -> str:
    """The ``dbt`` next to this interpreter (the venv's), else whatever is on PATH."""
    local = Path(sys.executable).parent / "dbt"
    return str(local) if local.exists() else (shutil.which("dbt") or "dbt")


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class MeshDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource without two fixed costs per invocation that this platform never uses.

    * When the executable is this environment's own ``dbt``, its version is the
      installed ``dbt-core``'s, not a ``dbt --version`` subprocess: a whole
      Python start-up and dbt import, 3 to 6 s, before every build.
    * No dbt adapter is built inside the Dagster process (another 3 to 4 s of
      dbt imports, profile and macro loading). dagster-dbt uses it only for
      ``fetch_column_metadata`` and ``fetch_row_counts``, which our dbt asset
      does not call: it reads the views' column types from dbt's DuckDB file.
    """

    @property
    def _cli_version(self) -> Any:  # noqa: ANN401 (packaging's Version, dagster-dbt's own type)
        from packaging.version import Version

        if Path(self.dbt_executable).parent != Path(sys.executable).parent:
            return super()._cli_version
        return Version(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Any) -> Any:  # noqa: ANN401, ARG002
        return None


def dbt_resource() -> DbtCliResource:
    return MeshDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
