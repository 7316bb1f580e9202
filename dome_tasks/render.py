"""Render one self-contained wrangler.toml per (service, environment).

One Jinja environment factory (:func:`make_environment`), one context builder
(:func:`build_context`), one escaping path: every ``{{ … }}`` in a template must go through the
``toml`` filter (values), ``toml_key`` (keys) or ``toml_comment`` (comment text); anything else
is refused at render time. Rendered text is parsed back with tomllib before anyone may write it,
and :func:`write_config` replaces files atomically, leaving unchanged files (and their mtime)
alone.

Templates are looked up in: the manifest's ``templates:`` folder (if any), the copy packaged in
the wheel (``dome_tasks/templates``), then this checkout's ``templates/`` folder.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RenderError
from .toml_values import toml_comment, toml_key, toml_value

if TYPE_CHECKING:
    import jinja2

    from .model import WorkerConfig

__all__ = [
    "TEMPLATE_NAME",
    "BUILD_DIR",
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


def template_search_path(templates_dir: Path | None = None) -> tuple[Path, ...]:
    """The folders searched for templates, first match wins."""
    here = Path(__file__).resolve().parent
    packaged, checkout = here / "templates", here.parent / "templates"
    dirs = [Path(templates_dir)] if templates_dir is not None else []
    dirs += [d for d in (packaged, checkout) if d.is_dir()]
    return tuple(dict.fromkeys(dirs))


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
        def apply(value: Any) -> _Escaped:
            if isinstance(value, jinja2.Undefined):  # filters receive Undefined unraised
                value._fail_with_undefined_error()
            return _Escaped(encode(value))

        return apply

    return {
        "toml": escaping(toml_value),
        "toml_key": escaping(toml_key),
        "toml_comment": escaping(toml_comment),
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
    """The template context for one worker: plain data, paths relative to ``out_path``'s folder."""
    out_dir = Path(out_path).parent
    service_dir = Path(config.service_dir)

    def rel(path: str) -> str:
        return _relative(service_dir / path, out_dir)

    routes: list[Any] = []
    for route in config.routes:
        if route.zone_name is None and not route.custom_domain:
            routes.append(route.pattern)
            continue
        entry: dict[str, Any] = {"pattern": route.pattern}
        if route.zone_name is not None:
            entry["zone_name"] = route.zone_name
        if route.custom_domain:
            entry["custom_domain"] = True
        routes.append(entry)

    return {
        "generated_from": _relative(Path(manifest_path), out_dir),
        "service": config.service,
        "environment": config.environment,
        "name": config.name,
        "main": rel(config.main),
        "compatibility_date": config.compatibility_date,
        "compatibility_flags": list(config.compatibility_flags),
        "account_id": config.account_id,
        "workers_dev": config.workers_dev,
        "routes": routes,
        "vars": [{"name": k, "value": v} for k, v in config.vars],
        "secrets": list(config.secrets),
        "observability": config.observability,
        "ai_binding": config.ai_binding,
        "services": [
            {"binding": s.binding, "worker": s.worker, "entrypoint": s.entrypoint}
            for s in config.services
        ],
        "d1_databases": [
            {
                "binding": d.binding,
                "database_name": d.database_name,
                "database_id": d.database_id,
                "migrations_dir": None if d.migrations_dir is None else rel(d.migrations_dir),
            }
            for d in config.d1_databases
        ],
        "r2_buckets": [
            {"binding": r.binding, "bucket_name": r.bucket_name} for r in config.r2_buckets
        ],
        "kv_namespaces": [{"binding": k.binding, "id": k.id} for k in config.kv_namespaces],
        "vectorize": [{"binding": v.binding, "index_name": v.index_name} for v in config.vectorize],
        "queue_producers": [
            {"binding": q.binding, "queue": q.queue} for q in config.queue_producers
        ],
        "queue_consumers": [
            {
                "queue": q.queue,
                "max_batch_size": q.max_batch_size,
                "max_batch_timeout": q.max_batch_timeout,
                "max_retries": q.max_retries,
                "dead_letter_queue": q.dead_letter_queue,
            }
            for q in config.queue_consumers
        ],
        "durable_objects": [
            {"name": d.binding, "class_name": d.class_name, "script_name": d.script_name}
            for d in config.durable_objects
        ],
        "durable_object_migrations": [
            {
                "tag": m.tag,
                "new_classes": list(m.new_classes),
                "new_sqlite_classes": list(m.new_sqlite_classes),
            }
            for m in config.durable_object_migrations
        ],
    }


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
) -> str:
    """Render ``config`` as the text of a self-contained wrangler.toml destined for ``out_path``.

    Pure: writes nothing. The text is checked to be valid TOML; template errors and invalid
    output raise :class:`RenderError` naming the template file and line.
    """
    import jinja2

    env = _cached_environment(None if templates_dir is None else Path(templates_dir))
    context = build_context(config, manifest_path=manifest_path, out_path=out_path)
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
    check_toml(text, where=f"{out_path} ({config.service} in {config.environment})")
    return text


# --------------------------------------------------------------------------- writing


def write_config(text: str, path: Path) -> bool:
    """Write ``text`` to ``path`` atomically; return False (and touch nothing) if unchanged."""
    path = Path(path)
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    check_toml(text, where=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
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
    configs = [manifest.resolve(s, e) for e in environments for s in services]
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
    """Render already-resolved configs to :func:`config_path` under ``root``; then write them."""
    rendered = []
    for config in configs:
        out = config_path(root, config.environment, config.service)
        text = render_config(
            config, manifest_path=manifest_path, out_path=out, templates_dir=templates_dir
        )
        rendered.append((text, out))
    if len(rendered) > 4:  # fsync dominates: overlap it across files
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda item: write_config(*item), rendered))
    else:
        for text, out in rendered:
            write_config(text, out)
    return [out for _, out in rendered]
