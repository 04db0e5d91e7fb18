"""`mesh demo` against the hand-written script (:mod:`benchmarks.baseline`), side by side (issue 13).

``python -m benchmarks.versus --customers N --repeats 3`` runs, interleaved,
the baseline and the whole platform demo, each as its own process with fresh
temporary folders (lake, DAGSTER_HOME, dbt's DuckDB file and staging folder),
and measures each process's wall time, CPU time (user + sys of the child and
the children it waited for, from ``os.wait4``) and peak RSS. The platform runs
:func:`orchestration.demo.run_demo` in a ``python -c`` child (``mesh demo``
cannot print its per-step seconds), which dumps the demo's summary to JSON.

Then it prints a table: per stage (the platform's Dagster step keys mapped to
the baseline's stages) the median seconds of both and their ratio, the total
wall and CPU ratios beside the issue's targets, and whether the outputs are
equal (:func:`compare_outputs`). The report goes to ``bench-results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datamesh.paths import PROJECT_ROOT

PYTHON = sys.executable

#: Baseline stage -> how the platform's step keys are recognised (prefixes, or "drift" inside the key).
STAGE_STEPS: dict[str, Callable[[str], bool]] = {
    "sources": lambda k: k == "demo_sources",
    "features": lambda k: k == "dbt_models",
    "churn_zoo": lambda k: k == "train_churn_features",
    "revenue_zoo": lambda k: k == "train_revenue_features",
    "segments": lambda k: k.startswith("segments_"),
    "anomalies": lambda k: k.startswith("anomalies_"),
    "scoring": lambda k: k.startswith("score_"),
    "drift": lambda k: "drift" in k,
}

TARGETS = {
    "total_wall_50k": "<= 1.25x",
    "total_cpu_50k": "<= 1.15x",
    "total_1m": "<= 1.1x wall and CPU, peak RSS < 4 GiB",
    "features": "platform dbt step <= 2x the same SQL + 5 s",
    "scoring": "platform scoring rate >= 0.85x a bare predict_proba",
}

PLATFORM_CHILD = """
import json, sys, time
t0 = time.perf_counter()
marks = {}
def progress(message):
    if message.startswith("code location loaded") and "load_s" not in marks:
        marks["load_s"] = time.perf_counter() - t0
from pathlib import Path
from orchestration.demo import run_demo
summary = run_demo(customers=int(sys.argv[1]), seed=int(sys.argv[2]), lake_url=sys.argv[3],
                   progress=progress, dagster_home=Path(sys.argv[4]))
summary["code_location_load_s"] = round(marks.get("load_s", 0.0), 2)
summary["process_wall_s"] = round(time.perf_counter() - t0, 2)
Path(sys.argv[5]).write_text(json.dumps(summary, default=str))
"""


def say(message: str) -> None:
    print(f"[versus {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class ChildRun:
    """One measured child process."""

    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    returncode: int
    summary: dict[str, Any] = field(default_factory=dict)


def measure(cmd: list[str], env: Mapping[str, str], log: Path, cwd: Path = PROJECT_ROOT) -> ChildRun:
    """Run ``cmd``; its wall time, CPU (user + sys, with the children it waited for) and peak RSS."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=dict(env), stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildRun(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode)


def run_baseline(customers: int, seed: int, work: Path) -> ChildRun:
    out, summary = work / "out", work / "baseline.json"
    cmd = [PYTHON, "-m", "benchmarks.baseline", "--customers", str(customers), "--seed", str(seed),
           "--out", str(out), "--json", str(summary)]
    run = measure(cmd, os.environ, work / "baseline.log")
    if run.returncode != 0:
        raise SystemExit(f"the baseline failed; see {work / 'baseline.log'}")
    run.summary = json.loads(summary.read_text())
    return run


def platform_env(work: Path, dbt_dir: Path | None = None) -> dict[str, str]:
    """Fresh folders for what a run keeps (DAGSTER_HOME, the lake); dbt's DuckDB file and staging folder in
    ``dbt_dir``, shared by the runs of one kind as a user's repeated ``mesh demo`` shares them (a new path
    every run would change dbt's profile, and dbt re-parses the whole project when its profile changes)."""
    dbt = dbt_dir or work / "dbt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(work / "dagster"), MESH_DBT_DUCKDB_PATH=str(dbt / "mesh_dbt.duckdb"),
               MESH_DBT_STAGING_DIR=str(dbt / "staging"), DO_NOT_TRACK="1")
    dbt.mkdir(parents=True, exist_ok=True)
    return env


