"""Render one self-contained wrangler.toml per (service, environment).

One Jinja environment factory (:func:`make_environment`), one context builder
(:func:`build_context`), one escaping path: every ``{{ … }}`` in a template must go through the
``toml`` filter (values), ``toml_key`` (keys) or ``toml_comment`` (comment text); anything else
is refused at render time. Rendered text is parsed back with tomllib before anyone may write it,
and :func:`write_config` replaces files atomically, leaving unchanged files (and their mtime)
alone.

Templates are looked up in the manifest's ``templates:`` folder (if any), then the ones packaged
beside this module (``dome_tasks/render/templates``, shipped in the wheel and the sdist).
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dome_tasks._atomic import write_atomic
from dome_tasks.errors import RenderError
from dome_tasks.render._toml import toml_comment, toml_key, toml_table, toml_value

if TYPE_CHECKING:
    import jinja2

    from dome_tasks.manifest.model import WorkerConfig

__all__ = [
    "BUILD_DIR",
    "TEMPLATE_NAME",
    "build_context",
    "check_toml",
    "config_path",
    "make_environment",
    "render_all",
    "render_config",
    "render_many",
    "template_search_path",
    "write_config",
]

TEMPLATE_NAME = "wrangler.toml.j2"
BUILD_DIR = Path(".dome") / "build"


class _Escaped(str):
    """Text produced by one of the escaping filters: the only thing a template may output."""

    __slots__ = ()


# --------------------------------------------------------------------------- paths


def config_path(root: Path, environment: str, service: str) -> Path:
    """Where the rendered config of ``service`` in ``environment`` lives (git-ignored)."""
    return Path(root) / BUILD_DIR / environment / service / "wrangler.toml"


def _relative(target: Path, start: Path) -> str:
    """``target`` relative to folder ``start``, with forward slashes (wrangler accepts them)."""
    try:
        rel = os.path.relpath(os.path.abspath(target), os.path.abspath(start))
    except ValueError:  # different drives on Windows: no relative path exists
        rel = os.path.abspath(target)
    return rel.replace(os.sep, "/")


# --------------------------------------------------------------------------- Jinja


@functools.lru_cache(maxsize=16)
def template_search_path(templates_dir: Path | None = None) -> tuple[Path, ...]:
    """The folders searched for templates, first match wins."""
    packaged = Path(__file__).resolve().parent / "templates"
    dirs = [Path(templates_dir)] if templates_dir is not None else []
    return tuple(dict.fromkeys([*dirs, packaged]))


def _finalize(value: Any) -> Any:
    if isinstance(value, _Escaped):
        return value
    raise RenderError(
        f"{value!r} reaches TOML unescaped",
        hint="pipe every value through a filter: {{ x|toml }}, {{ k|toml_key }} "
        "or {{ text|toml_comment }}",
    )


def _filters() -> dict[str, Any]:
    """Every filter the templates may use, registered in one place."""
    import jinja2

    def escaping(encode: Any) -> Any:
        def apply(value: Any, *args: Any) -> _Escaped:
            for item in (value, *args):
                if isinstance(item, jinja2.Undefined):  # filters receive Undefined unraised
                    item._fail_with_undefined_error()
            return _Escaped(encode(value, *args))

        return apply

    return {
        "toml": escaping(toml_value),
        "toml_key": escaping(toml_key),
        "toml_comment": escaping(toml_comment),
        "toml_table": escaping(toml_table),
    }


def make_environment(templates_dir: Path | None = None) -> jinja2.Environment:
    """The Jinja environment: StrictUndefined, no autoescape, escaping filters only."""
    import jinja2

    if templates_dir is not None and not Path(templates_dir).is_dir():
        raise RenderError(
            f"templates folder {templates_dir} does not exist",
            hint="fix or remove the manifest's 'templates:' key",
        )
    loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(str(d)) for d in template_search_path(templates_dir)]
    )
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
        # Compiled templates persist between runs (keyed by source checksum, so edits show);
        # Jinja's per-user cache folder in the temp directory, checked for ownership.
        bytecode_cache=jinja2.FileSystemBytecodeCache(),
    )
    env.filters.update(_filters())
    return env


@functools.lru_cache(maxsize=16)
def _cached_environment(templates_dir: Path | None) -> jinja2.Environment:
    # Compiled templates are reused across renders (auto_reload still notices edits).
    return make_environment(templates_dir)


# --------------------------------------------------------------------------- context


def build_context(config: WorkerConfig, *, manifest_path: Path, out_path: Path) -> dict[str, Any]:
    """The template context for one worker: plain data, paths relative to ``out_path``'s folder.

    ``settings`` (top-level keys) and ``tables`` are the config in wrangler's shape, as
    :func:`dome_tasks.manifest.shape.wrangler_config` builds it; the other keys expose the
    same data by name for templates of one's own (binding entries as wrangler writes them).
    """
    from dome_tasks.manifest import bindings
    from dome_tasks.manifest.shape import wrangler_config

    out_dir = Path(out_path).parent
    service_dir = Path(config.service_dir)

    def rel(path: str) -> str:
        return _relative(service_dir / path, out_dir)

    doc = wrangler_config(config, rel)
    doc["vars"] = list(config.vars)  # pairs: a duplicate name fails the TOML check, not hides
    if not config.vars:
        del doc["vars"]
    settings = [(k, v) for k, v in doc.items() if not _table(k, v)]
    tables = [(k, v) for k, v in doc.items() if _table(k, v)]
    context: dict[str, Any] = {
        "generated_from": _relative(Path(manifest_path), out_dir),
        "service": config.service,
        "environment": config.environment,
        "secrets": list(config.secrets),
        "settings": settings,
        "tables": tables,
        "wrangler": doc,
        "name": config.name,
        "main": doc.get("main"),
        "compatibility_date": config.compatibility_date,
        "compatibility_flags": list(config.compatibility_flags),
        "account_id": config.account_id,
        "workers_dev": config.workers_dev,
        "routes": doc.get("routes", []),
        "vars": [{"name": k, "value": v} for k, v in config.vars],
        "observability": config.observability,
        "ai_binding": config.ai_binding,
        "durable_object_migrations": doc.get("migrations", []),
    }
    for kind in bindings.KINDS:  # the same entries as in the tables, by kind
        found: Any = doc
        for part in kind.table:
            found = found.get(part, {}) if isinstance(found, dict) else {}
        context[kind.attr] = [found] if isinstance(found, dict) and found else list(found or [])
    return context


def _table(key: str, value: Any) -> bool:
    """Written as a TOML table (or tables) after the top-level keys."""
    if key in ("vars", "observability"):
        return True
    if key == "routes":
        return False
    if isinstance(value, dict):
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


# --------------------------------------------------------------------------- render + check


def _template_location(exc: BaseException) -> str | None:
    """``file:line`` of the innermost template frame in ``exc``'s (Jinja-rewritten) traceback."""
    filename = getattr(exc, "filename", None)
    lineno = getattr(exc, "lineno", None)
    if filename and lineno:  # TemplateSyntaxError
        return f"{filename}:{lineno}"
    where = None
    tb = exc.__traceback__
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def check_toml(text: str, *, where: str) -> dict[str, Any]:
    """Parse ``text`` as TOML; a failure is a RenderError quoting the offending line."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = f"rendered text is not valid TOML: {exc}"
        match = _TOML_POSITION.search(str(exc))
        if match:
            lineno = int(match.group(1))
            lines = text.splitlines()
            if 0 < lineno <= len(lines):
                message += f"\n  line {lineno}: {lines[lineno - 1]}"
        raise RenderError(
            message, where=where, hint="fix the template; nothing was written"
        ) from None


def render_config(
    config: WorkerConfig,
    *,
    manifest_path: Path,
    out_path: Path,
    templates_dir: Path | None = None,
    cache: bool = True,
) -> str:
    """Render ``config`` as the text of a self-contained wrangler.toml destined for ``out_path``.

    Writes nothing but its *cache* (:mod:`dome_tasks.render.cache`: the text of inputs rendered
    before is reused, without importing Jinja: what a deploy of a few services saves). The
    text is checked to be valid TOML (and, from a template of one's own, against wrangler's
    JSON schema); template errors and invalid output raise :class:`RenderError` naming the
    template file and line.
    """
    context = build_context(config, manifest_path=manifest_path, out_path=out_path)
    entry, key = (_cache_slot(context, out_path, manifest_path, templates_dir) if cache
                  else (None, ""))
    if entry is not None:
        from dome_tasks.render.cache import read_cached

        kept = read_cached(entry, key)
        if kept is not None:
            return kept
    text = _render_fresh(config, context, manifest_path=manifest_path, out_path=out_path,
                         templates_dir=templates_dir)
    if entry is not None:
        from dome_tasks._cache import keep

        keep(entry, key, text)
    return text


def _cache_slot(
    context: dict[str, Any], out_path: Path, manifest_path: Path, templates_dir: Path | None
) -> tuple[Path | None, str]:
    """Where this render's text is cached and under which key (no entry: not cacheable)."""
    from dome_tasks.render.cache import cache_entry, render_key

    entry = cache_entry(out_path)
    if entry is None or not _own_folder(entry):
        return None, ""
    root = Path(manifest_path).parent
    try:
        return entry, render_key(context, template_search_path(templates_dir),
                                 _installed_inputs(templates_dir is not None, root))
    except OSError:
        return None, ""


