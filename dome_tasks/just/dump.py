"""Read a justfile through the real ``just --dump --dump-format json``.

`load_justfile` runs just once and returns a typed `Justfile`: recipes with
their parameters (as `dome_tasks.just.args.Param` plus just's ``[arg(...)]``
options), doc comments, dependencies and body lines rendered back to text.
just does all the parsing, so whatever just accepts is read exactly as just
reads it, and whatever just rejects fails here with just's own message.

`dump_json` gives just's raw dump (to compare recipes exactly), `dump_text` dumps text that
is not written yet (from a hidden temporary file beside the justfile, so imports resolve) and
`summary` runs ``just --summary``.

Errors: `JustNotFound` (with the install command) and `JustfileError` (just's
stderr, with the file named). Both subclass `JustError`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from dome_tasks.errors import JustError, JustfileError, JustNotFound
from dome_tasks.just.args import Param
from dome_tasks.tools import JUST_BIN_ENV, JUST_INSTALL, find_just

__all__ = [
    "JUST_BIN_ENV",
    "JustError",
    "JustNotFound",
    "Justfile",
    "JustfileError",
    "Recipe",
    "RecipeParam",
    "dump_json",
    "dump_text",
    "find_just",
    "load_justfile",
    "parse_dump",
    "summary",
]

INSTALL_HINT = JUST_INSTALL


class RecipeParam(NamedTuple):
    """A recipe parameter with just's ``[arg(...)]`` options."""

    param: Param
    long: str | None = None
    short: str | None = None
    value: str | None = None
    pattern: str | None = None
    help: str | None = None
    export: bool = False
    unsupported: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.param.name

    @property
    def option_only(self) -> bool:
        """just requires ``--long``/``-s``: the parameter is not positional."""
        return bool(self.long or self.short)


class Recipe(NamedTuple):
    """One recipe of a justfile, as just dumps it."""

    name: str
    params: tuple[RecipeParam, ...]
    doc: str | None = None
    private: bool = False
    quiet: bool = False
    shebang: bool = False
    positional_arguments: bool = False
    dependencies: tuple[str, ...] = ()
    body: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()

    @property
    def positional(self) -> tuple[Param, ...]:
        """The parameters that take positional words, in order."""
        return tuple(p.param for p in self.params if not p.option_only)

    def declaration(self) -> str:
        """The recipe's header line, e.g. ``deploy service="":``."""
        return " ".join([self.name, *(p.param.just_syntax() for p in self.params)]) + ":"


@dataclass(frozen=True)
class Justfile:
    """A justfile as just reads it."""

    path: Path
    recipes: dict[str, Recipe]
    aliases: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    modules: tuple[str, ...] = ()
    variables: frozenset[str] = frozenset()

    def public(self) -> list[Recipe]:
        """Recipes ``just --list`` shows (not ``[private]``, not ``_name``)."""
        return [r for r in self.recipes.values() if not r.private]

    def names(self) -> frozenset[str]:
        """Every name ``just NAME`` runs: recipes (private ones too) and aliases."""
        return frozenset(self.recipes) | frozenset(self.aliases)


def load_justfile(path: str | os.PathLike[str], just: str | None = None) -> Justfile:
    """Run ``just --dump --dump-format json`` on ``path`` and parse the result."""
    path = Path(path).resolve()
    return parse_dump(dump_json(path, just), path)


def dump_json(
    path: str | os.PathLike[str], just: str | None = None, shown: str | os.PathLike[str] = ""
) -> dict[str, Any]:
    """just's raw JSON dump of the justfile at ``path`` (errors name ``shown``, else ``path``)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise JustfileError(f"{shown or path}: no such justfile")
    return json.loads(_run_just(path, ["--dump", "--dump-format", "json"], just, shown or path))


def cached_dump_json(
    path: str | os.PathLike[str], cache_dir: str | os.PathLike[str], just: str | None = None
) -> dict[str, Any]:
    """:func:`dump_json`, kept in *cache_dir* until the justfile changes (its path, mtime and
    size, and those of the ``.just`` files and imports beside it): ``invoke --list`` then runs
    no ``just``. A cache that cannot be read or written is ignored."""
    path = Path(path).resolve()
    try:
        key = _dump_key(path, just)
    except OSError:
        return dump_json(path, just)
    import zlib  # loaded with invoke already; hashlib is not (the key holds the path anyway)

    from dome_tasks._cache import keep, kept

    entry = Path(cache_dir) / f"just-dump-{zlib.crc32(str(path).encode()):08x}.json"
    dump = kept(entry, key)
    if isinstance(dump, dict):
        return dump
    dump = dump_json(path, just)
    keep(entry, key, dump)
    return dump


JUSTFILE_NAMES = ("justfile", ".justfile")  # just matches them in any case


def justfile_in(folder: Path, given: str | os.PathLike[str] = "justfile") -> Path:
    """The justfile ``given`` names in ``folder``, or, when it does not exist and is one of
    just's own names, the one file just itself would pick there (``Justfile``, ``.justfile``,
    …): dome never writes a second justfile beside the user's."""
    path = Path(folder) / given
    if path.exists() or Path(given).name.lower() not in JUSTFILE_NAMES or not Path(folder).is_dir():
        return path
    found = [p for p in Path(folder).iterdir() if p.name.lower() in JUSTFILE_NAMES and p.is_file()]
    return found[0] if len(found) == 1 else path


