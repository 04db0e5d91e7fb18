"""`make bench`: wall time per stage, peak memory, and side-by-side ratios.

Every speed target is reported as a ratio against a baseline measured in the
same process, interleaved with our runs (median of several), because these
machines are noisy. Sections:

* ``pipeline``  — the whole demo (Dagster in-process) at ``--customers``: time per stage, peak RSS
* ``publish``   — our publish of a 1M-row table vs a bare ``pyarrow.parquet.write_table``
* ``s3``        — the same on the native S3 server (starts the stack in a temp folder)
* ``trino``     — analyst queries: Trino vs DuckDB on the same files (needs ``pipeline`` on S3)
* ``trino-small`` — Trino's fixed cost on small analyst queries (count, group-by, lookup, a join) at
  ``--customers``: p50/p95 with the stack's settings vs dynamic filtering on (decision 0014)
* ``history``   — a product's publish cost as its history grows: a 2,000-row ``customers`` published
  ``--history-versions`` times (default 40) in a fresh lake; the median per block of 10 versions, and the
  last block over the first (flat is 1.0: each snapshot lists only its own manifests, decision 0045)
* ``ml``        — training time per candidate; batch scoring vs a bare ``predict_proba``
* ``ui``        — the Dagster UI: code-location import, ``mesh ui`` start-up, a one-step UI run with one
  process per run vs one per step (on the pipeline's lake, or a small demo lake)
* ``tpch``      — TPC-H at ``--tpch-sf`` (default 1) on the native stack: the 22 queries in Trino vs
  DuckDB over the same Iceberg products, each result checked against the official answer
  (shipped for SF 0.01, 0.1 and 1)
* ``cli``       — `mesh --help`, `products`, `describe`, a small `query` and `models` in fresh processes
  (median, p95) against their targets (0.5 / 1.5 / 1.5 / 1.5 / 2 s), on the pipeline's lake
* ``versus``    — the whole demo vs the hand-written script of the same work (``benchmarks/versus.py``,
  ``benchmarks/baseline.py``), interleaved processes at ``--customers``: per stage, total wall/CPU
  ratios, peak RSS, and whether the outputs (ROC-AUCs, thresholds, probabilities) are equal

Example: ``python -m benchmarks.run --customers 50000 --sections publish,ml``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from datamesh.paths import PROJECT_ROOT

SECTIONS = ("pipeline", "publish", "history", "s3", "trino", "trino-small", "ml", "scoring", "tpch", "ui", "versus", "cli")


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_rss_mib() -> dict[str, float]:
    return {
        "this_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "largest_child": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def interleaved(baseline: Callable[[], object], ours: Callable[[], object], repeats: int) -> dict[str, float]:
    """Median seconds of baseline and ours, alternated to share the machine's noise."""
    base, mine = [], []
    baseline()
    ours()  # warm-up (imports, caches)
    for _ in range(repeats):
        t0 = time.perf_counter()
        baseline()
        t1 = time.perf_counter()
        ours()
        t2 = time.perf_counter()
        base.append(t1 - t0)
        mine.append(t2 - t1)
    b, m = statistics.median(base), statistics.median(mine)
    return {"baseline_s": round(b, 4), "ours_s": round(m, 4), "ratio": round(m / b, 3), "overhead_pct": round((m / b - 1) * 100, 1),
            "baseline_p95_s": round(p95(base), 4), "ours_p95_s": round(p95(mine), 4)}


