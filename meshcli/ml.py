"""Commands of the ML layer and the demo: train, models, demo (the CLI sits above ml and orchestration)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from meshcli.app import app, handled, mesh_from_settings
from meshcli.render import OutputFormat, metric_cells, print_demo_summary, print_rows, print_table, progress, say
from ml.choices import DEFAULT_PROFILE, Profile


@app.command()
@handled
def demo(
    customers: Annotated[int, typer.Option(help="Scale: number of customers", min=100)] = 50_000,
    seed: Annotated[int, typer.Option(help="Random seed of the generator and the models")] = 42,
    lake: Annotated[str | None, typer.Option(help="Lake URL (default: MESH_LAKE_URL or ./lake)")] = None,
    profile: Annotated[str, typer.Option(help="Model zoo: fast (5 candidates, the demo's choice) or full (every "
                                         "family, Keras; several times longer)")] = Profile.FAST.value,
    max_training_rows: Annotated[int, typer.Option(help="Cross-validate on a stratified sample of at most this many rows")] = 100_000,
) -> None:
    """Run the whole pipeline on the embedded default: generate, publish, dbt, train, score.

    Runs the Dagster asset graph in-process (no servers) and prints a summary.

    Example: `mesh demo --customers 5000`
    """
    import time

    from rich.console import Console

    from meshcli.render import StepLines
    from orchestration.demo import run_demo
    from orchestration.instance import dagster_home
    from orchestration.progress import listening, output_to

    # Dagster's engine log, dbt's build log and library warnings go to a file; the terminal gets
    # one line per step. The path is printed first so a failure can be read in full.
    log_path = dagster_home() / "demo-logs" / f"demo-{time.strftime('%Y%m%d-%H%M%S')}.log"
    progress(f"full log: {log_path}")
    with output_to(log_path) as terminal:
        lines = StepLines(Console(file=terminal, markup=False, highlight=False))
        with listening(lines), lines:
            summary = run_demo(customers=customers, seed=seed, lake_url=lake, progress=lines.say, profile=profile,
                               max_training_rows=max_training_rows)
    print_demo_summary(summary)
    say(f"full log of this run: {log_path}")


def print_candidates(card: Any, title: str) -> None:  # noqa: ANN401 (an ml.card.ModelCard)
    """The cross-validated comparison of a model card's candidates, the ones that ran; the skipped in one line."""
    metrics = [m for m in (card.primary_metric, "pr_auc", "f1", "roc_auc_ovr", "accuracy", "log_loss", "brier",
                           "mae", "r2") if any(m in row for row in card.comparison)]
    metrics = list(dict.fromkeys(metrics))
    ran = [row for row in card.comparison if row.get("status") != "skipped"]
    status = ["status"] if any(row.get("status") != "ok" for row in ran) else []  # only when one failed
    print_table(f"{title} (cross-validated on {card.n_training_rows:,} rows)", ["candidate", *status, *metrics],
                [[str(row.get("candidate")), *([str(row.get("status", ""))] if status else []),
                  *metric_cells(row, metrics)] for row in ran], right=set(metrics))
    skipped = [str(row.get("candidate")) for row in card.comparison if row.get("status") == "skipped"]
    if skipped:
        say(f"not run (outside the profile or without Keras): {', '.join(skipped)}")


@app.command()
@handled
def ui(
    port: Annotated[int, typer.Option(help="Port of the webserver on 127.0.0.1", min=1, max=65535)] = 3000,
    dagster_home: Annotated[str | None, typer.Option(
        help="Dagster instance folder (default: DAGSTER_HOME, else the demo's .dagster_home)")] = None,
) -> None:
    """Open the Dagster UI and daemon on the demo's instance (loopback only; Ctrl-C or SIGTERM stops both).

    After `mesh demo`, the UI shows the demo's runs, materializations, check results and
    model plots. Schedules and sensors are off unless MESH_AUTOMATION=true.

    Example: `mesh ui --port 3000`
    """
    from datamesh.settings import get_settings
    from orchestration.instance import dagster_home as instance_home
    from orchestration.ui import Supervisor

    home = instance_home(dagster_home)
    if not get_settings().automation:
        progress("schedules and sensors are off on this machine (MESH_AUTOMATION=true switches them on)")
    raise typer.Exit(code=Supervisor(home=home, port=port, say=progress).run_until_stopped())


@app.command()
@handled
def train(
    product: Annotated[str, typer.Argument(help="A labelled product (its contract has an `ml:` block)")],
    profile: Annotated[str, typer.Option(help="full (the whole zoo, Keras included: minutes) or fast (a quick "
                                         "set)")] = DEFAULT_PROFILE.value,
    candidate: Annotated[list[str], typer.Option(help="Run only these candidates (repeatable)")] = [],  # noqa: B006
    keras: Annotated[bool, typer.Option(help="Include the Keras models")] = True,
    seed: Annotated[int, typer.Option(help="Random seed (same data + seed = same metrics)")] = 42,
    score: Annotated[bool, typer.Option(help="Publish predictions if the contract names a predictions product")] = True,
) -> None:
    """Run the model zoo on a labelled product, register the best model and maybe promote it.

    Examples:

      mesh train churn_features

      mesh train leads --profile full --candidate logistic_regression --candidate random_forest
    """
    from ml.products import score_product, train_product

    mesh = mesh_from_settings()
    outcome = train_product(mesh, product, candidates=candidate or None, profile=profile, include_keras=keras,
                            seed=seed, progress=progress)
    print_candidates(outcome.model_version.card, f"Candidates of model v{outcome.model_version.version}")
    c = mesh.contract(product)
    if score and c.ml is not None and c.ml.predictions_product and c.ml.predictions_product in mesh.contracts:
        manifest = score_product(mesh, product, progress=progress)
        say(f"published {c.ml.predictions_product} version {manifest.version} ({manifest.row_count:,} rows)")
    status = "promoted to champion" if outcome.promoted else "registered (champion unchanged)"
    say(f"model {product} v{outcome.model_version.version}: {outcome.report.best.name} {status}")


@app.command()
@handled
def models(
    product: Annotated[str, typer.Argument(help="A labelled product, e.g. churn_features")],
    comparison: Annotated[bool, typer.Option(help="Also print the candidate comparison of the champion")] = True,
) -> None:
    """List the registered models of a product (versions, candidate, metric, champion).

    Example: `mesh models churn_features`
    """
    from ml.registry import ModelRegistry  # cards only: no scikit-learn import for a listing

    mesh = mesh_from_settings()
    mesh.contract(product)
    reg = ModelRegistry(mesh.lake)
    champion = reg.champion(product)
    rows = []
    for v in reg.list_versions(product):
        card = reg.get(product, v).card
        rows.append((v, "*" if champion and champion.version == v else "", card.candidate,
                     f"{card.primary_metric}={card.score:.4f}", json.dumps(card.training_data),
                     "" if card.threshold is None else f"{card.threshold:.3f}", card.created_at))
    print_rows(["version", "champion", "candidate", "cv metric", "trained on", "threshold", "created_at"], rows,
                OutputFormat.TABLE, title=f"Models of {product}")
    if comparison and champion is not None:
        print_candidates(champion.card, f"Candidates of model v{champion.version}")
