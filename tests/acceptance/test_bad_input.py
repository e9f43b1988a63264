"""Mistakes a user makes on the command line: one ``error:`` line each, no traceback.

Exit status 2 means the command line must change, 1 that something failed
at run time (see ``buquet.cli._errors``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from acceptance_helpers import EXAMPLE, Buquet

CYCLIC_FLOW = """\
from buquet import step, workflow


@step
def a() -> int:
    return 1


@step
def b() -> int:
    return 2


@step
def c() -> int:
    return 3


@workflow
def cyclic() -> int:
    first = a().after("c")
    b().after(first)
    return c().after("b")
"""

BAD_FLOWS = """\
from buquet import step, workflow


@step
def a() -> int:
    return 1


@step(name="a")
def other_a() -> int:
    return 2


@step
def pair(first: int, second: int) -> int:
    return first + second


@workflow
def selfish() -> int:
    return a().after("a")


@workflow
def dangling() -> int:
    return a().after("missing")


@workflow
def clash() -> int:
    return pair(a(), other_a())
"""


def assert_one_error_line(
    completed: subprocess.CompletedProcess[str], exit_code: int, fragment: str
) -> str:
    """Check that the command failed with one readable line on stderr, and return that line."""
    assert completed.returncode == exit_code, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert fragment in lines[0]
    assert completed.stdout == ""
    return lines[0]


def store_files(path: Path) -> list[Path]:
    """Return every file under ``path``, or nothing when it does not exist."""
    return [item for item in path.rglob("*") if item.is_file()] if path.exists() else []


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        pytest.param(["run", "missing.py"], "'missing.py' does not exist", id="missing-file"),
        pytest.param(["run", f"{EXAMPLE}:merge"], "not a workflow", id="step-target"),
        pytest.param(["run", f"{EXAMPLE}:nothing"], "no attribute 'nothing'", id="no-attribute"),
        pytest.param(
            ["run", str(EXAMPLE), "--input", '{"root": '], "invalid JSON in --input", id="bad-json"
        ),
        pytest.param(
            ["start", str(EXAMPLE), "--input", '{"rot": "src"}'],
            "no parameter 'rot'",
            id="unknown-parameter",
        ),
        pytest.param(
            ["start", str(EXAMPLE), "--input", '["src"]'],
            "expected a JSON object of its parameters (root), got a JSON array",
            id="input-not-object",
        ),
        pytest.param(["status", "no-such-run"], "'no-such-run' not found", id="unknown-run"),
    ],
)
def test_usage_error_exits_2(buquet: Buquet, arguments: list[str], fragment: str) -> None:
    store = buquet.cwd / "store"
    completed = buquet.run("workflow", *arguments, "--store", f"file://{store}")

    assert_one_error_line(completed, 2, fragment)


@pytest.mark.parametrize("command", ["run", "start"])
def test_cyclic_workflow_writes_nothing(buquet: Buquet, command: str) -> None:
    (buquet.cwd / "cyclic.py").write_text(CYCLIC_FLOW, encoding="utf-8")
    store = buquet.cwd / "store"
    completed = buquet.run("workflow", command, "cyclic.py", "--store", f"file://{store}")

    assert_one_error_line(completed, 2, "cycle a -> b -> c -> a")
    assert store_files(store) == []


@pytest.mark.parametrize("command", ["run", "start"])
@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        pytest.param("selfish", "step 'a' depends on itself", id="self-dependency"),
        pytest.param("dangling", "depends on 'missing', which is not a step", id="undefined-step"),
        pytest.param("clash", "two different steps are named 'a'", id="duplicate-name"),
    ],
)
def test_invalid_workflow_writes_nothing(
    buquet: Buquet, command: str, name: str, fragment: str
) -> None:
    (buquet.cwd / "bad_flows.py").write_text(BAD_FLOWS, encoding="utf-8")
    store = buquet.cwd / "store"
    target = f"bad_flows.py:{name}"
    completed = buquet.run("workflow", command, target, "--store", f"file://{store}")

    assert_one_error_line(completed, 2, fragment)
    assert store_files(store) == []


def test_unreachable_s3_exits_1(buquet: Buquet) -> None:
    environment = buquet.environment()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "S3_BUCKET", "S3_REGION"):
        environment.pop(name, None)
    environment.update(
        S3_ENDPOINT="http://127.0.0.1:1",
        AWS_ACCESS_KEY_ID="unused-key",
        AWS_SECRET_ACCESS_KEY="unused-secret",
        AWS_REGION="us-east-1",
    )
    completed = buquet.run(
        "workflow", "start", str(EXAMPLE), "--input", '{"root": "src"}', "--store", "s3://bucket",
        env=environment,
    )  # fmt: skip

    line = assert_one_error_line(completed, 1, "store s3://bucket")
    assert "127.0.0.1:1" in line


def test_result_of_failed_run_exits_1(buquet: Buquet) -> None:
    store = f"file://{buquet.cwd / 'store'}"
    ran = buquet.run(
        "workflow", "run", str(EXAMPLE), "--input", '{"root": "missing"}',
        "--run-id", "failed-run", "--workers", "0", "--store", store,
    )  # fmt: skip
    assert ran.returncode == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    assert "error: run failed-run failed" in ran.stderr

    completed = buquet.run("workflow", "result", "failed-run", "--store", store)

    line = assert_one_error_line(completed, 1, "'failed-run' failed")
    assert "'missing' is not a directory" in line


TYPED_FLOW = """
from buquet import step, workflow

@step
def double(count: int) -> int:
    return 2 * count

@workflow
def doubled(count: int) -> int:
    return double(count)
"""


@pytest.mark.parametrize("command", ["run", "start"])
def test_input_of_wrong_type_writes_nothing(buquet: Buquet, command: str) -> None:
    (buquet.cwd / "typed.py").write_text(TYPED_FLOW, encoding="utf-8")
    store = buquet.cwd / "store"
    completed = buquet.run(
        "workflow", command, "typed.py", "--input", '{"count": "abc"}', "--store", f"file://{store}"
    )

    line = assert_one_error_line(completed, 2, "invalid value 'abc' for parameter 'count'")
    assert "of type int" in line
    assert store_files(store) == []


def test_run_of_ended_run_id_reports_it(buquet: Buquet) -> None:
    (buquet.cwd / "typed.py").write_text(TYPED_FLOW, encoding="utf-8")
    store = f"file://{buquet.cwd / 'store'}"
    arguments = ("workflow", "run", "typed.py", "--input", '{"count": 4}', "--run-id", "once")
    first = buquet.run(*arguments, "--workers", "0", "--store", store)
    assert first.returncode == 0, first.stderr

    again = buquet.run(*arguments, "--workers", "0", "--store", store)

    assert again.returncode == 0, again.stderr
    assert "run once of workflow doubled already ended" in again.stderr
    assert again.stdout.strip() == "8"
