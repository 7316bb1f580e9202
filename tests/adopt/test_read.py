"""Finding and reading wrangler configs: TOML, JSON, JSONC, which file wrangler would pick."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dome_tasks.adopt.read import AdoptError, find_configs, jsonc_to_json, read
from tests.adopt.adopt_helpers import FIXTURES


def test_jsonc_comments_and_trailing_commas_become_json_but_strings_are_kept() -> None:
    text = """// head
{
  "a": "http://x//y", /* inline */ "b": [1, 2,],
  "c": "/* not a comment */", "d": "quote \\" // still a string",
  "e": { "f": true, }, // tail
}
"""
    assert json.loads(jsonc_to_json(text)) == {
        "a": "http://x//y", "b": [1, 2], "c": "/* not a comment */",
        "d": 'quote " // still a string', "e": {"f": True},
    }


def test_jsonc_keeps_positions_so_errors_point_at_the_line(tmp_path: Path) -> None:
    path = tmp_path / "wrangler.jsonc"
    path.write_text('{\n  // fine\n  "name": "x",\n  "main": oops\n}\n', encoding="utf-8")
    with pytest.raises(AdoptError) as caught:
        read(path)
    assert f"{path}:4:11: invalid JSON" in str(caught.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "wrangler.toml"
    path.write_text('name = "x"\nmain = \n', encoding="utf-8")
    with pytest.raises(AdoptError) as caught:
        read(path)
    assert str(path) in str(caught.value) and "invalid TOML" in str(caught.value)


def test_find_configs_skips_node_modules_and_reads_every_format(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "monorepo"
    shutil.copytree(FIXTURES / "monorepo", root)
    # a dependency's own config (node_modules is never committed, so it is made here)
    dependency = root / "node_modules/some-dep/wrangler.toml"
    dependency.parent.mkdir(parents=True)
    dependency.write_text('name = "some-dep"\nmain = "index.js"\n', encoding="utf-8")
    found = [p.relative_to(root).as_posix() for p in find_configs(root)]
    assert found == [
        "apps/web/wrangler.json",
        "services/constellation/wrangler.toml",
        "services/dome-api/wrangler.jsonc",
        "services/silo/wrangler.toml",
        "workers/cron/wrangler.toml",
    ]


def test_wranglers_precedence_json_over_jsonc_over_toml(tmp_path: Path) -> None:
    for name, worker in (("wrangler.toml", "t"), ("wrangler.jsonc", "c")):
        path = tmp_path / "svc" / name
        path.parent.mkdir(exist_ok=True)
        text = f'name = "{worker}"\n' if name.endswith("toml") else f'{{"name": "{worker}",}}'
        path.write_text(text, encoding="utf-8")
    (found,) = find_configs(tmp_path)
    assert found.name == "wrangler.jsonc"
    config = read(found)
    assert config.data["name"] == "c"
    assert [p.name for p in config.ignored] == ["wrangler.toml"]