def run_platform(customers: int, seed: int, work: Path, checkout: Path = PROJECT_ROOT, cold: bool = False,
                 dbt_dir: Path | None = None) -> ChildRun:
    """The demo from ``checkout`` (another worktree: an earlier commit), in this environment.

    ``cold`` gives the child an empty bytecode cache it may not write to, as every
    process had before ``make install`` compiled the dependencies (decision 0017).
    """
    lake, summary = work / "lake", work / "platform.json"
    cmd = [PYTHON, "-c", PLATFORM_CHILD, str(customers), str(seed), str(lake), str(work / "dagster"), str(summary)]
    env = platform_env(work, dbt_dir)
    if checkout != PROJECT_ROOT:
        env["PYTHONPATH"] = str(checkout)
    if cold:
        (work / "no-bytecode").mkdir(parents=True, exist_ok=True)
        env.update(PYTHONPYCACHEPREFIX=str(work / "no-bytecode"), PYTHONDONTWRITEBYTECODE="1")
    run = measure(cmd, env, work / "platform.log", cwd=checkout)
    if run.returncode != 0:
        raise SystemExit(f"the platform demo failed; see {work / 'platform.log'}")
    run.summary = json.loads(summary.read_text())
    return run


# -- the equality check -------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    equal: bool
    detail: str = ""


def _frame_of(mesh: Any, product: str) -> Any:
    from ml.products import load_frame

    return load_frame(mesh, product)[0]


TOLERANCE = 1e-12
"""Floats count as equal within this (absolute): a random forest's ``predict_proba`` (``n_jobs=-1``) adds
its trees' probabilities in the order its threads finish, so even two platform runs differ in the last bits.
Every check also says whether the values are bit-identical."""


def _close(a: Any, b: Any) -> tuple[bool, bool]:
    """(within TOLERANCE, bit-identical) of two numbers or None."""
    if a is None or b is None:  # a number missing on either side (both: nothing was computed) is a difference
        return False, False
    return abs(float(a) - float(b)) <= TOLERANCE, a == b


def _compare_columns(name: str, ours: Any, theirs: Any, key: str, column: str) -> Check:
    """Join on ``key`` and compare ``column`` (floats within TOLERANCE; the detail counts exact ones)."""
    import numpy as np

    merged = ours[[key, column]].merge(theirs[[key, column]], on=key, how="outer", suffixes=("_platform", "_baseline"),
                                       indicator=True)
    unmatched = int((merged["_merge"] != "both").sum())
    a, b = merged[f"{column}_platform"].to_numpy(), merged[f"{column}_baseline"].to_numpy()
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        gap = np.abs(a - b)
        differ, inexact = int((~(gap <= TOLERANCE)).sum()), int((a != b).sum())
        worst = float(np.nanmax(gap)) if len(a) else 0.0
        detail = (f"{len(merged):,} rows, {unmatched} unmatched, {differ} beyond {TOLERANCE:g}, "
                  f"{len(merged) - inexact:,} bit-identical, max |diff| {worst:.3g}")
    else:
        differ = int((a != b).sum())
        detail = f"{len(merged):,} rows, {unmatched} unmatched, {differ} differ"
    return Check(name, unmatched == 0 and differ == 0, detail)


def _metric_checks(product: str, card: Any, zoo: Mapping[str, Any], extra: tuple[str, ...]) -> list[Check]:
    """Champion, its full-precision metrics and threshold (the card's), and every candidate's metrics
    as the card's comparison table keeps them: rounded to 4 decimals (ml/evaluation.py comparison_table)."""
    out = [Check(f"{product}: champion", card.candidate == zoo["champion"],
                 f"platform {card.candidate}, baseline {zoo['champion']}")]
    best = zoo["candidates"][zoo["champion"]]["metrics"]
    pairs = [(f"champion {m}", card.metrics.get(m), best.get(m)) for m in (card.primary_metric, *extra)]
    if zoo.get("threshold") is not None or card.threshold is not None:
        pairs.append(("threshold", card.threshold, zoo["threshold"]))
    for what, ours, theirs in pairs:
        close, exact = _close(ours, theirs)
        out.append(Check(f"{product}: {what}", close,
                         f"platform {ours!r}, baseline {theirs!r}" + (" (bit-identical)" if exact else "")))
    rows = {row["candidate"]: row for row in card.comparison if row.get("status") == "ok"}
    missing = sorted(set(zoo["candidates"]) ^ set(rows))
    differ = []
    for name, row in rows.items():
        for metric in (card.primary_metric, *extra):
            theirs = zoo["candidates"].get(name, {}).get("metrics", {}).get(metric)
            if theirs is None or row.get(metric) != round(theirs, 4):
                differ.append(f"{name}.{metric}: {row.get(metric)} vs {theirs}")
    out.append(Check(f"{product}: every candidate's {'/'.join((card.primary_metric, *extra))} (card keeps 4 decimals)",
                     not missing and not differ, "; ".join([*(f"only one side: {m}" for m in missing), *differ])
                     or f"{len(rows)} candidates"))
    return out


