"""``invoke provision ENV``: create the D1 databases, KV namespaces, R2 buckets, queues and
Vectorize indexes that ENV's workers bind to and that do not exist yet.

It converges: read what the account holds (wrangler's list commands, read-only), decide
(:mod:`dome_tasks.adopt.resources`), create only what is missing through the one runner, read
again and record every id in ``.dome/resources.json``. A dry run reads, then prints the create
commands without running them.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dome_tasks.adopt.read import AdoptError
from dome_tasks.adopt.resources import (
    KINDS,
    Decision,
    Inventory,
    Need,
    ResourceLock,
    decide,
    lock_ids,
    needs,
)
from dome_tasks.plan.steps import Command, Step

if TYPE_CHECKING:
    from invoke import Context

    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.runner import StepResult

__all__ = ["ProvisionReport", "VectorizeShape", "create_argv", "parse_inventory", "provision"]

MAX_QUEUE_PAGES = 50
_TABLE_ROW = re.compile(r"^\s*[│|](.+)[│|]\s*$")


@dataclass(frozen=True)
class VectorizeShape:
    """How to create a Vectorize index: a preset, or dimensions and a metric."""

    preset: str | None = None
    dimensions: int | None = None
    metric: str | None = None

    def args(self) -> tuple[str, ...]:
        if self.preset:
            return ("--preset", self.preset)
        if self.dimensions and self.metric:
            return ("--dimensions", str(self.dimensions), "--metric", self.metric)
        return ()


@dataclass
class ProvisionReport:
    environment: str
    decisions: list[Decision] = field(default_factory=list)
    created: list[Need] = field(default_factory=list)
    lock_path: Path | None = None

    @property
    def problems(self) -> list[Decision]:
        return [d for d in self.decisions if d.action == "problem"]


# --------------------------------------------------------------------------- argv


def list_argv(wrangler: str, kind: str, page: int = 1) -> tuple[str, ...]:
    return {
        "d1": (wrangler, "d1", "list", "--json"),
        "kv": (wrangler, "kv", "namespace", "list"),
        "r2": (wrangler, "r2", "bucket", "list"),
        "queue": (wrangler, "queues", "list", "--page", str(page)),
        "vectorize": (wrangler, "vectorize", "list", "--json"),
    }[kind]


def create_argv(wrangler: str, need: Need, shape: VectorizeShape | None = None) -> tuple[str, ...]:
    name = need.name or ""
    if need.kind == "d1":
        return (wrangler, "d1", "create", name)
    if need.kind == "kv":
        return (wrangler, "kv", "namespace", "create", name)
    if need.kind == "r2":
        return (wrangler, "r2", "bucket", "create", name)
    if need.kind == "queue":
        return (wrangler, "queues", "create", name)
    return (wrangler, "vectorize", "create", name, *(shape.args() if shape else ()))


# --------------------------------------------------------------------------- reading


def _json_in(text: str) -> Any:
    start = min((i for i in (text.find("["), text.find("{")) if i >= 0), default=-1)
    if start < 0:
        raise ValueError("no JSON in wrangler's output")
    return json.loads(text[start:])


def _table_rows(text: str) -> list[dict[str, str]]:
    """Rows of one of wrangler's box-drawn tables, as {header: cell}."""
    rows = [[cell.strip() for cell in m.group(1).split("│" if "│" in m.group(1) else "|")]
            for line in text.splitlines() if (m := _TABLE_ROW.match(line))]
    if not rows:
        return []
    header, *body = rows
    return [dict(zip(header, row)) for row in body if len(row) == len(header)]


def parse_inventory(kind: str, stdout: str, inventory: Inventory) -> int:
    """Add what one list command printed to ``inventory``; returns how many items it listed."""
    items = inventory.items.setdefault(kind, {})
    before = len(items)
    if kind == "d1":
        for db in _json_in(stdout):
            items[db["name"]] = db["uuid"]
    elif kind == "kv":
        for ns in _json_in(stdout):
            items[ns["title"]] = ns["id"]
    elif kind == "vectorize":
        for index in _json_in(stdout):
            items[index["name"]] = index["name"]
            inventory.vectorize_configs[index["name"]] = dict(index.get("config") or {})
    elif kind == "r2":
        for line in stdout.splitlines():
            match = re.match(r"^name:\s+(\S+)\s*$", line)
            if match:
                items[match.group(1)] = match.group(1)
    elif kind == "queue":
        rows = _table_rows(stdout)
        for row in rows:
            if row.get("name"):
                items[row["name"]] = row.get("id", row["name"])
        return len(rows)
    return len(items) - before


# --------------------------------------------------------------------------- running


@dataclass
class _Runners:
    """A read-only runner (always runs: listing changes nothing) and the acting one."""

    read: Callable[[Step], StepResult]
    act: Callable[[Step], StepResult]


def _runners(c: Context, manifest: Manifest, environment: str, dry_run: bool,
             out: TextIO, *, echo: bool = False) -> _Runners:
    """``echo``: the acting commands' own output goes to ``out`` too (not this process's)."""
    from dome_tasks.runner import Runner
    from dome_tasks.wrangler.exec import WranglerExec

    state = manifest.root / ".dome" / "wrangler"
    quiet = Runner(c, dry_run=False, out=io.StringIO(),
                   command_runner=WranglerExec(state, hide_stdout_events=frozenset({"inventory"})))
    streams = {"stdout": out, "stderr": out} if echo else {}
    acting = Runner(c, dry_run=dry_run, out=out, command_runner=WranglerExec(state), **streams)
    return _Runners(quiet.run_step, acting.run_step)


