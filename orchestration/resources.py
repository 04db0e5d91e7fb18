"""Typed Dagster resources. Values come from MESH_* settings at run time, never at import."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject

from datamesh.paths import DBT_PROJECT_DIR
from datamesh.platform import Mesh
from datamesh.settings import Settings


class MeshResource(dg.ConfigurableResource):
    """The data mesh (lake + contracts). Empty fields fall back to MESH_* settings."""

    lake_url: str | None = None
    contracts_dir: str | None = None

    def mesh(self) -> Mesh:
        overrides: dict[str, object] = {}
        if self.lake_url:
            overrides["lake_url"] = self.lake_url
        if self.contracts_dir:
            overrides["contracts_dir"] = self.contracts_dir
        return Mesh.from_settings(Settings(**overrides))  # type: ignore[arg-type]


def dbt_executable() -> str:
    """The ``dbt`` next to this interpreter (the venv's), else whatever is on PATH."""
    local = Path(sys.executable).parent / "dbt"
    return str(local) if local.exists() else (shutil.which("dbt") or "dbt")


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