def compare_outputs(baseline: Mapping[str, Any], lake: str) -> list[Check]:
    """The platform's outputs after a demo into ``lake`` against a baseline summary of the same customers
    and seed: feature marts row for row, champions, metrics, thresholds, per-customer predictions,
    segments and anomalies."""
    import pandas as pd

    from datamesh.platform import Mesh
    from datamesh.settings import Settings
    from ml.products import registry

    mesh = Mesh.from_settings(Settings(lake_url=lake))
    reg = registry(mesh)
    outputs, out_dir = baseline["outputs"], Path(baseline["out"])
    checks: list[Check] = []
    for mart in ("churn_features", "revenue_features"):
        ours = _frame_of(mesh, mart)
        theirs = pd.read_parquet(out_dir / "features" / f"{mart}.parquet")
        same = ours.reset_index(drop=True).equals(theirs.reset_index(drop=True))
        checks.append(Check(f"{mart}: rows", len(ours) == outputs["feature_rows"][mart],
                            f"platform {len(ours):,}, baseline {outputs['feature_rows'][mart]:,}"))
        checks.append(Check(f"{mart}: every row and column", same,
                            "identical" if same else f"columns {list(ours.columns) == list(theirs.columns)}, "
                            f"dtypes {list(ours.dtypes) == list(theirs.dtypes)}"))
    for product, zoo, extra in (("churn_features", outputs["churn"], ("pr_auc", "f1")),
                                ("revenue_features", outputs["revenue"], ("mae", "r2"))):
        champion = reg.champion(product)
        if champion is None:
            checks.append(Check(f"{product}: champion", False, "no champion in the platform's registry"))
            continue
        checks.extend(_metric_checks(product, champion.card, zoo, extra))
    checks.append(_compare_columns("churn_predictions: probability per customer", _frame_of(mesh, "churn_predictions"),
                                   pd.read_parquet(outputs["churn_predictions"]), "customer_id", "probability"))
    checks.append(_compare_columns("churn_predictions: predicted_label per customer", _frame_of(mesh, "churn_predictions"),
                                   pd.read_parquet(outputs["churn_predictions"]), "customer_id", "predicted_label"))
    checks.append(_compare_columns("revenue_forecasts: prediction per customer", _frame_of(mesh, "revenue_forecasts"),
                                   pd.read_parquet(outputs["revenue_forecasts"]), "customer_id", "prediction"))
    checks.append(_compare_columns("customer_segments: segment per customer", _frame_of(mesh, "customer_segments"),
                                   pd.read_parquet(out_dir / "customer_segments.parquet"), "customer_id", "segment"))
    checks.append(_compare_columns("anomalous_accounts: log-likelihood per customer", _frame_of(mesh, "anomalous_accounts"),
                                   pd.read_parquet(out_dir / "anomalous_accounts.parquet"), "customer_id",
                                   "log_likelihood"))
    return checks


# -- the side-by-side ---------------------------------------------------------------------------


def platform_stage_seconds(summary: Mapping[str, Any]) -> dict[str, float]:
    """The demo's step seconds summed per baseline stage, plus ``load`` (code location) and ``other``."""
    steps: Mapping[str, float] = summary.get("step_seconds", {})
    out = {stage: 0.0 for stage in STAGE_STEPS}
    other = 0.0
    for key, seconds in steps.items():
        stage = next((s for s, match in STAGE_STEPS.items() if match(key)), None)
        if stage is None:
            other += seconds
        else:
            out[stage] += seconds
    out["code_location_load"] = float(summary.get("code_location_load_s", 0.0))
    out["other_steps"] = other
    return out


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _ratio(ours: float, base: float) -> float | None:
    return round(ours / base, 3) if base > 0 else None