def _dump_key(path: Path, just: str | None) -> list[Any]:
    """What a cached dump depends on: the justfile, the files it may import, which just."""
    files = {path}
    text = path.read_text(encoding="utf-8", errors="replace")
    for match in re.finditer(r"^\s*(?:import\??|mod\??\s+\S+)\s+['\"]([^'\"]+)['\"]", text, re.MULTILINE):
        files.add((path.parent / match.group(1)).resolve())
    for candidate in path.parent.iterdir():
        if candidate.suffix == ".just" or candidate.name.lower() in ("justfile", ".justfile"):
            files.add(candidate.resolve())
    key: list[Any] = [just or os.environ.get(JUST_BIN_ENV, "")]
    for file in sorted(files):
        try:
            stat = file.stat()
            key.append([str(file), stat.st_mtime_ns, stat.st_size])
        except OSError:
            key.append([str(file), None, None])
    return key


def dump_text(
    text: str, folder: str | os.PathLike[str], shown: str | os.PathLike[str], just: str | None = None
) -> dict[str, Any]:
    """just's raw JSON dump of justfile ``text`` as if it lived in ``folder``.

    The text goes to a hidden temporary file in ``folder`` (so its ``import`` and ``mod``
    paths resolve as they would), removed before returning; errors name ``shown``.
    """
    fd, tmp = tempfile.mkstemp(prefix=".justfile.dome-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return json.loads(_run_just(Path(tmp), ["--dump", "--dump-format", "json"], just, shown))
    finally:
        os.unlink(tmp)


def summary(path: str | os.PathLike[str], shown: str | os.PathLike[str] = "", just: str | None = None) -> list[str]:
    """The recipe names ``just --summary`` prints for ``path`` (raises if just rejects it)."""
    path = Path(path).resolve()
    return _run_just(path, ["--summary"], just, shown or path).split()


def _run_just(
    path: Path, args: list[str], just: str | None, shown: str | os.PathLike[str]
) -> str:
    """stdout of ``just --justfile PATH ARGS…``; just's own error, naming ``shown``, if it fails."""
    binary = just or find_just()
    argv = [binary, "--justfile", str(path), *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise JustNotFound(f"cannot run {binary}: {exc}; install just: {INSTALL_HINT}") from exc
    if proc.returncode != 0:
        stderr = proc.stderr.rstrip().replace(path.name, Path(shown).name)
        raise JustfileError(f"just rejected {shown}:\n{stderr}")
    return proc.stdout


def parse_dump(data: dict[str, Any], path: Path) -> Justfile:
    """Build a `Justfile` from just's JSON dump."""
    settings = data.get("settings") or {}
    recipes = {
        name: _recipe(raw, bool(settings.get("positional_arguments")))
        for name, raw in (data.get("recipes") or {}).items()
    }
    aliases = {name: a["target"] for name, a in (data.get("aliases") or {}).items()}
    return Justfile(
        path=path,
        recipes=recipes,
        aliases=aliases,
        settings=settings,
        modules=tuple(data.get("modules") or {}),
        variables=frozenset(data.get("assignments") or {}),
    )


def _recipe(raw: dict[str, Any], positional_setting: bool) -> Recipe:
    attributes = tuple(_attribute_name(a) for a in raw.get("attributes") or ())
    return Recipe(
        name=raw["name"],
        params=tuple(_param(p) for p in raw.get("parameters") or ()),
        doc=raw.get("doc"),
        private=bool(raw.get("private")),
        quiet=bool(raw.get("quiet")),
        shebang=bool(raw.get("shebang")),
        positional_arguments=positional_setting or "positional-arguments" in attributes,
        dependencies=tuple(d["recipe"] for d in raw.get("dependencies") or ()),
        body=tuple(_render_line(line) for line in raw.get("body") or ()),
        attributes=attributes,
    )


def _attribute_name(attr: Any) -> str:
    return attr if isinstance(attr, str) else next(iter(attr), "?")


def _param(raw: dict[str, Any]) -> RecipeParam:
    default = raw.get("default")
    has_default = default is not None
    unsupported = tuple(k for k in ("min", "max") if raw.get(k) is not None)
    if raw.get("multiple"):
        unsupported += ("multiple",)
    if has_default and not isinstance(default, str):
        # An expression default (e.g. `x=VAR` or `x=(a + b)`): just evaluates it.
        default = "{{" + _render_expr(default) + "}}"
    pattern = raw.get("pattern")
    return RecipeParam(
        param=Param(raw["name"], raw.get("kind") or "singular", default, has_default),
        long=raw.get("long"),
        short=raw.get("short"),
        value=raw.get("value"),
        pattern=pattern[0] if isinstance(pattern, list) and pattern else pattern,
        help=raw.get("help"),
        export=bool(raw.get("export")),
        unsupported=unsupported,
    )


def _render_line(fragments: list[Any]) -> str:
    out = []
    for fragment in fragments:
        if isinstance(fragment, str):
            out.append(fragment)
        else:
            out.append("{{" + " ".join(_render_expr(e) for e in fragment) + "}}")
    return "".join(out)


def _render_expr(expr: Any) -> str:
    """Approximate just source for a dumped expression (for display and parity)."""
    if isinstance(expr, str):
        return json.dumps(expr)
    if not isinstance(expr, list) or not expr:
        return str(expr)
    head, *rest = expr
    if head == "variable":
        return str(rest[0])
    if head == "call":
        return f"{rest[0]}({', '.join(_render_expr(a) for a in rest[1:])})"
    if head == "concatenate":
        return " + ".join(_render_expr(a) for a in rest)
    if head == "join":
        return " / ".join(_render_expr(a) for a in rest if a is not None)
    return head + "(" + ", ".join(_render_expr(a) for a in rest) + ")"