def p95(samples: list[float]) -> float:
    """The nearest-rank 95th percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def customers_like_table(n: int, seed: int = 0) -> pa.Table:
    """A 1M-row table shaped like crm.customers (strings, enums, ints, timestamps)."""
    from demo_sources.generator import DemoConfig, iter_product

    tables = list(iter_product("customers", DemoConfig(customers=n, seed=seed, chunk_customers=min(n, 250_000))))
    return pa.concat_tables(tables).combine_chunks()


def bench_publish(mesh_factory: Callable[[str], Any], root: str, n: int, repeats: int, fs: Any = None) -> dict[str, Any]:
    table = customers_like_table(n)
    mesh = mesh_factory(root)
    bare_path = f"{mesh.lake.root}/_bench/bare.parquet"
    if not mesh.lake.is_s3:
        Path(bare_path).parent.mkdir(parents=True, exist_ok=True)

    def bare() -> None:
        pq.write_table(table, bare_path, filesystem=mesh.lake.fs, compression="snappy", row_group_size=1_000_000)

    def ours() -> None:
        mesh.publish("customers", table)

    result = interleaved(bare, ours, repeats)
    result.update(rows=n, mb=round(table.nbytes / 2**20, 1), lake=mesh.lake.url,
                  rows_per_s_ours=round(n / result["ours_s"]), rows_per_s_bare=round(n / result["baseline_s"]))
    return result


def bench_history(root: str, versions: int) -> dict[str, Any]:
    """Publish the same small table ``versions`` times; the median seconds per block of 10 versions."""
    table = customers_like_table(2_000)
    mesh = local_mesh(root)
    seconds = []
    for _ in range(versions):
        t0 = time.perf_counter()
        mesh.publish("customers", table)
        seconds.append(time.perf_counter() - t0)
    blocks = {f"{a + 1}-{min(a + 10, versions)}": round(statistics.median(seconds[a:a + 10]) * 1000, 1)
              for a in range(0, versions, 10)}
    medians = list(blocks.values())
    t0 = time.perf_counter()
    local_mesh(root).catalog.manifest("customers")
    return {"rows": table.num_rows, "versions": versions, "keep": mesh.contract("customers").retention_versions,
            "median_ms_per_block": blocks, "last_over_first": round(medians[-1] / medians[0], 2),
            "head_read_in_a_new_mesh_ms": round((time.perf_counter() - t0) * 1000, 1)}


def local_mesh(root: str) -> Any:
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    return Mesh.from_settings(Settings(lake_url=root))


def bench_pipeline(customers: int, lake_url: str) -> dict[str, Any]:
    from orchestration.demo import run_demo

    os.environ.setdefault("MESH_DBT_DUCKDB_PATH", str(Path(tempfile.mkdtemp()) / "dbt.duckdb"))
    os.environ.setdefault("MESH_DBT_STAGING_DIR", str(Path(tempfile.mkdtemp()) / "staging"))
    summary = run_demo(customers=customers, lake_url=lake_url, progress=say)
    summary["peak_rss_mib"] = {k: round(v) for k, v in peak_rss_mib().items()}
    return summary


def bench_s3(n: int, repeats: int) -> dict[str, Any]:
    import nativestack

    home = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    s3_port, trino_port, postgres_port = _free_ports(3)
    ep = nativestack.start(home=home, s3_port=s3_port, trino_port=trino_port, postgres_port=postgres_port, echo=say)
    try:
        from datamesh.platform import Mesh
        from datamesh.settings import Settings

        def s3_mesh(root: str) -> Any:
            return Mesh.from_settings(Settings(**{  # type: ignore[arg-type]
                **{k.removeprefix("MESH_").lower(): v for k, v in ep.as_settings_env().items()},
                "trino_host": None}))

        return bench_publish(s3_mesh, "", n, repeats)
    finally:
        nativestack.stop(home, echo=say)


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (the sockets stay bound until all are chosen)."""
    import socket
    from contextlib import ExitStack

    with ExitStack() as sockets:
        ports = []
        for _ in range(count):
            s = sockets.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    return ports


def copy_products(source_lake: str, products: list[str]) -> None:
    """Publish the latest versions of products from a local lake into the current (S3) settings' lake."""
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    source = Mesh.from_settings(Settings(lake_url=source_lake))
    target = Mesh.from_settings()
    for product in products:
        manifest = source.catalog.manifest(product)

        def batches(manifest: Any = manifest) -> Any:
            for path in source.catalog.file_paths(manifest):
                yield from pq.ParquetFile(path).iter_batches(batch_size=250_000)

        say(f"copying {product} v{manifest.version} ({manifest.row_count:,} rows) to {target.lake.url}")
        target.publish(product, batches(), inputs=manifest.inputs)


