"""Runs a small `mesh demo` in its own process for the browser tests and writes its summary as JSON.

A subprocess, not a call in the pytest process: the demo's environment (lake, dbt paths,
DAGSTER_HOME) reaches it through ``env=`` only, so nothing is left set in the test session,
and TensorFlow/dbt state stays out of it.

    python -m tests.browser.demo_runner --customers 600 --seed 7 --dagster-home DIR --out summary.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--dagster-home", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    from orchestration.demo import run_demo

    summary = run_demo(customers=args.customers, seed=args.seed, dagster_home=args.dagster_home,
                       progress=lambda message: print(message, flush=True))
    args.out.write_text(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
