"""A small stand-in for GitHub's REST API on 127.0.0.1: a pull request's comments.

Only what ci-preview-comment uses, as GitHub answers it: list a pull request's comments (paged,
with a ``Link: <…>; rel="next"`` header), create one, update one; a wrong token is 401 "Bad
credentials", a read-only token 403 "Resource not accessible by integration". Every request is
recorded (method, path, the Authorization header).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "ghs_fake_github_token_7c1e"
_LIST = re.compile(r"/repos/([\w.-]+/[\w.-]+)/issues/(\d+)/comments")
_ONE = re.compile(r"/repos/([\w.-]+/[\w.-]+)/issues/comments/(\d+)")


@dataclass
class Request:
    method: str
    path: str
    authorization: str


@dataclass
class FakeGitHub:
    """``comments[(repo, number)]`` holds the comments, oldest first."""

    token: str = TOKEN
    page_size: int = 30  # GitHub's default; a test may make it smaller to force pages
    writable: bool = True
    comments: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    _next_id: int = 1000

    def add(self, repo: str, number: int, body: str, login: str = "someone") -> dict[str, Any]:
        self._next_id += 1
        page = f"https://github.com/{repo}/pull/{number}"
        comment = {"id": self._next_id, "body": body, "user": {"login": login, "type": "User"},
                   "html_url": f"{page}#issuecomment-{self._next_id}"}
        self.comments.setdefault((repo, number), []).append(comment)
        return comment

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    def __enter__(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, payload: Any, link: str = "") -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if link:
                    self.send_header("Link", link)
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                url = urlsplit(self.path)
                auth = self.headers.get("Authorization", "")
                fake.requests.append(Request(self.command, url.path, auth))
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._answer(401, {"message": "Bad credentials"})
                if self.command != "GET" and not fake.writable:
                    return self._answer(403, {"message": "Resource not accessible by integration"})
                length = int(self.headers.get("Content-Length") or 0)
                data = json.loads(self.rfile.read(length) or b"null")
                listing, one = _LIST.fullmatch(url.path), _ONE.fullmatch(url.path)
                if listing and self.command == "GET":
                    return self._page(listing.group(1), int(listing.group(2)), url.query)
                if listing and self.command == "POST":
                    return self._answer(201, fake.add(listing.group(1), int(listing.group(2)),
                                                      data["body"], login="github-actions[bot]"))
                if one and self.command == "PATCH":
                    for comments in fake.comments.values():
                        for comment in comments:
                            if comment["id"] == int(one.group(2)):
                                comment["body"] = data["body"]
                                return self._answer(200, comment)
                return self._answer(404, {"message": "Not Found"})

            def _page(self, repo: str, number: int, query: str) -> None:
                args = parse_qs(query)
                size = min(int(args.get("per_page", ["30"])[0]), fake.page_size)
                page = int(args.get("page", ["1"])[0])
                comments = fake.comments.get((repo, number), [])
                chunk = comments[(page - 1) * size: page * size]
                link = ""
                if page * size < len(comments):
                    host = f"http://{self.headers['Host']}"
                    link = (f'<{host}/repos/{repo}/issues/{number}/comments?per_page={size}'
                            f'&page={page + 1}>; rel="next"')
                self._answer(200, chunk, link)

            do_GET = do_POST = do_PATCH = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