def bench_trino(customers: int, repeats: int, source_lake: str | None = None) -> dict[str, Any]:
    """Analyst queries on churn features and predictions: Trino vs DuckDB, same files on S3.

    With ``source_lake`` (a local lake where the pipeline already ran, e.g. at 1M customers)
    the products the queries need are copied to S3 instead of re-running the pipeline there.
    """
    import nativestack
    from datamesh.paths import DBT_PROJECT_DIR
    from datamesh.settings import get_settings

    home = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    s3_port, trino_port, postgres_port = _free_ports(3)
    ep = nativestack.start(home=home, s3_port=s3_port, trino_port=trino_port, postgres_port=postgres_port, echo=say)
    try:
        os.environ.update(ep.as_settings_env())
        get_settings.cache_clear()
        if source_lake:
            os.environ["MESH_LAKE_URL"] = ep.lake_url  # a fresh stack: its bucket root is the policy's lake root
            get_settings.cache_clear()
            t0 = time.perf_counter()
            copy_products(source_lake, ["customers", "churn_features", "churn_predictions"])
            pipeline = {"wall_seconds": round(time.perf_counter() - t0, 1), "copied_from": source_lake}
        else:
            pipeline = bench_pipeline(customers, ep.lake_url)
        from datamesh.platform import Mesh
        from datamesh.trino import TrinoClient

        mesh = Mesh.from_settings()
        trino = TrinoClient.from_settings(mesh.settings)
        queries = {p.stem: p.read_text().strip().rstrip(";") for p in sorted((DBT_PROJECT_DIR / "analyst").glob("*.sql"))}
        queries["predictions_by_plan"] = (
            "select f.plan, count(*) as customers, avg(p.probability) as mean_probability, "
            "sum(case when p.predicted_label then 1 else 0 end) as flagged "
            "from retention.churn_predictions p join retention.churn_features f using (customer_id) group by 1 order by 1")
        queries["feature_scan"] = (
            "select count(*), avg(usage_trend_ratio), max(days_since_last_event), "
            "sum(tickets_last_90_days) from retention.churn_features")
        results: dict[str, Any] = {}
        with mesh.session() as session:
            for name, sql in queries.items():
                missing = [p for p in session.missing
                           if re.search(rf"\b{mesh.contract(p).domain}\.{p}\b", sql)]
                if missing:
                    results[name] = {"skipped": f"needs {missing}, not published in this lake"}
                    continue
                def duck(sql: str = sql) -> None:
                    session.sql(sql).fetchall()

                def tri(sql: str = sql) -> None:
                    trino.query(sql)

                r = interleaved(duck, tri, repeats)
                results[name] = {"duckdb_p50_s": r["baseline_s"], "duckdb_p95_s": r["baseline_p95_s"],
                                 "trino_p50_s": r["ours_s"], "trino_p95_s": r["ours_p95_s"],
                                 "trino_over_duckdb": r["ratio"]}
        rows = mesh.catalog.manifest("churn_features").row_count
        return {"customers": customers, "churn_features_rows": rows, "queries": results,
                "prepare_wall_s": pipeline["wall_seconds"]}
    finally:
        nativestack.stop(home, echo=say)


