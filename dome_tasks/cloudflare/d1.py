"""One D1 database of an account, found by name, queried over the REST API (no wrangler).

``POST /accounts/<id>/d1/database/<uuid>/query`` with ``{"sql": …, "params": […]}`` runs the
statement in D1 itself, which is strongly consistent: a conditional ``INSERT … ON CONFLICT …
DO UPDATE … WHERE … RETURNING`` either changes the row or not, for every client at once. That is
what dome's account lock is built on. Parameters go with single statements only (as a Worker's
``prepare().bind()``); a script of several statements takes none. The API takes parameters as
strings: a statement casts what it needs as a number (``CAST(?2 AS REAL)``). Several statements,
each with its parameters, go in one request as ``{"batch": [{"sql", "params"}, …]}``
(:meth:`D1Client.batch`): run in order, in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dome_tasks.cloudflare.api import ApiFailure, CloudflareApi

__all__ = ["D1Client"]

_ALREADY_EXISTS = 7502  # "A database with name … already exists"


@dataclass
class D1Client:
    """The database called ``name`` in the API's account (created on first use when asked)."""

    api: CloudflareApi
    name: str
    _id: str | None = field(default=None, repr=False)

    def database_id(self, *, create: bool) -> str | None:
        """The database's uuid, found by name; created when absent and ``create``."""
        if self._id:
            return self._id
        for item in self.api.call("GET", "/d1/database", query={"name": self.name}) or []:
            if item.get("name") == self.name:
                self._id = str(item["uuid"])
                return self._id
        if not create:
            return None
        try:
            created = self.api.call("POST", "/d1/database", json_body={"name": self.name})
        except ApiFailure as error:
            if error.code == _ALREADY_EXISTS:  # another machine created it a moment ago
                return self.database_id(create=False)
            raise
        self._id = str(created["uuid"])
        return self._id

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The rows of one statement (``params``, as strings, bound to ``?1``, ``?2`` …)."""
        results = self.script(sql, params)
        return list(results[-1].get("results") or []) if results else []

    def script(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Every statement's result object (``results``, ``meta``), in order."""
        return self._post(_statement(sql, params))

    def batch(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
        """Each (statement, parameters) in order, in one request and one transaction: every
        statement's result object; a failing one rolls the batch back."""
        if len(statements) == 1:
            return self.script(*statements[0])
        return self._post({"batch": [_statement(sql, params) for sql, params in statements]})

    def _post(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        database = self.database_id(create=True)
        answer = self.api.call("POST", f"/d1/database/{database}/query", json_body=body)
        if not isinstance(answer, list):
            raise ApiFailure(f"D1 {self.name}: the query answered {type(answer).__name__}, "
                             "not a list of results", transient=True)
        return answer


def _statement(sql: str, params: Sequence[Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"sql": sql}
    if params:
        body["params"] = [str(value) for value in params]
    return body