def side_by_side(customers: int, seed: int, repeats: int, keep: bool = False, before: Path | None = None,
                 before_cold: bool = False) -> dict[str, Any]:
    """Interleaved runs (baseline, platform[, the platform from ``before``], ...), the per-stage table,
    totals and the equality checks."""
    root = Path(tempfile.mkdtemp(prefix="versus-"))
    base_runs: list[ChildRun] = []
    plat_runs: list[ChildRun] = []
    before_runs: list[ChildRun] = []
    checks: list[Check] = []
    say(f"working folder {root}" + (" (kept)" if keep else ""))
    try:
        for i in range(repeats):
            say(f"repeat {i + 1}/{repeats}: baseline at {customers:,} customers")
            base = run_baseline(customers, seed, root / f"baseline-{i}")
            say(f"  baseline {base.wall_s:.1f} s wall, {base.cpu_s:.1f} s CPU; platform demo")
            plat = run_platform(customers, seed, root / f"platform-{i}", dbt_dir=root / "dbt-platform")
            say(f"  platform {plat.wall_s:.1f} s wall, {plat.cpu_s:.1f} s CPU")
            if i == 0:
                checks = compare_outputs(base.summary, str(root / f"platform-{i}" / "lake"))
            base_runs.append(base)
            plat_runs.append(plat)
            if before is not None:
                say(f"  before: the platform from {before}" + (" without bytecode" if before_cold else ""))
                before_runs.append(run_platform(customers, seed, root / f"before-{i}", before, before_cold,
                                                dbt_dir=root / "dbt-before"))
                say(f"  before {before_runs[-1].wall_s:.1f} s wall, {before_runs[-1].cpu_s:.1f} s CPU")
            if not keep and i > 0:
                for kind in ("baseline", "platform", "before"):
                    shutil.rmtree(root / f"{kind}-{i}", ignore_errors=True)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    result = report(customers, seed, base_runs, plat_runs, checks, before_runs)
    if before is not None:
        result["before"] = {"checkout": str(before), "without_bytecode": before_cold}
    return result


def report(customers: int, seed: int, base_runs: list[ChildRun], plat_runs: list[ChildRun],
           checks: list[Check], before_runs: list[ChildRun] | None = None) -> dict[str, Any]:
    plat_stages = [platform_stage_seconds(r.summary) for r in plat_runs]
    before_stages = [platform_stage_seconds(r.summary) for r in before_runs or []]
    stages: dict[str, Any] = {}
    for stage in ("code_location_load", *STAGE_STEPS, "other_steps"):
        ours = _median([s[stage] for s in plat_stages])
        base = _median([r.summary["stages"].get(stage, {}).get("wall_s", 0.0) for r in base_runs])
        stages[stage] = {"platform_s": round(ours, 2), "baseline_s": round(base, 2), "ratio": _ratio(ours, base)}
        if before_stages:
            was = _median([s[stage] for s in before_stages])
            stages[stage].update(before_s=round(was, 2), before_ratio=_ratio(was, base))
    total = {
        "platform_wall_s": round(_median([r.wall_s for r in plat_runs]), 1),
        "baseline_wall_s": round(_median([r.wall_s for r in base_runs]), 1),
        "platform_cpu_s": round(_median([r.cpu_s for r in plat_runs]), 1),
        "baseline_cpu_s": round(_median([r.cpu_s for r in base_runs]), 1),
        "platform_peak_rss_mib": round(max(r.peak_rss_mib for r in plat_runs)),
        "baseline_peak_rss_mib": round(max(r.peak_rss_mib for r in base_runs)),
    }
    total["wall_ratio"] = _ratio(total["platform_wall_s"], total["baseline_wall_s"])
    total["cpu_ratio"] = _ratio(total["platform_cpu_s"], total["baseline_cpu_s"])
    if before_runs:
        total.update(before_wall_s=round(_median([r.wall_s for r in before_runs]), 1),
                     before_cpu_s=round(_median([r.cpu_s for r in before_runs]), 1),
                     before_peak_rss_mib=round(max(r.peak_rss_mib for r in before_runs)))
        total["before_wall_ratio"] = _ratio(total["before_wall_s"], total["baseline_wall_s"])
        total["before_cpu_ratio"] = _ratio(total["before_cpu_s"], total["baseline_cpu_s"])
    features, scoring = stages["features"], stages["scoring"]
    verdicts = {
        "features_within_2x_plus_5s": features["platform_s"] <= 2 * features["baseline_s"] + 5,
        "scoring_rate_ratio": _ratio(scoring["baseline_s"], scoring["platform_s"]),
    }
    return {"customers": customers, "seed": seed, "repeats": len(base_runs), "stages": stages, "total": total,
            "targets": TARGETS, "verdicts": verdicts, "outputs_equal": all(c.equal for c in checks),
            "checks": [c.__dict__ for c in checks],
            "runs": {"baseline": [r.__dict__ | {"summary": None} for r in base_runs],
                     "platform": [r.__dict__ | {"summary": None} for r in plat_runs],
                     "before": [r.__dict__ | {"summary": None} for r in before_runs or []]}}


