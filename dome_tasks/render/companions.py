"""The files wrangler reads beside its config, kept in reach of each rendered config.

wrangler takes some files from the folder of the config it is given, not from the service's:
``.dev.vars`` (the local secrets of ``wrangler dev``) and ``.env`` / ``.env.local`` (variables
wrangler loads into its own environment, such as ``CLOUDFLARE_ACCOUNT_ID``; ``wrangler dev`` also
takes local secrets from them when there is no ``.dev.vars``). A rendered config lives in
``.dome/build/<env>/<service>/``, so each of these files that the service's folder holds gets a
relative symlink there: wrangler sees what it sees when run by hand in the service's folder,
edits show at once, and no secret is copied. A link whose file is gone is removed; a regular
file of one of these names in the build folder is never replaced.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["NAMES", "find_companions", "link_companions"]

NAMES = (".dev.vars", ".env", ".env.local")


def find_companions(service_dir: Path) -> tuple[Path, ...]:
    """The files of :data:`NAMES` in ``service_dir`` (absolute paths)."""
    return tuple(Path(service_dir) / name for name in NAMES
                 if os.path.isfile(os.path.join(service_dir, name)))


def link_companions(build_dir: Path, companions: Iterable[Path]) -> list[str]:
    """Make ``build_dir/<name>`` a relative symlink to each companion, and drop the links of the
    other :data:`NAMES`; return the names linked anew."""
    wanted = {Path(c).name: Path(c) for c in companions}
    linked = []
    for name in NAMES:
        link = Path(build_dir) / name
        if name not in wanted:
            if link.is_symlink():
                link.unlink()
            continue
        target = os.path.relpath(wanted[name], build_dir)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.exists() and not link.is_symlink():
            continue  # somebody's own file: never replaced
        temporary = link.with_name(f".{name}.dome-link")
        if temporary.is_symlink():
            temporary.unlink()
        temporary.symlink_to(target)
        os.replace(temporary, link)
        linked.append(name)
    return linked
