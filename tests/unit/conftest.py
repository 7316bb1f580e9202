"""Helpers for manifest tests: write YAML into tmp_path and load it as ``dome.yaml``."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from dome_tasks.errors import ManifestError
from dome_tasks.manifest.loader import Manifest, load

# Lines 1-9; services written after it start on line 10.
HEAD = """\
version: 1
defaults:
  compatibility_date: "2025-01-01"
  main: src/index.js
environments:
  development: {suffix: "-dev", aliases: [dev]}
  staging: {suffix: "-staging", aliases: [stg]}
  production: {suffix: "", aliases: [prod], protected: true}
services:
"""


class _AnyTagLoader(yaml.SafeLoader):
    """SafeLoader that reads unknown tags (``!include``) as plain values."""


_AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def make_service_files(text: str, root: Path) -> None:
    """Create the folder and ``main`` files of every service ``text`` names, so that tests of
    other rules are not about missing files (unparseable text creates nothing)."""
    try:
        data = yaml.load(text, Loader=_AnyTagLoader)
    except yaml.YAMLError:
        return
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        return
    defaults = data.get("defaults") if isinstance(data.get("defaults"), dict) else {}
    for name, spec in data["services"].items():
        spec = spec if isinstance(spec, dict) else {}
        folder = spec.get("path", f"services/{name}")
        if not isinstance(folder, str) or not isinstance(name, str):
            continue
        target = (root / folder).resolve()
        if root.resolve() not in (target, *target.parents):
            continue
        layers = [defaults, spec, *(spec.get("environments") or {}).values()]
        mains = [layer.get("main") for layer in layers if isinstance(layer, dict)]
        target.mkdir(parents=True, exist_ok=True)
        for main in mains:
            if isinstance(main, str) and main.strip() and not Path(main).is_absolute():
                file = (target / main).resolve()
                if target in file.parents:
                    file.parent.mkdir(parents=True, exist_ok=True)
                    file.touch()
        for layer in layers:
            databases = layer.get("d1_databases") if isinstance(layer, dict) else None
            for db in (databases or {}).values() if isinstance(databases, dict) else ():
                folder = db.get("migrations_dir") if isinstance(db, dict) else None
                if isinstance(folder, str) and folder.strip() and not Path(folder).is_absolute():
                    found = (target / folder).resolve()
                    if target in found.parents and not found.exists():
                        found.mkdir(parents=True)


@pytest.fixture
def load_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Manifest]:
    """``load_yaml(services)`` -> Manifest from HEAD + the services (written at column 0);
    ``load_yaml(text, full=True)`` -> Manifest from exactly ``text``. The file is ``dome.yaml``.
    Service folders and ``main`` files are created first unless ``files=False``."""
    monkeypatch.chdir(tmp_path)

    def _load(text: str, *, full: bool = False, files: bool = True) -> Manifest:
        text = textwrap.dedent(text)
        if not full:
            text = HEAD + textwrap.indent(text, "  ")
        Path("dome.yaml").write_text(text, encoding="utf-8")
        if files:
            make_service_files(text, tmp_path)
        return load("dome.yaml")

    return _load


@pytest.fixture
def problems(load_yaml: Callable[..., Manifest]) -> Callable[..., list[str]]:
    """``problems(text, full=False)`` -> the ManifestError's messages, one per problem."""

    def _problems(text: str, *, full: bool = False, files: bool = True) -> list[str]:
        with pytest.raises(ManifestError) as caught:
            load_yaml(text, full=full, files=files)
        return list(caught.value.problems)

    return _problems
