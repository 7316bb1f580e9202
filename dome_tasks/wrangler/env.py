"""The environment wrangler runs in: no telemetry, no update check, no shared caches.

What each variable does, as observed with wrangler 4.86.0:

* `WRANGLER_SEND_METRICS=false`, `WRANGLER_SEND_ERROR_REPORTS=false`: no telemetry, no Sentry.
* The npm update check (it runs on success and error paths) reads its cache file
  `$TMPDIR/update-check/wrangler-latest.json` and asks the registry only when the file is
  older than an hour. We point `TMPDIR` at a private directory whose cache says "checked
  just now, latest 0.0.0" and point `npm_registry` (the variable its `rc` lookup reads) at a
  closed loopback port, so the check can never leave the machine.
* `WRANGLER_CACHE_DIR`: wrangler otherwise caches the chosen account in the closest
  `node_modules/.cache/wrangler` (shared by every project and environment of a monorepo)
  or `.wrangler/cache`. One directory per environment keeps accounts from leaking.
* `WRANGLER_OUTPUT_FILE_PATH`: a fresh NDJSON file per run (see `wrangler.output`), named
  `wrangler-output-<pid>-*.ndjson` after the dome process: the caller removes it when the run
  ends (in a `finally`), and files left by a dome process that no longer exists (killed with
  SIGKILL) are swept the next time an environment is prepared.
* `WRANGLER_WRITE_LOGS=false`: no debug log file (wrangler >= 4.1xx), which otherwise holds the
  API token, secret values and what the API echoed back, in clear, under the user's
  `~/.config/.wrangler/logs`. Older wranglers ignore it, so `WRANGLER_LOG_PATH` also names a
  per-run file beside the output file (`wrangler-log-<pid>-*.log`), which the caller removes
  with it (`run_files`); files of dead dome processes are swept like the output files.
* `NO_COLOR=1`, `FORCE_COLOR=0`: less ANSI (wrangler still colours its error boxes).
* `CI=1`: never prompt, even when attached to a terminal.
* `NODE_COMPILE_CACHE=<state_dir>/node-compile-cache`: Node (>= 22.1) keeps the V8 code it
  compiled for wrangler's 15 MB bundle, so later runs skip compiling it: about 150 ms of every
  wrangler start. Node checks each entry against the source's hash, so an upgraded wrangler
  never runs stale code. A user's own `NODE_COMPILE_CACHE` (or `NODE_DISABLE_COMPILE_CACHE`)
  is kept; older nodes ignore the variable.
* `PATH`: the folder of a node new enough for today's wrangler comes first
  (`dome_tasks.tools.with_node`); the versions of the nodes tried are remembered in
  `<state_dir>/node-versions/` while each binary stays the same, so a run starts no
  `node --version`.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DEAD_REGISTRY", "hermetic_env", "keep_compiled_code", "run_files",
           "seed_update_check", "sweep_stale_outputs"]

DEAD_REGISTRY = "http://127.0.0.1:9/"
_DROPPED = ("CF_API_BASE_URL", "WRANGLER_OUTPUT_FILE_DIRECTORY", "WRANGLER_LOG_SANITIZE")


def seed_update_check(tmp_dir: Path, *, now_ms: int | None = None) -> Path:
    """Write the update-check cache that tells wrangler it has just checked; return its path."""
    target = tmp_dir / "update-check" / "wrangler-latest.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    stamp = int(time.time() * 1000) if now_ms is None else now_ms
    target.write_text(json.dumps({"latest": "0.0.0", "lastUpdate": stamp}), encoding="utf-8")
    return target


def sweep_stale_outputs(directory: Path) -> list[Path]:
    """Remove the output files of dome processes that no longer run; return what was removed."""
    removed = []
    for path in [*directory.glob("wrangler-output-*.ndjson"), *directory.glob("wrangler-log-*.log")]:
        owner = path.name.split("-")[2]
        if owner.isdigit() and not _running(int(owner)):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def keep_compiled_code(env: dict[str, str], state_dir: Path) -> None:
    """Let Node cache wrangler's compiled code under *state_dir* (``NODE_COMPILE_CACHE``),
    unless the user chose a cache of their own or turned it off."""
    if "NODE_COMPILE_CACHE" not in env and "NODE_DISABLE_COMPILE_CACHE" not in env:
        env["NODE_COMPILE_CACHE"] = str(state_dir / "node-compile-cache")


def _log_path(output: str) -> str:
    folder, name = os.path.split(output)
    return os.path.join(folder, name.replace("wrangler-output-", "wrangler-log-", 1)
                        .replace(".ndjson", ".log"))


def run_files(env: Mapping[str, str]) -> tuple[str, ...]:
    """The files one run of :func:`hermetic_env` made (its output file and log file): the
    caller removes them when the run ends."""
    return tuple(env[k] for k in ("WRANGLER_OUTPUT_FILE_PATH", "WRANGLER_LOG_PATH") if k in env)


def _slug(environment: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in environment) or "default"


def hermetic_env(
    base_env: Mapping[str, str],
    *,
    state_dir: Path | str,
    environment: str = "default",
    api_base_url: str | None = None,
    api_token: str | None = None,
    account_id: str | None = None,
    isolate_config: bool = False,
    debug_http: bool = False,
) -> dict[str, str]:
    """Return a copy of `base_env` fit for running wrangler unattended.

    `state_dir` holds per-environment caches (`<state_dir>/<environment>/cache`), the
    private TMPDIR and the output files; each call creates a fresh, empty output file.
    `isolate_config=True` also moves wrangler's user config (OAuth login, logs) into
    `state_dir`; leave it False when a user's `wrangler login` should still apply.
    `debug_http=True` sets `WRANGLER_LOG=debug`, which prints each API request line and
    response status (`retry.parse_debug_log` reads them). Headers, and so Retry-After,
    appear only with `WRANGLER_LOG_SANITIZE=false`, which also prints request bodies (secret
    values!), so this function never sets it.
    """
    root = Path(state_dir)
    env_dir = root / _slug(environment)
    cache_dir = env_dir / "cache"
    tmp_dir = root / "tmp"
    cache_dir.mkdir(parents=True, exist_ok=True)
    seed_update_check(tmp_dir)
    sweep_stale_outputs(env_dir)
    fd, output = tempfile.mkstemp(
        prefix=f"wrangler-output-{os.getpid()}-", suffix=".ndjson", dir=env_dir
    )
    os.close(fd)

    from dome_tasks.tools import with_node

    env = with_node({k: v for k, v in base_env.items() if k not in _DROPPED},
                    cache=root / "node-versions")
    env.update(
        {
            "WRANGLER_SEND_METRICS": "false",
            "WRANGLER_SEND_ERROR_REPORTS": "false",
            "WRANGLER_CACHE_DIR": str(cache_dir),
            "WRANGLER_OUTPUT_FILE_PATH": output,
            "WRANGLER_WRITE_LOGS": "false",
            "WRANGLER_LOG_PATH": _log_path(output),
            "TMPDIR": str(tmp_dir),
            "npm_registry": DEAD_REGISTRY,
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
            "CI": "1",
        }
    )
    keep_compiled_code(env, root)
    if api_base_url is not None:
        env["CLOUDFLARE_API_BASE_URL"] = api_base_url
        loopback = "127.0.0.1,localhost"
        env["NO_PROXY"] = env["no_proxy"] = loopback
    if api_token is not None:
        env["CLOUDFLARE_API_TOKEN"] = api_token
    if account_id is not None:
        env["CLOUDFLARE_ACCOUNT_ID"] = account_id
    if isolate_config:
        config_dir = root / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        env["XDG_CONFIG_HOME"] = str(config_dir)
    if debug_http:
        env["WRANGLER_LOG"] = "debug"
    else:
        env.pop("WRANGLER_LOG", None)
    return env
