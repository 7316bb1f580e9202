"""Build the invoke namespace that a workspace's ``tasks/__init__.py`` exposes.

Usage in a Workers monorepo::

    # tasks/__init__.py
    from dome_tasks.collection import namespace
    ns = namespace(manifest="dome.yaml")
"""

from __future__ import annotations

from pathlib import Path

from invoke import Collection


def namespace(manifest: str | Path = "dome.yaml") -> Collection:
    """All dome-tasks tasks at the top level, configured under the ``dome`` key."""
    from dome_tasks.cli import deploy, doctor

    ns = Collection()
    for module in (deploy, doctor):
        for task in module.TASKS:
            ns.add_task(task)
    ns.configure({"dome": {"manifest": str(manifest), "log_format": "text"}})
    return ns