@functools.lru_cache(maxsize=16)
def _installed_inputs(own_template: bool, root: Path) -> tuple[Path, ...]:
    """Installed files a render depends on, found once per process: Jinja (its ``__init__``
    holds its version) and, for a template of one's own, the schema and code that check it."""
    import importlib.util

    jinja = importlib.util.find_spec("jinja2")
    found = [Path(jinja.origin)] if jinja is not None and jinja.origin else []
    if own_template:
        from dome_tasks.manifest import wrangler_schema

        schema = wrangler_schema.find_schema(root)
        found += [p for p in (schema, wrangler_schema.BUNDLED, Path(wrangler_schema.__file__))
                  if p is not None]
    return tuple(found)


def _own_folder(entry: Path) -> bool:
    """Is ``entry`` inside the repository's own ``.dome`` (no symlink on the way)? The cache
    never writes where a symlink points."""
    text = os.fspath(entry)
    root = text[: text.find(os.sep + ".dome" + os.sep)] or os.sep
    try:
        _refuse_symlinks(Path(root), entry)
    except RenderError:
        return False
    return True


def _render_fresh(
    config: WorkerConfig, context: dict[str, Any], *, manifest_path: Path, out_path: Path,
    templates_dir: Path | None,
) -> str:
    import jinja2

    env = _cached_environment(None if templates_dir is None else Path(templates_dir))
    try:
        template = env.get_template(TEMPLATE_NAME)
        text = template.render(context)
    except jinja2.TemplateNotFound as exc:
        searched = ", ".join(str(d) for d in template_search_path(templates_dir))
        raise RenderError(
            f"template {exc.name!r} not found", where=f"searched {searched}"
        ) from None
    except (jinja2.TemplateError, RenderError) as exc:
        where = _template_location(exc)
        worker = f"rendering {config.name} ({config.service} in {config.environment})"
        if isinstance(exc, RenderError):
            message, hint = f"{worker}: {exc.message}", exc.hint
            raise RenderError(message, where=where or exc.where, hint=hint) from None
        raise RenderError(f"{worker}: template error: {exc}", where=where) from None
    where = f"{out_path} ({config.service} in {config.environment})"
    doc = check_toml(text, where=where)
    if templates_dir is not None:  # a template of one's own: check what it made
        _check_schema(doc, Path(manifest_path).parent, where)
    return text


