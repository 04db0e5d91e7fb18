from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datamesh.errors import (
    ConflictError,
    PublishError,
    QualityError,
    SchemaMismatchError,
    UnknownProductError,
    VersionNotFoundError,
)
from datamesh.publish import Publisher, apply_retention_rule
from tests.conftest import widgets_table
from tests.integrity import lake_fingerprint


def read_latest(mesh) -> pa.Table:  # noqa: ANN001
    manifest = mesh.catalog.manifest("widgets")
    return pq.ParquetDataset(mesh.catalog.file_paths(manifest)).read()


def test_publish_and_read_back(mesh) -> None:  # noqa: ANN001
    m1 = mesh.publish("widgets", widgets_table(10))
    m2 = mesh.publish("widgets", widgets_table(20))
    assert (m1.version, m2.version) == (1, 2)
    assert mesh.catalog.latest_version("widgets") == 2
    assert read_latest(mesh).num_rows == 20
    assert m2.row_count == 20 and m2.files[0].rows == 20 and len(m2.files[0].sha256) == 64
    assert {q["key"] for q in m2.quality} >= {"widget_id_unique", "color_accepted_values", "no_free_blue_widgets"}
    # old versions stay readable (time travel)
    assert mesh.catalog.manifest("widgets", 1).row_count == 10
    with mesh.session() as s:
        assert s.sql("select count(*) from widgets").fetchone()[0] == 20
        assert s.sql("select count(*) from shop.widgets__v1").fetchone()[0] == 10
    with mesh.session(pins={"widgets": 1}) as s:
        assert s.sql("select count(*) from shop.widgets").fetchone()[0] == 10


def test_checksums_match_files(mesh) -> None:  # noqa: ANN001
    import hashlib

    m = mesh.publish("widgets", widgets_table(5))
    for entry, path in zip(m.files, mesh.catalog.file_paths(m), strict=True):
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == entry.sha256
        assert Path(path).stat().st_size == entry.bytes


def test_streaming_publish_rolls_files(mesh) -> None:  # noqa: ANN001
    contract = mesh.contract("widgets")
    with Publisher(mesh.catalog, contract, rows_per_file=25) as pub:
        for i in range(4):
            pub.write(widgets_table(20, start=i * 20))
        m = pub.commit()
    assert m.row_count == 80
    assert [f.rows for f in m.files] == [25, 25, 25, 5]


@pytest.mark.parametrize(
    ("table", "rule", "fragment"),
    [
        (widgets_table(0), "table_row_count", "0 rows"),
        (pa.concat_tables([widgets_table(3), widgets_table(2)]), "widget_id_unique", "duplicate"),
        (widgets_table(3).set_column(0, "widget_id", pa.array([1, None, 2], pa.int64())), "widget_id_not_null", "null"),
        (widgets_table(3, color="purple"), "color_accepted_values", "'purple'"),
        (widgets_table(3, price=-1.0), "price_range", "out of range"),
        (widgets_table(3, color="blue", price=0.0), "no_free_blue_widgets", "query returned 3"),
    ],
    ids=["row_count", "unique", "not_null", "accepted_values", "range", "sql"],
)
def test_every_rule_type_blocks_publish(mesh, table: pa.Table, rule: str, fragment: str) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(4))
    with pytest.raises(QualityError) as info:
        mesh.publish("widgets", table)
    message = str(info.value)
    assert f"rule '{rule}' failed" in message and fragment in message
    assert "previous version is still served" in message
    assert mesh.catalog.latest_version("widgets") == 1
    assert read_latest(mesh).num_rows == 4
    # the refused publish left no staged files behind
    data_dir = Path(mesh.catalog.paths("widgets").data)
    assert len(list(data_dir.iterdir())) == 1


def test_composite_primary_key(mesh) -> None:  # noqa: ANN001
    table = pa.table({"order_id": pa.array([1, 1, 2], pa.int64()), "line_number": pa.array([1, 1, 1], pa.int32()),
                      "widget_id": pa.array([1, 2, 3], pa.int64())})
    with pytest.raises(QualityError, match="primary_key_unique"):
        mesh.publish("widget_orders", table)


