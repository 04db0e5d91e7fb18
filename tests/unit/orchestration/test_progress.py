"""Run progress: step events of a real in-process run reach the listener; output goes to the log file."""

# No `from __future__ import annotations`: Dagster reads the assets' annotations at definition time.

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from orchestration.progress import listening, progress_logger


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def step_started(self, step: str) -> None:
        self.events.append(("start", step))

    def step_finished(self, step: str, seconds: float, error: str | None) -> None:
        self.events.append(("end", step, seconds >= 0, error))

    def message(self, step: str | None, level: int, text: str) -> None:
        self.events.append(("msg", step, level, text))


@dg.asset
def fine(context: dg.AssetExecutionContext) -> int:
    context.log.info("halfway there")
    context.log.warning("careful")
    return 1


@dg.asset
def broken(fine: int) -> int:
    raise ValueError("the input was hostile")


def _run(listener: Recorder | None) -> dg.ExecuteInProcessResult:
    defs = dg.Definitions(assets=[fine, broken], loggers={"progress": progress_logger})
    job = defs.resolve_implicit_global_asset_job_def()
    if listener is None:
        return job.execute_in_process(raise_on_error=False, run_config={"loggers": {"progress": {}}})
    with listening(listener):
        return job.execute_in_process(raise_on_error=False, run_config={"loggers": {"progress": {}}})


def test_step_events_and_messages_reach_the_listener() -> None:
    recorder = Recorder()
    result = _run(recorder)
    assert not result.success
    events = recorder.events
    assert ("start", "fine") in events and ("end", "fine", True, None) in events
    assert ("msg", "fine", 20, "halfway there") in events and ("msg", "fine", 30, "careful") in events
    failed = [e for e in events if e[0] == "end" and e[1] == "broken"]
    assert len(failed) == 1 and "the input was hostile" in failed[0][3]
    assert events.index(("start", "fine")) < events.index(("end", "fine", True, None))


def test_without_a_listener_the_logger_is_idle() -> None:
    recorder = Recorder()
    _run(None)  # no listener installed: nothing to forward to, nothing fails
    with listening(recorder):
        pass
    assert recorder.events == []


def _child(body: str) -> subprocess.CompletedProcess:
    """Run ``body`` (which may use ``output_to``, ``Path``, ``sys``, ``subprocess``) in a child Python:
    its file descriptors 1 and 2 are its own to redirect."""
    code = "import subprocess, sys\nfrom pathlib import Path\nfrom orchestration.progress import output_to\n" + body
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])})


def test_output_goes_to_the_log_and_the_terminal_stream_to_the_old_stderr(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "run.log"
    done = _child(
        f"with output_to(Path({str(log)!r})) as terminal:\n"
        "    print('engine noise')\n"
        "    print('warning noise', file=sys.stderr)\n"
        "    subprocess.run([sys.executable, '-c', 'print(\"dbt noise\")'], check=True)\n"
        "    terminal.write('step line\\n')\n"
        "print('after the run')\n"
    )
    assert done.stderr == "step line\n"
    assert done.stdout == "after the run\n"
    assert log.read_text().splitlines() == ["engine noise", "warning noise", "dbt noise"]


def test_output_is_restored_when_the_run_raises(tmp_path: Path) -> None:
    done = _child(
        "try:\n"
        f"    with output_to(Path({str(tmp_path / 'x.log')!r})):\n"
        "        raise RuntimeError('boom')\n"
        "except RuntimeError:\n"
        "    print('restored')\n"
    )
    assert done.stdout == "restored\n"


@pytest.mark.parametrize("tty", [False, True])
def test_step_lines_print_one_line_per_step(tty: bool) -> None:
    import io

    from rich.console import Console

    from meshcli.render import StepLines

    buffer = io.StringIO()
    out = Console(file=buffer, force_terminal=tty, width=80, markup=False, highlight=False)
    with StepLines(out) as lines:
        lines.step_started("train_churn_features")
        lines.message("train_churn_features", 20, "[1/5] logistic_regression: training")
        lines.message("train_churn_features", 30, "only 3 positive rows")
        lines.step_finished("train_churn_features", 12.34, None)
        lines.step_finished("score", 0.5, "Model v1 is broken\nTraceback ...")
    raw = buffer.getvalue()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    assert "ok train_churn_features 12.3s" in text
    assert "warning train_churn_features: only 3 positive rows" in text
    assert "FAILED score after 0.5s: Model v1 is broken" in text and "Traceback" not in text
    if not tty:  # piped: no live line, no colour codes, info messages stay in the log file
        assert "\x1b[" not in raw and "logistic_regression" not in text
