"""The one sticky comment on a pull request that lists its preview's URLs.

Pure: :func:`comment_body` renders preview-up's ``--json`` document as Markdown under the
hidden marker ``<!-- dome-preview -->``; :func:`decide_comment` takes the pull request's
comments (the GitHub API's JSON) and says whether to create the comment, update the one that
carries the marker, or leave it as it is. Never a second comment.

:class:`GitHubApi` then sends that one request with ``$GITHUB_TOKEN`` to ``$GITHUB_API_URL``
(the REST API; GitHub Actions sets both); the token is in no argv, output or message.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dome_tasks.ci.report import markdown_cell
from dome_tasks.errors import DomeError, UsageError
from dome_tasks.progress import FAILED_RESULTS

__all__ = ["MARKER", "CommentAction", "GitHubApi", "GitHubError", "comment_body",
           "decide_comment", "sticky_comment"]

MARKER = "<!-- dome-preview -->"
DEFAULT_API_URL = "https://api.github.com"
_FAILED = (*FAILED_RESULTS, "not run")  # a service after a failed wave is not deployed
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


class GitHubError(DomeError):
    """A GitHub API call failed."""

    exit_code = 1


@dataclass(frozen=True)
class CommentAction:
    """One request: POST a new comment, or PATCH the sticky one."""

    method: str
    path: str
    body: str
    comment_id: int | None = None

    @property
    def verb(self) -> str:
        return "created" if self.method == "POST" else "updated"


def _status(row: Mapping[str, Any]) -> str:
    result = str(row.get("result") or "not run")
    if result in _FAILED:
        note = f": {row['note']}" if row.get("note") else ""
        return f"❌ {markdown_cell(result + note)}"
    health = row.get("health")
    return f"✅ {markdown_cell(result)}" + (f", {markdown_cell(health)}" if health else "")


def comment_body(preview: Mapping[str, Any]) -> str:
    """The comment: marker, heading, a table of service, URL and status, and the commit."""
    rows = {str(r["service"]): r for r in (preview.get("deploy") or {}).get("services") or []}
    urls = {str(k): str(v) for k, v in (preview.get("urls") or {}).items()}
    services = list(dict.fromkeys([*rows, *urls]))
    statuses = {s: _status(rows.get(s, {})) for s in services}
    failed = [s for s, status in statuses.items() if status.startswith("❌")]
    state = f"{len(failed)} of {len(services)} failed" if failed else "up"
    lines = [MARKER, f"### Preview `{preview['preview']}` (from {preview['from']}): {state}", "",
             "| service | URL | status |", "|---|---|---|"]
    for service in services:
        url = f"<{urls[service]}>" if service in urls else "—"
        lines.append(f"| {markdown_cell(service)} | {url} | {statuses[service]} |")
    lines += ["", "Updated on every push, taken down when the pull request closes."]
    if preview.get("commit"):
        lines[-1] = f"Commit `{preview['commit']}`. {lines[-1]}"
    return "\n".join(lines) + "\n"


def sticky_comment(comments: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The oldest comment whose body starts with the marker (a reply quoting it does not)."""
    for comment in comments:
        if str(comment.get("body") or "").lstrip().startswith(MARKER):
            return comment
    return None


def decide_comment(repo: str, number: int, body: str,
                   comments: Sequence[Mapping[str, Any]]) -> CommentAction | None:
    """Create the comment, update the sticky one, or None when it already says *body*."""
    existing = sticky_comment(comments)
    if existing is None:
        return CommentAction("POST", f"/repos/{repo}/issues/{number}/comments", body)
    if existing.get("body") == body:
        return None
    ident = int(existing["id"])
    return CommentAction("PATCH", f"/repos/{repo}/issues/comments/{ident}", body, ident)


@dataclass(frozen=True)
class GitHubApi:
    """The REST API at ``api_url`` with one token."""

    api_url: str
    token: str
    timeout: float = 10.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> GitHubApi:
        token = environ.get("GITHUB_TOKEN", "")
        if not token:
            raise UsageError("GITHUB_TOKEN is not set",
                             hint="in a workflow: env GITHUB_TOKEN: ${{ github.token }}, with "
                                  "permissions pull-requests: write")
        return cls((environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"), token)

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        """Every comment of the pull request (all pages)."""
        found: list[dict[str, Any]] = []
        url: str | None = f"{self.api_url}/repos/{repo}/issues/{number}/comments?per_page=100"
        while url:
            page, links = self._send("GET", url, None)
            found += page
            match = _NEXT.search(links)
            url = match.group(1) if match else None
        return found

    def apply(self, action: CommentAction) -> dict[str, Any]:
        """Send *action*; returns the comment GitHub now holds."""
        comment, _ = self._send(action.method, self.api_url + action.path, {"body": action.body})
        return comment

    def _send(self, method: str, url: str, payload: Any) -> tuple[Any, str]:
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Accept": "application/vnd.github+json", "Authorization": f"Bearer {self.token}",
            "User-Agent": "dome-tasks", "X-GitHub-Api-Version": "2022-11-28"})
        if data is not None:
            request.add_header("Content-Type", "application/json")
        loopback = urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")  # no proxy
        handlers = [urllib.request.ProxyHandler({})] if loopback else []
        opener = urllib.request.build_opener(*handlers)
        what = f"{method} {urlsplit(url).path}"
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null"), response.headers.get("Link", "")
        except urllib.error.HTTPError as error:
            raise self._failure(what, error) from None
        except (OSError, ValueError) as error:
            raise GitHubError(f"{what}: no usable answer from {urlsplit(url).netloc} "
                              f"({type(error).__name__})") from None

    def _failure(self, what: str, error: urllib.error.HTTPError) -> GitHubError:
        try:
            message = str(json.loads(error.read()).get("message", ""))
        except (ValueError, AttributeError, OSError):
            message = ""
        message = message.replace(self.token, "***")
        hint = None
        if error.code in (401, 403, 404):
            hint = ("the job's GITHUB_TOKEN needs `permissions: pull-requests: write`, and the "
                    "repository and pull request must exist")
        return GitHubError(f"{what}: HTTP {error.code}" + (f" ({message})" if message else ""),
                           hint=hint)
