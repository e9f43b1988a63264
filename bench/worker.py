"""Run one buquet worker with the benchmark handlers and count its requests.

Usage: ``python -m bench.worker --store URL --counts FILE``. The counts (by
operation, plus PreconditionFailed by key area) and the peak RSS are written
to FILE every half second and once more after SIGTERM stops the worker.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from bench import flows
from bench.counting import CountingStore
from buquet import Worker, open_store
from buquet.workflow import attach_workflows

logger = logging.getLogger(__name__)

SNAPSHOT_EVERY = 0.5


def write_counts(store: CountingStore, path: Path, *, final: bool) -> None:
    """Write the counts and peak RSS to ``path`` atomically."""
    counts = store.snapshot()
    # On Linux ru_maxrss is in KiB.
    counts["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # type: ignore[assignment]
    counts["final"] = final  # type: ignore[assignment]
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(counts), encoding="utf-8")
    os.replace(temporary, path)


def snapshot_loop(store: CountingStore, path: Path, stop: threading.Event) -> None:
    while not stop.wait(SNAPSHOT_EVERY):
        write_counts(store, path, final=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", required=True, help="store URL, file://... or s3://...")
    parser.add_argument("--counts", required=True, type=Path, help="JSON file for the counts")
    parser.add_argument("--concurrency", type=int, default=4, help="tasks run at once")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    store = CountingStore(open_store(arguments.store, concurrency=arguments.concurrency))
    worker = Worker(store, concurrency=arguments.concurrency)
    worker.register_module(flows)
    attach_workflows(worker, [flows.bench_chain, flows.bench_fanout])

    def on_signal(signum: int, frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop = threading.Event()
    writer = threading.Thread(
        target=snapshot_loop, args=(store, arguments.counts, stop), daemon=True
    )
    writer.start()
    started = time.monotonic()
    try:
        worker.run()
    finally:
        stop.set()
        writer.join()
        write_counts(store, arguments.counts, final=True)
        store.close()
    logger.info("worker ran for %.1f s", time.monotonic() - started)


if __name__ == "__main__":
    main()
