"""How long a person waits for the `mesh` CLI: each command in a fresh process, against its target.

Targets (issue 13): ``mesh --help`` under 0.5 s; ``mesh products``, ``mesh describe`` and a small
``mesh query`` under 1.5 s; ``mesh models`` under 2 s. Each command runs ``repeats`` times in a new
interpreter after one warm-up (which fills the OS file cache); the median and p95 of the wall time
are compared with the target, and the CPU time (user + system of the child) is reported beside it,
because on a busy machine the wall time also measures the neighbours.

Whether Python may use cached bytecode matters more than anything else here: with
``PYTHONDONTWRITEBYTECODE=1`` and a virtualenv installed without ``--compile-bytecode`` every
module is compiled from source on every call. The report says which case was measured.

Example: ``python -m benchmarks.cli`` (builds a small demo lake in a temp folder) or
``python -m benchmarks.cli --lake /path/to/lake --repeats 7``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from datamesh.paths import PROJECT_ROOT

HELP_TARGET_S = 0.5
READ_TARGET_S = 1.5
MODELS_TARGET_S = 2.0


def mesh_executable() -> list[str]:
    """The ``mesh`` of this interpreter's environment (``python -m meshcli`` when no script is installed)."""
    script = Path(sys.executable).with_name("mesh")
    return [str(script)] if script.exists() else [sys.executable, "-m", "meshcli"]


def commands(product: str = "customers", query_product: str = "crm.customers",
             labelled: str = "churn_features") -> list[tuple[str, list[str], float]]:
    """(name, arguments, target in seconds) of every timed command."""
    return [
        ("help", ["--help"], HELP_TARGET_S),
        ("products", ["products"], READ_TARGET_S),
        ("describe", ["describe", product], READ_TARGET_S),
        ("query", ["query", f"select count(*) from {query_product}"], READ_TARGET_S),
        ("models", ["models", labelled], MODELS_TARGET_S),
    ]


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def _run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system of the child) and exit code of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-600:]}")
    return wall, cpu, proc.returncode


def bytecode_note(env: dict[str, str]) -> str:
    """Which bytecode case the children run in (see the module docstring)."""
    if env.get("PYTHONPYCACHEPREFIX"):
        return f"cached in {env['PYTHONPYCACHEPREFIX']}"
    site = Path(sys.executable).parent.parent / "lib"
    cached = any(site.glob("python3*/site-packages/typer/__pycache__/*.pyc"))
    if env.get("PYTHONDONTWRITEBYTECODE"):
        return "not written (PYTHONDONTWRITEBYTECODE); " + (
            "site-packages precompiled" if cached else "site-packages has none: every import compiles from source")
    return "written and read (__pycache__)"


def bench_cli(lake_env: dict[str, str], repeats: int = 5, *, product: str = "customers",
              query_product: str = "crm.customers", labelled: str = "churn_features") -> dict[str, Any]:
    """Time each command in fresh subprocesses (median and p95 of ``repeats`` runs after one warm-up).

    ``lake_env`` is added to this process's environment (``MESH_LAKE_URL`` and whatever else the
    lake needs). Returns one entry per command with its wall and CPU times, target and verdict.
    """
    env = {**os.environ, **lake_env}
    mesh = mesh_executable()
    results: dict[str, Any] = {}
    for name, args, target in commands(product, query_product, labelled):
        _run_once([*mesh, *args], env)  # warm-up: file cache, and bytecode if it may be written
        walls, cpus = [], []
        for _ in range(repeats):
            wall, cpu, _rc = _run_once([*mesh, *args], env)
            walls.append(wall)
            cpus.append(cpu)
        median = statistics.median(walls)
        results[name] = {
            "command": "mesh " + " ".join(args), "target_s": target, "runs": repeats,
            "median_s": round(median, 3), "p95_s": round(p95(walls), 3),
            "cpu_median_s": round(statistics.median(cpus), 3),
            "verdict": "pass" if median <= target else "FAIL",
        }
    return {"commands": results, "bytecode": bytecode_note(env), "load_average": os.getloadavg()[0]}


def build_demo_lake(root: Path, customers: int = 600) -> dict[str, str]:
    """A small demo lake (and its private Dagster / dbt folders) under ``root``; returns its environment."""
    env = {
        "MESH_LAKE_URL": str(root / "lake"),
        "DAGSTER_HOME": str(root / "dagster_home"),
        "MESH_DBT_DUCKDB_PATH": str(root / "dbt" / "mesh.duckdb"),
        "MESH_DBT_STAGING_DIR": str(root / "staging"),
    }
    for key in ("DAGSTER_HOME", "MESH_DBT_STAGING_DIR"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    Path(env["MESH_DBT_DUCKDB_PATH"]).parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*mesh_executable(), "demo", "--customers", str(customers)], env={**os.environ, **env},
                   cwd=PROJECT_ROOT, check=True, stdout=subprocess.DEVNULL)
    return env


def print_report(report: dict[str, Any]) -> None:
    print(f"bytecode: {report['bytecode']}; load average {report['load_average']:.2f}")
    print(f"{'command':<48} {'median':>8} {'p95':>8} {'cpu':>8} {'target':>7}  verdict")
    for r in report["commands"].values():
        print(f"{r['command'][:48]:<48} {r['median_s']:>7.2f}s {r['p95_s']:>7.2f}s {r['cpu_median_s']:>7.2f}s "
              f"{r['target_s']:>6.1f}s  {r['verdict']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli", description=__doc__.splitlines()[0])
    parser.add_argument("--lake", help="an existing lake (default: build a small demo lake in a temp folder)")
    parser.add_argument("--customers", type=int, default=600, help="scale of the demo lake it builds")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--product", default="customers", help="the product `mesh describe` shows")
    parser.add_argument("--query-product", default="crm.customers", help="the product the small query counts")
    parser.add_argument("--labelled", default="churn_features", help="the product `mesh models` lists")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mesh-cli-bench-") as tmp:
        lake_env = {"MESH_LAKE_URL": args.lake} if args.lake else build_demo_lake(Path(tmp), args.customers)
        report = bench_cli(lake_env, args.repeats, product=args.product, query_product=args.query_product,
                           labelled=args.labelled)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0 if all(r["verdict"] == "pass" for r in report["commands"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
