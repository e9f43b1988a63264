"""Plugging workflows into a queue worker."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from buquet.errors import DefinitionError
from buquet.queue import Worker
from buquet.workflow._definition import Workflow
from buquet.workflow._engine import Engine

logger = logging.getLogger(__name__)


def collect_workflows(modules: Iterable[ModuleType]) -> list[Workflow[..., Any]]:
    """Return the workflows defined at the top level of the modules, once each."""
    found: dict[int, Workflow[..., Any]] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, Workflow):
                found.setdefault(id(value), value)
    return list(found.values())


def attach_workflows(worker: Worker, workflows: Iterable[Workflow[..., Any]]) -> Engine:
    """Register a handler and a settle hook on ``worker`` for each workflow's steps.

    Each workflow's DAG is compiled here, so an invalid definition fails at
    worker start, not at its first step.
    """
    by_name = {workflow.name: workflow for workflow in workflows}
    for workflow in by_name.values():
        _ = workflow.dag
    engine = Engine(worker.queue, by_name)
    for workflow in by_name.values():
        worker.register(
            workflow.task_type,
            engine.execute,
            on_settled=engine.on_settled,
            on_claim=engine.prefetch_run,
        )
        logger.debug("registered workflow %s as task type %s", workflow.name, workflow.task_type)
    return engine


def register_workflows(worker: Worker, modules: Iterable[ModuleType]) -> list[str]:
    """Register every valid workflow found in ``modules``; return their names.

    An invalid workflow is logged and left out, so that it does not stop the
    worker from running the other workflows of its module.
    """
    valid = []
    for workflow in collect_workflows(modules):
        try:
            _ = workflow.dag
        except DefinitionError as error:
            logger.error("workflow %s is invalid and will not run: %s", workflow.name, error)
            continue
        valid.append(workflow)
    attach_workflows(worker, valid)
    return [workflow.name for workflow in valid]
