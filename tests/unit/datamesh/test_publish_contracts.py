"""A product is published only under its registered contract, compatible with its last version."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamesh.errors import BreakingChangeError, OwnershipError, PublishError
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
    if bumped.contract("widgets").column("price").type.value == "int32":
        # A major bump may narrow a type, but an Iceberg table cannot: older versions' files keep theirs.
        with pytest.raises(PublishError, match="'price' is double in the table and int32"):
            bumped.publish("widgets", data)
        assert lake_fingerprint(bumped) == before
        return
    assert bumped.publish("widgets", data).version == 2


def test_compatible_change_publishes_without_a_major_bump(mesh, tmp_path: Path, contracts_dir: Path) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    contract_file = contracts_dir / "shop" / "widgets.yaml"
    contract_file.write_text(WIDGETS_CONTRACT.replace("version: 1.0.0", "version: 1.1.0")
                             .replace("  purpose: Widgets for sale.", "  purpose: Widgets for sale, now described."))
    assert reload(tmp_path, contracts_dir).publish("widgets", widgets_table(4)).version == 2


def test_a_version_downgrade_cannot_smuggle_a_breaking_change(mesh, tmp_path: Path, contracts_dir: Path) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    contract_file = contracts_dir / "shop" / "widgets.yaml"
    contract_file.write_text(WIDGETS_CONTRACT.replace("version: 1.0.0", "version: 0.9.0"))
    downgraded = reload(tmp_path, contracts_dir)
    before = lake_fingerprint(downgraded)
    with pytest.raises(BreakingChangeError, match="lower than 1.0.0"):
        downgraded.publish("widgets", widgets_table(3))
    assert lake_fingerprint(downgraded) == before


@pytest.mark.parametrize("version", ["1.0.0\n", "01.0.0", "1.0", "１.0.0"])
def test_contract_versions_are_strict_semver(contracts_dir: Path, version: str) -> None:
    from datamesh.contracts import load_contract
    from datamesh.errors import ContractError

    path = contracts_dir / "shop" / "widgets.yaml"
    path.write_text(WIDGETS_CONTRACT.replace("version: 1.0.0", f"version: {version!r}"))
    with pytest.raises(ContractError, match="semantic"):
        load_contract(path)


def test_a_sql_rule_that_returns_no_row_fails_clearly(tmp_path: Path, contracts_dir: Path) -> None:
    from datamesh.errors import QualityError

    path = contracts_dir / "shop" / "widgets.yaml"
    path.write_text(WIDGETS_CONTRACT.replace(
        '''query: "select count(*) from {product} where color = 'blue' and price = 0"''',
        '''query: "select 1 from {product} where 1 = 0"'''))
    mesh = reload(tmp_path, contracts_dir)
    before = lake_fingerprint(mesh)
    with pytest.raises(QualityError, match="returned no row"):
        mesh.publish("widgets", widgets_table(3))
    assert lake_fingerprint(mesh) == before
