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
from pathlib import Path

__all__ = ["NAMES", "link_companions"]

NAMES = (".dev.vars", ".env", ".env.local")


def link_companions(build_dir: Path, service_dir: Path) -> list[str]:
    """Make ``build_dir/<name>`` a relative symlink to ``service_dir/<name>`` for each of
    :data:`NAMES` the service's folder holds, and drop the links of the others; return the
    names linked anew."""
    linked = []
    for name in NAMES:
        link = Path(build_dir) / name
        source = Path(service_dir) / name
        if not source.is_file():
            if link.is_symlink():
                link.unlink()
            continue
        target = os.path.relpath(source, build_dir)
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
