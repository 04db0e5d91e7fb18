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

    def mesh(self) -> Mesh:
        overrides = {"lake_url": self.lake_url} if self.lake_url else {}
        return Mesh.from_settings(Settings(**overrides))


def dbt_executable() -> str:
    """The ``dbt`` next to this interpreter (the venv's), else whatever is on PATH."""
    local = Path(sys.executable).parent / "dbt"
    return str(local) if local.exists() else (shutil.which("dbt") or "dbt")


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