def bench_tpch(sf: float, repeats: int) -> dict[str, Any]:
    """TPC-H at scale factor ``sf``: the eight tables published on the native stack's S3 lake, then each of
    the 22 queries in DuckDB (MeshSession) and Trino, interleaved; medians, the Trino/DuckDB ratio, and
    each engine's result against the official answer (where the extension ships one for ``sf``)."""
    import nativestack
    from benchmarks import tpch
    from datamesh.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    s3_port, trino_port, postgres_port = _free_ports(3)
    ep = nativestack.start(home=home, s3_port=s3_port, trino_port=trino_port, postgres_port=postgres_port, echo=say)
    try:
        settings = Settings(**{  # type: ignore[arg-type]
            **{k.removeprefix("MESH_").lower(): v for k, v in ep.as_settings_env().items()},
            "contracts_dir": tpch.CONTRACTS_DIR})
        mesh = tpch.tpch_mesh(settings)
        t0 = time.perf_counter()
        tables = tpch.generate(sf, mesh.contracts)
        generate_s = time.perf_counter() - t0
        say(f"dbgen sf={sf}: {sum(t.num_rows for t in tables.values()):,} rows in {generate_s:.1f}s")
        t0 = time.perf_counter()
        tpch.publish_all(mesh, tables, progress=say)
        publish_s = time.perf_counter() - t0
        rows = {name: table.num_rows for name, table in tables.items()}
        del tables
        answers = tpch.answers(sf) if tpch.has_answers(sf) else {}
        trino = tpch.TpchTrino.for_mesh(mesh)
        results: dict[str, Any] = {}
        with mesh.session() as session:
            for number in tpch.QUERY_NUMBERS:
                last: dict[str, Any] = {}

                def duck(number: int = number, last: dict[str, Any] = last) -> None:
                    last["duckdb"] = tpch.run_duckdb(session, tpch.duckdb_sql(number))

                def tri(number: int = number, last: dict[str, Any] = last) -> None:
                    last["trino"] = tpch.run_trino(trino, tpch.trino_sql(number))

                entry: dict[str, Any] = {}
                try:
                    r = interleaved(duck, tri, repeats)
                    entry.update(duckdb_median_s=r["baseline_s"], trino_median_s=r["ours_s"],
                                 trino_over_duckdb=r["ratio"])
                except Exception as exc:  # one failing query must not hide the other 21
                    entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                for engine in ("duckdb", "trino"):
                    result = last.get(engine)
                    if result is None:
                        entry[f"{engine}_answer"] = "not run"
                    elif number in answers:
                        entry[f"{engine}_answer"] = str(tpch.compare(answers[number], result.columns, result.rows))
                    else:
                        entry[f"{engine}_answer"] = f"no official answer for sf {sf}"
                if number in tpch.TRINO_ADAPTATIONS:
                    entry["trino_adaptation"] = tpch.TRINO_ADAPTATIONS[number][2]
                say(f"Q{number}: {entry}")
                results[f"q{number:02d}"] = entry
        timed = [e for e in results.values() if "trino_over_duckdb" in e]
        summary: dict[str, Any] = {
            "queries_timed": len(timed),
            "duckdb_total_median_s": round(sum(e["duckdb_median_s"] for e in timed), 3),
            "trino_total_median_s": round(sum(e["trino_median_s"] for e in timed), 3),
            "trino_over_duckdb_geomean": round(statistics.geometric_mean([e["trino_over_duckdb"] for e in timed]), 3)
            if timed else None,
        }
        for engine in ("duckdb", "trino"):
            summary[f"{engine}_same_as_answer"] = sum(e[f"{engine}_answer"] == "same" for e in results.values())
        return {"sf": sf, "rows": rows, "generate_s": round(generate_s, 1), "publish_s": round(publish_s, 1),
                "repeats": repeats, "answers_checked": bool(answers), "summary": summary, "queries": results}
    finally:
        nativestack.stop(home, echo=say)


SMALL_QUERIES = {
    "select_1": "select 1",
    "count": "select count(*) from crm.customers",
    "group_by": "select plan, count(*) from crm.customers group by 1 order by 1",
    "lookup": "select * from crm.customers where customer_id = (select min(customer_id) from crm.customers)",
    "join_group_by": ("select c.plan, count(*), sum(i.amount_usd) from crm.customers c "
                      "join billing.invoices i on i.customer_id = c.customer_id group by 1 order by 1"),
}


