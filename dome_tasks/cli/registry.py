"""Which modules hold dome's tasks: the one list that the namespace and ``doctor`` read.

The modules are imported by name when asked for, so ``doctor`` (one of them) can list its
siblings without importing the collection that imports it.
"""

from __future__ import annotations

from importlib import import_module

from invoke import Collection

#: The task modules under ``dome_tasks.cli``, in the order ``--list`` shows their tasks.
TASK_MODULES = ("deploy", "doctor", "local_env", "lifecycle", "secrets", "preview", "rehearse",
                "ci", "adopt")


def native_tasks() -> Collection:
    """Every dome-tasks task at the top level (imports only the thin task modules)."""
    ns = Collection()
    for name in TASK_MODULES:
        for task in import_module(f"dome_tasks.cli.{name}").TASKS:
            ns.add_task(task)
    return ns


def ci_task_names() -> frozenset[str]:
    """The tasks CI runs (grouped apart in the justfile)."""
    return frozenset(task.name for task in import_module("dome_tasks.cli.ci").TASKS)
