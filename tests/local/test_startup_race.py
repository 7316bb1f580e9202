"""A `wrangler dev` that loses the shared state folder's SQLite race is started again.

workerd processes started at once on one `--persist-to` folder can fail with SQLITE_BUSY; the
race cannot be produced on demand, so a stand-in `wrangler` plays it: its first start fails
with workerd's message, the next one serves /health.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from dome_tasks.local import LocalEnv, LocalService, PortRange, StartupFailed, start, stop

FAKE_WRANGLER = """#!{python}
import http.server, pathlib, sys
args = sys.argv[1:]
port = int(args[args.index("--port") + 1])
tries = pathlib.Path({tries!r})
count = int(tries.read_text()) if tries.exists() else 0
tries.write_text(str(count + 1))
if count < {failures}:
    print("*** Fatal uncaught kj::Exception: workerd/util/sqlite.c++:842: failed: "
          "SENTRY_DO SQLite failed; NOSENTRY database is locked: SQLITE_BUSY", flush=True)
    sys.exit(1)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


def fake_env(tmp_path: Path, failures: int) -> tuple[LocalEnv, Path]:
    tries = tmp_path / "tries"
    wrangler = tmp_path / "bin" / "wrangler"
    wrangler.parent.mkdir()
    wrangler.write_text(FAKE_WRANGLER.format(python=sys.executable, tries=str(tries), failures=failures))
    wrangler.chmod(wrangler.stat().st_mode | stat.S_IXUSR)
    env = LocalEnv(state_dir=tmp_path / "state", wrangler=wrangler, ports=PortRange(28950, 28959),
                   health_timeout=10)
    return env, tries


def service(tmp_path: Path) -> LocalService:
    config = tmp_path / "build" / "wrangler.toml"
    config.parent.mkdir()
    config.write_text('name = "race-local"\nmain = "index.js"\n')
    return LocalService("race", "race-local", config, "/health")


def test_a_startup_lost_to_sqlite_busy_is_retried(tmp_path):
    env, tries = fake_env(tmp_path, failures=1)
    try:
        record = start(env, service(tmp_path))
        assert tries.read_text() == "2"
        assert record.port == 28950
    finally:
        stop(env)


def test_a_race_lost_every_time_fails_with_the_log_tail(tmp_path):
    env, tries = fake_env(tmp_path, failures=10)
    with pytest.raises(StartupFailed) as failed:
        start(env, service(tmp_path))
    assert "SQLITE_BUSY" in failed.value.log_tail
    assert tries.read_text() == "3"
