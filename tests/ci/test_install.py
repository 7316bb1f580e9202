"""`pip install dome-tasks` is all an adopter needs (plus wrangler from their own lock file).

The package is built the standard way (sdist, then the wheel from the sdist), installed into a
fresh venv outside the repository from a local wheelhouse (no network), and used in a folder
shaped like a Workers monorepo: render, --list, doctor, and a justfile recipe through the `just`
that the install brought.
"""

from __future__ import annotations

import email
import re
import tarfile
import zipfile
from pathlib import Path

import pytest
from adopter import ROOT, VERSION, Dist, Venv, write_monorepo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    env = Venv(tmp_path_factory.mktemp("adopter") / "venv")
    env.pip_install(str(dist.wheel))
    return env


def test_the_package_says_its_licence_platforms_and_home_and_ships_its_docs(dist: Dist) -> None:
    import configparser

    with tarfile.open(dist.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    linked = set(re.findall(r"\]\((docs/[a-z-]+\.md)", (ROOT / "README.md").read_text()))
    assert linked and linked <= names, "every doc the README links is in the sdist"
    assert "LICENSE" in names
    wheel = zipfile.ZipFile(dist.wheel)
    info = f"dome_tasks-{VERSION}.dist-info"
    meta = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
    assert meta["License-Expression"] == "MIT" and "LICENSE" in meta.get_all("License-File")
    classifiers = meta.get_all("Classifier")
    assert "Operating System :: POSIX" in classifiers and "Operating System :: MacOS" in classifiers
    assert "Programming Language :: Python :: 3.12" in classifiers
    assert {url.split(",")[0] for url in meta.get_all("Project-URL")} >= {"Source", "Documentation"}
    entry_points = configparser.ConfigParser()
    if f"{info}/entry_points.txt" in wheel.namelist():
        entry_points.read_string(wheel.read(f"{info}/entry_points.txt").decode())
    assert "pytest11" not in entry_points, "the pytest plugin is opt-in, not auto-loaded"


def test_the_sdist_and_the_wheel_built_from_it_carry_templates_and_modules(dist: Dist) -> None:
    template = "dome_tasks/render/templates/wrangler.toml.j2"
    with tarfile.open(dist.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    wheel = zipfile.ZipFile(dist.wheel)
    assert template in names and template in wheel.namelist()
    schema = "dome_tasks/manifest/dome.schema.json"  # editors' schema of dome.yaml
    assert schema in names and schema in wheel.namelist()
    for module in (ROOT / "dome_tasks").rglob("*.py"):
        assert module.relative_to(ROOT).as_posix() in wheel.namelist()
    meta = email.message_from_bytes(wheel.read(f"dome_tasks-{VERSION}.dist-info/METADATA"))
    runtime = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    names = {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in runtime}
    assert {"invoke", "jinja2", "pyyaml", "rust-just"} <= names  # just comes with dome-tasks


def test_the_installed_wheel_works_in_a_monorepo_without_a_justfile(venv: Venv, tmp_path: Path) -> None:
    repo = write_monorepo(tmp_path / "monorepo", justfile=False)
    where = venv.run(str(venv.bin / "python"), "-c", "import dome_tasks; print(dome_tasks.__file__)",
                     cwd=repo)
    assert where.stdout.strip().startswith(str(venv.path)), where.stdout + where.stderr

    listing = venv.run("invoke", "--list", cwd=repo)
    assert listing.returncode == 0, listing.stderr
    assert "deploy-env" in listing.stdout and "ci-deploy" in listing.stdout
    assert "just" not in listing.stderr

    render = venv.run("invoke", "render", "silo", "staging", cwd=repo)
    assert render.returncode == 0, render.stderr
    config = repo / ".dome" / "build" / "staging" / "silo" / "wrangler.toml"
    assert 'name = "silo-staging"' in config.read_text(encoding="utf-8")

    doctor = venv.run("invoke", "doctor", cwd=repo)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    just_line = next(line for line in doctor.stdout.splitlines() if " just " in line)
    assert just_line.startswith("ok") and str(venv.bin / "just") in just_line


def test_the_installed_just_runs_the_teams_recipes(venv: Venv, tmp_path: Path) -> None:
    repo = write_monorepo(tmp_path / "monorepo")
    listing = venv.run("invoke", "--list", cwd=repo)
    assert listing.returncode == 0, listing.stderr
    assert "hello" in listing.stdout
    hello = venv.run("invoke", "hello", "dome", cwd=repo)
    assert hello.returncode == 0, hello.stderr
    assert "hello dome from just" in hello.stdout
