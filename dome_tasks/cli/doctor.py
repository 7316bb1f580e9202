"""`doctor`: the seed's prerequisites (section 2), checked on this machine: node, the wrangler
each service runs (its version within the supported range), just, credentials, and the
manifest (with its files and paths, and wrangler keys against wrangler's schema)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from invoke.exceptions import Exit

from dome_tasks.cli.common import Settings, task
from dome_tasks.errors import DomeError

if TYPE_CHECKING:
    from dome_tasks.manifest.loader import Manifest


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _version(argv: list[str], cwd: Path | None = None) -> str:
    from dome_tasks.tools import with_node

    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd, timeout=60,
                          env=with_node({**os.environ, "WRANGLER_WRITE_LOGS": "false"}))
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[-1] if done.returncode == 0 and text else f"failed (exit {done.returncode})"


def node_check(wrangler_bin: str | None) -> Check:
    """The node wrangler will run on, against the ``engines`` range of the wrangler found."""
    from dome_tasks.tools import (NODE_INSTALL, find_node, node_minimum, node_version,
                                  wrangler_node_range)

    wanted = wrangler_node_range(wrangler_bin) if wrangler_bin else None
    minimum = node_minimum(wanted)
    needs = f"wrangler's engines: node {wanted}" if wanted else \
        f"node >= {'.'.join(map(str, minimum))}"
    node = find_node(minimum)
    if node is not None:
        version = ".".join(map(str, node_version(node) or ()))
        return Check("node", True, f"v{version} ({node}; {needs})")
    machine = shutil.which("node")
    seen = node_version(machine) if machine else None
    found = f"v{'.'.join(map(str, seen))} ({machine})" if seen else "no node found"
    return Check("node", False, f"{found}, but {needs}; fix: {NODE_INSTALL}")


def credentials_check() -> Check:
    """Which credentials remote work would use, as wrangler would find them (nothing is run)."""
    from dome_tasks.cloudflare.credentials import LOGIN, find_credentials, stored_login

    found = find_credentials(os.environ)
    login = stored_login(os.environ)
    if found is not None and found.source != LOGIN:
        detail = f"{found.source} is set" + (" (with CLOUDFLARE_EMAIL)" if found.email else "")
    elif login is not None and login.fresh():
        detail = f"wrangler login ({login.path}), valid until {login.expires:%Y-%m-%d %H:%M} UTC"
    elif login is not None and login.refreshable:
        detail = f"wrangler login ({login.path}), expired: wrangler renews it on the next run"
    else:
        return Check("credentials", False, "none: run `wrangler login` or set "
                     "CLOUDFLARE_API_TOKEN (only remote deploys need them)", required=False)
    return Check("credentials", True, detail, required=False)


def run_checks(manifest_path: Path) -> list[Check]:
    from dome_tasks.tools import find_just, find_wrangler

    checks: list[Check] = []
    root = manifest_path.resolve().parent
    wrangler_bin: str | None = None
    try:
        wrangler_bin = find_wrangler(root)
    except DomeError as error:
        checks.append(node_check(None))
        checks.append(Check("wrangler", False, str(error)))
    else:
        checks.append(node_check(wrangler_bin))
        checks.append(Check("wrangler", True, f"{_version([wrangler_bin, '--version'], root)} ({wrangler_bin})"))
    try:
        just_bin = find_just()
        checks.append(Check("just", True, f"{_version([just_bin, '--version'])} ({just_bin})"))
    except DomeError as error:
        checks.append(Check("just", False, str(error)))
    checks.append(credentials_check())
    try:
        from dome_tasks.manifest.loader import load

        manifest = load(manifest_path)
    except DomeError as error:
        checks.append(Check("manifest", False, str(error)))
        return checks
    checks.extend(manifest_checks(manifest, manifest_path))
    checks.append(render_check(manifest))
    checks.extend(wrangler_checks(manifest, wrangler_bin))
    return checks


def manifest_checks(manifest: Manifest, manifest_path: Path) -> list[Check]:
    """The manifest is valid, what loading it checked, and what it warned about."""
    checked = "service folders, main files, migrations folders, paths inside the repository"
    counts = f"{len(manifest.deploy_order())} services, {len(manifest.environments)} environments"
    checks = [Check("manifest", True, f"{manifest_path}: {counts}; checked {checked}")]
    if manifest.wrangler_schema is None:
        checks.append(Check("schema", False, "no wrangler config schema found (neither the "
                            "workspace's wrangler nor the bundled copy): wrangler keys were not "
                            "checked", required=False))
    else:
        checks.append(Check("schema", True,
                            f"wrangler keys checked against {manifest.wrangler_schema}",
                            required=False))
    checks += [Check("manifest", True, f"warning: {warning}", required=False)
               for warning in manifest.warnings]
    return checks


def render_check(manifest: Manifest) -> Check:
    """Every (service, environment) renders (in memory: nothing is written), as `render` would:
    a missing or broken template shows here, not first in a deploy."""
    from dome_tasks.render.config import config_path, render_config

    pairs = [(s, e) for e in manifest.environments for s in manifest.services_in(e)]
    for service, environment in pairs:
        config = manifest.resolve(service, environment)
        try:
            render_config(config, manifest_path=manifest.path,
                          out_path=config_path(manifest.root / ".dome" / "build", environment,
                                               service),
                          templates_dir=manifest.templates_dir)
        except DomeError as error:
            return Check("render", False, f"{service} in {environment}: {error}")
    return Check("render", True, f"{len(pairs)} configs render")


def wrangler_checks(manifest: Manifest, default: str | None) -> list[Check]:
    """Which wrangler each service runs, its version, and whether dome-tasks supports it."""
    from dome_tasks.tools import supported, supported_range, wrangler_version

    users: dict[tuple[str, ...], list[str]] = {}
    for env in manifest.environments:
        for service in manifest.services_in(env):
            argv = manifest.resolve(service, env).wrangler or ((default,) if default else None)
            if argv and service not in users.setdefault(argv, []):
                users[argv].append(service)
    checks = []
    for argv, services in users.items():
        shown = " ".join(argv)
        try:
            version = wrangler_version(argv, cwd=manifest.root)
        except DomeError as error:
            checks.append(Check("wrangler", False, f"{', '.join(services)}: {shown}: "
                                f"{error.message}", required=False))
            continue
        ok = supported(version)
        detail = f"{', '.join(services)}: {version} ({shown})"
        if not ok:
            detail += (f": outside the supported range {supported_range()}; "
                       "install a supported wrangler 4")
        checks.append(Check("wrangler", ok, detail))
    return checks


def justfile_check(justfile: Path, prefix: str = "dome") -> Check:
    """How the justfile and dome's tasks share names, and whether its generated recipes are in
    step (``invoke just.check``'s report, on one line per finding)."""
    from dome_tasks.cli.registry import ci_task_names, native_tasks
    from dome_tasks.just.block import BlockSpec
    from dome_tasks.just.parity import check_justfile

    report = check_justfile(justfile, BlockSpec(native_tasks(), prefix, ci_task_names()))
    shared = (f"{len(report.notes)} of your recipes have a dome task's name (yours win)"
              if report.notes else "no recipe of yours has a dome task's name")
    lines = [f"{justfile}: {shared}"]
    lines += list(report.notes) + [p.splitlines()[0] for p in report.problems]
    return Check("justfile", not report.problems, "\n                 ".join(lines), required=False)


@task
def doctor(c):
    """Check the prerequisites: node, wrangler (each service's), just, credentials, the manifest.

    Example: invoke doctor
    """
    settings = Settings.from_context(c)
    checks = run_checks(settings.manifest)
    if settings.justfile:
        checks.append(justfile_check(settings.justfile, settings.prefix))
    for check in checks:
        mark = "ok " if check.ok else ("!! " if check.required else "-- ")
        print(f"{mark} {check.name:<12} {check.detail}")
    failed = [check.name for check in checks if check.required and not check.ok]
    if failed:
        raise Exit(f"doctor: {', '.join(failed)} need attention", code=1)


TASKS = [doctor]
