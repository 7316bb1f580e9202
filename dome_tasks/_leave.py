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
from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = ["leave_if_last"]

#: How many calls of each task body have finished in this process (one command line can name a
#: task twice: ``invoke render silo staging render silo production``).
_finished: Counter[Callable[..., Any]] = Counter()


def leave_if_last(func: Callable[..., Any]) -> None:
    """End the process now (status 0) when this call of *func*'s task is the last call of this
    ``invoke`` run."""
    body = inspect.unwrap(func)
    _finished[body] += 1
    if not _last_call_is(body, _finished[body]):
        return
    _flush()
    shutdown = getattr(threading, "_shutdown", None)  # what Py_Finalize calls first
    if shutdown is None:
        return
    shutdown()  # joins non-daemon threads and stops idle executors' workers
    atexit._run_exitfuncs()
    _flush()
    os._exit(0)


def _last_call_is(body: Callable[..., Any], finished: int) -> bool:
    """Is the ``invoke`` console program running, with *body*'s task as its last task (no
    post-task after it), named *finished* times on the command line?"""
    main = sys.modules.get("invoke.main")
    program = getattr(main, "program", None)
    if program is None or os.path.basename(sys.argv[0]) not in program.binary_names:
        return False
    parsed = getattr(program, "tasks", None)
    collection = getattr(program, "collection", None)
    if not parsed or collection is None:
        return False
    try:
        bodies = [inspect.unwrap(collection[context.name].body) for context in parsed]
        last = collection[parsed[-1].name]
    except (KeyError, ValueError, AttributeError):
        return False
    return not last.post and bodies[-1] is body and bodies.count(body) == finished


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said there
            pass
