"""Tracing @workflow bodies into DAGs, and rejecting invalid definitions."""

from __future__ import annotations

import datetime as dt

import pytest

from buquet.errors import DefinitionError, InvalidInput
from buquet.workflow import step, workflow


@step
def load(root: str) -> list[str]:
    return [f"{root}/a", f"{root}/b"]


@step
def measure(path: str, scale: int = 1) -> int:
    return len(path) * scale


@step
def total(sizes: list[int]) -> int:
    return sum(sizes)


@workflow
def pipeline(root: str, scale: int = 2) -> int:
    paths = load(root)
    sizes = measure.map(paths, scale=scale)
    return total(sizes)


def test_trace_builds_nodes_in_order() -> None:
    dag = pipeline.dag

    assert list(dag.nodes) == ["load", "measure", "total"]
    assert dag.nodes["measure"].map_parameter == "path"
    assert dag.nodes["measure"].dependencies == ["load"]
    assert dag.nodes["total"].dependencies == ["measure"]
    assert dag.roots() == ["load"]
    assert dag.sinks() == ["total"]
    assert dag.output == {"$ref": "total"}


def test_trace_encodes_inputs_and_constants() -> None:
    arguments = pipeline.dag.nodes["measure"].arguments

    assert arguments["path"] == {"$ref": "load"}
    assert arguments["scale"] == {"$input": "scale"}
    assert pipeline.dag.nodes["load"].arguments == {"root": {"$input": "root"}}


def test_dag_hash_is_stable() -> None:
    dag = pipeline.dag

    assert len(dag.hash) == 64
    assert dag.hash == dag.compute_hash()


def test_direct_call_runs_steps_in_process() -> None:
    assert pipeline("r", scale=1) == len("r/a") + len("r/b")


def test_same_step_twice_gets_numbered_nodes() -> None:
    @workflow
    def twice() -> int:
        first = measure("x")
        second = measure("yy")
        return total([first, second])

    assert list(twice.dag.nodes) == ["measure", "measure-2", "total"]
    assert twice.dag.nodes["total"].arguments["sizes"] == {
        "$list": [{"$ref": "measure"}, {"$ref": "measure-2"}]
    }


@step
def a() -> int:
    return 1


@step
def b(value: int) -> int:
    return value


@step
def c(value: int) -> int:
    return value


def test_cycle_is_named_in_order() -> None:
    @workflow
    def looped() -> int:
        first = a().after("c")
        second = b(first)
        return c(second)

    with pytest.raises(DefinitionError) as info:
        _ = looped.dag

    assert "cycle a -> b -> c -> a" in str(info.value)


def test_self_dependency_is_rejected() -> None:
    @workflow
    def selfish() -> int:
        return a().after("a")

    with pytest.raises(DefinitionError, match="step 'a' depends on itself"):
        _ = selfish.dag


def test_unknown_dependency_is_rejected() -> None:
    @workflow
    def dangling() -> int:
        return a().after("missing")

    with pytest.raises(DefinitionError, match="depends on 'missing', which is not a step"):
        _ = dangling.dag


def test_two_steps_with_one_name_are_rejected() -> None:
    @step(name="a")
    def other_a() -> int:
        return 2

    @workflow
    def clash() -> int:
        return total([b(a()), other_a()])

    with pytest.raises(DefinitionError, match="two different steps are named 'a'"):
        _ = clash.dag


def test_unserialisable_constant_names_step() -> None:
    @workflow
    def bad_constant() -> int:
        return b({1, 2})  # type: ignore[arg-type]

    with pytest.raises(DefinitionError, match="step 'b', argument 'value'"):
        _ = bad_constant.dag


def test_map_over_constant_scalar_is_rejected() -> None:
    @workflow
    def bad_map() -> list[int]:
        return b.map(5)

    with pytest.raises(DefinitionError, match=r"\.map\(\) needs a list"):
        _ = bad_map.dag


def test_wrong_arguments_are_rejected() -> None:
    @workflow
    def wrong() -> int:
        return b(1, 2)  # type: ignore[call-arg]

    with pytest.raises(DefinitionError, match="step 'b'"):
        _ = wrong.dag


def test_bind_input_applies_defaults() -> None:
    assert pipeline.bind_input({"root": "/tmp"}) == {"root": "/tmp", "scale": 2}


def test_bind_input_rejects_unknown_names() -> None:
    with pytest.raises(InvalidInput, match="has no parameter 'rot'"):
        pipeline.bind_input({"rot": "/tmp"})


def test_bind_input_rejects_missing_names() -> None:
    with pytest.raises(InvalidInput, match="root"):
        pipeline.bind_input({})


def test_bind_input_converts_values() -> None:
    moment = dt.datetime(2026, 3, 8, 7, tzinfo=dt.UTC)

    assert pipeline.bind_input({"root": moment})["root"] == "2026-03-08T07:00:00Z"


def test_step_options_set_attempts_and_timeout() -> None:
    @step(retries=4, timeout="2m")
    def slow() -> None:
        return None

    assert slow.max_attempts == 5
    assert slow.timeout == 120.0


def test_negative_retries_are_rejected() -> None:
    with pytest.raises(DefinitionError, match="retries=-1"):
        step(retries=-1)(lambda: None)


def test_register_skips_invalid_workflows() -> None:
    import types

    from buquet.queue import Worker
    from buquet.store import MemoryStore
    from buquet.workflow import register_workflows

    @workflow
    def broken() -> int:
        return a().after("missing")

    module = types.ModuleType("flows")
    module.pipeline = pipeline  # type: ignore[attr-defined]
    module.broken = broken  # type: ignore[attr-defined]
    worker = Worker(MemoryStore())

    names = register_workflows(worker, [module])

    assert names == ["pipeline"]
    assert worker.task_types == ["step:pipeline"]
