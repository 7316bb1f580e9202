"""Adoption tasks: import (wrangler configs -> dome.yaml), provision ENV, diff SERVICE ENV.

Thin: parse the words, call :mod:`dome_tasks.adopt`, print.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from invoke.exceptions import Exit

from dome_tasks.cli.common import Settings, boundary, is_dry, load_manifest, recipe, task
from dome_tasks.cli.output import json_output

if TYPE_CHECKING:
    from dome_tasks.adopt.importer import ImportReport
    from dome_tasks.adopt.provision import ProvisionReport

ENV = "development|staging|production (aliases: dev, stg, prod)"
JSON = "print one JSON document on stdout (docs/json.md); everything else goes to stderr"


def _import_json(report: ImportReport) -> dict:
    adoption, proof = report.adoption, report.proof
    return {
        "ok": proof.ok, "path": str(report.path), "written": report.written,
        "services": [{"name": s.name, "config": s.file.path.relative_to(adoption.root).as_posix()}
                     for s in adoption.services],
        "environments": [{"name": e.name, "suffix": e.suffix, "aliases": list(e.aliases)}
                         for e in adoption.environments],
        "guesses": [str(guess) for guess in adoption.guesses],
        "proof": {"summary": proof.summary(), "load_error": proof.load_error,
                  "differences": [{"service": service, "environment": env, "lines": lines}
                                  for (service, env), lines in proof.differences.items()]},
        "manifest": report.text,
    }


def _print_import(report: ImportReport, *, show_text: bool) -> None:
    adoption = report.adoption
    root = adoption.root
    print(f"read {len(adoption.services)} wrangler config(s):")
    for source in adoption.services:
        print(f"  {source.name:<24} {source.file.path.relative_to(root).as_posix()}")
    envs = ", ".join(
        f"{e.name} (suffix '{e.suffix}'" + (f", aliases {', '.join(e.aliases)})" if e.aliases else ")")
        for e in adoption.environments
    )
    print(f"environments: {envs}")
    if adoption.guesses:
        print(f"{len(adoption.guesses)} GUESS(ES) to review (also written as comments):")
        for guess in adoption.guesses:
            print(f"  GUESS {guess}")
    if show_text:
        print()
        print(report.text, end="")
    if report.written:
        print(f"wrote {report.path}")
    proof = report.proof
    if proof.load_error:
        print("the new manifest does not load with this dome-tasks:")
        print("  " + proof.load_error.replace("\n", "\n  "))
    for (service, env), why in proof.unjudged.items():
        print(f"  {service} in {env}: not judged: wrangler cannot read the original: {why}")
    for (service, env), found in proof.differences.items():
        print(f"  {service} in {env} differs from the intent:")
        for line in found:
            print(f"    {line}")
    print(proof.summary())


@task(
    name="import",
    help={
        "output": "where to write the manifest (default: dome.manifest, i.e. dome.yaml)",
        "root": "the monorepo to read (default: the output's folder)",
        "force": "replace an existing manifest",
        "dry_run": "print the manifest and the guesses; write nothing",
        "json_": JSON,
    },
)
@boundary
def import_(c, output="", root="", force=False, dry_run=False, json_=False):
    """Write dome.yaml from the monorepo's wrangler configs (and check it renders the same).

    Example: invoke import --dry-run
    """
    from dome_tasks.adopt.importer import import_monorepo

    with json_output(json_, "import") as document:
        target = Path(output) if output else Settings.from_context(c).manifest
        base = Path(root) if root else (target.parent if target.is_absolute() else Path.cwd())
        dry = is_dry(c, dry_run)
        report = import_monorepo(base, target, force=force, dry_run=dry)
        _print_import(report, show_text=dry and document is None)
        if document is not None:
            document.send({"dry_run": dry, **_import_json(report)})
    if not report.proof.ok:
        raise Exit("import: the manifest does not yet express every config's intent (see above)"
                   + ("" if dry else "; it was written so that you can fix it"), code=1)


def _state(report: ProvisionReport, decision, dry: bool) -> str:
    created = {id(n) for n in report.created}
    if decision.action == "problem":
        return "PROBLEM"
    if id(decision.need) in created:
        return "created"
    if decision.action == "create":
        return "would create" if dry else "create"
    return "exists"


def _provision_json(report: ProvisionReport, dry: bool) -> dict:
    from dome_tasks.adopt.resources import KINDS

    return {
        "environment": report.environment, "dry_run": dry, "ok": not report.problems,
        "resources": [{"state": _state(report, d, dry), "kind": KINDS[d.need.kind],
                       "name": d.need.label, "id": d.id, "users": list(d.need.users),
                       "problem": d.problem} for d in report.decisions],
        "lock_path": str(report.lock_path) if report.lock_path else None,
    }


def _print_provision(report: ProvisionReport, dry: bool) -> None:
    from dome_tasks.adopt.resources import KINDS

    for decision in report.decisions:
        need = decision.need
        state = _state(report, decision, dry)
        ident = decision.id or ""
        print(f"  {state:<12} {KINDS[need.kind]:<16} {need.label:<32} {ident:<36} "
              f"{', '.join(need.users)}")
        if decision.problem:
            print(f"      {decision.problem}")
    if report.lock_path:
        print(f"ids recorded in {report.lock_path}")


@recipe(
    help={
        "env": ENV,
        "dry_run": "read what exists (list commands only) and print the create commands",
        "vectorize_preset": "create Vectorize indexes with this embedding model preset when "
                            "there is no index to copy dimensions and metric from",
        "vectorize_dimensions": "…or with these dimensions (with --vectorize-metric)",
        "vectorize_metric": "cosine, euclidean or dot-product",
        "json": JSON,
    },
)
@boundary
def provision(c, env, *, dry_run=False, vectorize_preset="", vectorize_dimensions=0,
              vectorize_metric="", json_=False):
    """Create the D1 databases, KV namespaces, R2 buckets, queues and Vectorize indexes ENV lacks.

    Example: invoke provision staging --dry-run
    """
    from dome_tasks.adopt.provision import VectorizeShape
    from dome_tasks.adopt.provision import provision as run

    with json_output(json_, "provision") as document:
        manifest = load_manifest(c)
        dry = is_dry(c, dry_run)
        shape = VectorizeShape(vectorize_preset or None, int(vectorize_dimensions) or None,
                               vectorize_metric or None)
        report = run(c, manifest, env, dry_run=dry, vectorize=shape)
        _print_provision(report, dry)
        if document is not None:
            document.send(_provision_json(report, dry))
    if report.problems:
        raise Exit(f"provision: {len(report.problems)} problem(s) above; nothing was created",
                   code=1)
    counts = {a: sum(1 for d in report.decisions if d.action == a) for a in ("exists", "create")}
    made = len(report.created)
    if dry:
        print(f"{report.environment}: {counts['create']} to create, {counts['exists']} exist "
              "(dry run: nothing was created)")
    else:
        print(f"{report.environment}: created {made}, {len(report.decisions) - made} already "
              "existed")


@recipe(
    help={
        "service": "a service from the manifest",
        "env": ENV,
        "against": "compare with this hand-kept wrangler config instead of what is live",
        "against_env": "the config's [env.NAME] block to use (default: the one for ENV)",
        "json": JSON,
    },
)
@boundary
def diff(c, service, env, *, against="", against_env="", json_=False):
    """Show what deploying SERVICE to ENV would change (exit 1 when it would change something).

    Example: invoke diff silo staging
    """
    from dome_tasks.adopt.diff import diff_service

    with json_output(json_, "diff") as document:
        manifest = load_manifest(c)
        result = diff_service(manifest, service, env, against=against or None,
                              against_env=against_env or None)
        if document is not None:
            document.send({"service": service, "environment": env, "worker": result.worker,
                           "against": result.against, "equal": result.equal,
                           "lines": result.lines, "secrets": list(result.secrets)})
    if json_:
        if not result.equal:
            raise Exit(code=1)
        return
    if result.secrets:
        print(f"# secrets (not compared): {', '.join(result.secrets)}")
    if result.equal:
        print(f"{result.worker}: no changes ({result.against} matches the rendered config)")
        return
    for line in result.lines:
        print(line)
    raise Exit(code=1)


TASKS = [import_, provision, diff]
