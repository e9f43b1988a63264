"""The compiled DAG of a workflow: JSON, validated with networkx, hashed, stored with each run.

Arguments are encoded as tagged JSON so that a stored DAG is unambiguous:
``{"$ref": node}`` is a step result, ``{"$input": name}`` a workflow
parameter, ``{"$value": json}`` a constant, and ``{"$list": [...]}`` /
``{"$dict": {...}}`` containers that hold placeholders.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import networkx as nx
from pydantic import BaseModel, Field

from buquet._json import is_json_sequence, to_json_value
from buquet.errors import DefinitionError, SerializationError
from buquet.queue._backoff import Backoff
from buquet.workflow._trace import InputRef, Ref, Trace

Encoded = dict[str, Any]


class Node(BaseModel):
    """One step call of the DAG."""

    name: str
    step: str
    arguments: dict[str, Encoded]
    map_parameter: str | None = None
    dependencies: list[str] = Field(default_factory=list)
    max_attempts: int = 3
    timeout: float | None = None
    backoff: Backoff = Field(default_factory=Backoff)

    @property
    def is_map(self) -> bool:
        """Whether the node runs once per item of a list."""
        return self.map_parameter is not None


class Dag(BaseModel):
    """A workflow's nodes in definition order, its output and the hash of both."""

    workflow: str
    parameters: list[str]
    nodes: dict[str, Node]
    output: Encoded
    on_failure: str | None = None
    hash: str = ""

    def dependents(self, node: str) -> list[str]:
        """Return the nodes that depend on ``node``, in definition order."""
        return [other.name for other in self.nodes.values() if node in other.dependencies]

    def roots(self) -> list[str]:
        """Return the nodes with no dependencies."""
        return [node.name for node in self.nodes.values() if not node.dependencies]

    def sinks(self) -> list[str]:
        """Return the nodes nothing depends on."""
        needed = {dep for node in self.nodes.values() for dep in node.dependencies}
        return [name for name in self.nodes if name not in needed]

    def compute_hash(self) -> str:
        """Return the SHA-256 of the DAG's canonical JSON, excluding the hash itself."""
        payload = self.model_dump(mode="json", exclude={"hash"})
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def encode(value: Any, *, where: str) -> Encoded:
    """Encode an argument or output; constants must be JSON-serialisable."""
    if isinstance(value, Ref):
        return {"$ref": value.node}
    if isinstance(value, InputRef):
        return {"$input": value.name}
    if _holds_placeholder(value):
        if isinstance(value, dict):
            return {"$dict": {str(k): encode(v, where=f"{where}.{k}") for k, v in value.items()}}
        return {"$list": [encode(v, where=f"{where}[{i}]") for i, v in enumerate(value)]}
    try:
        return {"$value": to_json_value(value)}
    except SerializationError as exc:
        raise DefinitionError(f"{where}: constant is not JSON-serialisable: {exc}") from exc


def _holds_placeholder(value: Any) -> bool:
    if isinstance(value, Ref | InputRef):
        return True
    if isinstance(value, dict):
        return any(_holds_placeholder(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_placeholder(v) for v in value)
    return False


def referenced_nodes(encoded: Encoded) -> Iterator[str]:
    """Yield the node names an encoded value refers to."""
    if "$ref" in encoded:
        yield encoded["$ref"]
    for item in encoded.get("$list", []):
        yield from referenced_nodes(item)
    for item in encoded.get("$dict", {}).values():
        yield from referenced_nodes(item)


def build_dag(
    workflow: str, parameters: list[str], trace: Trace, output: Any, on_failure: str | None
) -> Dag:
    """Turn a trace into a validated, hashed DAG, or raise DefinitionError naming the step."""
    _check_duplicate_names(workflow, trace)
    nodes = {name: _build_node(name, trace) for name in trace.calls}
    dag = Dag(
        workflow=workflow,
        parameters=parameters,
        nodes=nodes,
        output=encode(output, where=f"workflow {workflow!r}: its return value"),
        on_failure=on_failure,
    )
    validate(dag)
    dag.hash = dag.compute_hash()
    return dag


def _build_node(name: str, trace: Trace) -> Node:
    call = trace.calls[name]
    arguments = {
        parameter: encode(value, where=f"step {name!r}, argument {parameter!r}")
        for parameter, value in call.arguments.items()
    }
    if call.map_parameter is not None:
        _check_map_source(name, arguments[call.map_parameter])
    data_dependencies = [dep for encoded in arguments.values() for dep in referenced_nodes(encoded)]
    return Node(
        name=name,
        step=call.step.name,
        arguments=arguments,
        map_parameter=call.map_parameter,
        dependencies=list(dict.fromkeys([*data_dependencies, *call.after])),
        max_attempts=call.step.max_attempts,
        timeout=call.step.timeout,
        backoff=call.step.backoff,
    )


def _check_map_source(name: str, source: Encoded) -> None:
    constant = source.get("$value", [])
    if "$value" in source and not is_json_sequence(constant):
        raise DefinitionError(f"step {name!r}: .map() needs a list, got {constant!r}")


def _check_duplicate_names(workflow: str, trace: Trace) -> None:
    if trace.duplicate_names:
        name = trace.duplicate_names[0]
        raise DefinitionError(
            f"workflow {workflow!r}: two different steps are named {name!r}; "
            f"rename one with @step(name=...)"
        )


def validate(dag: Dag) -> None:
    """Check dependencies and acyclicity; each error names the offending step."""
    graph = nx.DiGraph()
    graph.add_nodes_from(dag.nodes)
    for node in dag.nodes.values():
        for dependency in node.dependencies:
            if dependency == node.name:
                raise DefinitionError(
                    f"workflow {dag.workflow!r}: step {node.name!r} depends on itself"
                )
            if dependency not in dag.nodes:
                raise DefinitionError(
                    f"workflow {dag.workflow!r}: step {node.name!r} depends on {dependency!r}, "
                    f"which is not a step of this workflow"
                )
            graph.add_edge(dependency, node.name)
    if not nx.is_directed_acyclic_graph(graph):
        raise DefinitionError(f"workflow {dag.workflow!r}: cycle {_describe_cycle(dag, graph)}")


def _describe_cycle(dag: Dag, graph: nx.DiGraph) -> str:
    cycle = [edge[0] for edge in nx.find_cycle(graph)]
    order = list(dag.nodes)
    start = min(range(len(cycle)), key=lambda i: order.index(cycle[i]))
    rotated = cycle[start:] + cycle[:start]
    return " -> ".join([*rotated, rotated[0]])
