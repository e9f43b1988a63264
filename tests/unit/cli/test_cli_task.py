"""``buquet task ...`` against a store in a temporary directory."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from buquet.queue import Queue
from buquet.store import open_store

RunCli = Callable[..., Result]


def submit(run_cli: RunCli, store_url: str, *args: str) -> str:
    result = run_cli("task", "submit", *args, "--store", store_url)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def test_submit_prints_id(run_cli: RunCli, store_url: str) -> None:
    task_id = submit(run_cli, store_url, "send_email", "--input", '{"to": "a@example.com"}')
    shown = run_cli("task", "show", task_id, "--json", "--store", store_url)
    assert shown.exit_code == 0, shown.stderr
    task = json.loads(shown.stdout)
    assert task["id"] == task_id
    assert task["type"] == "send_email"
    assert task["input"] == {"to": "a@example.com"}
    assert task["status"] == "pending"


def test_submit_json_output(run_cli: RunCli, store_url: str) -> None:
    result = run_cli(
        "task",
        "submit",
        "resize",
        "--max-attempts",
        "5",
        "--timeout",
        "2m",
        "--json",
        "--store",
        store_url,
    )
    assert result.exit_code == 0, result.stderr
    task = json.loads(result.stdout)
    assert task["type"] == "resize"
    assert task["max_attempts"] == 5
    assert task["timeout_seconds"] == 120
    assert task["input"] is None


def test_submit_input_from_file(run_cli: RunCli, store_url: str, tmp_path: Path) -> None:
    (tmp_path / "input.json").write_text('{"size": [640, 480]}', encoding="utf-8")
    task_id = submit(run_cli, store_url, "resize", "--input", "@input.json")
    shown = run_cli("task", "show", task_id, "--json", "--store", store_url)
    assert json.loads(shown.stdout)["input"] == {"size": [640, 480]}


def test_submit_delay_sets_available_at(run_cli: RunCli, store_url: str) -> None:
    result = run_cli("task", "submit", "later", "--delay", "1h", "--json", "--store", store_url)
    assert result.exit_code == 0, result.stderr
    task = json.loads(result.stdout)
    assert task["available_at"] > task["created_at"]


def test_submit_idempotency_key_reuses_task(run_cli: RunCli, store_url: str) -> None:
    first = submit(run_cli, store_url, "charge", "--idempotency-key", "order-7")
    second = submit(run_cli, store_url, "charge", "--idempotency-key", "order-7")
    assert first == second
    listed = run_cli("task", "list", "--json", "--store", store_url)
    assert len(json.loads(listed.stdout)) == 1


def test_list_table_and_filters(run_cli: RunCli, store_url: str) -> None:
    kept = submit(run_cli, store_url, "alpha")
    other = submit(run_cli, store_url, "beta")
    cancelled = run_cli("task", "cancel", other, "--store", store_url)
    assert cancelled.exit_code == 0, cancelled.stderr
    table = run_cli("task", "list", "--store", store_url)
    assert table.exit_code == 0, table.stderr
    assert kept in table.stdout
    assert other in table.stdout
    assert "0/3" in table.stdout
    by_status = run_cli("task", "list", "--status", "pending", "--json", "--store", store_url)
    assert [task["id"] for task in json.loads(by_status.stdout)] == [kept]
    by_type = run_cli("task", "list", "--type", "beta", "--json", "--store", store_url)
    assert [task["id"] for task in json.loads(by_type.stdout)] == [other]


def test_list_limit(run_cli: RunCli, store_url: str) -> None:
    for _ in range(3):
        submit(run_cli, store_url, "many")
    limited = run_cli("task", "list", "--limit", "2", "--json", "--store", store_url)
    assert limited.exit_code == 0, limited.stderr
    assert len(json.loads(limited.stdout)) == 2
    assert "showing the first 2 tasks by id; pass a larger --limit to see more" in limited.stderr


def test_list_within_limit_says_nothing_more(run_cli: RunCli, store_url: str) -> None:
    submit(run_cli, store_url, "few")
    listed = run_cli("task", "list", "--limit", "1", "--store", store_url)
    assert listed.exit_code == 0, listed.stderr
    assert "showing the first" not in listed.stderr


def test_list_empty_store(run_cli: RunCli, store_url: str) -> None:
    result = run_cli("task", "list", "--store", store_url)
    assert result.exit_code == 0, result.stderr
    assert "no tasks" in result.stdout


def test_show_table(run_cli: RunCli, store_url: str) -> None:
    task_id = submit(run_cli, store_url, "resize", "--input", '{"note": "[bold]x[/bold]"}')
    shown = run_cli("task", "show", task_id, "--store", store_url)
    assert shown.exit_code == 0, shown.stderr
    assert task_id in shown.stdout
    assert "[bold]x[/bold]" in shown.stdout


def test_cancel_pending(run_cli: RunCli, store_url: str) -> None:
    task_id = submit(run_cli, store_url, "resize")
    result = run_cli("task", "cancel", task_id, "--store", store_url)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"task {task_id} cancelled"
    shown = run_cli("task", "show", task_id, "--json", "--store", store_url)
    assert json.loads(shown.stdout)["status"] == "cancelled"


def test_store_from_environment(run_cli: RunCli, store_url: str) -> None:
    result = run_cli("task", "submit", "resize", env={"BUQUET_STORE": store_url})
    assert result.exit_code == 0, result.stderr
    shown = run_cli("task", "show", result.stdout.strip(), "--store", store_url)
    assert shown.exit_code == 0, shown.stderr


def test_cancel_running_requests_stop(run_cli: RunCli, store_url: str) -> None:
    task_id = submit(run_cli, store_url, "resize")
    store = open_store(store_url)
    try:
        claimed = Queue(store).claim(["resize"], "worker-1")
        assert claimed is not None
        result = run_cli("task", "cancel", task_id, "--store", store_url)
        assert result.exit_code == 0, result.stderr
        assert "cancellation requested" in result.stdout
        assert Queue(store).get(task_id).cancel_requested
    finally:
        store.close()


def test_cancel_finished_task(run_cli: RunCli, store_url: str) -> None:
    task_id = submit(run_cli, store_url, "resize")
    store = open_store(store_url)
    try:
        queue = Queue(store)
        claimed = queue.claim(["resize"], "worker-1")
        assert claimed is not None
        queue.complete(claimed, {"done": True})
    finally:
        store.close()
    result = run_cli("task", "cancel", task_id, "--store", store_url)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: task '{task_id}' already succeeded; only pending or running tasks can be "
        "cancelled\n"
    )
