"""A product is published only under its registered contract, compatible with its last version."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamesh.errors import BreakingChangeError, OwnershipError
from datamesh.platform import Mesh
from datamesh.publish import Publisher
from datamesh.settings import Settings
from tests.conftest import WIDGETS_CONTRACT, widgets_table
from tests.integrity import lake_fingerprint


def reload(tmp_path: Path, contracts_dir: Path) -> Mesh:
    return Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=contracts_dir))


def test_publisher_refuses_a_contract_that_is_not_the_registered_one(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    registered = mesh.contract("widgets")
    rogue = registered.model_copy(update={"columns": registered.columns[:1], "quality": ()})
    before = lake_fingerprint(mesh)
    with pytest.raises(OwnershipError, match="registered by"):
        Publisher(mesh.catalog, rogue)
    assert lake_fingerprint(mesh) == before


def test_with_contract_cannot_replace_a_registered_product(mesh) -> None:  # noqa: ANN001
    with pytest.raises(OwnershipError, match="never replace"):
        mesh.with_contract(mesh.contract("widgets"))


@pytest.mark.parametrize(("edit", "fragment"), [
    (lambda t: t.replace("  - name: made_at\n    type: timestamp\n", ""), "made_at"),          # column removed
    (lambda t: t.replace("  - name: price\n    type: double", "  - name: price\n    type: int32"), "price"),
    (lambda t: t.replace("  - name: made_at\n    type: timestamp", "  - name: made_at\n    type: timestamp\n"
                                                                      "    required: true"), "made_at"),
    (lambda t: t.replace("        max: 1000\n", "        max: 100000\n"), "price"),             # rule loosened
])
def test_breaking_change_needs_a_major_bump(mesh, tmp_path: Path, contracts_dir: Path, edit, fragment: str) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    contract_file = contracts_dir / "shop" / "widgets.yaml"
    contract_file.write_text(edit(WIDGETS_CONTRACT).replace("version: 1.0.0", "version: 1.1.0"))
    changed = reload(tmp_path, contracts_dir)
    before = lake_fingerprint(changed)
    data = widgets_table(3).select([f.name for f in changed.contract("widgets").arrow_schema()])
    data = data.cast(changed.contract("widgets").arrow_schema(), safe=False)
    with pytest.raises(BreakingChangeError, match=fragment) as info:
        changed.publish("widgets", data)
    assert "major version" in str(info.value)
    assert lake_fingerprint(changed) == before
    contract_file.write_text(edit(WIDGETS_CONTRACT).replace("version: 1.0.0", "version: 2.0.0"))
    bumped = reload(tmp_path, contracts_dir)
    assert bumped.publish("widgets", data).version == 2


def test_compatible_change_publishes_without_a_major_bump(mesh, tmp_path: Path, contracts_dir: Path) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    contract_file = contracts_dir / "shop" / "widgets.yaml"
    contract_file.write_text(WIDGETS_CONTRACT.replace("version: 1.0.0", "version: 1.1.0")
                             .replace("  purpose: Widgets for sale.", "  purpose: Widgets for sale, now described."))
    assert reload(tmp_path, contracts_dir).publish("widgets", widgets_table(4)).version == 2
