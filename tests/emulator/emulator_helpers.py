"""Helpers to run the real, pinned wrangler against the emulator, hermetically."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dome_tasks.testing.emulator import Emulator
from dome_tasks.wrangler.env import hermetic_env
from dome_tasks.wrangler.output import WranglerOutput, read_output
from dome_tasks.wrangler.retry import Attempt

REPO = Path(__file__).resolve().parents[2]
WRANGLER = REPO / "node_modules" / ".bin" / "wrangler"
#: The oldest wrangler dome-tasks supports (scripts/setup installs it).
OLDEST = REPO / "tests" / "fixtures" / "wrangler-oldest" / "node_modules" / ".bin" / "wrangler"

BASE_TOML = """\
name = "{name}"
main = "index.js"
compatibility_date = "2025-01-01"
workers_dev = true
"""
WORKER_JS = (
    "export default {\n"
    "  async fetch(request, env) { return new Response(`hello from ${env.SERVICE_NAME}`); },\n"
    "  async queue(batch, env) {},\n"
    "};\n"
)


@dataclass(frozen=True)
class Run:
    """One finished wrangler run."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    output: WranglerOutput
    seconds: float

    @property
    def attempt(self) -> Attempt:
        return Attempt(self.returncode, self.stdout, self.stderr, self.output)

    def __str__(self) -> str:
        return f"{' '.join(self.argv)} -> {self.returncode}\n{self.stdout}\n{self.stderr}"


class Wrangler:
    """Runs wrangler in a project directory, pointed at one emulator, hermetically."""

    def __init__(self, emulator: Emulator, project: Path, state: Path, guard: dict[str, str],
                 binary: Path = WRANGLER):
        self.binary = binary
        self.emulator = emulator
        self.project = project
        self.state = state
        self.guard = guard

    def env(self, environment: str = "default", **overrides: str | None) -> dict[str, str]:
        env = hermetic_env(
            os.environ,
            state_dir=self.state,
            environment=environment,
            api_base_url=self.emulator.url,
            api_token=self.emulator.token,
            account_id=self.emulator.account_id,
            isolate_config=True,
        )
        env.update(self.guard)
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
    ) -> Run:
        env = env if env is not None else self.env()
        argv = (str(self.binary), *args)
        start = time.monotonic()
        proc = subprocess.run(
            argv,
            cwd=self.project,
            env=env,
            input=input if input is not None else "",
            capture_output=True,
            check=False,
            text=True,
            timeout=60,
        )
        run = Run(
            argv=tuple(args),
            returncode=proc.returncode,
            stdout=proc.stdout,
            stderr=proc.stderr,
            output=read_output(env["WRANGLER_OUTPUT_FILE_PATH"]),
            seconds=time.monotonic() - start,
        )
        if check and run.returncode != 0:
            raise AssertionError(f"wrangler failed:\n{run}")
        return run

    def attempt_fn(self, *args: str):  # type: ignore[no-untyped-def]
        """A zero-argument callable for `run_with_retries` (fresh output file each time)."""
        return lambda: self(*args, check=False).attempt


def write_project(path: Path, toml: str, *, name: str = "silo") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "wrangler.toml").write_text(BASE_TOML.format(name=name) + toml, encoding="utf-8")
    (path / "index.js").write_text(WORKER_JS, encoding="utf-8")
    return path


def api_lines(emulator: Emulator, method: str | None = None) -> list[str]:
    """`METHOD /path` of every request, with the account prefix shortened to `/a`."""
    prefix = f"/accounts/{emulator.account_id}"
    return [
        f"{r.method} {r.path.replace(prefix, '/a', 1)}"
        for r in emulator.requests
        if method is None or r.method == method
    ]


def sequence_in(needles: Sequence[str], haystack: Sequence[str]) -> bool:
    """Whether `needles` occur in `haystack` in this order (not necessarily adjacent)."""
    it = iter(haystack)
    return all(any(n == h for h in it) for n in needles)