def read_inventory(read: Callable[[Step], StepResult], wrangler: str, root: Path,
                   account: str | None, environment: str, kinds: Sequence[str]) -> Inventory:
    """List every kind the environment needs, in ``account``."""
    inventory = Inventory()
    env = {"CLOUDFLARE_ACCOUNT_ID": account} if account else {}
    for kind in kinds:
        page = 1
        while True:
            argv = list_argv(wrangler, kind, page)
            step = Step("inventory", f"list {KINDS[kind]}s", Command(
                argv, cwd=root, env=env, retry_safe=True, wrangler=True), None, environment)
            result = read(step)
            try:
                listed = parse_inventory(kind, result.stdout, inventory)
            except (ValueError, KeyError, TypeError) as exc:
                raise AdoptError(
                    f"cannot read the output of `{step.action.display()}`: {exc}",
                    hint="run it yourself to see what it prints; is wrangler 4 installed?",
                ) from None
            if kind != "queue" or listed == 0 or page >= MAX_QUEUE_PAGES:
                break
            page += 1
    return inventory


def _shape(need: Need, inventory: Inventory, suffix: str,
           fallback: VectorizeShape | None) -> VectorizeShape | None:
    """Copy the configuration of the index this one is named after (``<name><suffix>``)."""
    name = need.name or ""
    base = name[: -len(suffix)] if suffix and name.endswith(suffix) else None
    config = inventory.vectorize_configs.get(base) if base else None
    if config and config.get("dimensions") and config.get("metric"):
        return VectorizeShape(dimensions=int(config["dimensions"]), metric=str(config["metric"]))
    if fallback is not None and fallback.args():
        return fallback
    return None


def provision(c: Context, manifest: Manifest, environment: str, *, dry_run: bool = False,
              vectorize: VectorizeShape | None = None, out: TextIO | None = None,
              runners: _Runners | None = None) -> ProvisionReport:
    """Create what ``environment`` needs and lacks; see the module docstring."""
    import sys

    from dome_tasks.tools import find_wrangler

    out = out or sys.stdout
    env = manifest.environment(environment)
    if env.is_local:
        raise AdoptError(
            f"{env.name} runs under `wrangler dev` with its own local state: nothing to create",
            hint="provision a remote environment (development, staging, production)",
        )
    wrangler = find_wrangler(manifest.root)
    runners = runners or _runners(c, manifest, env.name, dry_run, out)
    report = ProvisionReport(env.name)
    wanted = needs(manifest, env.name)
    if not wanted:
        print(f"{env.name}: no worker binds to a D1 database, KV namespace, R2 bucket, queue or "
              "Vectorize index", file=out)
        return report
    lock = ResourceLock.load(manifest.root)
    for account in dict.fromkeys(n.account for n in wanted):
        group = [n for n in wanted if n.account == account]
        kinds = [k for k in KINDS if any(n.kind == k for n in group)]
        where = f"account {account}" if account else "the default account"
        print(f"reading what {where} holds: {', '.join(KINDS[k] + 's' for k in kinds)}", file=out)
        inventory = read_inventory(runners.read, wrangler, manifest.root, account, env.name, kinds)
        decisions = [decide(n, inventory) for n in group]
        creates: list[tuple[Need, Step]] = []
        for index, decision in enumerate(decisions):
            if decision.action != "create":
                continue
            need = decision.need
            shape = None
            if need.kind == "vectorize":
                shape = _shape(need, inventory, env.suffix, vectorize)
                if shape is None:
                    decisions[index] = Decision(need, "problem", problem=(
                        f"cannot create Vectorize index '{need.name}': its dimensions and metric "
                        "are unknown (no index named without the environment's suffix to copy "
                        "them from)"))
                    continue
            command = Command(create_argv(wrangler, need, shape), cwd=manifest.root,
                              env={"CLOUDFLARE_ACCOUNT_ID": account} if account else {},
                              wrangler=True)
            creates.append((need, Step("provision", f"create {KINDS[need.kind]} {need.name}",
                                       command, None, env.name)))
        problems = [d for d in decisions if d.action == "problem"]
        if problems:
            report.decisions.extend(decisions)
            return report
        for need, step in creates:
            runners.act(step)
            if not dry_run:
                report.created.append(need)
        if creates and not dry_run:
            inventory = read_inventory(runners.read, wrangler, manifest.root, account, env.name,
                                       kinds)
            decisions = [decide(n, inventory) for n in group]
            missing = [d for d in decisions if d.action != "exists"]
            if missing:
                raise AdoptError(
                    "created, but still not listed: " + ", ".join(
                        f"{KINDS[d.need.kind]} {d.need.label}" for d in missing),
                    hint="run `invoke provision` again; if it persists, check the account",
                )
        report.decisions.extend(decisions)
        lock_ids(lock, decisions)
    if not dry_run:
        lock.save()
        report.lock_path = lock.path
    return report
