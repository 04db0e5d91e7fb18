"""The facade: every publish path goes through one catalog with the acting identity."""

from __future__ import annotations

from pathlib import Path

from datamesh.contracts import load_contract
from datamesh.identity import Role
from datamesh.platform import Mesh
from datamesh.settings import Settings
from tests.conftest import widgets_table


def test_mesh_carries_identity_and_run_id(tmp_path: Path, contracts_dir: Path) -> None:
    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=contracts_dir,
                                       actor="publisher:shop", run_id="dagster-run-1234abcd"))
    assert mesh.identity.role is Role.PUBLISHER and mesh.catalog.identity == mesh.identity
    manifest = mesh.publish("widgets", widgets_table(2))
    assert manifest.run_id.endswith("-dagsterr")  # traceable to the orchestrator's run
    assert manifest.writer["orchestrator_run_id"] == "dagster-run-1234abcd"
    assert manifest.writer["actor"] == "publisher:shop"
    assert mesh.catalog.commit_hooks == []  # no Trino configured, no hook


def test_with_contract_keeps_the_catalog_settings(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "shop" / "gadgets.yaml"
    path.parent.mkdir()
    path.write_text((Path(mesh.contract("widgets").source_path).read_text()).replace("id: widgets", "id: gadgets"))
    extended = mesh.with_contract(load_contract(path))
    assert "gadgets" in extended.contracts and "gadgets" not in mesh.contracts
    assert extended.catalog.identity == mesh.catalog.identity and extended.lake is mesh.lake
