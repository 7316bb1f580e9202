"""Leaving the process once the last task has finished, without the interpreter's teardown.

A deploy imports a few hundred modules; after its last write, Python spends about 60 ms
tearing them down (clearing module dictionaries, a final garbage collection) before the
process exits, time a user waits for after everything is done. When the task that just
succeeded is the last one the ``invoke`` command will run, :func:`leave_if_last` does what
the interpreter's exit does that matters (joins the running threads, runs the ``atexit``
handlers, flushes stdout and stderr) and then ends the process with exit status 0.

Anything else (another task still to run, an in-process ``Program.run`` as in tests, a
failure, ``python -m invoke``) exits the usual way.
"""

from __future__ import annotations

import atexit
import inspect
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["leave_if_last"]


def leave_if_last(func: Callable[..., Any]) -> None:
    """End the process now (status 0) when *func*'s task is the last of this ``invoke`` run."""
    if not _last_task_is(func):
        return
    _flush()
    shutdown = getattr(threading, "_shutdown", None)  # what Py_Finalize calls first
    if shutdown is None:
        return
    shutdown()  # joins non-daemon threads and stops idle executors' workers
    atexit._run_exitfuncs()
    _flush()
    os._exit(0)


def _last_task_is(func: Callable[..., Any]) -> bool:
    """Is the ``invoke`` console program running, with *func*'s task as its last call (and no
    post-task after it)?"""
    main = sys.modules.get("invoke.main")
    program = getattr(main, "program", None)
    if program is None or os.path.basename(sys.argv[0]) not in program.binary_names:
        return False
    parsed = getattr(program, "tasks", None)
    collection = getattr(program, "collection", None)
    if not parsed or collection is None:
        return False
    try:
        task = collection[parsed[-1].name]
    except (KeyError, ValueError, AttributeError):
        return False
    return not task.post and inspect.unwrap(task.body) is inspect.unwrap(func)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said there
            pass
