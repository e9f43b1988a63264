"""Workflows: ``@step`` functions wired into a DAG by a ``@workflow`` function."""

from buquet.workflow._client import Client, NodeProgress, new_run_id
from buquet.workflow._context import StepContext, step_context
from buquet.workflow._dag import Dag, Node
from buquet.workflow._definition import Workflow, workflow
from buquet.workflow._engine import Engine
from buquet.workflow._register import attach_workflows, collect_workflows, register_workflows
from buquet.workflow._run import Run, RunStatus
from buquet.workflow._step import Step, step
from buquet.workflow._trace import Ref

__all__ = [
    "Client",
    "Dag",
    "Engine",
    "Node",
    "NodeProgress",
    "Ref",
    "Run",
    "RunStatus",
    "Step",
    "StepContext",
    "Workflow",
    "attach_workflows",
    "collect_workflows",
    "new_run_id",
    "register_workflows",
    "step",
    "step_context",
    "workflow",
]
