"""``invoke preview-down N``: delete exactly what the preview's record says it owns.

Observe: which recorded workers still exist (API) and what the account holds (wrangler's list
commands). Decide (pure, :func:`decide_down`): delete each recorded worker that exists, then
each recorded resource whose name still carries the id the preview created it with; a
same-named resource with another id is someone else's and stays. Act: one runner; the record
(and the preview's history) is forgotten only when every deletion succeeded, so running it
again finishes what a failure left, and a second run after success finds nothing to do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dome_tasks.adopt.resources import KINDS, Inventory
from dome_tasks.cloudflare.api import ApiFailure, CloudflareApi, path_segment
from dome_tasks.plan.steps import Call, Command, Step
from dome_tasks.preview.record import Owned, PreviewRecord

__all__ = ["Teardown", "decide_down", "delete_argv", "empty_bucket", "worker_exists"]


@dataclass(frozen=True)
class Teardown:
    """The deletions decided, and what is left alone (with why)."""

    steps: tuple[Step, ...]
    kept: tuple[str, ...]  # "R2 bucket x: ..." notes


def delete_argv(wrangler: str, owned: Owned) -> tuple[str, ...]:
    """The wrangler command deleting one owned resource (KV by id: exactly the one created)."""
    return {
        "d1": (wrangler, "d1", "delete", owned.name, "-y"),
        "kv": (wrangler, "kv", "namespace", "delete", "--namespace-id", owned.id),
        "r2": (wrangler, "r2", "bucket", "delete", owned.name),
        "queue": (wrangler, "queues", "delete", owned.name),
        "vectorize": (wrangler, "vectorize", "delete", owned.name, "--force"),
    }[owned.kind]


def decide_down(record: PreviewRecord, live: Mapping[str, bool], inventory: Inventory,
                *, wrangler: str, root: Path,
                empty: Callable[..., int] | None = None) -> Teardown:
    """Workers first (dependents before what they bind to), then the owned resources; an R2
    bucket is emptied first with ``empty(bucket=NAME)`` (Cloudflare keeps a bucket that holds
    objects)."""
    env = {"CLOUDFLARE_ACCOUNT_ID": record.account} if record.account else {}
    where = record.environment
    steps: list[Step] = []
    for service, worker in reversed(list(record.workers.items())):
        if live.get(worker):
            steps.append(Step("delete", f"delete worker {worker}", Command(
                (wrangler, "delete", worker, "--force"), cwd=root, env=env, wrangler=True),
                service, where))
    kept: list[str] = []
    for owned in record.resources:
        label = f"{KINDS[owned.kind]} {owned.name}"
        found = inventory.id_of(owned.kind, owned.name)
        if found is None:
            continue  # already gone
        if found.lower() != owned.id.lower():
            kept.append(f"{label}: its id is {found}, not {owned.id} that pr-{record.number} "
                        "created: someone else's, left alone")
            continue
        if owned.kind == "r2" and empty is not None:
            steps.append(Step("delete", f"delete every object in {label}", Call(
                f"empty {label}", empty, {"bucket": owned.name}), None, where))
        steps.append(Step("delete", f"delete {label}", Command(
            delete_argv(wrangler, owned), cwd=root, env=env, wrangler=True), None, where))
    return Teardown(tuple(steps), tuple(kept))


def worker_exists(api: CloudflareApi, worker: str) -> bool:
    """Whether the account has a worker of that name (the API's not-found codes: no)."""
    try:
        api.call("GET", f"/workers/services/{path_segment(worker)}")
    except ApiFailure as error:
        if error.code in (10007, 10090) or error.status == 404:
            return False
        raise
    return True


def live_workers(api: CloudflareApi, workers: Sequence[str],
                 exists: Callable[[CloudflareApi, str], bool] = worker_exists) -> dict[str, bool]:
    """Which of ``workers`` exist, asked side by side."""
    from concurrent.futures import ThreadPoolExecutor

    if not workers:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(workers))) as pool:
        return dict(zip(workers, pool.map(lambda w: exists(api, w), workers)))


def empty_bucket(api: CloudflareApi, bucket: str) -> int:
    """Delete every object of an R2 bucket (the API's paged list, then one DELETE per key);
    returns how many were deleted."""
    deleted = 0
    base = f"/r2/buckets/{path_segment(bucket)}/objects"
    cursor = ""
    while True:
        page = api.call("GET", base, query={"per_page": 1000, "cursor": cursor or None},
                        whole=True)
        for item in page.get("result") or []:
            api.call("DELETE", f"{base}/{path_segment(str(item['key']))}")
            deleted += 1
        info = page.get("result_info") or {}
        cursor = info.get("cursor") or ""
        if not info.get("is_truncated") or not cursor:
            return deleted
