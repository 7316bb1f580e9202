"""Pure: what a CI deploy did, per service, for the run page ($GITHUB_STEP_SUMMARY) and outputs.

Built from the ledger records the deploy wrote, so a failed run is reported as truthfully as a
green one: the version that went live, its URL, and whether its health check passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dome_tasks.lifecycle.ledger import LedgerRecord
from dome_tasks.wrangler.argv import VersionLabel


@dataclass(frozen=True)
class ServiceReport:
    """One row of the summary table."""

    service: str
    worker: str
    version: str
    url: str
    health: str
    ok: bool


def service_reports(
    services: Sequence[str], workers: dict[str, str], records: Iterable[LedgerRecord]
) -> list[ServiceReport]:
    """One row per service (in *services*' order) from the records this run appended."""
    last: dict[str, LedgerRecord] = {}
    deployed: dict[str, LedgerRecord] = {}
    for record in records:
        if record.service not in services:
            continue
        last[record.service] = record
        if record.kind == "deploy":
            deployed[record.service] = record
    rows = []
    for service in services:
        worker = workers.get(service, service)
        deploy, final = deployed.get(service), last.get(service)
        if deploy is None:
            rows.append(ServiceReport(service, worker, "", "", "not deployed", False))
            continue
        urls = list(deploy.extra.get("urls") or [])
        health, ok = _health(deploy, final)
        rows.append(ServiceReport(service, worker, deploy.version_id or "", urls[0] if urls else "",
                                  health, ok))
    return rows


def _health(deploy: LedgerRecord, final: LedgerRecord | None) -> tuple[str, bool]:
    if deploy.outcome == "failure":
        return f"deploy failed: {deploy.reason or 'see the log'}", False
    if deploy.outcome == "unhealthy":
        text = f"unhealthy: {deploy.reason or 'health check failed'}"
        if final is not None and final.kind == "rollback" and final.ok:
            text += f"; rolled back to {final.to_version or final.version_id}"
        return text, False
    if deploy.verified is None:
        return "not checked", True
    return "healthy", True


def primary_url(rows: Sequence[ServiceReport]) -> str:
    """The URL a GitHub deployment links to: the last service in deploy order that has one
    (the one that depends on the others, usually the public front); a route pattern becomes
    the link to its host (``api.example.com/*``: ``https://api.example.com``)."""
    from dome_tasks.lifecycle.verify import route_link

    for row in reversed(rows):
        link = route_link(row.url) if row.url else None
        if link:
            return link
    return ""


def markdown_cell(text: str) -> str:
    """*text* as one cell of a Markdown table: one line, its pipes escaped, — when empty."""
    return " ".join(text.split()).replace("|", "\\|") or "—"


def summary_markdown(environment: str, rows: Sequence[ServiceReport],
                     label: VersionLabel | None = None) -> str:
    """A Markdown section: a heading, the commit, and a table of service, version, URL, health."""
    failed = [row.service for row in rows if not row.ok]
    status = f"{len(failed)} of {len(rows)} failed" if failed else f"{len(rows)} deployed"
    lines = [f"### Deploy to {environment}: {status}", ""]
    if label is not None:
        lines += [f"Commit `{label.message.split(' ', 1)[0]}` (version tag `{label.tag}`).", ""]
    lines += ["| service | worker | version | URL | health |", "|---|---|---|---|---|"]
    for row in rows:
        version = f"`{row.version}`" if row.version else "—"
        url = f"<{row.url}>" if row.url else "—"
        mark = "✅" if row.ok else "❌"
        lines.append(f"| {markdown_cell(row.service)} | {markdown_cell(row.worker)} | {version} | "
                     f"{url} | {mark} {markdown_cell(row.health)} |")
    return "\n".join(lines) + "\n"
