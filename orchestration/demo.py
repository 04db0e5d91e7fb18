"""`mesh demo`: run the whole asset graph in-process on the embedded default."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datamesh.settings import Settings, build_settings
from ml.choices import Profile, Task, profile_named

if TYPE_CHECKING:
    import dagster as dg

    from datamesh.contracts import Contract, ContractRegistry


def _peak_rss_mib() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def run_demo(*, customers: int = 50_000, seed: int = 42, lake_url: str | None = None,
             progress: Callable[[str], None] = print, selection: str | None = None,
             profile: Profile | str = Profile.FAST, max_training_rows: int | None = 100_000,
             dagster_home: Path | None = None) -> dict[str, Any]:
    """Materialise every asset (sources → dbt → ML → predictions) and return a summary.

    The settings are built here, once, and reach every asset through the
    ``mesh`` resource's run config (the dbt asset hands them to its subprocess
    in a run context file); nothing is passed through the environment.
    ``profile`` is the demo's own choice of zoo profile (see :func:`demo_run_config`).
    The run is recorded in the persistent instance at ``dagster_home`` (default
    ``$DAGSTER_HOME``, else ``.dagster_home``: the one ``mesh ui`` opens), so the UI shows it.
    """
    chosen = profile_named(profile)
    settings = build_settings(lake_url=lake_url)
    os.environ.setdefault("DO_NOT_TRACK", "1")  # dbt's own telemetry opt-out, not a platform value
    started = time.perf_counter()
    progress(f"loading the code location (contracts, dbt manifest) for {customers:,} customers, seed {seed}")
    import dagster as dg

    from orchestration.definitions import contracts, defs

    job = defs.resolve_implicit_global_asset_job_def()
    progress(f"code location loaded in {time.perf_counter() - started:.1f}s; materialising "
             f"{len(list(defs.resolve_asset_graph().get_all_asset_keys()))} assets in-process into {settings.lake_url}")
    from orchestration.instance import dagster_home as instance_home
    from orchestration.instance import persistent_instance

    home = instance_home(dagster_home)
    instance = persistent_instance(home)
    run_config = demo_run_config(contracts, settings, customers=customers, seed=seed, profile=chosen,
                                 max_training_rows=max_training_rows)
    result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False,
                                    asset_selection=None if selection is None else [dg.AssetKey.from_user_string(selection)])
    steps: dict[str, float] = {}
    for event in result.all_events:
        if event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            data = event.event_specific_data
            duration = getattr(data, "duration_ms", None)
            steps[event.step_key or "?"] = (duration or 0) / 1000
    if not result.success:
        failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        messages = []
        for e in failures:
            err = e.event_specific_data.error if e.event_specific_data else None
            cause = err.cause if err is not None and err.cause is not None else err
            messages.append(f"{e.step_key}: {cause.message.strip() if cause else 'failed'}")
        from datamesh.errors import PlatformError

        raise PlatformError("The demo run failed:\n  " + "\n  ".join(messages))
    own, children = _peak_rss_mib()
    summary = {
        "customers": customers,
        "seed": seed,
        "lake": settings.lake_url,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "step_seconds": {k: round(v, 1) for k, v in steps.items()},
        "peak_rss_mib": {"this_process": round(own), "largest_child": round(children)},
        "products": _product_summary(settings),
        "models": _model_summary(settings),
        "dagster_home": str(home),
        "run_id": result.run_id,
    }
    return summary


def demo_run_config(contracts: ContractRegistry, settings: Settings, *, customers: int, seed: int,
                    profile: Profile, max_training_rows: int | None) -> dg.RunConfig:
    """Run config of the demo job, derived from the contracts like the assets it configures.

    Classification zoos run ``profile`` (Keras only with the full profile); the
    regression zoo (Ridge, Lasso, ElasticNet, HistGradientBoosting) is cheap, so it
    always runs whole. The task is each contract's ``ml.task``.
    """
    import dagster as dg

    from orchestration.assets.ml import ml_op_configs
    from orchestration.assets.sources import GeneratorConfig

    def profile_for(contract: Contract) -> Profile:
        return Profile.FULL if Task(contract.ml.task) is Task.REGRESSION else profile

    ops: dict[str, Any] = {"demo_sources": GeneratorConfig(customers=customers, seed=seed)}
    ops.update(ml_op_configs(contracts, seed=seed, profile_for=profile_for, include_keras=profile is Profile.FULL,
                             max_training_rows=max_training_rows))
    # INFO, not DEBUG: show our progress lines (training, publishing) without every engine event.
    return dg.RunConfig(
        ops=ops,
        loggers={"console": {"config": {"log_level": "INFO"}}, "progress": {}},
        resources={"mesh": {"config": {"lake_url": settings.lake_url, "contracts_dir": str(settings.contracts_dir)}}},
    )


def _product_summary(settings: Settings) -> list[dict[str, Any]]:
    from datamesh.platform import Mesh

    return [
        {k: row[k] for k in ("domain", "product", "version", "rows")}
        for row in Mesh.from_settings(settings).catalog.status() if row["version"] is not None
    ]


def _model_summary(settings: Settings) -> dict[str, Any]:
    try:
        from orchestration.assets.ml import latest_model_summary
    except ImportError:
        return {}
    return latest_model_summary(settings)