def bench_trino_small(customers: int, repeats: int) -> dict[str, Any]:
    """Trino's fixed cost on small analyst queries (decision 0014): p50/p95 with the stack's
    settings and with dynamic filtering switched back on, alternated in one session."""
    import nativestack
    from datamesh.platform import Mesh
    from datamesh.settings import build_settings
    from demo_sources.generator import DemoConfig, iter_product

    home = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    s3_port, trino_port, postgres_port = _free_ports(3)
    ep = nativestack.start(home=home, s3_port=s3_port, trino_port=trino_port, postgres_port=postgres_port, echo=say)
    try:
        env = ep.as_settings_env()
        settings = build_settings(**{k.removeprefix("MESH_").lower(): v for k, v in env.items()})
        mesh = Mesh.from_settings(settings)
        config = DemoConfig(customers=customers, seed=42)
        for product in ("customers", "invoices"):
            mesh.publish(product, iter_product(product, config, mesh.contracts))
        import trino

        def cursor(dynamic_filtering: bool) -> Any:
            from datamesh.trino import trino_session

            user = ep.principal_of("platform")
            return trino.dbapi.connect(
                host=ep.trino_host, port=ep.trino_port, user=user, catalog="lake", http_scheme="https",
                auth=trino.auth.BasicAuthentication(user, ep.principals[user].trino_password),
                http_session=trino_session(ep.trino_ca_file),
                session_properties={"enable_dynamic_filtering": str(dynamic_filtering).lower()}).cursor()

        stack_default, df_on = cursor(False), cursor(True)
        results: dict[str, Any] = {}
        for name, sql in SMALL_QUERIES.items():
            def run(cur: Any, sql: str = sql) -> None:
                cur.execute(sql)
                cur.fetchall()

            for _ in range(5):  # JIT warm-up
                run(stack_default)
                run(df_on)
            r = interleaved(lambda: run(df_on), lambda: run(stack_default), repeats)
            results[name] = {"p50_ms": round(r["ours_s"] * 1000), "p95_ms": round(r["ours_p95_s"] * 1000),
                             "dynamic_filtering_on_p50_ms": round(r["baseline_s"] * 1000),
                             "dynamic_filtering_on_p95_ms": round(r["baseline_p95_s"] * 1000)}
        return {"customers": customers, "repeats": repeats, "queries": results}
    finally:
        nativestack.stop(home, echo=say)


def bench_scoring(lake_url: str, repeats: int) -> dict[str, Any]:
    """Champion scoring, lake to published product, vs a bare predict_proba on the same frame
    (an existing lake with a champion, e.g. the 1M-customer demo: --source-lake)."""
    from datamesh.platform import Mesh
    from datamesh.settings import Settings
    from ml.products import load_frame, registry, score_product

    mesh = Mesh.from_settings(Settings(lake_url=lake_url))
    champion = registry(mesh).champion("churn_features")
    if champion is None:
        raise SystemExit(f"no churn champion in {lake_url}: run the demo there first")
    model = registry(mesh).load("churn_features", champion.version)
    frame, _ = load_frame(mesh, "churn_features")
    r = interleaved(lambda: model.predict_proba(frame), lambda: score_product(mesh, "churn_features"), repeats)
    n = len(frame)
    return {"rows": n, "champion": champion.card.candidate,
            "bare_predict_proba_rows_per_s": round(n / r["baseline_s"]),
            "lake_to_published_product_rows_per_s": round(n / r["ours_s"]),
            "ours_over_bare_rate": round(r["baseline_s"] / r["ours_s"], 3), **r}


def bench_ml(customers: int, lake_url: str, profile: str, repeats: int) -> dict[str, Any]:
    """Training time per candidate; scoring throughput vs bare predict_proba on the same arrays."""
    from datamesh.platform import Mesh
    from datamesh.settings import Settings
    from ml.products import load_frame, registry, score_product, train_product

    mesh = Mesh.from_settings(Settings(lake_url=lake_url))
    if mesh.catalog.latest_version("churn_features") is None:
        bench_pipeline(customers, lake_url)
    outcome = train_product(mesh, "churn_features", profile=profile, progress=say)
    per_candidate = {r.name: {"seconds": round(r.seconds, 1), "status": r.status,
                              "roc_auc": round(r.metrics.get("roc_auc", float("nan")), 4) if r.metrics else None}
                     for r in outcome.report.results}
    champion = registry(mesh).champion("churn_features")
    assert champion is not None
    model = registry(mesh).load("churn_features", champion.version)
    frame, manifest = load_frame(mesh, "churn_features")

    def bare() -> None:
        model.predict_proba(frame)

    def ours() -> None:
        score_product(mesh, "churn_features")

    r = interleaved(bare, ours, repeats)
    n = len(frame)
    return {
        "rows": n, "profile": profile, "candidates": per_candidate, "skipped": [list(s) for s in outcome.report.notes],
        "scoring": {"bare_predict_proba_rows_per_s": round(n / r["baseline_s"]),
                    "lake_to_published_product_rows_per_s": round(n / r["ours_s"]),
                    "ours_over_bare_rate": round(r["baseline_s"] / r["ours_s"], 3), **r},
    }