def test_warning_rule_does_not_block(mesh) -> None:  # noqa: ANN001
    m = mesh.publish("widgets", widgets_table(3, price=950.0))
    result = next(q for q in m.quality if q["key"] == "few_expensive_widgets")
    assert result["passed"] is False and result["severity"] == "warning"


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda t: t.drop_columns(["price"]), "missing column 'price'"),
        (lambda t: t.append_column("discount", pa.array([0.0] * t.num_rows)), "extra column 'discount'"),
        (lambda t: t.set_column(2, "price", t["price"].cast(pa.float32())), "column 'price' has type float, expected double"),
    ],
    ids=["missing", "extra", "changed_type"],
)
def test_schema_drift(mesh, tmp_path: Path, mutate, fragment: str) -> None:  # noqa: ANN001
    with pytest.raises(SchemaMismatchError, match=fragment):
        mesh.publish("widgets", mutate(widgets_table(3)))
    path = tmp_path / "drift.parquet"
    pq.write_table(mutate(widgets_table(3)), path)
    with pytest.raises(SchemaMismatchError, match=fragment) as info:
        mesh.publish_file("widgets", path)
    assert str(path) in str(info.value)
    with pytest.raises(VersionNotFoundError):
        mesh.catalog.manifest("widgets")


def test_corrupt_and_empty_files(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    corrupt = tmp_path / "corrupt.parquet"
    pq.write_table(widgets_table(10), corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:-50])
    with pytest.raises(PublishError, match="not a readable Parquet file") as info:
        mesh.publish_file("widgets", corrupt)
    assert "corrupt.parquet" in str(info.value)
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    with pytest.raises(PublishError, match="not a readable Parquet file"):
        mesh.publish_file("widgets", empty)
    zero_rows = tmp_path / "zero.parquet"
    pq.write_table(widgets_table(0), zero_rows)
    with pytest.raises(QualityError, match="table_row_count"):
        mesh.publish_file("widgets", zero_rows)


