"""`doctor`: the seed's prerequisites (section 2), checked on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from invoke import task
from invoke.exceptions import Exit

from dome_tasks.cli.common import Settings
from dome_tasks.errors import DomeError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _version(argv: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd, timeout=60)
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[-1] if done.returncode == 0 and text else f"failed (exit {done.returncode})"


def wrangler_login_present(home: Path) -> bool:
    """Does a ``wrangler login`` OAuth token exist in wrangler's config folder?"""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    folders = [Path(xdg) / ".wrangler"] if xdg else []
    folders += [home / ".config" / ".wrangler", home / ".wrangler"]
    return any((folder / "config" / "default.toml").is_file() for folder in folders)


def run_checks(manifest_path: Path) -> list[Check]:
    from dome_tasks import wrangler as wr

    checks: list[Check] = []
    root = manifest_path.resolve().parent
    node = shutil.which("node")
    checks.append(Check("node", bool(node), _version(["node", "--version"]) if node else "not found: install Node.js 20+"))
    try:
        wrangler_bin = wr.find_wrangler(root)
        checks.append(Check("wrangler", True, f"{_version([wrangler_bin, '--version'], root)} ({wrangler_bin})"))
    except DomeError as error:
        checks.append(Check("wrangler", False, str(error)))
    try:
        just_bin = wr.find_just()
        checks.append(Check("just", True, f"{_version([just_bin, '--version'])} ({just_bin})"))
    except DomeError as error:
        checks.append(Check("just", False, str(error)))
    if os.environ.get("CLOUDFLARE_API_TOKEN"):
        checks.append(Check("credentials", True, "CLOUDFLARE_API_TOKEN is set", required=False))
    elif wrangler_login_present(Path.home()):
        checks.append(Check("credentials", True, "wrangler login token found", required=False))
    else:
        checks.append(Check(
            "credentials", False,
            "none: run `wrangler login` or set CLOUDFLARE_API_TOKEN (only remote deploys need them)",
            required=False,
        ))
    try:
        from dome_tasks.manifest import load

        manifest = load(manifest_path)
        checks.append(Check("manifest", True, f"{manifest_path}: {len(manifest.deploy_order())} services, "
                                              f"{len(manifest.environments)} environments"))
    except DomeError as error:
        checks.append(Check("manifest", False, str(error)))
    return checks


@task
def doctor(c):
    """Check the prerequisites: node, wrangler, just, credentials, a valid manifest."""
    checks = run_checks(Settings.from_context(c).manifest)
    for check in checks:
        mark = "ok " if check.ok else ("!! " if check.required else "-- ")
        print(f"{mark} {check.name:<12} {check.detail}")
    failed = [check.name for check in checks if check.required and not check.ok]
    if failed:
        raise Exit(f"doctor: {', '.join(failed)} need attention", code=1)


TASKS = [doctor]
