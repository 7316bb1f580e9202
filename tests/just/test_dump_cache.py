"""`invoke --list` runs no `just` while the justfile is unchanged: the dump is cached."""

from __future__ import annotations

import os

from dome_tasks.just import dump


def test_the_dump_is_read_from_the_cache_until_a_justfile_changes(tmp_path, monkeypatch):
    justfile = tmp_path / "justfile"
    justfile.write_text("import 'more.just'\n\nhello:\n    echo hello\n")
    (tmp_path / "more.just").write_text("bye:\n    echo bye\n")
    cache = tmp_path / ".dome" / "cache"
    runs = []
    real = dump._run_just
    monkeypatch.setattr(dump, "_run_just", lambda *a, **k: runs.append(a) or real(*a, **k))

    first = dump.cached_dump_json(justfile, cache)
    assert sorted(first["recipes"]) == ["bye", "hello"] and len(runs) == 1
    assert dump.cached_dump_json(justfile, cache) == first and len(runs) == 1  # no just run

    (tmp_path / "more.just").write_text("bye:\n    echo bye\n\nagain:\n    echo again\n")
    assert sorted(dump.cached_dump_json(justfile, cache)["recipes"]) == ["again", "bye", "hello"]
    assert len(runs) == 2  # an imported file changed

    stat = justfile.stat()
    justfile.write_text(justfile.read_text().replace("hello", "howdy"))
    os.utime(justfile, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert "howdy" in dump.cached_dump_json(justfile, cache)["recipes"] and len(runs) == 3


def test_an_unwritable_cache_is_no_error(tmp_path):
    justfile = tmp_path / "justfile"
    justfile.write_text("hello:\n    echo hello\n")
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the folder would go")
    assert "hello" in dump.cached_dump_json(justfile, blocker)["recipes"]
