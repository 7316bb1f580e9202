"""Rendered configs are kept in .dome/cache/render and reused only while every input is the same."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from dome_tasks.render.config import config_path, render_config
from tests.unit.render.test_render import silo, user_template


def render(tmp_path: Path, config=None, **kwargs) -> str:
    config = config or silo(root=tmp_path)
    out = config_path(tmp_path, config.environment, config.service)
    return render_config(config, manifest_path=tmp_path / "dome.yaml", out_path=out, **kwargs)


def entries(tmp_path: Path) -> list[Path]:
    folder = tmp_path / ".dome" / "cache" / "render"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_a_render_is_kept_and_the_same_text_comes_back(tmp_path: Path) -> None:
    (tmp_path / ".dome").mkdir()
    first = render(tmp_path)
    assert len(entries(tmp_path)) == 1
    assert render(tmp_path) == first


def test_a_template_edit_is_rendered_not_served_from_the_cache(tmp_path: Path) -> None:
    (tmp_path / ".dome").mkdir()
    folder = user_template(tmp_path, 'name = {{ name|toml }}\n')
    assert render(tmp_path, templates_dir=folder) == 'name = "silo-staging"\n'
    (folder / "wrangler.toml.j2").write_text('name = {{ name|toml }}\nmain = {{ main|toml }}\n')
    assert "main = " in render(tmp_path, templates_dir=folder)
    (folder / "extra.j2").write_text("# included\n")  # a file the template may include counts
    (folder / "wrangler.toml.j2").write_text('{% include "extra.j2" %}name = {{ name|toml }}\n')
    assert render(tmp_path, templates_dir=folder) == '# included\nname = "silo-staging"\n'
    (folder / "extra.j2").write_text("# changed\n")
    assert render(tmp_path, templates_dir=folder) == '# changed\nname = "silo-staging"\n'


def test_a_template_in_a_symlinked_folder_is_never_served_stale(tmp_path: Path) -> None:
    (tmp_path / ".dome").mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "part.j2").write_text("# one\n")
    folder = user_template(tmp_path, '{% include "parts/part.j2" %}name = {{ name|toml }}\n')
    (folder / "parts").symlink_to(shared)
    assert render(tmp_path, templates_dir=folder).startswith("# one\n")
    (shared / "part.j2").write_text("# two\n")
    assert render(tmp_path, templates_dir=folder).startswith("# two\n")


def test_a_changed_config_is_rendered_anew(tmp_path: Path) -> None:
    (tmp_path / ".dome").mkdir()
    before = render(tmp_path)
    changed = dataclasses.replace(silo(root=tmp_path), vars=(("LOG_LEVEL", "debug"),))
    after = render(tmp_path, changed)
    assert 'LOG_LEVEL = "debug"' in after and 'LOG_LEVEL = "debug"' not in before


def test_a_broken_or_unwritable_cache_never_fails_a_render(tmp_path: Path) -> None:
    (tmp_path / ".dome").mkdir()
    expected = render(tmp_path)
    (entry,) = entries(tmp_path)
    entry.write_text('{"key": ')
    assert render(tmp_path) == expected
    entry.write_text('{"key": "x", "text": "name = 1"}')
    assert render(tmp_path) == expected
    if os.geteuid() != 0:  # root writes anywhere
        entry.unlink()
        entry.parent.chmod(0o500)
        try:
            assert render(tmp_path) == expected
        finally:
            entry.parent.chmod(0o700)


def test_the_cache_never_creates_dome_nor_writes_through_a_symlink(tmp_path: Path) -> None:
    render(tmp_path)
    assert not (tmp_path / ".dome").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / ".dome").symlink_to(elsewhere)
    render(tmp_path)
    assert list(elsewhere.iterdir()) == []


def test_a_cached_render_imports_no_jinja(tmp_path: Path) -> None:
    (tmp_path / ".dome").mkdir()
    program = (
        "import sys\n"
        "from tests.unit.render.test_render_cache import render\n"
        "from pathlib import Path\n"
        f"text = render(Path({str(tmp_path)!r}))\n"
        "print('jinja2' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[3]
    runs = [subprocess.run([sys.executable, "-c", program], cwd=root, capture_output=True,
                           text=True, check=True).stdout.split() for _ in range(2)]
    assert runs == [["True"], ["False"]]
