"""Several services at once, by dependency wave.

``deploy-env all local`` brings the services up wave by wave: a service's health is checked,
and it counts as started, only once every service of the waves before it is healthy. The
services of one wave start side by side (threads: the work is subprocesses and HTTP polls).
A failure stops the waves after it; the services already up keep running. Ctrl-C stops every
service this call started.

``jobs`` bounds how many services are in their CPU-bound start at once (migrations, then
``wrangler dev`` until it serves: Node, esbuild, workerd, about 2 s each); earlier waves get
free slots first. By default a later wave's ``wrangler dev`` may boot in a free slot while an
earlier wave is still coming up: service bindings resolve through the dev registry when a
request is made, so booting early is safe, and the sample's three one-service waves come up
in about the time of two starts instead of three. If an earlier wave fails, those early
processes are stopped and reported as not started. ``boot_ahead=False`` launches each wave
only after the one before it is healthy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from dome_tasks.errors import DomeError
from dome_tasks.local.migrations import Cancelled, migrate
from dome_tasks.local.model import LocalEnv, LocalService, Outcome, ProcessRecord, StackFailed
from dome_tasks.local.runtime import PortBook, abort, launch, stop, wait_booted, wait_ready

__all__ = ["start_stack", "start_wave"]

Report = Callable[[Outcome], None]


class _Slots:
    """``jobs`` slots for CPU-bound starts, handed to the earliest waiting service first."""

    def __init__(self, jobs: int):
        self.free = jobs
        self.waiting: list[int] = []
        self.changed = threading.Condition()

    def acquire(self, order: int, cancel: threading.Event) -> None:
        with self.changed:
            self.waiting.append(order)
            try:
                while not (self.free and order == min(self.waiting)):
                    if cancel.is_set():
                        raise Cancelled
                    self.changed.wait(timeout=0.05)
                self.free -= 1
            finally:
                self.waiting.remove(order)
                self.changed.notify_all()

    def release(self) -> None:
        with self.changed:
            self.free += 1
            self.changed.notify_all()


class _Waves:
    """What the services of one bring-up tell each other: which waves are healthy, the first
    wave that failed, and whether to give up (Ctrl-C)."""

    def __init__(self, sizes: list[int]):
        self.changed = threading.Condition()
        self.left = list(sizes)  # services of each wave not yet healthy
        self.first_failed: int | None = None
        self.cancel = threading.Event()

    def healthy(self, wave: int) -> None:
        with self.changed:
            self.left[wave] -= 1
            self.changed.notify_all()

    def failed(self, wave: int) -> None:
        with self.changed:
            if self.first_failed is None or wave < self.first_failed:
                self.first_failed = wave
            self.changed.notify_all()

    def stopped_before(self, wave: int) -> bool:
        """An earlier wave failed: ``wave`` is not to be started."""
        return self.first_failed is not None and self.first_failed < wave

    def await_turn(self, wave: int, is_done: Callable[[], bool] = lambda: False) -> bool:
        """Block until every wave before ``wave`` is healthy (True), an earlier wave failed
        (False), or ``is_done()`` (True: e.g. the process exited, to be reported at once)."""
        with self.changed:
            while True:
                if self.cancel.is_set():
                    raise Cancelled
                if self.stopped_before(wave):
                    return False
                if not any(self.left[:wave]) or is_done():
                    return True
                self.changed.wait(timeout=0.05)


def _bring_up(
    env: LocalEnv,
    service: LocalService,
    order: int,
    wave: int,
    waves: _Waves,
    slots: _Slots,
    ports: PortBook,
    migrations: bool,
    boot_ahead: bool,
) -> Outcome:
    queued = time.monotonic()
    allowed = not waves.stopped_before(wave) if boot_ahead else waves.await_turn(wave)
    if allowed:
        slots.acquire(order, waves.cancel)
    if not allowed or waves.stopped_before(wave):
        if allowed:
            slots.release()
        return Outcome(service.name, 0.0, wave=wave)
    # Its own time: from its start (a slot free, its wave's turn) to ready, less the time spent
    # waiting for the earlier waves after booting ahead, so each service shows its own.
    began = time.monotonic()
    waited = began - queued
    try:
        try:
            applied = tuple(
                migrate(env, service, skip_unchanged=True, cancel=waves.cancel)
                if migrations
                else ()
            )
            starting = launch(env, service, ports)
        except DomeError as error:
            waves.failed(wave)
            return Outcome(service.name, time.monotonic() - began, error=error, wave=wave)
        try:
            wait_booted(env, starting, waves.cancel)
        except DomeError as error:
            abort(env, starting)
            waves.failed(wave)
            return Outcome(
                service.name, time.monotonic() - began, migrations=applied, error=error, wave=wave
            )
        except BaseException:
            abort(env, starting)
            raise
    finally:
        slots.release()
    try:
        turn = time.monotonic()
        if not waves.await_turn(wave, lambda: starting.process.poll() is not None):
            abort(env, starting)  # booted ahead, but an earlier wave failed
            return Outcome(service.name, time.monotonic() - began, wave=wave)
        waited_turn = time.monotonic() - turn
        began += waited_turn
        waited += waited_turn
        record = wait_ready(env, starting, ports, waves.cancel)
    except DomeError as error:
        abort(env, starting)
        waves.failed(wave)
        return Outcome(
            service.name, time.monotonic() - began, migrations=applied, error=error, wave=wave
        )
    except BaseException:
        abort(env, starting)
        raise
    waves.healthy(wave)
    return Outcome(service.name, time.monotonic() - began, record, applied, wave=wave,
                   waited=waited)


def _bring_up_all(
    env: LocalEnv,
    waves: Sequence[Sequence[LocalService]],
    jobs: int | None,
    migrations: bool,
    on_done: Report | None,
    boot_ahead: bool,
) -> list[Outcome]:
    units = [(index, service) for index, wave in enumerate(waves) for service in wave]
    if not units:
        return []
    state, ports = _Waves([len(wave) for wave in waves]), PortBook()
    ports.plan(env, [service for _, service in units])
    from dome_tasks.runner import default_jobs  # the cores this process may use

    slots = _Slots(max(1, jobs or default_jobs()))
    # One thread per service: most of them wait (for a slot, a wave, a health answer).
    pool = ThreadPoolExecutor(max_workers=len(units), thread_name_prefix="dome-local")
    futures: list[Future[Outcome]] = []
    finished: dict[str, Outcome] = {}
    printer = _InWaveOrder([len(wave) for wave in waves], on_done)
    try:
        for order, (wave, service) in enumerate(units):
            unit = (env, service, order, wave, state, slots, ports, migrations, boot_ahead)
            futures.append(pool.submit(_bring_up, *unit))
        pending = set(futures)
        while pending:
            # A bounded wait: the main thread stays responsive to Ctrl-C.
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                outcome = future.result()
                finished[outcome.service] = outcome
                printer.add(outcome)
    except BaseException:
        state.cancel.set()  # each service still starting stops its own process tree
        pool.shutdown(wait=True, cancel_futures=True)
        up = [
            f.result() for f in futures if f.done() and not f.cancelled() and f.exception() is None
        ]
        stop(env, [o.service for o in up if o.record is not None])
        raise
    pool.shutdown(wait=True)
    outcomes = [finished[service.name] for _, service in units]
    failures = [o for o in outcomes if o.error is not None]
    if failures:
        raise StackFailed(
            failures, [o.service for o in outcomes if o.record is None and o.error is None]
        )
    return outcomes


class _InWaveOrder:
    """Hands outcomes to ``on_done`` wave by wave (within a wave, as they finish), so the
    output reads in dependency order even when a later wave's service failed early."""

    def __init__(self, sizes: list[int], on_done: Report | None):
        self.sizes, self.on_done, self.wave = sizes, on_done, 0
        self.held: list[list[Outcome]] = [[] for _ in sizes]
        self.sent = [0 for _ in sizes]

    def add(self, outcome: Outcome) -> None:
        self.held[outcome.wave].append(outcome)
        while self.wave < len(self.sizes):
            for held in self.held[self.wave]:
                if self.on_done is not None:
                    self.on_done(held)
            self.sent[self.wave] += len(self.held[self.wave])
            self.held[self.wave] = []
            if self.sent[self.wave] < self.sizes[self.wave]:
                return
            self.wave += 1


def start_stack(
    env: LocalEnv,
    waves: Sequence[Sequence[LocalService]],
    *,
    jobs: int | None = None,
    migrations: bool = True,
    on_done: Report | None = None,
    boot_ahead: bool = True,
) -> list[ProcessRecord]:
    """Bring ``waves`` up (dependency order: each wave needs only the ones before it); see
    the module's docstring. Returns every record, in order.

    ``on_done`` gets each service's :class:`Outcome` in this thread, wave by wave (so a caller
    printing it never mixes two services' lines). Raises :class:`StackFailed`, once every
    service started has finished, if any failed.
    """
    outcomes = _bring_up_all(env, waves, jobs, migrations, on_done, boot_ahead)
    return [o.record for o in outcomes if o.record is not None]


def start_wave(
    env: LocalEnv,
    services: Sequence[LocalService],
    *,
    jobs: int | None = None,
    migrations: bool = True,
    on_done: Report | None = None,
) -> list[Outcome]:
    """Bring up one wave of independent ``services``, up to ``jobs`` at a time; returns each
    one's :class:`Outcome`, in the given order."""
    return _bring_up_all(env, [services], jobs, migrations, on_done, boot_ahead=False)
