"""Pure helpers the decide functions share: the verify step, the record step, and the workers.dev
subdomain an earlier deploy reported (read from the ledger records an operation observed)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dome_tasks.lifecycle.ledger import LedgerRecord
from dome_tasks.lifecycle.verify import VerifyError, health_target
from dome_tasks.plan.steps import Step, Verify, WriteRecord
from dome_tasks.plan.target import Target

if TYPE_CHECKING:
    from dome_tasks.manifest.model import WorkerConfig

__all__ = ["checks_health", "learned_subdomain", "record_step", "unchecked", "verify_step"]


def learned_subdomain(records: Iterable[LedgerRecord], worker: str) -> str | None:
    """The workers.dev subdomain seen in an earlier deploy's targets for *worker*."""
    from dome_tasks.lifecycle.session import subdomain_in

    for record in reversed(list(records)):
        if record.worker == worker:
            found = subdomain_in(record.extra.get("targets", ()), worker)
            if found:
                return found
    return None


def checks_health(config: WorkerConfig) -> bool:
    """Whether a deploy, rollback or promote verifies ``config``: not with ``health_path: null``
    (and no ``health_url``), which the manifest documents as "skip the health check"."""
    return config.health_url is not None or config.health_path is not None


def unchecked(config: WorkerConfig, verify: bool = True) -> str | None:
    """Why a change of ``config`` is not verified (None: it is), for the record step to say."""
    if not verify:
        return "--no-verify"
    return None if checks_health(config) else "health_path: null"


def verify_step(
    target: Target,
    *,
    subdomain: str | None,
    learned: str | None = None,
    smoke: bool = True,
    required: bool = False,
) -> Step:
    """Check *target* after a change (see :class:`~dome_tasks.plan.steps.Verify`)."""
    try:
        url = health_target(target.config, subdomain=subdomain or learned).public_url
    except VerifyError:
        url = None
    action = Verify(target.config, url, subdomain, learned, smoke=smoke, required=required)
    return target.step("verify", f"verify {target.worker}", action)


def record_step(
    target: Target, kind: str, outcome: str | None = None, *, unchecked: str | None = None,
    **fields: Any,
) -> Step:
    """Append a ``kind`` record for *target* to the ledger (see :class:`WriteRecord`)."""
    label = f"record {kind} of {target.worker}" + (f" ({outcome})" if outcome else "")
    action = WriteRecord(kind, outcome, {"worker": target.worker, **fields}, unchecked)
    return target.step("record", label, action)
