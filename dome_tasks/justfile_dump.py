"""Read a justfile through the real ``just --dump --dump-format json``.

`load_justfile` runs just once and returns a typed `Justfile`: recipes with
their parameters (as `dome_tasks.justargs.Param` plus just's ``[arg(...)]``
options), doc comments, dependencies and body lines rendered back to text.
just does all the parsing, so whatever just accepts is read exactly as just
reads it, and whatever just rejects fails here with just's own message.

Errors: `JustNotFound` (with the install command) and `JustfileError` (just's
stderr, with the file named). Both subclass `JustError`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from dome_tasks.justargs import Param

__all__ = [
    "JUST_BIN_ENV",
    "Justfile",
    "JustError",
    "JustNotFound",
    "JustfileError",
    "Recipe",
    "RecipeParam",
    "find_just",
    "load_justfile",
]

#: Environment variable naming the just binary to use (else PATH, else next to Python).
JUST_BIN_ENV = "DOME_TASKS_JUST"
INSTALL_HINT = "pip install rust-just"


class JustError(Exception):
    """A problem running or reading just."""


class JustNotFound(JustError):
    """just is not installed."""


class JustfileError(JustError):
    """just rejected a justfile."""


@dataclass(frozen=True)
class RecipeParam:
    """A recipe parameter with just's ``[arg(...)]`` options."""

    param: Param
    long: Optional[str] = None
    short: Optional[str] = None
    value: Optional[str] = None
    pattern: Optional[str] = None
    help: Optional[str] = None
    export: bool = False
    unsupported: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.param.name

    @property
    def option_only(self) -> bool:
        """just requires ``--long``/``-s``: the parameter is not positional."""
        return bool(self.long or self.short)


@dataclass(frozen=True)
class Recipe:
    """One recipe of a justfile, as just dumps it."""

    name: str
    params: tuple[RecipeParam, ...]
    doc: Optional[str] = None
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

    def public(self) -> list[Recipe]:
        """Recipes ``just --list`` shows (not ``[private]``, not ``_name``)."""
        return [r for r in self.recipes.values() if not r.private]


def find_just() -> str:
    """Path of the just binary, or raise `JustNotFound` naming the install command."""
    explicit = os.environ.get(JUST_BIN_ENV)
    if explicit:
        if Path(explicit).is_file():
            return explicit
        raise JustNotFound(f"{JUST_BIN_ENV}={explicit} does not exist; install just: {INSTALL_HINT}")
    found = shutil.which("just")
    if found:
        return found
    beside = Path(sys.executable).parent / "just"
    if beside.is_file():
        return str(beside)
    raise JustNotFound(f"just is not installed (not on PATH); install it with: {INSTALL_HINT}")


def load_justfile(path: str | os.PathLike[str], just: Optional[str] = None) -> Justfile:
    """Run ``just --dump --dump-format json`` on ``path`` and parse the result."""
    path = Path(path).resolve()
    if not path.is_file():
        raise JustfileError(f"{path}: no such justfile")
    binary = just or find_just()
    argv = [binary, "--justfile", str(path), "--dump", "--dump-format", "json"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise JustNotFound(f"cannot run {binary}: {exc}; install just: {INSTALL_HINT}") from exc
    if proc.returncode != 0:
        raise JustfileError(f"just rejected {path}:\n{proc.stderr.rstrip()}")
    return parse_dump(json.loads(proc.stdout), path)


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