def _check_schema(doc: dict[str, Any], root: Path, where: str) -> None:
    """The rendered config against wrangler's JSON schema (dome's own template is tested)."""
    from dome_tasks.manifest._problems import format_path
    from dome_tasks.manifest.wrangler_schema import load_schema

    schema = load_schema(root)
    if schema is None:
        return
    found = [f"  {format_path(place) or '(top level)'}: {what}"
             for place, what, _ in schema.problems(doc)]
    if found:
        raise RenderError(
            "the rendered config does not match wrangler's schema:\n" + "\n".join(found),
            where=where,
            hint=f"fix the template (checked against {schema.source}); nothing was written",
        )


# --------------------------------------------------------------------------- writing


def _refuse_symlinks(root: Path, path: Path) -> None:
    """Refuse to write ``path`` through a symlink anywhere below ``root`` (``.dome`` pointing
    elsewhere would make dome write outside the repository). Plain strings and ``os.path``:
    this runs for every config written, and ``Path`` objects cost more than the checks."""
    base, target = os.fspath(root).rstrip(os.sep) or os.sep, os.fspath(path)
    if os.path.commonpath((base, target)) != base:
        raise RenderError(
            f"refusing to write {path}: it is outside {root}",
            hint="rendered configs live under the manifest's .dome/build folder",
        )
    current = base
    for part in target[len(base):].split(os.sep):
        if not part:
            continue
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise RenderError(
                f"refusing to write {path}: {current} is a symlink (to {os.readlink(current)})",
                hint=f"remove {current}; dome creates the folders it writes to itself",
            )


