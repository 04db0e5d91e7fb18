"""Typed Dagster resources. Values come from MESH_* settings at run time, never at import."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliInvocation, DbtCliResource, DbtProject

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
    """dagster-dbt's dbt CLI resource without the fixed costs per invocation that this platform never uses.

    * When the executable is this environment's own ``dbt``, its version is the
      installed ``dbt-core``'s, not a ``dbt --version`` subprocess: a whole
      Python start-up and dbt import, 3 to 6 s, before every build.
    * No dbt adapter is built inside the Dagster process (another 3 to 4 s of
      dbt imports, profile and macro loading). dagster-dbt uses it only for
      ``fetch_column_metadata`` and ``fetch_row_counts``, which our dbt asset
      does not call: it reads the views' column types from dbt's DuckDB file.
    * With this environment's own ``dbt``, the command runs in this process
      (:mod:`orchestration.dbt_in_process`, decision 0042), not in a dbt
      subprocess that imports dbt, pyiceberg and SQLAlchemy again. Another
      executable (``dbt_executable``) still runs as dagster-dbt runs it.
    """

    @property
    def _own_dbt(self) -> bool:
        return Path(self.dbt_executable).parent == Path(sys.executable).parent

    @property
    def _cli_version(self) -> Any:  # noqa: ANN401 (packaging's Version, dagster-dbt's own type)
        from packaging.version import Version

        if not self._own_dbt:
            return super()._cli_version
        return Version(installed_version("dbt-core"))

    def cli(self, args: Sequence[str], *, raise_on_error: bool = True, manifest: Any = None,  # noqa: ANN401
            dagster_dbt_translator: DagsterDbtTranslator | None = None,
            context: dg.OpExecutionContext | dg.AssetExecutionContext | None = None,
            target_path: Path | None = None) -> DbtCliInvocation:
        """dagster-dbt's ``cli`` (same selection, target folder, partial parse and events), run in-process.

        The steps before the subprocess are dagster-dbt's own, from its public
        helpers; where dagster-dbt passes ``DBT_*`` variables to the subprocess,
        :func:`~orchestration.dbt_in_process.dbt_flags` passes the same as flags.
        """
        if not self._own_dbt:
            return super().cli(args, raise_on_error=raise_on_error, manifest=manifest,
                               dagster_dbt_translator=dagster_dbt_translator, context=context,
                               target_path=target_path)
        from dagster_dbt.asset_utils import (
            extract_runtime_selection_from_args,
            get_updated_cli_invocation_params_for_context,
        )
        from dagster_dbt.dagster_dbt_translator import validate_opt_translator
        from dagster_dbt.dbt_manifest import validate_manifest

        from orchestration.dbt_in_process import InProcessDbt, console_level, dbt_flags, shown_levels

        translator = validate_opt_translator(dagster_dbt_translator) or DagsterDbtTranslator()
        cleaned_args, runtime_selects, runtime_excludes = extract_runtime_selection_from_args(args)
        params = get_updated_cli_invocation_params_for_context(
            context=context, manifest=validate_manifest(manifest) if manifest else {},
            dagster_dbt_translator=translator, runtime_selects=runtime_selects, runtime_excludes=runtime_excludes)
        project_dir = Path(params.dbt_project.project_dir if params.dbt_project else self.project_dir)
        target = Path(target_path or self._get_unique_target_path(context=context))
        if not target.is_absolute():
            target = project_dir / target
        keep_parse_of(project_dir, target)
        profile_args = [*(["--profile", self.profile] if self.profile else []),
                        *(["--target", self.target] if self.target else [])]
        caller_args = [*self.global_config_flags, *cleaned_args, *profile_args, *params.selection_args]
        dbt_args = [*caller_args, *dbt_flags(caller_args, target_path=target, project_dir=project_dir,
                                             profiles_dir=self.profiles_dir,
                                             indirect_selection=params.indirect_selection)]
        return DbtCliInvocation(
            process=InProcessDbt(dbt_args, cwd=project_dir,  # type: ignore[arg-type] (Popen's interface)
                                 levels=shown_levels(console_level(caller_args))),
            manifest=params.manifest, dagster_dbt_translator=params.dagster_dbt_translator,
            project_dir=project_dir, target_path=target, raise_on_error=raise_on_error,
            cli_version=self._cli_version, project=params.dbt_project, context=context, adapter=None)

    def _initialize_dbt_core_adapter(self, args: Any) -> Any:  # noqa: ANN401, ARG002
        return None


PARTIAL_PARSE = "partial_parse.msgpack"


def project_parse_file(project_dir: Path) -> Path:
    """The project's own parse, the one every run starts from: in dbt's target folder (``$DBT_TARGET_PATH``,
    else ``target``, relative to the project), where dagster-dbt looks for it too."""
    shared = Path(os.environ.get("DBT_TARGET_PATH") or "target")
    return (shared if shared.is_absolute() else project_dir / shared) / PARTIAL_PARSE


def keep_parse_of(project_dir: Path, target: Path) -> None:
    """Start the run from the project's last parse, as dagster-dbt does before its subprocess: the
    project's parse (:func:`project_parse_file`) into the run's target folder (dbt checks that it still fits)."""
    source = project_parse_file(project_dir)
    destination = target / PARTIAL_PARSE
    if source.is_file() and not destination.exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)


def dbt_resource() -> DbtCliResource:
    return MeshDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
