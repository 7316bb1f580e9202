"""Preview tasks: preview-up, preview-down, previews. Thin: read the settings and words once,
call :mod:`dome_tasks.preview.actions`, print."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from dome_tasks.cli.common import Settings, boundary, is_dry, load_manifest, recipe, task

if TYPE_CHECKING:
    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.preview.record import PreviewRecord

NUMBER = "the pull request's number (7, pr-7 or #7)"
YES = "do not ask for confirmation (required without a terminal, e.g. in CI)"
DRY = "print what would be created and deployed, without touching the account"


def _confirm(what: str, settings: Settings, yes: bool) -> None:
    from dome_tasks.errors import Refused

    if yes or settings.assume_yes:
        return
    if not sys.stdin.isatty():
        raise Refused(f"refusing to {what} without confirmation: there is no terminal",
                      hint="pass --yes (or set INVOKE_DOME_YES=1)")
    if input(f"{what[0].upper()}{what[1:]}? [y/N] ").strip().lower() not in ("y", "yes"):
        raise Refused("cancelled")


def secret_values(manifest: Manifest, from_file: str, from_env: bool) -> dict[str, str]:
    """Values of declared secrets: a dotenv file, then (winning) the environment's variables."""
    import os

    from dome_tasks.secrets.source import from_environ, read_dotenv

    values: dict[str, str] = read_dotenv(from_file) if from_file else {}
    if from_env:
        declared = {n for s in manifest.services for e in manifest.environments
                    for n in manifest.declared(s, e).secrets}
        values.update(from_environ(sorted(declared), os.environ))
    return values


@recipe(name="preview-up", help={
    "number": NUMBER, "from_": "the template environment (default: staging)", "yes": YES,
    "dry_run": DRY, "json": "print one JSON document on stdout (URLs, resources, deploy summary)",
    "no_build": "skip the build step", "no_verify": "skip the health checks",
    "force": "deploy even the services that have not changed",
    "jobs": "services of one dependency wave deployed at once (default: one per CPU core)",
    "secrets_from_file": "set the preview's missing declared secrets from this dotenv file",
    "secrets_from_env": "set them from environment variables of the same names (CI secrets)",
    "log_format": "text (default) or json: structured log events on stderr"})
@boundary
def preview_up(c, number, *, from_="staging", yes=False, dry_run=False, json_=False,
               no_build=False, no_verify=False, force=False, jobs=0, secrets_from_file="",
               secrets_from_env=False, log_format=""):
    """Deploy every service as <service>-pr-N with its own resources, from the template env.

    Example: invoke preview-up 42 --yes
    """
    from dome_tasks.cli.common import parse_whole
    from dome_tasks.cli.output import json_output
    from dome_tasks.preview.actions import UpOptions
    from dome_tasks.preview.actions import preview_up as up
    from dome_tasks.preview.derive import environment_name, parse_number
    from dome_tasks.tools import discover_tools

    with json_output(json_, "preview") as document:
        settings = Settings.read(c, log_format=log_format or None, yes=yes)
        manifest = load_manifest(settings)
        n = parse_number(number)
        jobs = parse_whole(jobs, "--jobs", low=0, example="--jobs 4") if jobs != 0 else 0
        dry = is_dry(c, dry_run)
        tools = discover_tools(manifest.root, dry_run=dry)
        if dry:
            _show_plan(manifest, n, from_, tools)
            if document is not None:
                document.send({"ok": True, "dry_run": True, "preview": environment_name(n),
                               "from": manifest.environment(from_).name})
            return
        values = secret_values(manifest, secrets_from_file, secrets_from_env)
        _confirm(f"create or update preview {environment_name(n)} from {from_}", settings, yes)
        options = UpOptions(from_, not no_build, not no_verify, force, jobs, json_, secrets=values)
        result = up(c, settings, manifest, n, options, tools)
        from dome_tasks.ci.github import report_preview

        report_preview(result)  # under GitHub Actions: the outputs and the run page's table
        if document is not None:
            document.send(result)
    if document is None:
        print(f"preview {result['preview']} (from {result['from']}):")
        for service, url in result["urls"].items():
            print(f"  {service:<20} {url}")
    if not result["ok"]:
        from invoke.exceptions import Exit

        raise Exit(code=1)