def write_config(text: str, path: Path, *, root: Path | None = None) -> bool:
    """Write ``text`` to ``path`` atomically; return False (and touch nothing) if unchanged.

    Nothing is written through a symlink below ``root`` (by default the folder holding the
    path's ``.dome`` folder, where every rendered config lives).
    """
    path = Path(path)
    if root is None and BUILD_DIR.parts[0] in path.parts:
        root = Path(*path.parts[: path.parts.index(BUILD_DIR.parts[0])])
    if root is not None:
        _refuse_symlinks(Path(root), path)
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    check_toml(text, where=str(path))
    write_atomic(path, data)
    return True


def render_all(
    manifest: Any,
    services: Iterable[str],
    environments: Iterable[str],
) -> list[Path]:
    """Render and write every (service, environment) pair; return the config paths.

    Uses ``manifest.resolve(service, environment)``, ``manifest.root`` (the manifest's
    folder), ``manifest.path`` (the YAML file) and ``manifest.templates_dir`` (None or the
    ``templates:`` folder). Everything is rendered and checked before anything is written,
    so one bad config leaves the build folder untouched.
    """
    services = list(services)
    configs = [manifest.resolve(s, e) for e in environments for s in services
               if manifest.deploys(s, e)]
    return render_many(
        configs,
        root=manifest.root,
        manifest_path=manifest.path,
        templates_dir=manifest.templates_dir,
    )


def render_many(
    configs: Sequence[WorkerConfig],
    *,
    root: Path,
    manifest_path: Path,
    templates_dir: Path | None = None,
) -> list[Path]:
    """Render already-resolved configs to :func:`config_path` under ``root``; then write them
    (never through a symlink below ``root``: checked for every file before writing any). No
    render cache: rendering many configs in one process is cheaper than keeping them."""
    from dome_tasks.render.companions import link_companions

    rendered = []
    for config in configs:
        out = config_path(root, config.environment, config.service)
        text = render_config(
            config, manifest_path=manifest_path, out_path=out, templates_dir=templates_dir,
            cache=False,
        )
        rendered.append((text, out, config.service_dir))
    for _, out, _ in rendered:
        _refuse_symlinks(Path(root), out)

    def write(text: str, out: Path, service_dir: Path) -> None:
        write_config(text, out, root=root)
        link_companions(out.parent, service_dir)

    if len(rendered) > 4:  # fsync dominates: overlap it across files
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda item: write(*item), rendered))
    else:
        for item in rendered:
            write(*item)
    return [out for _, out, _ in rendered]
