"""wrangler reads .dev.vars and .env beside its config: each rendered config's folder links the
service's own files (relative symlinks), follows their edits, and drops links whose file is gone."""

from __future__ import annotations

import os
from pathlib import Path

from dome_tasks.render.companions import link_companions


def folders(tmp_path: Path) -> tuple[Path, Path]:
    service = tmp_path / "services" / "silo"
    build = tmp_path / ".dome" / "build" / "local" / "silo"
    service.mkdir(parents=True)
    build.mkdir(parents=True)
    return service, build


def test_the_service_s_files_are_linked_and_followed(tmp_path) -> None:
    service, build = folders(tmp_path)
    (service / ".dev.vars").write_text("API_KEY=local-key\n")
    (service / ".env").write_text("CLOUDFLARE_ACCOUNT_ID=abc\n")
    (service / ".env.staging").write_text("ignored: wrangler reads it only with --env\n")
    assert link_companions(build, service) == [".dev.vars", ".env"]
    assert not (build / ".env.staging").exists()  # wrangler reads it only with --env
    assert os.readlink(build / ".dev.vars") == "../../../../services/silo/.dev.vars"
    assert (build / ".dev.vars").read_text() == "API_KEY=local-key\n"
    (service / ".dev.vars").write_text("API_KEY=edited\n")
    assert (build / ".dev.vars").read_text() == "API_KEY=edited\n"  # no stale copy
    assert link_companions(build, service) == []  # already in place: nothing to do


def test_a_link_whose_file_is_gone_is_removed(tmp_path) -> None:
    service, build = folders(tmp_path)
    (service / ".dev.vars").write_text("API_KEY=local-key\n")
    link_companions(build, service)
    (service / ".dev.vars").unlink()
    link_companions(build, service)
    assert not (build / ".dev.vars").is_symlink() and not (build / ".dev.vars").exists()


def test_a_regular_file_in_the_build_folder_is_never_replaced(tmp_path) -> None:
    service, build = folders(tmp_path)
    (service / ".env").write_text("FROM_SERVICE=1\n")
    (build / ".env").write_text("MINE=1\n")
    assert link_companions(build, service) == []
    assert (build / ".env").read_text() == "MINE=1\n"
    (service / ".env").unlink()
    link_companions(build, service)
    assert (build / ".env").read_text() == "MINE=1\n"