def _show_plan(manifest: Manifest, number: int, template: str, tools) -> None:
    from dome_tasks.adopt.resources import KINDS, needs
    from dome_tasks.plan.deploy import deploy_plan
    from dome_tasks.plan.target import resolve
    from dome_tasks.preview.derive import environment_name, preview_manifest

    name = environment_name(number)
    derived = preview_manifest(manifest, template, number)
    request = resolve(derived, None, name, wrangler=tools.wrangler)
    print(f"preview {name} from {manifest.environment(template).name}:")
    for target in request.targets:
        print(f"  worker {target.worker}")
    for need in needs(derived, name):
        print(f"  {KINDS[need.kind]} {need.name} (created unless it exists)")
    for service, files in derived.preview_seeds.items():
        for binding, path in files.items():
            print(f"  seed {service}.{binding} once from {path.relative_to(manifest.root)}")
    for step in deploy_plan(request, tools):
        print(f"  {step.event:<7} {step.display()}")


@recipe(name="preview-down", help={"number": NUMBER, "yes": YES, "dry_run": DRY})
@boundary
def preview_down(c, number, *, yes=False, dry_run=False):
    """Delete exactly the workers and resources preview N created (safe to run twice).

    Example: invoke preview-down 42 --yes
    """
    from dome_tasks.preview.actions import preview_down as down
    from dome_tasks.preview.derive import environment_name, parse_number

    settings = Settings.read(c, yes=yes)
    manifest = load_manifest(settings)
    n = parse_number(number)
    dry = is_dry(c, dry_run)
    if not dry:
        _confirm(f"delete preview {environment_name(n)}", settings, yes)
    teardown = down(c, manifest, n, dry_run=dry)
    if teardown is None:
        print(f"{environment_name(n)}: nothing recorded: nothing to delete")
    elif not dry:
        print(f"{environment_name(n)}: deleted {len(teardown.steps)} worker(s) and resource(s)")


@task(help={"json": "print the previews as JSON", "prune": "take down the old previews",
            "older_than": "with --prune: not brought up for this long (7d, 36h, 90m)",
            "yes": YES, "dry_run": "with --prune: say which would be taken down"})
@boundary
def previews(c, json_=False, prune=False, older_than="7d", yes=False, dry_run=False):
    """List the preview environments (pull request, template, age); --prune removes old ones.

    Example: invoke previews --prune --older-than 7d --yes
    """
    from dome_tasks.preview.actions import age_seconds, list_previews, parse_age
    from dome_tasks.preview.actions import prune as prune_old

    settings = Settings.read(c, yes=yes)
    manifest = load_manifest(settings)
    if prune:
        seconds = parse_age(older_than)
        dry = is_dry(c, dry_run)
        if not dry:
            _confirm(f"take down previews older than {older_than}", settings, yes)
        done = prune_old(c, manifest, seconds, dry_run=dry)
        print(f"{len(done)} preview(s) {'would be ' if dry else ''}taken down")
        return
    records = list_previews(manifest)
    if json_:
        print(json.dumps([_row(r, age_seconds(r)) for r in records], indent=2))
        return
    if not records:
        print("no previews")
        return
    print(f"{'preview':<10} {'pull request':<13} {'from':<12} {'age':>6}  {'workers':>7}  commit")
    for record in records:
        print(f"{record.environment:<10} {'#' + str(record.number):<13} {record.template:<12} "
              f"{_age(age_seconds(record)):>6}  {len(record.workers):>7}  "
              f"{(record.commit or '-')[:12]}")


def _row(record: PreviewRecord, age: float) -> dict:
    import dataclasses

    data = json.loads(record.to_json())
    data["environment"], data["age_seconds"] = record.environment, int(age)
    data["resources"] = [dataclasses.asdict(r) for r in record.resources]
    return data


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


TASKS = [preview_up, preview_down, previews]
