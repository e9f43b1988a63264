"""Run the benchmarks: ``python -m bench [--quick] [--check] [--only W1,W2] [--no-peers]``.

Starts SeaweedFS (and Redis and PostgreSQL for the peers) on 127.0.0.1, runs
the workloads, prints a table, writes bench/results/<timestamp>.json and,
with ``--check``, exits with status 1 listing the targets in
bench/targets.toml that the run missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import peers, report, servers
from bench.harness import Target
from bench.workloads import Sizes, run_all

logger = logging.getLogger("bench")

RESULTS_DIR = Path(__file__).with_name("results")
WORKLOADS = {"W1", "W2", "W4", "W5", "W6", "W7"}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes and short idle times")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--only",
        default=",".join(sorted(WORKLOADS)),
        help="workloads to run, comma-separated, e.g. W1,W2",
    )
    parser.add_argument(
        "--stores",
        default="local,seaweedfs",
        help="stores for buquet, comma-separated: local, seaweedfs",
    )
    parser.add_argument("--no-peers", action="store_true", help="skip Celery, DBOS, buquet 0.1.0")
    return parser.parse_args()


def run_buquet(store: str, workdir: Path, sizes: Sizes, only: set[str]) -> dict[str, Any]:
    if store == "local":
        return run_all(Target("local", workdir / "local"), sizes, only)
    with servers.seaweedfs(workdir / "seaweedfs") as seaweed:
        return run_all(Target("seaweedfs", workdir / "s3", seaweed), sizes, only)


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
    }


def main() -> int:
    arguments = parse_arguments()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    sizes = Sizes.quick() if arguments.quick else Sizes()
    only = {name.strip() for name in arguments.only.split(",")}
    workdir = Path(tempfile.mkdtemp(prefix="buquet-bench-"))
    results: dict[str, Any] = {}
    for store in arguments.stores.split(","):
        results[f"buquet/{store}"] = run_buquet(store, workdir, sizes, only)
    if not arguments.no_peers:
        results.update(peers.run_peers(workdir, sizes))
    # A wide console keeps the table readable when the output goes to a file.
    console = Console(width=None if sys.stdout.isatty() else 180)
    report.render(results, console)
    report.render_ratios(results, console)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    output = RESULTS_DIR / f"{stamp}.json"
    document = {"machine": machine(), "quick": arguments.quick, "sizes": sizes.__dict__,
                "results": results, "ratios": report.ratios(results)}  # fmt: skip
    output.write_text(json.dumps(document, indent=2, default=list), encoding="utf-8")
    console.print(f"results written to {output}; work files in {workdir}")
    if not arguments.check:
        return 0
    missed = report.check(results)
    for line in missed:
        console.print(f"target missed: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
