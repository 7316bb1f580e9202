"""The files GitHub Actions reads after a step: ``$GITHUB_OUTPUT`` and ``$GITHUB_STEP_SUMMARY``.

:class:`RunReport` wraps a CI deploy: before it, the outputs saying where the rendered configs
and the ledger are (the workflow uploads them as an artifact, even after a failure); after it,
however it ended, the summary table (service, version, URL, health) and the ``url`` output that
the GitHub deployment links to. :func:`report_preview` does the same for ``preview-up``.
"""

from __future__ import annotations

import os
import sys
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dome_tasks.errors import UsageError
from dome_tasks.lifecycle.ledger import Ledger

if TYPE_CHECKING:
    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.wrangler.argv import VersionLabel


def append_outputs(values: Mapping[str, str], path: str | Path) -> None:
    """Append ``name=value`` lines (single-line values) to a $GITHUB_OUTPUT file."""
    for name, value in values.items():
        if "\n" in value or "\r" in value:
            raise UsageError(f"output {name} has a newline")
    with open(path, "a", encoding="utf-8") as out:
        out.writelines(f"{name}={value}\n" for name, value in values.items())


class RunReport:
    """Context manager around one CI deploy of *services* to *environment*."""

    def __init__(self, manifest: Manifest, environment: str, services: Sequence[str],
                 label: VersionLabel | None, ledger: Path,
                 environ: Mapping[str, str] | None = None) -> None:
        from dome_tasks.render.config import BUILD_DIR

        env = os.environ if environ is None else environ
        self.manifest, self.environment, self.label = manifest, environment, label
        self.services = list(services)
        self.ledger = Ledger(ledger)
        self.configs = manifest.root / BUILD_DIR / manifest.environment(environment).name
        self.output = env.get("GITHUB_OUTPUT", "")
        self.summary = env.get("GITHUB_STEP_SUMMARY", "")
        self.start = 0

    def __enter__(self) -> None:
        self.start = len(self.ledger.read().records)
        if self.output:
            append_outputs({"configs": str(self.configs.resolve()),
                            "ledger": str(self.ledger.path.resolve())}, self.output)

    def __exit__(self, *exc: object) -> None:
        from dome_tasks.ci.report import primary_url, service_reports, summary_markdown

        if not (self.output or self.summary):
            return
        records = self.ledger.read().records[self.start:]
        workers = {s: self.manifest.resolve(s, self.environment).name for s in self.services}
        rows = service_reports(self.services, workers, records)
        try:
            if self.output:
                append_outputs({"url": primary_url(rows)}, self.output)
            if self.summary:
                with open(self.summary, "a", encoding="utf-8") as out:
                    out.write(summary_markdown(self.environment, rows, self.label))
        except OSError as error:  # the deploy's own outcome matters more than its report
            print(f"warning: cannot write the CI report: {error}", file=sys.stderr)


def report_preview(result: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> None:
    """Under GitHub Actions: the outputs ``preview`` (preview-up's JSON, on one line, for the
    job that comments) and ``url`` (the last service's), and the comment's table on the run page."""
    from dome_tasks.ci.preview_comment import comment_body

    env = os.environ if environ is None else environ
    output, summary = env.get("GITHUB_OUTPUT", ""), env.get("GITHUB_STEP_SUMMARY", "")
    urls = list((result.get("urls") or {}).values())
    try:
        if output:
            append_outputs({"preview": json.dumps(result, separators=(",", ":")),
                            "url": urls[-1] if urls else ""}, output)
        if summary:
            with open(summary, "a", encoding="utf-8") as out:
                out.write(comment_body(result))
    except OSError as error:
        print(f"warning: cannot write the CI report: {error}", file=sys.stderr)
