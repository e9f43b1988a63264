"""Run the peer systems' scripts in their own virtual environments under bench/.peers."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from bench import servers
from bench.workloads import Sizes

logger = logging.getLogger(__name__)

PEERS_DIR = Path(__file__).with_name(".peers")
SCRIPTS_DIR = Path(__file__).with_name("peers")
PEER_TIMEOUT = 1800.0


def venv_python(name: str) -> Path:
    return PEERS_DIR / name / "bin" / "python"


def run_script(name: str, script: str, env: dict[str, str], sizes: Sizes) -> dict[str, Any]:
    """Run one peer script; return its per-workload results."""
    python = venv_python(name)
    if not python.exists():
        reason = f"no virtual environment at {python.parent.parent}; see docs/benchmarks.md"
        return {"W1": {"not_available": reason}}
    command = [str(python), script, str(sizes.w1_tasks), str(sizes.w2_runs), str(sizes.w4_items)]
    completed = subprocess.run(
        command, cwd=SCRIPTS_DIR, env={**os.environ, **env}, capture_output=True, text=True,
        timeout=PEER_TIMEOUT, check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"W1": {"error": f"{script} exited with {completed.returncode}: {tail[0]}"}}
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def with_server(
    server: Callable[[Path], AbstractContextManager[Any]],
    workdir: Path,
    use: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """Start a server, run ``use`` with it, stop it; a server that fails is reported."""
    try:
        with server(workdir) as handle:
            return use(handle)
    except (servers.ServerUnavailable, subprocess.CalledProcessError, OSError) as error:
        logger.warning("peer server %s not available: %s", server.__name__, error)
        return {"W1": {"not_available": f"{server.__name__}: {error}"}}


def run_orig(seaweed: servers.Seaweed, logs: dict[str, str], sizes: Sizes) -> dict[str, Any]:
    """Run buquet 0.1.0 on a SeaweedFS bucket with versioning, which it requires."""
    servers.enable_versioning(seaweed)
    env = {**logs, **seaweed.environment(), "S3_BUCKET": servers.S3_BUCKET}
    return run_script("buquet-orig", "buquet_orig_peer.py", env, sizes)


def run_peers(workdir: Path, sizes: Sizes) -> dict[str, dict[str, Any]]:
    """Run Celery, DBOS and buquet 0.1.0 in turn, each against its own server."""
    logs = {"BENCH_LOG_DIR": str(workdir)}
    results: dict[str, dict[str, Any]] = {}
    logger.info("peer celery")
    results["celery/redis"] = with_server(
        servers.redis, workdir / "redis",
        lambda url: run_script("celery", "celery_peer.py", {**logs, "BENCH_REDIS_URL": url}, sizes),
    )  # fmt: skip
    logger.info("peer dbos")
    # PostgreSQL runs as an unprivileged user, which needs its own directory.
    pg_dir = Path(tempfile.mkdtemp(prefix="buquet-bench-pg-"))
    results["dbos/postgres"] = with_server(
        servers.postgres, pg_dir,
        lambda url: run_script("dbos", "dbos_peer.py", {**logs, "BENCH_PG_URL": url}, sizes),
    )  # fmt: skip
    logger.info("peer buquet 0.1.0")
    results["buquet-0.1.0/seaweedfs"] = with_server(
        servers.seaweedfs, workdir / "seaweedfs-orig",
        lambda seaweed: run_orig(seaweed, logs, sizes),
    )  # fmt: skip
    return results