def _r(ratio: float | None) -> str:
    return f"{ratio:.2f}" if ratio is not None else "-"


def table(result: Mapping[str, Any]) -> str:
    t = result["total"]
    was = "before_wall_s" in t
    lines = [f"mesh demo vs hand-written baseline, {result['customers']:,} customers, seed {result['seed']}, "
             f"median of {result['repeats']}" + (f"; before = {result['before']['checkout']}" if was else ""),
             f"{'stage':<20}{'platform s':>12}{'baseline s':>12}{'ratio':>8}"
             + (f"{'before s':>10}{'ratio':>8}" if was else "")]
    for stage, row in result["stages"].items():
        lines.append(f"{stage:<20}{row['platform_s']:>12.2f}{row['baseline_s']:>12.2f}{_r(row['ratio']):>8}"
                     + (f"{row['before_s']:>10.2f}{_r(row['before_ratio']):>8}" if was else ""))
    if was:
        lines.append(f"{'before: total wall':<20}{t['before_wall_s']:>12.1f}{t['baseline_wall_s']:>12.1f}"
                     f"{_r(t['before_wall_ratio']):>8}; CPU {t['before_cpu_s']:.1f} s ({_r(t['before_cpu_ratio'])}x), "
                     f"peak RSS {t['before_peak_rss_mib']} MiB")
    lines.append(f"{'total wall':<20}{t['platform_wall_s']:>12.1f}{t['baseline_wall_s']:>12.1f}{t['wall_ratio']:>8.2f}"
                 f"   target {TARGETS['total_wall_50k']} at 50k")
    lines.append(f"{'total CPU':<20}{t['platform_cpu_s']:>12.1f}{t['baseline_cpu_s']:>12.1f}{t['cpu_ratio']:>8.2f}"
                 f"   target {TARGETS['total_cpu_50k']} at 50k; {TARGETS['total_1m']} at 1M")
    lines.append(f"{'peak RSS MiB':<20}{t['platform_peak_rss_mib']:>12}{t['baseline_peak_rss_mib']:>12}")
    v = result["verdicts"]
    lines.append(f"features: {TARGETS['features']}: {'met' if v['features_within_2x_plus_5s'] else 'NOT met'}")
    lines.append(f"scoring: {TARGETS['scoring']}: rate ratio {v['scoring_rate_ratio']} (whole scoring steps, "
                 "incl. publish, vs bare predict_proba + write)")
    lines.append(f"outputs equal: {result['outputs_equal']}")
    lines += [f"  {'ok  ' if c['equal'] else 'DIFF'} {c['name']}: {c['detail']}" for c in result["checks"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.versus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (printed)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench-results", help="where the JSON report goes")
    parser.add_argument("--before", type=Path, default=None,
                        help="also run the demo from this checkout each round (e.g. a `git worktree` of an earlier "
                             "commit) and report it beside the platform")
    parser.add_argument("--before-cold", action="store_true",
                        help="run --before without bytecode, as every process ran before decision 0017")
    args = parser.parse_args(argv)
    result = side_by_side(args.customers, args.seed, args.repeats, keep=args.keep, before=args.before,
                          before_cold=args.before_cold)
    print(table(result))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"versus-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    say(f"report written to {path}")
    return 0 if result["outputs_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
