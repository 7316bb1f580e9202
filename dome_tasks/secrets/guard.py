"""Before a deploy: does each worker have the secrets its service declares?

A missing declared secret is a warning; in a protected environment (production) a worker that
is already live without one is refused (its next version would run without it). A worker's
first deploy only warns: set its secrets right after with ``invoke secrets-sync``. Without
API credentials (a dry run, a recording test) nothing is checked.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from dome_tasks.errors import Refused

if TYPE_CHECKING:
    from concurrent.futures import Future

    from dome_tasks.plan.target import ResolvedRequest
    from dome_tasks.secrets.status import SecretStatus

__all__ = ["check_declared", "observe_declared"]


def observe_declared(request: ResolvedRequest,
                     environ: Mapping[str, str] | None = None) -> list[SecretStatus] | None:
    """The secrets of each target that declares some, read from the API (None: nothing to
    check, or no API access). Raises ``ApiFailure`` when the API cannot tell."""
    from dome_tasks.cloudflare.api import CloudflareApi
    from dome_tasks.cloudflare.credentials import wrangler_near
    from dome_tasks.secrets.status import observe

    targets = [t for t in request.targets if t.config.secrets]
    env = request.environment
    api = CloudflareApi.from_environ(os.environ if environ is None else environ,
                                     account_id=env.account_id, wrangler=wrangler_near(request.root))
    if not targets or api is None:
        return None
    return observe(api, targets)


def check_declared(request: ResolvedRequest, environ: Mapping[str, str] | None = None,
                   say: Callable[[str], None] | None = None, *,
                   observed: Future[list[SecretStatus] | None] | None = None) -> None:
    """Warn about missing declared secrets; refuse a protected environment's live worker.
    *observed*: :func:`observe_declared` already started (e.g. beside the task's other reads)."""
    from dome_tasks.cloudflare.api import ApiFailure

    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    env = request.environment
    try:
        statuses = observe_declared(request, environ) if observed is None else observed.result()
    except ApiFailure as error:
        say(f"warning: could not check the declared secrets: {error.message}")
        return
    if statuses is None:
        return
    missing = [s for s in statuses if s.missing]
    for status in missing:
        say(f"warning: {status.worker} lacks declared secret(s) {', '.join(status.missing)}"
            f" (set them: invoke secrets-sync {env.name} --from-env)")
    refused = [s for s in missing if s.deployed]
    if env.protected and refused:
        names = "; ".join(f"{s.worker}: {', '.join(s.missing)}" for s in refused)
        raise Refused(f"refusing to deploy to {env.name}: live worker(s) lack declared secrets "
                      f"({names})",
                      hint=f"set them first: invoke secrets-sync {env.name} --from-file FILE "
                           "(or --from-env); `invoke secrets-check` lists them")