def bench_ui_section(lake_url: str, work: Path, customers: int, repeats: int) -> dict[str, Any]:
    from benchmarks.ui import bench_ui
    from ml.products import registry

    if registry(local_mesh(lake_url)).champion("churn_features") is None:
        lake_url = str(work / "lake-ui")
        say(f"no churn champion in the pipeline's lake: a small demo first into {lake_url}")
        from orchestration.demo import run_demo

        run_demo(customers=min(customers, 3000), lake_url=lake_url, progress=say, dagster_home=work / "ui-home")
    return bench_ui(lake_url, work, repeats, say)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=50_000, help="pipeline scale (default 50,000)")
    parser.add_argument("--sections", default="pipeline,publish,ml",
                        help=f"comma-separated subset of {','.join(SECTIONS)} (default pipeline,publish,ml)")
    parser.add_argument("--publish-rows", type=int, default=1_000_000, help="rows for the publish ratio")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repetitions per ratio (median)")
    parser.add_argument("--profile", default="fast", help="model zoo profile for the ml section (fast|full)")
    parser.add_argument("--history-versions", type=int, default=40,
                        help="history section: how many versions to publish (default 40)")
    parser.add_argument("--source-lake", default=None,
                        help="trino section: copy products from this local lake instead of re-running the pipeline")
    parser.add_argument("--tpch-sf", type=float, default=1.0,
                        help="tpch section: TPC-H scale factor (default 1; answers exist for 0.01, 0.1, 1)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench-results", help="where the JSON report goes")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    lake = str(work / "lake")
    report: dict[str, Any] = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "customers": args.customers,
                              "cpus": os.cpu_count()}
    for section in sections:
        say(f"section {section}")
        t0 = time.perf_counter()
        if section == "pipeline":
            report["pipeline"] = bench_pipeline(args.customers, lake)
        elif section == "publish":
            report["publish_local"] = bench_publish(local_mesh, str(work / "publish"), args.publish_rows, args.repeats)
        elif section == "history":
            report["history"] = bench_history(str(work / "history"), args.history_versions)
        elif section == "s3":
            report["publish_s3"] = bench_s3(args.publish_rows, args.repeats)
        elif section == "trino":
            report["trino_vs_duckdb"] = bench_trino(args.customers, args.repeats, args.source_lake)
        elif section == "tpch":
            report["tpch"] = bench_tpch(args.tpch_sf, args.repeats)
        elif section == "trino-small":
            report["trino_small"] = bench_trino_small(args.customers, max(args.repeats, 15))
        elif section == "scoring":
            report["scoring"] = bench_scoring(args.source_lake or lake, max(2, args.repeats // 2))
        elif section == "ui":
            report["ui"] = bench_ui_section(args.source_lake or lake, work, args.customers, max(2, args.repeats // 2))
        elif section == "ml":
            report["ml"] = bench_ml(args.customers, lake, args.profile, max(1, args.repeats // 2))
        elif section == "cli":
            from benchmarks.cli import bench_cli

            report["cli"] = bench_cli({"MESH_LAKE_URL": args.source_lake or lake}, args.repeats)
        elif section == "versus":
            from benchmarks.versus import side_by_side, table

            report["versus"] = side_by_side(args.customers, 42, max(3, args.repeats // 2))  # the median of >= 3
            say(table(report["versus"]))
        report.setdefault("section_seconds", {})[section] = round(time.perf_counter() - t0, 1)
    report["peak_rss_mib"] = {k: round(v) for k, v in peak_rss_mib().items()}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    text = json.dumps(report, indent=2, default=str)
    path.write_text(text)
    print(text)
    say(f"report written to {path}")
    if "versus" in report and not report["versus"]["outputs_equal"]:
        say("the platform's outputs differ from the hand-written baseline's (see versus.checks)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
