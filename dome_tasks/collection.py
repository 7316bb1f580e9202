"""Build the invoke namespace that a workspace's ``tasks/__init__.py`` exposes.

Usage in a Workers monorepo::

    # tasks/__init__.py
    from dome_tasks.collection import namespace
    ns = namespace(manifest="dome.yaml", justfile="justfile")
"""

from __future__ import annotations

import re
from pathlib import Path

from invoke import Collection


def invoke_word(justfile: str | Path) -> str:
    """What generated recipes call: ``{{invoke}}`` when the justfile defines an ``invoke``
    variable (this repository's picks the venv's invoke), else plain ``invoke``."""
    text = Path(justfile).read_text(encoding="utf-8")
    return "{{invoke}}" if re.search(r"^(export\s+)?invoke\s*:=", text, re.MULTILINE) else "invoke"


def native_tasks() -> Collection:
    """Every dome-tasks task at the top level (imports only the thin task modules)."""
    from dome_tasks.cli import ci, deploy, doctor, lifecycle, local_env, rehearse

    ns = Collection()
    for module in (deploy, doctor, local_env, lifecycle, rehearse, ci):
        for task in module.TASKS:
            ns.add_task(task)
    return ns


def namespace(manifest: str | Path = "dome.yaml", justfile: str | Path | None = None) -> Collection:
    """The dome-tasks namespace, configured under the ``dome`` key.

    With *justfile*, the justfile's own public recipes become tasks too (native tasks win), and
    ``just.check`` / ``just.sync`` keep its delegating recipes in parity with the tasks.
    """
    ns = native_tasks()
    if justfile is not None and Path(justfile).is_file():
        from dome_tasks.justfile_bridge import parity_tasks, recipes_collection

        native = ns
        ns = recipes_collection(justfile, native=native)
        ns.add_collection(parity_tasks(justfile, native, invoke=invoke_word(justfile)))
    # Every key is declared here so that INVOKE_DOME_<KEY> environment variables reach it.
    ns.configure({"dome": {"manifest": str(manifest), "log_format": "text", "ledger": "", "yes": False}})
    return ns