def test_csv_publish(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "w.csv"
    path.write_text("widget_id,color,price,made_at\n1,red,2.5,2024-01-01T00:00:00\n2,green,,2024-01-02 10:00:00\n")
    m = mesh.publish_file("widgets", path)
    assert m.row_count == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("widget_id,color,price,made_at\nabc,red,2.5,2024-01-01\n")
    with pytest.raises(PublishError, match="could not be parsed"):
        mesh.publish_file("widgets", bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("widget_id,colour,price,made_at\n1,red,2.5,2024-01-01\n")
    with pytest.raises(SchemaMismatchError, match="missing column 'color'"):
        mesh.publish_file("widgets", missing)


def test_unknown_product(mesh) -> None:  # noqa: ANN001
    with pytest.raises(UnknownProductError, match="Did you mean 'widgets'"):
        mesh.publish("widgetz", widgets_table(1))
    with pytest.raises(UnknownProductError):
        mesh.catalog.manifest("../../etc/passwd")


def test_unknown_version(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(1))
    with pytest.raises(VersionNotFoundError, match="Available versions: 1"):
        mesh.catalog.manifest("widgets", 7)


def test_concurrent_publish_of_same_version(mesh) -> None:  # noqa: ANN001
    """Two writers stage in parallel and race for version 1: exactly one wins."""
    contract = mesh.contract("widgets")
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def writer(n: int) -> None:
        pub = Publisher(mesh.catalog, contract)
        try:
            pub.write(widgets_table(n))
            original = pub._next_version
            # every writer picks its version before any of them commits
            pub._next_version = lambda state: (v := original(state), barrier.wait(), v)[2]  # type: ignore[method-assign]
            outcomes.append(pub.commit())
        except ConflictError as exc:
            outcomes.append(exc)
        finally:
            pub.abort()

    threads = [threading.Thread(target=writer, args=(n,)) for n in (5, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [o for o in outcomes if not isinstance(o, Exception)]
    losses = [o for o in outcomes if isinstance(o, ConflictError)]
    assert len(wins) == 1 and len(losses) == 1
    assert "committed by another writer first" in str(losses[0])
    assert mesh.catalog.versions("widgets") == [1]
    assert read_latest(mesh).num_rows == wins[0].row_count
    assert len(list(Path(mesh.catalog.paths("widgets").data).iterdir())) == 1


def test_crash_right_after_the_catalog_commit(mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Killed after the catalog commit (before hooks and retention): the new version is served."""
    mesh.publish("widgets", widgets_table(3))
    commit = mesh.catalog.tables.commit

    def commit_then_die(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        commit(*args, **kwargs)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(mesh.catalog.tables, "commit", commit_then_die)
    with pytest.raises(KeyboardInterrupt):
        mesh.publish("widgets", widgets_table(6))
    monkeypatch.undo()
    # the catalog commit is the commit point
    assert mesh.catalog.latest_version("widgets") == 2
    assert read_latest(mesh).num_rows == 6


def test_crash_before_commit(mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    before = lake_fingerprint(mesh)

    def boom(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("catalog unreachable")

    monkeypatch.setattr(mesh.catalog.tables, "commit", boom)
    with pytest.raises(OSError):
        mesh.publish("widgets", widgets_table(6))
    monkeypatch.undo()
    assert mesh.catalog.latest_version("widgets") == 1
    assert read_latest(mesh).num_rows == 3
    # The outcome of an interrupted commit is unknown to the writer, so it removes nothing;
    # retention's orphan sweep removes the unreferenced run and record.
    paths = mesh.catalog.paths("widgets")
    assert len(list(Path(paths.data).iterdir())) == 2 and len(list(Path(paths.records).iterdir())) == 2
    apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=3, orphan_grace_seconds=0)
    assert len(list(Path(paths.data).iterdir())) == 1 and len(list(Path(paths.records).iterdir())) == 1
    assert lake_fingerprint(mesh)["catalog"] == before["catalog"]


def test_retention_keeps_newest(mesh) -> None:  # noqa: ANN001
    for n in range(1, 6):
        mesh.publish("widgets", widgets_table(n))  # contract keeps 3 versions
    assert mesh.catalog.versions("widgets") == [3, 4, 5]
    assert len(list(Path(mesh.catalog.paths("widgets").data).iterdir())) == 3
    with pytest.raises(VersionNotFoundError):
        mesh.catalog.manifest("widgets", 1)
    removed = apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=1)
    assert removed == [3, 4]
    assert read_latest(mesh).num_rows == 5


KILL_SCRIPT = r"""
import sys, time
import pyarrow as pa
from datamesh.platform import Mesh
from datamesh.settings import Settings
from datamesh.publish import Publisher
mesh = Mesh.from_settings(Settings(lake_url=sys.argv[1], contracts_dir=sys.argv[2]))
contract = mesh.contract("widgets")
commit = mesh.catalog.tables.commit


def slow_commit(*args, **kwargs):
    # The record is written; hold before and after the catalog commit so the test can kill there.
    print("committing", flush=True)
    time.sleep(0.5)
    result = commit(*args, **kwargs)
    print("committed", flush=True)
    time.sleep(2.0)
    return result


mesh.catalog.tables.commit = slow_commit
print("ready", flush=True)
with Publisher(mesh.catalog, contract, rows_per_file=3000) as pub:
    for i in range(40):
        if i == 1:
            print("writing", flush=True)
        n = 1000
        pub.write(pa.table({
            "widget_id": pa.array(range(i * n, (i + 1) * n), pa.int64()),
            "color": pa.array(["green"] * n), "price": pa.array([1.0] * n),
            "made_at": pa.array([0] * n, pa.timestamp("us"))}))
        time.sleep(0.01)
    pub.commit()
print("done", flush=True)
"""


@pytest.mark.slow
def test_publish_killed_at_random_points(mesh, tmp_path: Path, contracts_dir: Path) -> None:  # noqa: ANN001
    """SIGKILL a publishing process at random moments: readers never see a partial version."""
    mesh.publish("widgets", widgets_table(7))
    script = tmp_path / "publish_slowly.py"
    script.write_text(KILL_SCRIPT)
    rng = random.Random(1234)
    lake_url = mesh.settings.lake_url
    killed_before_commit = killed_after_commit = 0
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    # The kills land while parts are staged, after the record is written but before the catalog
    # commit, and right after the commit; jitter within each phase.
    for attempt in range(9):
        phase = ("writing", "committing", "committed")[attempt % 3]
        version_before = mesh.catalog.latest_version("widgets")
        proc = subprocess.Popen([sys.executable, str(script), lake_url, str(contracts_dir)],
                                stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        for line in proc.stdout:
            if line.strip() == phase:
                break
        time.sleep(rng.uniform(0.0, 0.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        manifest = mesh.catalog.manifest("widgets")
        rows = read_latest(mesh).num_rows
        assert rows == manifest.row_count
        assert rows in (7, 40_000)
        if manifest.version == version_before:  # killed before its commit: the old version is served
            assert phase != "committed"
            killed_before_commit += 1
        else:  # killed after the commit: the new version is served, complete
            assert phase == "committed" and manifest.version == version_before + 1 and rows == 40_000
            killed_after_commit += 1
    assert killed_before_commit == 6 and killed_after_commit == 3, (killed_before_commit, killed_after_commit)
    # and the next publish works normally after all those kills
    m = mesh.publish("widgets", widgets_table(9))
    assert read_latest(mesh).num_rows == 9 and m.version >= 2
