"""The results table, the JSON file, and the check against bench/targets.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

TARGETS_FILE = Path(__file__).with_name("targets.toml")

Results = dict[str, dict[str, dict[str, Any]]]
"""system/store -> workload -> measurements, e.g. results["buquet/seaweedfs"]["W1"]."""


def _latency(entry: dict[str, Any], field: str) -> Any:
    block = entry.get("latency_to_last_step_end") or entry.get("latency") or {}
    return block.get(field, "")


def _cells(entry: dict[str, Any]) -> list[str]:
    if "error" in entry or "not_available" in entry:
        note = entry.get("error") or f"not available: {entry['not_available']}"
        return ["", "", "", "", "", "", "", str(note)[:70]]
    per_unit = entry.get("requests_per_unit", {}).get("total", "")
    conflicts = sum(entry.get("conflicts", {}).values()) if "conflicts" in entry else ""
    notes = []
    if "completed" in entry and not entry["completed"]:
        notes.append("did not complete")
    if "requests_per_min" in entry:
        notes.append(f"{entry['requests_per_min']} req/min idle")
        notes.append(f"first step after {entry['first_step_delay_ms']} ms")
    if "ratio_to_direct" in entry:
        notes.append(f"direct {entry['direct_s']} s, ratio {entry['ratio_to_direct']}")
    if "latency_seen_by_poll" in entry:
        notes.append(f"by poll p50 {entry['latency_seen_by_poll']['p50_ms']} ms")
    return [
        str(entry.get("wall_s", "")), str(entry.get("throughput_per_s", "")),
        str(_latency(entry, "p50_ms")), str(_latency(entry, "p95_ms")), str(per_unit),
        str(conflicts), str(entry.get("peak_rss_mib", "")), "; ".join(notes),
    ]  # fmt: skip


def render(results: Results, console: Console) -> None:
    """Print one row per system, store and workload."""
    table = Table(title="buquet benchmarks")
    for column in ("system/store", "workload", "wall s", "per s", "p50 ms", "p95 ms",
                   "req/unit", "conflicts", "RSS MiB", "notes"):  # fmt: skip
        table.add_column(column)
    for system, workloads in results.items():
        for workload, entry in workloads.items():
            table.add_row(system, workload, *_cells(entry))
    console.print(table)


COMPARED = (
    ("W1", "throughput_per_s", "tasks/s", True),
    ("W2", "latency_to_last_step_end.p50_ms", "p50 ms", False),
    ("W2", "latency_to_last_step_end.p95_ms", "p95 ms", False),
    ("W4", "wall_s", "wall s", False),
)
"""Workload, field, label, and whether more is better, for the comparison with peers."""
BASE = "buquet/seaweedfs"


def render_ratios(results: Results, console: Console) -> None:
    """Print buquet's figures on SeaweedFS next to each peer's, and how many times better."""
    if BASE not in results:
        return
    peers = [system for system in results if not system.startswith("buquet/")]
    peers.append("buquet/local")
    table = Table(title=f"{BASE} against the others, same run (x = times better)")
    table.add_column("measure")
    table.add_column(BASE)
    for peer in peers:
        table.add_column(peer)
    for workload, field, label, higher_is_better in COMPARED:
        ours = _value(results, f"{BASE}:{workload}:{field}")
        row = [f"{workload} {label}", _text(ours)]
        for peer in peers:
            theirs = _value(results, f"{peer}:{workload}:{field}")
            row.append(_compared(ours, theirs, higher_is_better=higher_is_better))
        table.add_row(*row)
    console.print(table)


def ratios(results: Results) -> dict[str, dict[str, float]]:
    """Return, per compared measure and peer, how many times better buquet on SeaweedFS is."""
    found: dict[str, dict[str, float]] = {}
    for workload, field, label, higher_is_better in COMPARED:
        ours = _value(results, f"{BASE}:{workload}:{field}")
        for peer in results:
            theirs = _value(results, f"{peer}:{workload}:{field}")
            if peer == BASE or not _numbers(ours, theirs):
                continue
            factor = ours / theirs if higher_is_better else theirs / ours
            found.setdefault(f"{workload} {label}", {})[peer] = round(factor, 2)
    return found


def _numbers(*values: Any) -> bool:
    return all(isinstance(value, int | float) and value > 0 for value in values)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _compared(ours: Any, theirs: Any, *, higher_is_better: bool) -> str:
    if not _numbers(ours, theirs):
        return _text(theirs)
    factor = ours / theirs if higher_is_better else theirs / ours
    return f"{theirs} ({factor:.2f}x)"


def _value(results: Results, path: str) -> Any:
    """Look up ``system/store:workload:field.field`` in the results; None when missing."""
    system, workload, fields = path.split(":")
    value: Any = results.get(system, {}).get(workload)
    for name in fields.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def check(results: Results, targets_file: Path = TARGETS_FILE) -> list[str]:
    """Return a line for each target in ``targets_file`` that the results miss."""
    targets = tomllib.loads(targets_file.read_text(encoding="utf-8"))["target"]
    missed = []
    for target in targets:
        value = _value(results, target["measure"])
        if value is None:
            missed.append(f"{target['name']}: not measured ({target['measure']})")
            continue
        limit = target.get("max", target.get("min"))
        ok = value <= target["max"] if "max" in target else value >= target["min"]
        if not ok:
            bound = "<=" if "max" in target else ">="
            missed.append(f"{target['name']}: measured {value}, target {bound} {limit}")
    return missed
